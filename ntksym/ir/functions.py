"""The special functions inside kernel-program expressions (sympy ``Function`` subclasses).

Every printer (text, LaTeX, Numba) knows them by a ``_print_<Class>`` method:

* ``ClippedCorrelation(c, a, b)`` = clip(c / sqrt(a b), -1, 1), the correlation fed to arccos;
* ``QuadratureExpectationBase`` subclasses, made by :func:`quadrature_expectation`:
  E[f(u) g(v)] for (u, v) ~ N(0, [[a, c], [c, b]]) by a fixed Gauss-Legendre rule.  The base
  name ends in ``Base`` because sympy's printers dispatch a renamed ``Function`` subclass (the
  ``Equad_k`` classes) only to methods of bases so named.
* ``HermiteExpectationBase`` subclasses (of the above), made by :func:`hermite_family`:
  E[f(u) f(v)] by the Hermite series sum_k h_k(a) h_k(b) rho^k with per-example coefficient
  vectors h(a), h(b) and a Cauchy-Schwarz tail bound, the quadrature where the bound fails
  (:mod:`ntksym.ir.hermite`).  In a cross expression its arguments are (Sigma_xx, Sigma_yy,
  Sigma): the code generators compute h(Sigma_xx) once per example (the diagonal pass) and
  hand the pair function both vectors.  The functions of one *family* (an activation's phi
  and phi') share one coefficient rule: one pass over the nodes gives the coefficients of
  every member.

Example
-------
>>> import sympy as sp
>>> a, b, c = sp.symbols("a b c", positive=True)
>>> rho = ClippedCorrelation(c, a, b)
>>> float(rho.subs({a: 1, b: 4, c: 1}))
0.5
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .gaussian import QUAD_ORDER, QUAD_RANGE, gaussian_expectation  # noqa: F401
from .hermite import (
    HERMITE_K,
    TANGENT_K,
    hermite_diag_value,
    hermite_expectation_value,
)

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


_CALLABLES: dict = {}


def _callable(expr):
    """expr (of Z) as a NumPy function (memoized); scalar-only parts such as erf are looped."""
    fn = _CALLABLES.get(expr)
    if fn is None:
        fn = _CALLABLES[expr] = sp.lambdify(Z, expr + 0 * Z, "numpy")
    return fn


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
    #: soft features (point, width) of f and g: see :mod:`ntksym.ir.gaussian`
    soft: tuple = ()
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
            f"{self.label}|{tag}", f, g, self.breakpoints, self.soft)
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
        return sp.Float(type(self).numeric(*[float(x.evalf(prec)) for x in self.args]))

    @classmethod
    def numeric(cls, a, b=None, c=None):
        """The value in float64 by the same method as the generated code (diagonal: one
        argument)."""
        b = a if b is None else b
        c = a if c is None else c
        return gaussian_expectation(_callable(cls.f), _callable(cls.g), a, b, c,
                                    breakpoints=cls.breakpoints, soft=cls.soft)


class HermiteExpectationBase(QuadratureExpectationBase):
    """E[f(u) f(v)] by the Hermite series with per-example coefficients and a tail bound, the
    quadrature (of the base class) where the bound fails; one argument: E[f(u)^2] by the
    coefficient rule.  Class attributes as the base class (g is f), and ``members`` (the
    functions of its family, whose coefficients are computed together), ``member`` (the index
    of f among them), ``family`` (a hashable key of the family).

    A *mixed* member (``member_y`` not None, from :func:`hermite_member`) is
    E[f_i(u) f_j(v)] = sum_k h^(i)_k(a) h^(j)_k(b) rho^k, i = ``member``, j = ``member_y``:
    the tangents of a Hermite dual (:meth:`fdiff`) are such series of a family that also holds
    the derivatives of its functions (:func:`extended_family`)."""

    members: tuple = ()
    member: int = 0
    member_y: int = None
    family: tuple = ()
    #: the highest degree of the family's series (TANGENT_K for an extended family)
    hermite_k: int = HERMITE_K

    def fdiff(self, argindex=1):
        """Price's theorem as Hermite series: for the cross form (a, b, c),
        d/dc E[f(u) g(v)] = E[f'(u) g'(v)], d/da = E[f''(u) g(v)] / 2,
        d/db = E[f(u) g''(v)] / 2, each a (mixed) member of the family extended by the
        derivatives (coefficients once per example, per pair O(K) multiply-adds), with the
        quadrature's validity check (:func:`derivative_integrands`: f, g, f', g' continuous).
        The diagonal form E[f(u) g(u)], u ~ N(0, a) (one argument, per example):
        d/da = E[f'' g + 2 f' g' + f g''] / 2, members of the same family whose one-argument
        forms are one-dimensional rules; E[f'' f] once for f = g, and E[f' f'] is the NTK
        dual's own diagonal."""
        derivative_integrands(self)
        if len(self.args) == 1:
            (a,) = self.args
            if argindex != 1:
                raise sp.ArgumentIndexError(self, argindex)
            cls = type(self)
            mid = hermite_member(cls, 1, 1)(a)
            if cls.member_y is None:        # f = g: E[f''(u) f(u)] = E[f(u) f''(u)]
                return mid + hermite_member(cls, 0, 2)(a)
            half = sp.Rational(1, 2)
            return half * (hermite_member(cls, 2, 0)(a) + hermite_member(cls, 0, 2)(a)) + mid
        a, b, c = self.args
        half = sp.Rational(1, 2)
        if argindex == 1:
            return half * hermite_member(type(self), 2, 0)(a, b, c)
        if argindex == 2:
            return half * hermite_member(type(self), 0, 2)(a, b, c)
        if argindex == 3:
            return hermite_member(type(self), 1, 1)(a, b, c)
        raise sp.ArgumentIndexError(self, argindex)

    def _latex(self, printer, exp=None):
        args = ", ".join(printer._print(x) for x in self.args)
        if exp is not None:
            return r"\left(%s\right)^{%s}" % (self._latex(printer), exp)
        return r"\mathbb{E}^{\mathrm{H}%d}_{%s}\left(%s\right)" % (
            self.hermite_k, self.label.replace("_", r"\_"), args)

    @classmethod
    def numeric(cls, a, b=None, c=None):
        fz = _callable(cls.f)
        if cls.member_y is not None:
            gz = _callable(cls.g)
            if b is None:
                return gaussian_expectation(fz, gz, a, a, a, breakpoints=cls.breakpoints,
                                            soft=cls.soft)
            return hermite_expectation_value(fz, a, b, c, cls.breakpoints, cls.soft, g=gz,
                                             K=cls.hermite_k)
        if b is None:
            return hermite_diag_value(fz, a, cls.breakpoints, cls.soft)
        return hermite_expectation_value(fz, a, b, c, cls.breakpoints, cls.soft,
                                         K=cls.hermite_k)


_QUAD_CLASSES: dict = {}


def _memoized(base, prefix, label, f, g, breakpoints, soft, **attrs):
    bps = tuple(float(x) for x in breakpoints)
    soft = tuple((float(p), float(w)) for p, w in soft)
    key = (base.__name__, sp.srepr(f), sp.srepr(g), bps, soft, attrs.get("family"))
    cls = _QUAD_CLASSES.get(key)
    if cls is None:
        name = "%s_%d" % (prefix, len(_QUAD_CLASSES))
        cls = type(name, (base,), {
            "f": f, "g": g, "breakpoints": bps, "soft": soft,
            "label": label, "__module__": __name__, **attrs})
        _QUAD_CLASSES[key] = cls
    return cls


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


def quadrature_expectation(label, f, g, breakpoints=(), soft=()):
    """The QuadratureExpectationBase subclass for integrands f(z), g(z) (sympy expressions of Z).

    Classes are memoized by (f, g, breakpoints) so equal integrands are one sympy function (the
    first label names it): d/dc E[phi(u) phi(v)] is E[phi'(u) phi'(v)], the NTK's dual, and
    common-subexpression elimination then computes it once.

    >>> E = quadrature_expectation("tanh.tanh", sp.tanh(Z), sp.tanh(Z))
    >>> abs(float(E(1, 1, 0).evalf())) < 1e-12          # uncorrelated, odd integrand
    True
    """
    return _memoized(QuadratureExpectationBase, "Equad", label, f, g, breakpoints, soft)


def hermite_family(labels, fs, breakpoints=(), soft=(), K=HERMITE_K):
    """The HermiteExpectationBase subclasses of the functions ``fs`` (sympy expressions of Z,
    e.g. an activation's phi and phi', named by ``labels``), one family: memoized like the
    quadrature classes.

    >>> E, dE = hermite_family(("tanh", "tanh'"), (sp.tanh(Z), 1 - sp.tanh(Z)**2),
    ...                        soft=((0.0, 1.5707963267948966),))
    >>> abs(float(E(1, 1, 0).evalf())) < 1e-15          # odd: only odd k, rho^k = 0
    True
    >>> dE.member, dE.members == E.members
    (1, True)
    """
    fs = tuple(fs)
    family = (tuple(labels), tuple(sp.srepr(f) for f in fs),
              tuple(float(x) for x in breakpoints), tuple(tuple(map(float, x)) for x in soft))
    extra = {}
    if K != HERMITE_K:          # (the keys and classes of plain families unchanged)
        family += (K,)
        extra = {"hermite_k": K}
    out = []
    for i, (label, f) in enumerate(zip(labels, fs)):
        out.append(_memoized(HermiteExpectationBase, "Eherm", label, f, f, breakpoints, soft,
                             members=fs, member=i, family=family, **extra))
    return tuple(out)


def _same_function(f, g):
    """Whether the expressions f(z), g(z) are one function (one tree, or equal values at seven
    points: an activation's phi' may be written unlike the derivative of its phi)."""
    if f == g:
        return True
    z = np.array([-2.71, -1.33, -0.61, 0.17, 0.93, 1.87, 3.29])
    try:
        u = _callable(f)(z) * np.ones_like(z)
        v = _callable(g)(z) * np.ones_like(z)
    except (TypeError, ValueError):
        return False
    return bool(np.all(np.abs(u - v) <= 1e-13 * (1 + np.abs(u) + np.abs(v))))


def _find(fs, h):
    return next((i for i, f in enumerate(fs) if _same_function(f, h)), None)


_EXTENDED: dict = {}


def extended_family(cls):
    """(labels, functions) of the family of the Hermite class ``cls`` extended by the first
    and second derivatives of its functions (memoized): its members first, in order, then the
    new derivatives.

    >>> E, _ = hermite_family(("tanh", "tanh'"), (sp.tanh(Z), 1 - sp.tanh(Z)**2))
    >>> extended_family(E)[0]
    ('tanh', "tanh'", "tanh''", "tanh'''")
    """
    out = _EXTENDED.get(cls.family)
    if out is None:
        labels, fs = list(cls.family[0]), list(cls.members)
        for i in range(len(fs)):
            h, label = fs[i], labels[i]
            for _ in range(2):
                h, label = _derivative(h), label + "'"
                if _find(fs, h) is None:
                    fs.append(h)
                    labels.append(label)
        out = _EXTENDED[cls.family] = (tuple(labels), tuple(fs))
    return out


def _member_class(cls, i, j):
    """The class of E[f_i(u) f_j(v)] in the family of the Hermite class ``cls``."""
    labels, fs = cls.family[0], cls.members
    if i == j:
        return hermite_family(labels, fs, cls.breakpoints, cls.soft, cls.hermite_k)[i]
    return _memoized(HermiteExpectationBase, "Eherm", f"{labels[i]}|{labels[j]}", fs[i], fs[j],
                     cls.breakpoints, cls.soft, members=fs, member=i, member_y=j,
                     family=cls.family, hermite_k=cls.hermite_k)


def _derivatives_in(cls, dx, dy):
    """The member indices of f^(dx) and g^(dy) (``cls`` of E[f(u) g(v)]) in its family, or
    None."""
    fx, gy = cls.f, cls.g
    for _ in range(dx):
        fx = _derivative(fx)
    for _ in range(dy):
        gy = _derivative(gy)
    i, j = _find(cls.members, fx), _find(cls.members, gy)
    return None if i is None or j is None else (i, j)


def _extend(cls):
    """The member of the extended family (:func:`extended_family`) with the value of ``cls``."""
    labels, fs = extended_family(cls)
    first = hermite_family(labels, fs, cls.breakpoints, cls.soft, TANGENT_K)[0]
    return _member_class(first, cls.member,
                         cls.member if cls.member_y is None else cls.member_y)


def _closed(cls):
    """``cls``, or its member of the (repeatedly) extended family, in a family that holds the
    first and second derivatives of both its functions."""
    for _ in range(3):
        if (cls.hermite_k == TANGENT_K and _derivatives_in(cls, 1, 1) is not None
                and _derivatives_in(cls, 2, 2) is not None):
            return cls
        cls = _extend(cls)
    raise ValueError(f"no Hermite family holds the derivatives of {cls.label}")


def hermite_member(cls, dx, dy):
    """The Hermite class of E[f^(dx)(u) g^(dy)(v)] (dx, dy <= 2), ``cls`` that of
    E[f(u) g(v)]: a member of the family that holds the first and second derivatives of f
    and g (``cls``'s own or its extension), so that a dual and all its tangents share one
    family and one coefficient vector per example.

    >>> E, dE = hermite_family(("tanh", "tanh'"), (sp.tanh(Z), 1 - sp.tanh(Z)**2))
    >>> M = hermite_member(E, 2, 0)
    >>> M.label, M.member, M.member_y, len(M.members)
    ("tanh''|tanh", 2, 0, 4)
    >>> N = hermite_member(dE, 1, 1)
    >>> N.label, N.members == M.members, hermite_member(E, 1, 1) is hermite_member(M, 0, 1)
    ("tanh''", True, False)
    """
    cls = _closed(cls)
    return _member_class(cls, *_derivatives_in(cls, dx, dy))


def promote_hermite(expr):
    """``expr`` with every Hermite expectation whose family lacks the first and second
    derivatives of its functions replaced by its member of the extended family (the same
    value): in a tangent program a dual and its tangents (:func:`hermite_member`) then share
    one family, whose coefficients the diagonal pass computes once per example.

    >>> E, _ = hermite_family(("tanh", "tanh'"), (sp.tanh(Z), 1 - sp.tanh(Z)**2))
    >>> a, b, c = sp.symbols("a b c")
    >>> P = type(promote_hermite(E(a, b, c)))
    >>> len(P.members), P is type(promote_hermite(P(a, b, c)))
    (4, True)
    """
    return expr.replace(lambda e: isinstance(e, HermiteExpectationBase),
                        lambda e: _closed(type(e))(*e.args))


def contains_hermite(expr):
    """Whether expr contains a Hermite expectation.

    >>> contains_hermite(sp.Symbol("x") + 1)
    False
    """
    return any(isinstance(e, HermiteExpectationBase) for e in sp.preorder_traversal(expr))


def hermite_degrees(expr):
    """The highest degrees (``hermite_k``) of the Hermite series in expr: {HERMITE_K} for a
    plain dual, {TANGENT_K} once :func:`promote_hermite` moved it to the extended family.

    >>> E, _ = hermite_family(("tanh", "tanh'"), (sp.tanh(Z), 1 - sp.tanh(Z)**2))
    >>> a, b, c = sp.symbols("a b c")
    >>> hermite_degrees(E(a, b, c)), hermite_degrees(promote_hermite(E(a, b, c)))
    ({95}, {127})
    """
    return {type(e).hermite_k for e in sp.preorder_traversal(expr)
            if isinstance(e, HermiteExpectationBase)}


def contains_quadrature(expr):
    """Whether expr contains a quadrature expectation (its kernels need the quadrature helpers).

    >>> contains_quadrature(sp.Symbol("x") + 1)
    False
    """
    return any(isinstance(e, QuadratureExpectationBase) for e in sp.preorder_traversal(expr))
