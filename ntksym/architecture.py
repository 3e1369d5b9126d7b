"""``Architecture``: a validated spec with its graph, the object the Python API passes around.

>>> import ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [3] }\\n[[layer]]\\nkind = "dense"\\n')
>>> arch.name, arch.input_shape
('m', (3,))
"""

from __future__ import annotations

import os
from functools import cached_property

from ntksym.spec.graph import build_graph, layer_graph
from ntksym.spec.parse import Spec, load_spec_file, loads_spec


class Architecture:
    """A network description: ``spec`` (validated), ``graph`` (networkx), ``derive()``.

    ``layer_graph`` is the same graph as plain dicts (what ``ntksym check`` prints): an
    Architecture loads networkx with its ``graph`` and sympy with ``derive``, not before.
    """

    def __init__(self, spec: Spec):
        self.spec = spec
        self._programs = {}          # per_layer -> KernelProgram, derived once

    @property
    def name(self):
        return self.spec.name

    @property
    def hash(self):
        return self.spec.hash

    @property
    def input_shape(self):
        return tuple(self.spec.input_shape)

    @cached_property
    def layer_graph(self):
        """The checked graph as a :class:`~ntksym.layers.layer_graph.LayerGraph` (no
        networkx); SpecError if the spec's layers do not fit together."""
        return layer_graph(self.spec)

    @cached_property
    def graph(self):
        """The checked graph as a ``networkx.DiGraph`` (:func:`ntksym.spec.graph.build_graph`)."""
        return self.layer_graph.to_networkx()

    def finite_graph(self, width):
        """The graph with every hidden width left open in the spec set to ``width``."""
        return build_graph(self.spec, widths=width)

    def with_input_shape(self, shape):
        """The same architecture on inputs of another shape (e.g. another feature count).

        >>> import ntksym
        >>> a = ntksym.loads_spec('name = "m"\\ninput = { shape = [3] }\\n'
        ...                       '[[layer]]\\nkind = "dense"\\n')
        >>> a.with_input_shape([5]).input_shape
        (5,)
        """
        from dataclasses import replace
        spec = replace(self.spec, input_shape=tuple(int(s) for s in shape))
        return Architecture(spec)

    def derive(self, per_layer=False, gradient=False):
        """The KernelProgram (NNGP and NTK recursion); see :func:`ntksym.derive.derive`.
        ``gradient``: with the tangents dK/dtheta of every learnable constant
        (:func:`ntksym.derive.gradient_program`)."""
        from ntksym.derive import derive, gradient_program  # sympy loads here
        key = (bool(per_layer), bool(gradient))
        if key not in self._programs:
            self._programs[key] = (gradient_program(self.derive(per_layer), self.spec.path)
                                   if gradient else derive(self.graph, per_layer=per_layer))
        return self._programs[key]

    @property
    def hyperparameters(self):
        """{name: value} of the learnable constants, in the spec's order (may be empty)."""
        return self.spec.hyperparameters

    def with_hyperparameters(self, values):
        """The same architecture with learnable constants set to ``values`` ({name: value}).

        >>> import ntksym
        >>> a = ntksym.loads_spec('name = "m"\\ninput = { shape = [3] }\\n[[layer]]\\n'
        ...                       'kind = "dense"\\nweight_var = { value = 2.0, learn = true }\\n')
        >>> a.with_hyperparameters({"weight_var_dense_0": 3.0}).hyperparameters
        {'weight_var_dense_0': 3.0}
        """
        return Architecture(self.spec.with_hyperparameters(values))

    def to_toml(self) -> str:
        """The spec as TOML text that loads back to the same graph, derivation and kernels
        (:func:`ntksym.spec.emit.spec_to_toml`: one table per layer, ``repeat``, shorthands and
        blocks expanded, ``[defaults]`` kept, comments dropped).

        >>> import ntksym
        >>> a = ntksym.loads_spec('name = "m"\\ninput = { shape = [3] }\\n'
        ...                       '[[layer]]\\nkind = "dense"\\nactivation = "erf"\\n'
        ...                       '[[layer]]\\nkind = "dense"\\n')
        >>> Architecture.from_toml(a.to_toml()).hash == a.hash
        True
        """
        from ntksym.spec.emit import spec_to_toml
        return spec_to_toml(self.spec)

    @classmethod
    def from_toml(cls, text, path=None) -> "Architecture":
        """The Architecture of spec text (as :func:`ntksym.loads_spec`)."""
        return cls(loads_spec(text, path))

    def __repr__(self):
        return f"Architecture({self.name!r}, {len(self.spec.layers)} layers)"

    def __deepcopy__(self, memo):
        # a value: its spec is never changed in place (``with_*`` make new ones), and what it
        # caches (graph, programs) follows from the spec; scikit-learn clones deep-copy
        # parameters at every optimizer step, which must not copy the sympy programs
        return self


def load_spec(path) -> Architecture:
    """Load and validate a spec file (SPEC.md §1); errors are :class:`ntksym.SpecError`."""
    return Architecture(load_spec_file(path))


def as_architecture(arch) -> Architecture:
    """``arch`` itself if it is an Architecture, else the spec file it names (str or Path).

    Lets every API function take a spec path: ``ntksym.kernel("spec/x.toml", X)``.
    """
    if isinstance(arch, Architecture):
        return arch
    if isinstance(arch, (str, os.PathLike)):
        return load_spec(arch)
    raise TypeError("expected an ntksym.Architecture or a spec file path, "
                    f"got {type(arch).__name__}")


def loads_spec_arch(text, path=None) -> Architecture:
    """Validate spec text (TOML); ``path`` only names it in messages."""
    return Architecture(loads_spec(text, path))
