"""``ntksym.nn``: build architectures in Python, as neural-tangents' ``stax`` does.

Sugar over the spec format, not a second model: each constructor is one spec layer kind with
the same keys (``nn.dense(width=None, weight_var=..., ...)``, ``nn.conv(filter=3)``,
``nn.relu()``, ``nn.leaky_relu(0.1)`` ..., one function per kind of
:data:`ntksym.layers.LAYER_KINDS`), the composites write ``inputs`` for you, and building emits
spec text that :func:`ntksym.loads_spec` validates, so a built network is exactly the
:class:`~ntksym.Architecture` of that text (``arch.to_toml()`` saves it).

* ``nn.serial(*parts)``: one after the other; ``nn.serial()`` is the identity (a shortcut).
* ``nn.parallel(*branches)``: every branch reads the same input (neural-tangents' ``FanOut``
  and ``parallel``); the next part must join them: ``nn.add(scales=...)`` (``FanInSum``) or
  ``nn.concat()`` (``FanInConcat``).
* ``nn.residual(*branch, scales=None)``: identity shortcut + branch, added:
  ``serial(parallel(serial(), serial(*branch)), add(scales=scales))``.
* ``nn.serial(..., input_shape=[d])`` (or ``net.build(input_shape)``) gives the Architecture.

Ids are the spec's defaults (``{kind}_{n}``, n the layer's position), so a built network and a
hand-written spec of the same layers derive the same printed recursion; ``id=`` names a layer.
Positional arguments: ``width`` on weight layers, ``window`` on pools, the parameters of an
activation in the registry's order (``nn.leaky_relu(0.1)``, ``nn.relu_power(2)``).

>>> import ntksym.nn as nn
>>> arch = nn.serial(nn.dense(weight_var=2.0), nn.relu(),
...                  nn.residual(nn.dense(weight_var=2.0), nn.relu(), nn.dense(),
...                              scales=[1.0, 0.5]),
...                  nn.dense(), input_shape=[8], name="res-mlp")
>>> arch
Architecture('res-mlp', 7 layers)
>>> [(layer.id, layer.inputs) for layer in arch.spec.layers][-2:]
[('add_5', ['relu_1', 'dense_4']), ('dense_6', None)]
>>> import ntksym
>>> ntksym.loads_spec(arch.to_toml()).hash == arch.hash
True
"""

from __future__ import annotations

from ntksym.architecture import Architecture
from ntksym.errors import SpecError
from ntksym.layers import LAYER_KINDS
from ntksym.spec.emit import toml_key, toml_value
from ntksym.spec.parse import check_value

__all__ = ["Part", "Layer", "Serial", "Parallel", "layer", "serial", "parallel", "residual",
           "KINDS"] + list(LAYER_KINDS)

#: every layer kind, each a constructor of this module
KINDS = tuple(LAYER_KINDS)
#: positional arguments of kinds that are not activations
_POSITIONAL = {"avg_pool": ("window",), "sum_pool": ("window",), "add": ("scales",)}


class Part:
    """Anything composable: a layer, a serial chain, parallel branches."""

    def emit(self, out, current):
        """Append this part's layer tables to ``out`` (a :class:`_Emitter`) reading the ids
        ``current``; return the ids of its outputs."""
        raise NotImplementedError

    def to_toml(self, input_shape, name="network", description="", defaults=None) -> str:
        """The spec text of this part as a whole network on inputs of ``input_shape``."""
        out = _Emitter()
        ends = self.emit(out, ["input"])
        if len(ends) != 1:
            raise SpecError(f"the network ends in {len(ends)} parallel branches; join them "
                            "with nn.add() or nn.concat() and end in a readout, nn.dense()",
                            file="ntksym.nn")
        head = [f"name = {toml_value(name)}"]
        if description:
            head.append(f"description = {toml_value(description)}")
        head.append(f"input = {{ shape = {toml_value([int(s) for s in input_shape])} }}")
        if defaults:
            head += ["", "[defaults]"]
            head += [f"{toml_key(k)} = {toml_value(v)}" for k, v in defaults.items()]
        return "\n".join(head + out.lines) + "\n"

    def build(self, input_shape, name="network", description="", defaults=None):
        """The :class:`~ntksym.Architecture` of this part on inputs of ``input_shape``
        (``[d]``, ``[H, W, C]`` or ``[T, d]``); ``defaults``: the spec's ``[defaults]``."""
        text = self.to_toml(input_shape, name, description, defaults)
        arch = Architecture.from_toml(text, path="<ntksym.nn>")
        arch.graph                 # shapes, joins and the readout checked now, not at first use
        return arch


class _Emitter:
    """The layer tables written so far: the lines, how many layers they expand to, the id of
    the last one (what a table without ``inputs`` reads)."""

    def __init__(self):
        self.lines, self.count, self.last = [], 0, "input"


class Layer(Part):
    """One spec layer: ``kind`` and its keys (validated as the spec parser validates them)."""

    def __init__(self, kind, params=None, id=None):
        self.kind, self.params, self.id = kind, dict(params or {}), id

    def __repr__(self):
        args = [f"{k}={v!r}" for k, v in self.params.items()]
        if self.id:
            args.append(f"id={self.id!r}")
        return f"nn.{self.kind}({', '.join(args)})"

    def emit(self, out, current):
        cls = LAYER_KINDS[self.kind]
        lo, hi = cls.inputs_range
        if hi == 1 and len(current) > 1:
            raise SpecError(f"{self!r} receives {len(current)} parallel branches; join them "
                            "first with nn.add() or nn.concat()", file="ntksym.nn")
        if len(current) < lo:
            raise SpecError(f"{self!r} joins branches but receives one input; put "
                            "nn.parallel(...) before it", file="ntksym.nn")
        position = out.count
        lines = ["", "[[layer]]", f"kind = {toml_value(self.kind)}"]
        if self.id is not None:
            lines.append(f"id = {toml_value(self.id)}")
        if list(current) != [out.last]:
            lines.append(f"inputs = {toml_value(list(current))}")
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in self.params.items()]
        out.lines += lines
        last = self.id or f"{self.kind}_{position}"
        out.count += 1
        shorthand = self.params.get("activation")
        if shorthand and cls.has_weights and not getattr(cls, "owns_activation", False):
            from ntksym.duals.activations import parse_shorthand
            last = f"{parse_shorthand(shorthand)[0]}_{out.count}"
            out.count += 1
        out.last = last
        return [last]


class Serial(Part):
    """Parts one after the other; no parts: the identity."""

    def __init__(self, parts):
        self.parts = list(parts)

    def __repr__(self):
        return f"nn.serial({', '.join(map(repr, self.parts))})"

    def emit(self, out, current):
        for part in self.parts:
            current = part.emit(out, current)
        return current


class Parallel(Part):
    """Branches that read the same input; their outputs go on together to a join."""

    def __init__(self, branches):
        self.branches = list(branches)

    def __repr__(self):
        return f"nn.parallel({', '.join(map(repr, self.branches))})"

    def emit(self, out, current):
        ends = []
        for branch in self.branches:
            ends += branch.emit(out, current)
        return ends


def _part(p):
    if not isinstance(p, Part):
        raise TypeError(f"expected an nn layer or composite (nn.dense(), nn.serial(...) ...), "
                        f"got {type(p).__name__} {p!r}; call the constructor: nn.relu(), "
                        "not nn.relu")
    return p


def serial(*parts, input_shape=None, name="network", description="", defaults=None):
    """Parts one after the other (``nn.serial()``: the identity).  With ``input_shape`` the
    built :class:`~ntksym.Architecture` (``name``, ``description``, ``defaults`` as in a
    spec), else a composable :class:`Serial`.

    >>> import ntksym.nn as nn
    >>> nn.serial(nn.dense(weight_var=2.0), nn.relu(), nn.dense(), input_shape=[3]).name
    'network'
    """
    s = Serial([_part(p) for p in parts])
    if input_shape is None:
        return s
    return s.build(input_shape, name=name, description=description, defaults=defaults)


def parallel(*branches):
    """Branches reading the same input (each a layer or an ``nn.serial``); join them next with
    ``nn.add()`` or ``nn.concat()``.

    >>> import ntksym.nn as nn
    >>> net = nn.serial(nn.parallel(nn.serial(nn.dense(), nn.relu()),
    ...                             nn.serial(nn.dense(), nn.erf())), nn.concat(), nn.dense())
    >>> [(layer.id, layer.inputs) for layer in net.build([4]).spec.layers][2:5]
    [('dense_2', ['input']), ('erf_3', None), ('concat_4', ['relu_1', 'erf_3'])]
    """
    if len(branches) < 2:
        raise SpecError("nn.parallel needs two or more branches", file="ntksym.nn")
    return Parallel([_part(b) for b in branches])


def residual(*branch, scales=None, id=None):
    """``y + branch(y)``: an identity shortcut and ``branch`` (its layers in order) joined by
    ``add`` (``scales``: [shortcut, branch] multipliers).  The branch must end in fresh weights
    (a dense or conv layer, maybe followed by pooling), as ``add`` requires.

    >>> import ntksym.nn as nn
    >>> nn.residual(nn.relu(), nn.dense(), scales=[1.0, 0.5])
    nn.serial(nn.parallel(nn.serial(), nn.serial(nn.relu(), nn.dense())), nn.add(scales=[1.0, 0.5]))
    """
    params = {} if scales is None else {"scales": scales}
    return Serial([Parallel([Serial([]), Serial([_part(p) for p in branch])]),
                   layer("add", id=id, **params)])


def layer(kind, *args, id=None, **keys):
    """A layer of any spec kind: ``nn.layer("dense", width=8)`` is ``nn.dense(width=8)``.
    Keys are checked now (name, type, range), as the spec parser checks them.

    >>> layer("leaky_relu", 0.1), layer("conv", filter=3, padding="valid")
    (nn.leaky_relu(slope=0.1), nn.conv(filter=[3], padding='valid'))
    """
    if kind not in LAYER_KINDS:
        from ntksym.spec.common import suggest
        raise SpecError(f"unknown layer kind {kind!r}; kinds: {', '.join(LAYER_KINDS)}",
                        file="ntksym.nn", hint=suggest(kind, LAYER_KINDS))
    cls = LAYER_KINDS[kind]
    positional = _positional(kind)
    if len(args) > len(positional):
        raise TypeError(f"nn.{kind}() takes {len(positional)} positional argument(s) "
                        f"({', '.join(positional) or 'none'}), got {len(args)}")
    for name, value in zip(positional, args):
        if name in keys:
            raise TypeError(f"nn.{kind}() got {name!r} twice")
        keys[name] = value
    shorthand = cls.has_weights and not getattr(cls, "owns_activation", False)
    allowed = list(cls.keys) + (["activation"] if shorthand else [])
    params = {}
    for key, value in keys.items():
        if key not in allowed:
            from ntksym.spec.common import suggest
            raise SpecError(f"nn.{kind}() has no key {key!r}; keys: "
                            f"{', '.join(allowed + ['id']) or 'id'}", file="ntksym.nn",
                            hint=suggest(key, allowed))
        if value is None:
            continue                 # the key's default
        if key in cls.keys:
            value, err = check_value(key, cls.keys[key], value)
            if err:
                raise SpecError(err, file="ntksym.nn", layer=kind, key=key)
        params[key] = value
    return Layer(kind, params, id)


def _positional(kind):
    cls = LAYER_KINDS[kind]
    if cls.has_weights:
        return ("width",)
    from ntksym.duals.activations import ACTIVATION_KINDS
    if kind in ACTIVATION_KINDS:
        return tuple(cls.keys)
    return _POSITIONAL.get(kind, ())


def _constructor(kind):
    def make(*args, id=None, **keys):
        return layer(kind, *args, id=id, **keys)

    cls = LAYER_KINDS[kind]
    keys = list(cls.keys) + (["activation"] if cls.has_weights
                             and not getattr(cls, "owns_activation", False) else [])
    pos = _positional(kind)
    make.__name__ = make.__qualname__ = kind
    make.__doc__ = (f"A ``{kind}`` layer (the spec's ``kind = \"{kind}\"``). Positional: "
                    f"{', '.join(pos) or 'none'}; keys: {', '.join(keys) or 'none'}; ``id``.\n\n"
                    f"Types, defaults and meanings: docs/spec.md or "
                    f"``ntksym check --keys {kind}``.")
    return make


for _kind in LAYER_KINDS:
    globals()[_kind] = _constructor(_kind)
del _kind
