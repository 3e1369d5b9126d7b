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

    def fdiff(self, argindex=1):
        """The partial derivatives of the unclipped correlation c / sqrt(a b), written with the
        clipped value: 1 / sqrt(a b), -rho / (2 a), -rho / (2 b).  Where rho is clipped to
        +-1 (the pair (x, x), or round-off), every tangent that reaches rho is zero in exact
        arithmetic (rho stays 1); :class:`RecipSqrt1m` keeps the arccos / arcsin factors of
        such tangents finite there."""
        c, a, b = self.args
        if argindex == 1:
            return 1 / sp.sqrt(a * b)
        if argindex == 2:
            return -self / (2 * a)
        if argindex == 3:
            return -self / (2 * b)
        raise sp.ArgumentIndexError(self, argindex)


class RecipSqrt1m(sp.Function):
    """1 / sqrt(1 - x^2) for |x| < 1, and 0 at |x| = 1: the derivative factor of acos(rho),
    asin(rho) and sqrt(1 - rho^2) in a tangent (dK/dtheta), where it multiplies the tangent
    of rho.  At rho = +-1 (a clipped correlation: the pair (x, x), a duplicate example) that
    tangent is zero in exact arithmetic -- rho stays +-1 -- and the limit of the product is 0,
    while 1/0 times round-off would be inf or NaN.

    >>> float(RecipSqrt1m(sp.Rational(1, 2)).evalf()) == float(1 / sp.sqrt(sp.Rational(3, 4)))
    True
    >>> RecipSqrt1m(sp.Integer(1)).evalf()
    0
    """

    nargs = 1

    def _eval_evalf(self, prec):
        x = self.args[0].evalf(prec)
        if not x.is_Number:
            return None
        if abs(x) >= 1:
            return sp.Integer(0)
        return (1 / sp.sqrt(1 - x * x)).evalf(prec)

    def _latex(self, printer, exp=None):
        tex = r"\frac{1}{\sqrt{1 - %s^{2}}}" % printer.parenthesize(
            self.args[0], sp.printing.precedence.PRECEDENCE["Pow"])
        return tex if exp is None else r"\left(%s\right)^{%s}" % (tex, exp)


def guard_recip_sqrt(expr):
    """``(1 - rho**2)**(-1/2)`` -> :class:`RecipSqrt1m` (rho a clipped correlation or an
    expression of one): the form of derivatives that stays finite at rho = +-1.

    >>> c, a, b = sp.symbols("c a b", positive=True)
    >>> d = sp.diff(sp.acos(ClippedCorrelation(c, a, b)), c)
    >>> d.has(RecipSqrt1m), guard_recip_sqrt(d).has(RecipSqrt1m)
    (False, True)
    """
    def match(e):
        if not (e.is_Pow and e.exp == -sp.S.Half and e.base.is_Add):
            return False
        rest = e.base - 1
        return (rest.is_Mul and len(rest.args) == 2 and rest.args[0] == -1
                and rest.args[1].is_Pow and rest.args[1].exp == 2
                and rest.args[1].base.has(ClippedCorrelation))

    return expr.replace(match, lambda e: RecipSqrt1m((e.base - 1).args[1].base))


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

    def fdiff(self, argindex=1):
        """Price's theorem: d/dc E[f(u) g(v)] = E[f'(u) g'(v)], d/da = E[f''(u) g(v)] / 2,
        d/db = E[f(u) g''(v)] / 2; for the diagonal E[f(u) g(u)], u ~ N(0, a):
        d/da = E[f'' g + 2 f' g' + f g''] / 2.  Each is another quadrature expectation of the
        same rule.  Valid when f and g and their first derivatives are continuous (the second
        derivatives then carry no Dirac mass); :func:`derivative_integrands` checks it."""
        f1, g1, f2, g2 = derivative_integrands(self)
        E = lambda tag, f, g: quadrature_expectation(  # noqa: E731
            f"{self.label}|{tag}", f, g, self.breakpoints)
        half = sp.Rational(1, 2)
        if len(self.args) == 1:
            (a,) = self.args
            if argindex != 1:
                raise sp.ArgumentIndexError(self, argindex)
            return half * (E("f''g", f2, self.g)(a) + 2 * E("f'g'", f1, g1)(a)
                           + E("fg''", self.f, g2)(a))
        a, b, c = self.args
        if argindex == 1:
            return half * E("f''g", f2, self.g)(a, b, c)
        if argindex == 2:
            return half * E("fg''", self.f, g2)(a, b, c)
        if argindex == 3:
            return E("f'g'", f1, g1)(a, b, c)
        raise sp.ArgumentIndexError(self, argindex)

    def _eval_evalf(self, prec):
        vals = [float(x.evalf(prec)) for x in self.args]
        if len(vals) == 1:
            vals = [vals[0], vals[0], vals[0]]
        fz = sp.lambdify(Z, self.f, "math")
        gz = sp.lambdify(Z, self.g, "math")
        return sp.Float(gaussian_expectation(fz, gz, *vals, breakpoints=self.breakpoints))


_QUAD_CLASSES: dict = {}


def _derivative(h):
    """dh/dz as a printable expression: Dirac masses dropped (the callers check that none
    arise), Heaviside as a 0/1 Piecewise."""
    d = sp.diff(h, Z).replace(sp.DiracDelta, lambda *args: sp.Integer(0))
    d = d.replace(sp.Heaviside, lambda x, *rest: sp.Piecewise((1, x > 0), (0, True)))
    return sp.piecewise_fold(d) if d.has(sp.Piecewise) else d


def _jump(h, p):
    """|h(p+) - h(p-)| (numerically, at p +- 1e-9)."""
    fn = sp.lambdify(Z, h, "math")
    try:
        return abs(float(fn(p + 1e-9)) - float(fn(p - 1e-9)))
    except (ValueError, ZeroDivisionError, OverflowError):
        return float("inf")


def derivative_integrands(e):
    """(f', g', f'', g'') of a quadrature expectation, for Price's theorem
    (:meth:`QuadratureExpectationBase.fdiff`).  Raises ValueError when f, g or their first
    derivatives jump at a breakpoint: the second derivatives would carry Dirac masses that a
    quadrature of the pieces misses (e.g. the NTK dual of the Huberized ReLU, whose phi'' jumps).

    >>> E = quadrature_expectation("tanh.tanh", sp.tanh(Z), sp.tanh(Z))
    >>> derivative_integrands(E(1, 1, 0))[0]
    1 - tanh(z)**2
    """
    f, g = type(e).f, type(e).g
    f1, g1 = _derivative(f), _derivative(g)
    for p in type(e).breakpoints:
        for h, what in ((f, "phi"), (g, "phi"), (f1, "phi'"), (g1, "phi'")):
            if _jump(h, p) > 1e-6:
                raise ValueError(
                    f"the gradient of the quadrature expectation {type(e).label} needs a "
                    f"continuous {what} of its integrand, which jumps at z = {p:g}: its "
                    "hyperparameter derivative would need a Dirac mass; learn the constants of "
                    "a smooth activation (tanh, swish, erf ...) or a closed-form one instead")
    return f1, g1, _derivative(f1), _derivative(g1)


def quadrature_expectation(label, f, g, breakpoints=()):
    """The QuadratureExpectationBase subclass for integrands f(z), g(z) (sympy expressions of Z).

    Classes are memoized by (f, g, breakpoints) so equal integrands are one sympy function (the
    first label names it): d/dc E[phi(u) phi(v)] is E[phi'(u) phi'(v)], the NTK's dual, and
    common-subexpression elimination then computes it once.

    >>> E = quadrature_expectation("tanh.tanh", sp.tanh(Z), sp.tanh(Z))
    >>> abs(float(E(1, 1, 0).evalf())) < 1e-12          # uncorrelated, odd integrand
    True
    """
    key = (sp.srepr(f), sp.srepr(g), tuple(float(x) for x in breakpoints))
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
