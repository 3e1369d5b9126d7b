"""The special functions inside kernel-program expressions (sympy ``Function`` subclasses).

Every printer (text, LaTeX, Numba) knows them by a ``_print_<Class>`` method:

* ``ClippedCorrelation(c, a, b)`` = clip(c / sqrt(a b), -1, 1), the correlation fed to arccos;
* ``QuadratureExpectationBase`` subclasses, made by :func:`quadrature_expectation`:
  E[f(u) g(v)] for (u, v) ~ N(0, [[a, c], [c, b]]) by a fixed Gauss-Legendre rule.  The base
  name ends in ``Base`` because sympy's printers dispatch a renamed ``Function`` subclass (the
  ``Equad_k`` classes) only to methods of bases so named.

Example
-------
>>> import sympy as sp
>>> a, b, c = sp.symbols("a b c", positive=True)
>>> rho = ClippedCorrelation(c, a, b)
>>> float(rho.subs({a: 1, b: 4, c: 1}))
0.5
"""

from __future__ import annotations

import sympy as sp

from .gaussian import QUAD_ORDER, QUAD_RANGE, gaussian_expectation  # noqa: F401

#: the integration variable of the activations' phi(z), phi'(z)
Z = sp.Symbol("z", real=True)


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


class QuadratureExpectationBase(sp.Function):
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
        vals = [float(x.evalf(prec)) for x in self.args]
        if len(vals) == 1:
            vals = [vals[0], vals[0], vals[0]]
        fz = sp.lambdify(Z, self.f, "math")
        gz = sp.lambdify(Z, self.g, "math")
        return sp.Float(gaussian_expectation(fz, gz, *vals, breakpoints=self.breakpoints))


_QUAD_CLASSES: dict = {}


def quadrature_expectation(label, f, g, breakpoints=()):
    """The QuadratureExpectationBase subclass for integrands f(z), g(z) (sympy expressions of Z).

    Classes are memoized by (label, f, g, breakpoints) so equal integrands are one sympy function.

    >>> E = quadrature_expectation("tanh.tanh", sp.tanh(Z), sp.tanh(Z))
    >>> abs(float(E(1, 1, 0).evalf())) < 1e-12          # uncorrelated, odd integrand
    True
    """
    key = (label, sp.srepr(f), sp.srepr(g), tuple(float(x) for x in breakpoints))
    cls = _QUAD_CLASSES.get(key)
    if cls is None:
        name = "Equad_%d" % len(_QUAD_CLASSES)
        cls = type(name, (QuadratureExpectationBase,), {
            "f": f, "g": g, "breakpoints": tuple(float(x) for x in breakpoints),
            "label": label, "__module__": __name__})
        _QUAD_CLASSES[key] = cls
    return cls


def contains_quadrature(expr):
    """Whether expr contains a quadrature expectation (its kernels need the quadrature helpers).

    >>> contains_quadrature(sp.Symbol("x") + 1)
    False
    """
    return any(isinstance(e, QuadratureExpectationBase) for e in sp.preorder_traversal(expr))
