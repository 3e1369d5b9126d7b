"""Graph + layer kernel rules -> KernelProgram: one walker for vectors, images and sequences.

:func:`derive` walks the graph in topological order.  Each layer's ``kernel_rule`` is applied
twice: to the cross state of a pair (x, x') and to the diagonal state (x, x), where layers use
their exact diagonal forms.  Every new quantity gets an SSA symbol (``Sigma_k``, ``Theta_k``,
``Sigma_k_xx`` ...), so the program is a readable straight-line recursion, one step per layer.
A layer whose rule moves indices says so: ``structural_step(node)`` (a patch sum, a pooling
window ...) is applied before its rule, and a layer with its own ``derive_steps(node, walk)``
(the rnn layer: a recurrence over time pairs and its readout) adds its steps itself, through the
:class:`Derivation` it is given.

With ``per_layer=True`` the NTK is kept as one sum term per trainable parameter group
(``Theta_k[dense_0.W]``): the per-layer contributions, whose sum is the NTK.

>>> from ntksym import loads_spec
>>> arch = loads_spec('name = "m"\\ninput = { shape = [3] }\\n'
...                   '[[layer]]\\nkind = "dense"\\nweight_var = 2.0\\n')
>>> print(arch.derive())  # doctest: +NORMALIZE_WHITESPACE
kernel program of 'm' ...
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from ntksym.errors import SpecError
from ntksym.ir.hyper import split_tangent
from ntksym.ir.program import Assign, Elementwise, KernelProgram, Structural
from ntksym.ir.symbols import HyperSymbol, y_side
from ntksym.layers import LAYER_KINDS
from ntksym.layers.base import KernelState
from ntksym.spec.graph import layer_order

#: the NTK's single group when the per-layer terms are summed
TOTAL = "total"

_INPUT_KINDS = {1: "vector", 3: "image", 2: "sequence"}

#: the note every sequence program carries (the rnn's h_0 is drawn per example)
SAME_EXAMPLE_NOTE = ("1{x = x'} is 1 for the same example of a Gram matrix K(X, X), else 0 "
                     "(h_0 is drawn independently for every example)")


def sym(name):
    """The SSA symbol of a state entry (all are real)."""
    return sp.Symbol(name, real=True)


class Derivation:
    """The state of one walk: the states of the nodes done, the steps so far, the symbol index.

    Layers with their own ``derive_steps`` use :meth:`next_index`, :meth:`collapse`,
    :meth:`assign` and :meth:`theta` to build steps with the walker's naming.
    """

    def __init__(self, graph, per_layer):
        self.graph = graph
        self.per_layer = per_layer
        self.kind = _INPUT_KINDS[len(graph.graph["input_shape"])]
        self.steps = []
        self.notes = []
        self.k = 0
        #: "grid" while a sequence program's state is indexed by time pairs, then "scalar"
        self.phase = "grid" if self.kind == "sequence" else None
        s0, s0x = sym("Sigma_0"), sym("Sigma_0_xx")
        self.input_cross, self.input_diag = s0, s0x
        self.cross = {"input": KernelState(s0, {}, s0x, y_side(s0x), False)}
        self.diag = {"input": KernelState(s0x, {}, s0x, s0x, True)}
        self.shapes = {}
        if self.kind != "sequence":
            hw = _spatial(graph.graph["input_shape"][:2] if self.kind == "image" else None)
            self.shapes = {s0.name: hw, s0x.name: hw}

    def next_index(self):
        self.k += 1
        return self.k

    def theta(self, head, group):
        """The name of an NTK entry: ``Theta_3`` or, per layer, ``Theta_3[dense_0.W]``."""
        return head if not self.per_layer else f"{head}[{group}]"

    def collapse(self, state):
        """Sum the NTK groups into one (unless per layer)."""
        if self.per_layer:
            return state
        return state.with_(ntk={TOTAL: sp.Add(*state.ntk.values())} if state.ntk else {})

    def assign(self, cross, diag, c, dg, k, suffix=""):
        """Fresh SSA symbols ``Sigma_{k}{suffix}`` ... for the entries of c (cross) and dg
        (diagonal) that are not already symbols or numbers; the assignments are appended to the
        lists ``cross`` and ``diag``.  Returns the new (cross, diagonal) states."""

        def fresh(expr, name, target):
            # a hyperparameter alone (a per-layer bias term b) is a value, not state: assign it
            if (isinstance(expr, sp.Symbol) and not isinstance(expr, HyperSymbol)) \
                    or expr.is_Number:
                return expr
            s = sym(name)
            target.append(Assign(s, expr))
            return s

        sig, th = f"Sigma_{k}{suffix}", f"Theta_{k}{suffix}"
        nngp_x = fresh(dg.nngp, sig + "_xx", diag)
        ntk_x = {g: fresh(t, self.theta(th, g) + "_xx", diag) for g, t in dg.ntk.items()}
        nngp = fresh(c.nngp, sig, cross)
        ntk = {g: fresh(t, self.theta(th, g), cross) for g, t in c.ntk.items()}
        var_y = y_side(nngp_x) if isinstance(nngp_x, sp.Symbol) else nngp_x
        return (KernelState(nngp, ntk, nngp_x, var_y, False),
                KernelState(nngp_x, ntk_x, nngp_x, nngp_x, True))

    # ------------------------------------------------------------------ the walk
    def layer(self, node):
        """Add the steps of one layer node."""
        attrs = self.graph.nodes[node]
        cls = LAYER_KINDS[attrs["kind"]]
        if hasattr(cls, "notes"):          # e.g. how a mask's factors were derived
            self.notes.extend(cls.notes(attrs))
        preds = list(self.graph.predecessors(node))
        own = getattr(cls, "derive_steps", None)
        if own is not None:
            own(attrs, preds, self)
            return
        if self.phase == "grid" and not cls.acts_per_time_step:
            raise SpecError(f"layer kind '{attrs['kind']}' cannot act on a sequence",
                            file=self.graph.graph.get("name"), line=attrs["line"], key="kind")
        ins_c, ins_d = [self.cross[p] for p in preds], [self.diag[p] for p in preds]
        structure = getattr(cls, "structural_step", None)
        if structure is not None:
            # an index-moving operation (patch sum, pooling ...) feeds the layer's rule
            sstep = Structural(node, cls.describe(attrs), structure(attrs))
            moved_c, moved_d = self._moved(sstep, self.next_index(), ins_c[0], ins_d[0])
            ins_c, ins_d = [moved_c], [moved_d]
            self.steps.append(sstep)
            self._record_shapes(sstep.outputs, _spatial(sstep.op.out_hw))
        c = self.collapse(cls.kernel_rule(attrs, ins_c))
        dg = self.collapse(cls.kernel_rule(attrs, ins_d))
        step = Elementwise(node, cls.describe(attrs), joins=tuple(preds) if len(preds) > 1 else ())
        self.cross[node], self.diag[node] = self.assign(step.cross, step.diag, c, dg,
                                                        self.next_index())
        if step.cross or step.diag or structure is None:
            self.steps.append(step)
        if self.kind != "sequence":
            self._record_shapes([a.target for a in step.cross + step.diag],
                                _spatial(attrs["shape"][:2] if len(attrs["shape"]) == 3
                                         else None))

    def _record_shapes(self, symbols, hw):
        for s in symbols:
            self.shapes.setdefault(s.name, hw)

    def _moved(self, step, k, c, dg):
        """Fresh symbols for the outputs of a structural step applied to every state entry."""
        def moved(state, suffix):
            names = {"nngp": f"Sigma_{k}{suffix}"}
            for g in state.ntk:
                names[g] = (f"Theta_{k}" if g == TOTAL else f"Theta_{k}[{g}]") + suffix
            new = {key: sym(name) for key, name in names.items()}
            step.inputs += tuple([state.nngp] + [state.ntk[g] for g in state.ntk])
            step.outputs += tuple(new.values())
            return new

        nc, nd = moved(c, ""), moved(dg, "_xx")
        cross = KernelState(nc["nngp"], {g: nc[g] for g in c.ntk}, nd["nngp"],
                            y_side(nd["nngp"]), False)
        diag = KernelState(nd["nngp"], {g: nd[g] for g in dg.ntk}, nd["nngp"], nd["nngp"], True)
        return cross, diag

    def program(self):
        g = self.graph.graph
        out = g["output"]
        c, dg = self.cross[out], self.diag[out]
        outputs = {"nngp": c.nngp, "ntk": sp.Add(*c.ntk.values())}
        diag_outputs = {"nngp": dg.nngp, "ntk": sp.Add(*dg.ntk.values())}
        if self.per_layer:
            for grp in c.ntk:
                outputs[f"ntk[{grp}]"] = c.ntk[grp]
                diag_outputs[f"ntk[{grp}]"] = dg.ntk[grp]
        notes = ([SAME_EXAMPLE_NOTE] if self.kind == "sequence" else []) + self.notes
        return KernelProgram(
            name=g["name"], spec_hash=g["spec_hash"], input_kind=self.kind,
            input_cross=self.input_cross, input_diag=self.input_diag,
            input_scale=g["input_shape"][-1], steps=self.steps, outputs=outputs,
            diag_outputs=diag_outputs, per_layer=self.per_layer, shapes=self.shapes,
            notes=notes, hyperparameters={HyperSymbol(n): v for n, v in
                                          g.get("hyperparameters", {}).items()})


def derive(graph, per_layer: bool = False) -> KernelProgram:
    """The KernelProgram of a graph built by :func:`ntksym.spec.graph.build_graph`."""
    walk = Derivation(graph, per_layer)
    for node in layer_order(graph):
        if node != "input":
            walk.layer(node)
    return walk.program()


def _spatial(hw):
    """The pixel grid (H, W) of a state entry; (1, 1) for vector (per-pair scalar) entries."""
    return (1, 1) if hw is None else (int(hw[0]), int(hw[1]))


def gradient_program(program: KernelProgram, path=None) -> KernelProgram:
    """``program`` with the tangents dK/dtheta of its learnable constants
    (:func:`ntksym.ir.tangent.tangent_program`); SpecError (naming ``path``) when it has none or
    a derivative does not exist.

    >>> from ntksym import loads_spec
    >>> a = loads_spec('name = "m"\\ninput = { shape = [3] }\\n[[layer]]\\nkind = "dense"\\n'
    ...                'bias_var = { value = 0.5, learn = true, name = "b" }\\n')
    >>> g = gradient_program(a.derive())
    >>> g.gradient, str(g.outputs["dnngp/d[b]"])
    (('b',), 'dSigma_1/d[b]')
    """
    from ntksym.ir.tangent import tangent_program
    if not program.hyperparameters:
        raise SpecError(f"'{program.name}' has no learnable constants to differentiate; mark "
                        "one with e.g. weight_var = { value = 2.0, learn = true }", file=path)
    try:
        return tangent_program(program)
    except ValueError as e:
        raise SpecError(str(e), file=path) from None


def restrict_to_nngp(p: KernelProgram) -> KernelProgram:
    """The same program without the NTK lines (for ``ntksym derive --kernel nngp``), tangents
    of the NTK entries included."""

    def keep(a):
        t = split_tangent(a.target.name)
        return not (t[0] if t else a.target.name).startswith("Theta_")

    def nngp(outs):
        return {k: v for k, v in outs.items() if k == "nngp" or k.startswith("dnngp/")}

    steps = [replace(s, cross=[a for a in s.cross if keep(a)], diag=[a for a in s.diag if keep(a)])
             if isinstance(s, Elementwise) else s for s in p.steps]
    return replace(p, steps=steps, outputs=nngp(p.outputs), diag_outputs=nngp(p.diag_outputs))
