"""Forward-mode derivatives of a kernel program with respect to its learnable constants.

For every hyperparameter theta, every assignment S_k = f(S_j ..., theta ...) of the program
gets a tangent

    dS_k/dtheta = (partial f / partial theta) + sum_j (partial f / partial S_j) dS_j/dtheta,

derived with ``sympy.diff`` from the same expression (the special functions know their
derivatives: :meth:`ClippedCorrelation.fdiff`, :meth:`QuadratureExpectationBase.fdiff` by Price's
theorem -- for a Hermite dual, Hermite series of its family extended by the derivatives,
whose coefficients the dual then shares (:func:`promote_hermite`) --, and
:func:`guard_recip_sqrt` keeps arccos / arcsin factors finite at a clipped correlation).
Tangents are more state: ``dSigma_3/d[weight_var]`` (cross), with its
``_xx`` / ``_yy`` diagonals, assigned in the same step as ``Sigma_3``.  The index-moving
operations (patch sums, pooling, readouts, the rnn's time shift) are linear, so each carries the
tangents of its entries exactly as it carries the entries; a recurrence's carried state gets
carried tangents, whose boundary values are the derivatives of its boundary values.  Tangents
that are identically zero are left out.

The result is an ordinary :class:`~ntksym.ir.program.KernelProgram` with more outputs
(``dnngp/d[weight_var]`` ...), so the printers and the code generators need nothing new: one
fused pass computes the kernel and all its derivatives.

>>> import ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [2] }\\n'
...     '[[layer]]\\nkind = "dense"\\n'
...     'weight_var = { value = 2.0, learn = true, name = "weight_var" }\\n')
>>> g = tangent_program(arch.derive())
>>> [(str(a.target), str(a.expr)) for a in g.steps[0].cross]     # doctest: +NORMALIZE_WHITESPACE
[('Sigma_1', 'weight_var*Sigma_0'), ('Theta_1', 'weight_var*Sigma_0'),
 ('dSigma_1/d[weight_var]', 'Sigma_0'), ('dTheta_1/d[weight_var]', 'Sigma_0')]
>>> list(g.outputs)
['nngp', 'ntk', 'dnngp/d[weight_var]', 'dntk/d[weight_var]']
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from .accuracy import HERMITE_K, degree_clause
from .functions import contains_hermite, guard_recip_sqrt, hermite_degrees, promote_hermite
from .hyper import tangent_name, tangent_output
from .ops import Readout, TimeRecurrence
from .program import Assign, Elementwise, KernelProgram, Structural
from .symbols import HyperSymbol, state_symbols

ZERO = sp.Integer(0)


def _sym(name):
    return sp.Symbol(name, real=True)


def _diag_key(name):
    """The name whose tangent a symbol's tangent follows: X_yy follows X_xx."""
    return name[:-3] + "_xx" if name.endswith("_yy") else name


def _tidy(d):
    """A partial derivative with its like terms cancelled (the arc-cosine kernel's
    d/dSigma(x, x) has rho (pi - acos rho) twice, with opposite signs), when that is cheap."""
    if sp.count_ops(d) > 400:
        return d
    return sp.factor_terms(sp.expand(d))


class _Tangents:
    """The tangents found so far: {(state name, hyperparameter name): tangent symbol}."""

    def __init__(self, hypers):
        self.hypers = hypers
        self.t = {}
        self.shapes = {}

    def of(self, s, h):
        """The tangent of the free symbol ``s`` with respect to ``h`` (an expression)."""
        if isinstance(s, HyperSymbol):
            return sp.Integer(1) if s == h else ZERO
        t = self.t.get((_diag_key(s.name), h.name))
        if t is None:
            return ZERO
        if s.name.endswith("_yy"):
            return _sym(t.name[:-3] + "_yy")
        return t

    def new(self, name, h):
        t = _sym(tangent_name(name, h.name))
        self.t[(name, h.name)] = t
        return t

    def derivative(self, expr, h, partials):
        """d expr / d h through the tangents of its state entries; ``partials``: a cache
        {symbol: partial derivative of expr} shared by the hyperparameters."""
        expr = sp.sympify(expr)
        total = ZERO
        for s in sorted(expr.free_symbols, key=lambda s: s.name):
            ts = self.of(s, h)
            if ts == 0:
                continue
            if s not in partials:
                partials[s] = _tidy(guard_recip_sqrt(sp.diff(expr, s)))
            total += partials[s] * ts
        return total

    def assign(self, assigns, out, force=False):
        """Append to ``out`` the tangent assignments of ``assigns`` (in order, every
        hyperparameter); ``force``: also the zero ones (a recurrence's carried entries)."""
        for a in assigns:
            partials = {}
            moved = False
            # a Hermite dual from the family of its tangents (one coefficient vector)
            expr = promote_hermite(a.expr) if contains_hermite(a.expr) else a.expr
            for h in self.hypers:
                d = self.derivative(expr, h, partials)
                moved = moved or d != 0
                if d == 0 and not force:
                    continue
                out.append(Assign(self.new(a.target.name, h), d))
            if moved and expr is not a.expr:
                k = next(k for k, b in enumerate(out) if b is a)
                out[k] = Assign(a.target, expr)


def _with_degree(description, assigns):
    """``description`` stating the Hermite degree that ``assigns`` evaluate.  A layer describes
    its duals before any tangent exists (series to HERMITE_K); a dual promoted to the family
    extended for its tangents is summed to TANGENT_K, so the layer line says that degree (and
    both, labeled, if some of its duals stayed in the plain family)."""
    ks = set().union(*(hermite_degrees(a.expr) for a in assigns))
    if ks <= {HERMITE_K}:
        return description
    top = max(ks)
    new = degree_clause(top) + " (the family extended for the tangents)"
    if HERMITE_K in ks:
        new = (degree_clause(HERMITE_K) + f", K <= {top} in the family extended for the "
               "tangents")
    return description.replace(degree_clause(HERMITE_K), new)


def tangent_program(program: KernelProgram, hypers=None) -> KernelProgram:
    """``program`` with the tangents of every state entry and output with respect to
    ``hypers`` (hyperparameter names; default: all of ``program.hyperparameters``), in the same
    steps.  Raises ValueError when a derivative does not exist (a quadrature activation whose
    phi' jumps)."""
    known = {h.name: h for h in program.hyperparameters}
    names = list(known) if hypers is None else list(hypers)
    for n in names:
        if n not in known:
            raise ValueError(f"no learnable constant named {n!r}; learnable: "
                             f"{', '.join(known) or 'none'}")
    hs = [known[n] for n in names]
    T = _Tangents(hs)
    steps = []
    for step in program.steps:
        if isinstance(step, Elementwise):
            diag, cross = list(step.diag), list(step.cross)
            T.assign(step.diag, diag)
            T.assign(step.cross, cross)
            steps.append(replace(step, cross=cross, diag=diag,
                                 description=_with_degree(step.description, cross + diag)))
        else:
            steps.append(_structural(step, T))
    shapes = dict(program.shapes)
    for (name, _), t in T.t.items():
        if name in program.shapes:           # a tangent lives on its entry's pixel grid
            shapes[t.name] = program.shapes[name]

    def outputs(outs):
        new = dict(outs)
        for o, e in outs.items():
            partials = {}
            for h in hs:
                new[tangent_output(o, h.name)] = T.derivative(e, h, partials)
        return new

    return replace(program, steps=steps, outputs=outputs(program.outputs),
                   diag_outputs=outputs(program.diag_outputs), shapes=shapes,
                   gradient=tuple(names))


def _structural(step: Structural, T: _Tangents) -> Structural:
    op = step.op
    if isinstance(op, TimeRecurrence):
        return replace(step, op=_recurrence(op, T))
    if isinstance(op, Readout):
        def read(pairs):
            out = list(pairs)
            for tgt, src in pairs:
                for h in T.hypers:
                    ts = T.of(src, h)
                    if ts != 0:
                        out.append((T.new(tgt.name, h), ts))
            return out
        return replace(step, op=replace(op, map=read(op.map), map_diag=read(op.map_diag)))
    # a linear index-moving operation: every entry's tangent moves with it
    inputs, outputs = list(step.inputs), list(step.outputs)
    for a, b in zip(step.inputs, step.outputs):
        if not isinstance(a, sp.Symbol):
            continue                       # a constant entry (a frozen layer's zero NTK)
        for h in T.hypers:
            ta = T.of(a, h)
            if ta != 0:
                inputs.append(ta)
                outputs.append(T.new(b.name, h))
    return replace(step, inputs=tuple(inputs), outputs=tuple(outputs))


def _recurrence(op: TimeRecurrence, T: _Tangents) -> TimeRecurrence:
    """Tangents of an rnn layer's time-pair recurrence: the carried entries (state at
    (t-1, t'-1)) get carried tangents for every hyperparameter that reaches the layer."""
    targets = {a.target.name for a in op.cross + op.diag}
    carried = [prev for prev, _, _ in op.carry + op.carry_diag]
    reach = []
    for h in T.hypers:
        exprs = [a.expr for a in op.cross + op.diag] + [i for _, _, i in op.carry + op.carry_diag]
        hit = any(h in sp.sympify(e).free_symbols for e in exprs) or any(
            T.of(s, h) != 0 for e in exprs for s in state_symbols(sp.sympify(e))
            if s.name not in targets and s not in carried)
        if hit:
            reach.append(h)
    if not reach:
        return op
    inner = _Tangents(reach)
    inner.t = T.t                 # one table: tangents of the inputs are read, new ones kept
    for prev in carried:
        for h in reach:
            inner.new(prev.name, h)
    cross, diag = list(op.cross), list(op.diag)
    inner.assign(op.diag, diag, force=True)
    inner.assign(op.cross, cross, force=True)

    def carry(triples):
        out = list(triples)
        for prev, cur, init in triples:
            for h in reach:
                out.append((inner.of(prev, h), inner.of(cur, h),
                            sp.diff(sp.sympify(init), h)))
        return out

    return replace(op, cross=cross, diag=diag, carry=carry(op.carry),
                   carry_diag=carry(op.carry_diag))
