"""The KernelProgram IR: the shared vocabulary of symbolic derivation, printing and codegen.

A kernel program is a straight-line list of steps over a small per-pair state:

* cross quantities of the pair (x, x'): ``Sigma_k`` (NNGP) and ``Theta_k`` (NTK), one SSA symbol
  per node k of the graph;
* per-example (diagonal) quantities ``Sigma_k_xx`` / ``Theta_k_xx`` computed by their own exact
  rule (e.g. ReLU: Sigma' = c * Sigma / 2) so that diagonals carry no arccos round-off.  In a
  cross expression the diagonal of the second example appears as ``Sigma_k_yy``.

``Elementwise`` steps assign new symbols from sympy expressions of old ones.  ``Structural`` steps
are index-moving operations with a fixed loop template (patch sum, pooling, time shift ...); the
vector (MLP) programs have none.

Special functions used inside expressions are sympy ``Function`` subclasses defined here, so that
every printer (text, LaTeX, Numba) knows them:

* ``ClippedCorrelation(c, a, b)`` = clip(c / sqrt(a b), -1, 1), the correlation fed to arccos;
* ``QuadratureExpectation`` subclasses, made by :func:`quadrature_expectation`:
  E[f(u) g(v)] for (u, v) ~ N(0, [[a, c], [c, b]]) by a fixed Gauss-Legendre rule.

Example
-------
>>> import sympy as sp
>>> a, b, c = sp.symbols("a b c", positive=True)
>>> rho = ClippedCorrelation(c, a, b)
>>> float(rho.subs({a: 1, b: 4, c: 1}))
0.5
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

# Gauss-Legendre quadrature: nodes per smooth piece and the truncation of the real line
# in standard deviations.  exp(-QUAD_RANGE**2 / 2) ~ 2e-22 bounds the discarded Gaussian mass.
QUAD_ORDER = 48
QUAD_RANGE = 10.0


class ClippedCorrelation(sp.Function):
    """clip(c / sqrt(a * b), -1, 1): the correlation of a 2x2 covariance [[a, c], [c, b]].

    Clipping guards arccos/arcsin against round-off that pushes |rho| a hair above 1.
    """

    nargs = 3

    @classmethod
    def eval(cls, c, a, b):
        if c.is_Number and a.is_Number and b.is_Number:
            r = c / sp.sqrt(a * b)
            return sp.Max(-1, sp.Min(1, r))
        return None

    def _latex(self, printer, exp=None):
        c, a, b = (printer._print(x) for x in self.args)
        tex = r"\rho\left(%s;\, %s, %s\right)" % (c, a, b)
        return tex if exp is None else r"%s^{%s}" % (tex, exp)

    def _eval_evalf(self, prec):
        c, a, b = (x.evalf(prec) for x in self.args)
        r = c / sp.sqrt(a * b)
        return sp.Max(-1, sp.Min(1, r)).evalf(prec)


class QuadratureExpectation(sp.Function):
    """E[f(u) g(v)], (u, v) ~ N(0, [[a, c], [c, b]]), by piecewise Gauss-Legendre quadrature.

    Concrete integrands are subclasses made by :func:`quadrature_expectation`; they carry the
    class attributes ``f`` and ``g`` (sympy expressions of ``Z``), ``breakpoints`` (points of
    non-smoothness of f and g, where the rule splits the integration range) and ``label``.
    Arguments: (a, b, c) for the cross expectation; a single argument a for the diagonal
    E[f(u) g(u)], u ~ N(0, a).
    """

    f: sp.Expr = None
    g: sp.Expr = None
    breakpoints: tuple = ()
    label: str = "?"

    def _latex(self, printer, exp=None):
        args = ", ".join(printer._print(x) for x in self.args)
        if exp is not None:
            return r"\left(%s\right)^{%s}" % (self._latex(printer), exp)
        return r"\mathbb{E}^{\mathrm{GL}%d}_{%s}\left(%s\right)" % (
            QUAD_ORDER, self.label.replace("_", r"\_"), args)

    def _eval_evalf(self, prec):
        from ntksym.duals.quadrature import gaussian_expectation
        vals = [float(x.evalf(prec)) for x in self.args]
        if len(vals) == 1:
            vals = [vals[0], vals[0], vals[0]]
        fz = sp.lambdify(Z, self.f, "math")
        gz = sp.lambdify(Z, self.g, "math")
        return sp.Float(gaussian_expectation(fz, gz, *vals, breakpoints=self.breakpoints))


Z = sp.Symbol("z", real=True)
_QUAD_CLASSES: dict = {}


def quadrature_expectation(label, f, g, breakpoints=()):
    """The QuadratureExpectation subclass for integrands f(z), g(z) (sympy expressions of Z).

    Classes are memoized by (label, f, g, breakpoints) so equal integrands are one sympy function.

    >>> E = quadrature_expectation("tanh.tanh", sp.tanh(Z), sp.tanh(Z))
    >>> abs(float(E(1, 1, 0).evalf())) < 1e-12          # uncorrelated, odd integrand
    True
    """
    key = (label, sp.srepr(f), sp.srepr(g), tuple(float(x) for x in breakpoints))
    cls = _QUAD_CLASSES.get(key)
    if cls is None:
        name = "Equad_%d" % len(_QUAD_CLASSES)
        cls = type(name, (QuadratureExpectation,), {
            "f": f, "g": g, "breakpoints": tuple(float(x) for x in breakpoints),
            "label": label, "__module__": __name__})
        _QUAD_CLASSES[key] = cls
    return cls


# ----------------------------------------------------------------------------------- steps

@dataclass(frozen=True)
class Assign:
    """target := expr (SSA: each target is assigned once)."""

    target: sp.Symbol
    expr: sp.Expr


@dataclass
class Elementwise:
    """New state entries as expressions of old ones at the same index.

    ``cross`` assignments compute pair quantities; they may read diagonal symbols of both
    examples (``*_xx`` for x, ``*_yy`` for x').  ``diag`` assignments compute per-example
    quantities from diagonal symbols of the same example only (written with ``*_xx`` names).
    """

    node: str
    description: str
    cross: list = field(default_factory=list)
    diag: list = field(default_factory=list)


@dataclass
class Structural:
    """An index-moving operation with a fixed loop template (patch sum, pooling, time shift...).

    ``op`` is the operation: a :class:`ntksym.ir.ops.StructuralOp` (image programs) carrying
    its static parameters, or, for the sequence programs' recurrences and readouts, a name with
    ``params``; ``inputs``/``outputs`` the symbols it reads and writes (cross and diagonal alike).
    """

    node: str
    description: str
    op: object
    params: dict = field(default_factory=dict)
    inputs: tuple = ()
    outputs: tuple = ()


@dataclass
class KernelProgram:
    """A straight-line kernel recursion, printable as mathematics and as Numba code.

    Attributes
    ----------
    name, spec_hash : identify the spec it was derived from.
    input_kind : "vector" (the only kind with no structural steps), "image" or "sequence".
    input_cross, input_diag : the symbols of the input statistics: Sigma_0 = <x, x'> / d
        and Sigma_0_xx = |x|^2 / d for vectors.
    input_scale : d, the divisor of the input products.
    steps : list of Elementwise | Structural.
    outputs : ordered {name: symbol} of the cross results ("nngp", "ntk", "ntk[node.param]"...).
    diag_outputs : the same names for the per-example diagonal results (K(x, x)).
    layers : {node id: description} in order, for printing.
    """

    name: str
    spec_hash: str
    input_kind: str
    input_cross: sp.Symbol
    input_diag: sp.Symbol
    input_scale: int
    steps: list
    outputs: dict
    diag_outputs: dict
    per_layer: bool = False
    notes: list = field(default_factory=list)
    #: {symbol name: (H, W)} pixel grid of each state entry of an image program ((1, 1) for
    #: per-pair scalars after flatten / global_avg_pool)
    shapes: dict = field(default_factory=dict)

    # --- symbol bookkeeping
    def cross_assignments(self):
        return [a for s in self.steps if isinstance(s, Elementwise) for a in s.cross]

    def diag_assignments(self):
        return [a for s in self.steps if isinstance(s, Elementwise) for a in s.diag]

    def diag_symbols_used_by_cross(self):
        """Diagonal (x side) symbols that cross expressions read, in assignment order."""
        needed = set()
        for a in self.cross_assignments():
            for s in a.expr.free_symbols:
                n = s.name
                if n.endswith("_xx") or n.endswith("_yy"):
                    needed.add(n[:-3] + "_xx")
        order = [self.input_diag.name] + [a.target.name for a in self.diag_assignments()]
        return [sp.Symbol(n, real=True) for n in order if n in needed]

    def __str__(self):
        from ntksym.derive.walker import program_text
        return program_text(self)

    def latex(self):
        from ntksym.derive.walker import program_latex
        return program_latex(self)

    def python(self):
        from ntksym.derive.walker import program_python
        return program_python(self)


def y_side(sym):
    """The x'-side twin of a diagonal symbol: Sigma_3_xx -> Sigma_3_yy."""
    assert sym.name.endswith("_xx"), sym
    return sp.Symbol(sym.name[:-3] + "_yy", real=True)
