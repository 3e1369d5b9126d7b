"""The activations with closed-form dual kernels: arc-cosine kernels of ReLU / leaky ReLU / |z| /
step / sign / ReLU^k (Cho & Saul 2009), erf (Williams 1997), GELU, the Gaussian bump, identity,
sin, cos, exp.

Every arccos / arcsin / sqrt(1 - rho^2) takes ``rho = ClippedCorrelation(c, a, b)`` so round-off
cannot push |rho| above 1.  Each constructor states the mathematics (phi, phi', the dual rules);
the kind's parameters, method, breakpoints and source come from :mod:`ntksym.duals.kinds`
(``Activation.named``).

>>> make_relu().dual_diag(sp.Symbol("a"))
a/2
"""

from __future__ import annotations

import functools

import sympy as sp

from ntksym.ir.functions import ClippedCorrelation, Z

from .base import Activation, double_factorial_odd, relu, sign, step


def relu_J(a, b, c):
    """E[relu(u) relu(v)] = sqrt(ab)/(2 pi) (sqrt(1 - rho^2) + (pi - acos rho) rho)."""
    rho = ClippedCorrelation(c, a, b)
    return sp.sqrt(a * b) / (2 * sp.pi) * (sp.sqrt(1 - rho**2) + (sp.pi - sp.acos(rho)) * rho)


def relu_J0(a, b, c):
    """E[1[u>0] 1[v>0]] = (pi - acos rho) / (2 pi)."""
    rho = ClippedCorrelation(c, a, b)
    return (sp.pi - sp.acos(rho)) / (2 * sp.pi)


@functools.lru_cache(maxsize=None)
def arccos_J(k):
    """Cho & Saul's J_k as a sympy expression of a correlation symbol ``rho`` (returned too).

    J_k(theta) = (-1)^k sin(theta)^(2k+1) ((1/sin theta) d/dtheta)^k ((pi - theta)/sin theta),
    rewritten with cos theta = rho, sin theta = sqrt(1 - rho^2), theta = acos(rho).

    >>> J, rho = arccos_J(1)
    >>> sp.simplify(J - (sp.sqrt(1 - rho**2) + (sp.pi - sp.acos(rho)) * rho))
    0
    """
    th = sp.Symbol("theta", positive=True)
    rho = sp.Symbol("rho", real=True)
    S = sp.Symbol("S", positive=True)  # stands for sin(theta) while reducing
    expr = (sp.pi - th) / sp.sin(th)
    for _ in range(k):
        expr = sp.diff(expr, th) / sp.sin(th)
    expr = sp.expand((-1) ** k * sp.sin(th) ** (2 * k + 1) * expr)
    # Polynomial in sin, cos, theta: reduce S^2 -> 1 - rho^2 so only S^0 / S^1 remain.
    expr = sp.expand(expr.subs({sp.sin(th): S, sp.cos(th): rho}))
    expr = sp.expand(sp.cancel(expr))
    poly = sp.Poly(expr, S)
    reduced = sp.Integer(0)
    for (e,), coeff in poly.terms():
        reduced += coeff * (1 - rho**2) ** (e // 2) * S ** (e % 2)
    reduced = sp.expand(reduced)
    # Expected shape: S * P1(rho) + (pi - theta) * P2(rho); keep it in that compact form.
    p_th = reduced.coeff(th)
    p_s = sp.expand(reduced - p_th * th).coeff(S)
    rest = sp.expand(reduced - p_th * th - p_s * S)
    if sp.expand(rest + sp.pi * p_th) == 0:
        out = sp.sqrt(1 - rho**2) * sp.factor(p_s) + (sp.pi - sp.acos(rho)) * sp.factor(-p_th)
    else:  # not reached for k >= 1; kept as a safe fallback
        out = reduced.subs({S: sp.sqrt(1 - rho**2), th: sp.acos(rho)})
    return out, rho


def make_relu():
    return Activation.named("relu", (), relu(Z), step(Z), {
        "dual": relu_J, "dual_diag": lambda a: a / 2,
        "dual_prime": relu_J0, "dual_prime_diag": lambda a: sp.Rational(1, 2)})


def make_leaky_relu(slope):
    # a sympy slope: a learnable constant (ntksym.ir.hyper.HyperSymbol), kept as a symbol
    s = (slope if isinstance(slope, sp.Basic) else
         sp.nsimplify(slope) if isinstance(slope, int) else sp.Float(slope))
    phi = sp.Piecewise((Z, Z > 0), (s * Z, True))
    dphi = sp.Piecewise((sp.Integer(1), Z > 0), (s, True))
    q = (1 - s) ** 2
    return Activation.named("leaky_relu", (slope,), phi, dphi, {
        # phi = s z + (1-s) relu(z) and E[u relu(v)] = c/2 (Stein) give s c + (1-s)^2 J.
        "dual": lambda a, b, c: s * c + q * relu_J(a, b, c),
        "dual_diag": lambda a: (1 + s**2) * a / 2,
        "dual_prime": lambda a, b, c: s + q * relu_J0(a, b, c),
        "dual_prime_diag": lambda a: (1 + s**2) / 2})


def make_abs():
    def dual(a, b, c):
        rho = ClippedCorrelation(c, a, b)
        return 2 * sp.sqrt(a * b) / sp.pi * (sp.sqrt(1 - rho**2) + rho * sp.asin(rho))

    return Activation.named("abs", (), sp.Abs(Z), sign(Z), {
        "dual": dual, "dual_diag": lambda a: a,
        "dual_prime": lambda a, b, c: 2 / sp.pi * sp.asin(ClippedCorrelation(c, a, b)),
        "dual_prime_diag": lambda a: sp.Integer(1)})


def make_erf():
    def dual(a, b, c):
        # 2c / sqrt((1+2a)(1+2b)) is the correlation of the covariance [[1+2a, 2c], [2c, 1+2b]].
        return 2 / sp.pi * sp.asin(ClippedCorrelation(2 * c, 1 + 2 * a, 1 + 2 * b))

    return Activation.named("erf", (), sp.erf(Z), 2 / sp.sqrt(sp.pi) * sp.exp(-Z**2), {
        "dual": dual,
        "dual_diag": lambda a: 2 / sp.pi * sp.asin(2 * a / (1 + 2 * a)),
        "dual_prime": lambda a, b, c: 4 / sp.pi / sp.sqrt((1 + 2 * a) * (1 + 2 * b) - 4 * c**2),
        "dual_prime_diag": lambda a: 4 / sp.pi / sp.sqrt(1 + 4 * a)})


def make_identity():
    return Activation.named("identity", (), Z, sp.Integer(1), {
        "dual": lambda a, b, c: c, "dual_diag": lambda a: a,
        "dual_prime": lambda a, b, c: sp.Integer(1), "dual_prime_diag": lambda a: sp.Integer(1)})


def make_step():
    return Activation.named("step", (), step(Z), sp.Integer(0), {
        "dual": relu_J0, "dual_diag": lambda a: sp.Rational(1, 2),
        # phi' = 0 almost everywhere (the delta at 0 is not a function): no gradient flows.
        "dual_prime": lambda a, b, c: sp.Integer(0), "dual_prime_diag": lambda a: sp.Integer(0)})


def make_relu_power(k):
    J, rho_s = arccos_J(k)
    Jm, rho_m = arccos_J(k - 1) if k > 1 else (sp.pi - sp.acos(sp.Symbol("rho", real=True)),
                                                  sp.Symbol("rho", real=True))
    phi = sp.Piecewise((Z**k, Z > 0), (sp.Integer(0), True))
    dphi = step(Z) if k == 1 else sp.Piecewise((k * Z ** (k - 1), Z > 0), (sp.Integer(0), True))

    def dual(a, b, c):
        return ((a * b) ** sp.Rational(k, 2) / (2 * sp.pi)
                * J.subs(rho_s, ClippedCorrelation(c, a, b)))

    def dual_prime(a, b, c):
        return (k**2 * (a * b) ** sp.Rational(k - 1, 2) / (2 * sp.pi)
                * Jm.subs(rho_m, ClippedCorrelation(c, a, b)))

    return Activation.named("relu_power", (k,), phi, dphi, {
        "dual": dual,
        # E[relu(u)^(2k)] = a^k (2k-1)!! / 2 (half the Gaussian moment)
        "dual_diag": lambda a: a**k * double_factorial_odd(k) / 2,
        "dual_prime": dual_prime,
        "dual_prime_diag": lambda a: k**2 * a ** (k - 1) * double_factorial_odd(k - 1) / 2})


def make_sin():
    return Activation.named("sin", (), sp.sin(Z), sp.cos(Z), {
        "dual": lambda a, b, c: sp.exp(-(a + b) / 2) * sp.sinh(c),
        "dual_diag": lambda a: (1 - sp.exp(-2 * a)) / 2,
        "dual_prime": lambda a, b, c: sp.exp(-(a + b) / 2) * sp.cosh(c),
        "dual_prime_diag": lambda a: (1 + sp.exp(-2 * a)) / 2})


def make_cos():
    return Activation.named("cos", (), sp.cos(Z), -sp.sin(Z), {
        "dual": lambda a, b, c: sp.exp(-(a + b) / 2) * sp.cosh(c),
        "dual_diag": lambda a: (1 + sp.exp(-2 * a)) / 2,
        "dual_prime": lambda a, b, c: sp.exp(-(a + b) / 2) * sp.sinh(c),
        "dual_prime_diag": lambda a: (1 - sp.exp(-2 * a)) / 2})


def make_exp():
    # E[exp(u + v)] = exp(Var(u + v) / 2); phi' = phi
    def dual(a, b, c):
        return sp.exp((a + b) / 2 + c)

    return Activation.named("exp", (), sp.exp(Z), sp.exp(Z), {
        "dual": dual, "dual_diag": lambda a: sp.exp(2 * a),
        "dual_prime": dual, "dual_prime_diag": lambda a: sp.exp(2 * a)})


def make_sign():
    return Activation.named("sign", (), sign(Z), sp.Integer(0), {
        "dual": lambda a, b, c: 2 / sp.pi * sp.asin(ClippedCorrelation(c, a, b)),
        "dual_diag": lambda a: sp.Integer(1),
        # phi' = 0 almost everywhere (as for step): no gradient flows through sign
        "dual_prime": lambda a, b, c: sp.Integer(0), "dual_prime_diag": lambda a: sp.Integer(0)})


def make_gaussian():
    # E[exp(-(u^2 + v^2)/2)] = det(I + Sigma)^(-1/2); E[u v exp(-(u^2 + v^2)/2)] =
    # c det(I + Sigma)^(-3/2) (= d/dc of the first, Price's theorem)
    def det(a, b, c):
        return (1 + a) * (1 + b) - c**2

    return Activation.named("gaussian", (), sp.exp(-Z**2 / 2), -Z * sp.exp(-Z**2 / 2), {
        "dual": lambda a, b, c: 1 / sp.sqrt(det(a, b, c)),
        "dual_diag": lambda a: 1 / sp.sqrt(1 + 2 * a),
        "dual_prime": lambda a, b, c: c / det(a, b, c) ** sp.Rational(3, 2),
        "dual_prime_diag": lambda a: a / (1 + 2 * a) ** sp.Rational(3, 2)})


def make_gelu():
    """GELU phi(z) = z Phi(z), Phi the standard normal CDF (the exact GELU, not the tanh
    approximation).  With Phi(u) = P(xi <= u), xi ~ N(0, 1) independent, the dual is
    E[u v 1{p > 0} 1{q > 0}] for p = u - xi1, q = v - xi2, whose covariance is
    [[1+a, c], [c, 1+b]] (det D); second-order Stein gives
    c/4 + c asin(r)/(2 pi) + (ab D + c^2) / (2 pi (1+a)(1+b) sqrt D), r = c/sqrt((1+a)(1+b)),
    and its c-derivative (Price's theorem) is E[phi'(u) phi'(v)].  |r| < 1 and D >= 1 + a + b
    for every covariance, so no clipping is needed."""
    Phi = (1 + sp.erf(Z / sp.sqrt(2))) / 2
    phi = Z * Phi
    dphi = Phi + Z * sp.exp(-Z**2 / 2) / sp.sqrt(2 * sp.pi)

    def parts(a, b, c):
        p = (1 + a) * (1 + b)
        return p, p - c**2, sp.asin(c / sp.sqrt(p))

    def dual(a, b, c):
        p, d, th = parts(a, b, c)
        return c / 4 + c * th / (2 * sp.pi) + (a * b * d + c**2) / (2 * sp.pi * p * sp.sqrt(d))

    def dual_prime(a, b, c):
        p, d, th = parts(a, b, c)
        return (sp.Rational(1, 4) + th / (2 * sp.pi)
                + c * (a + b + 2) / (2 * sp.pi * p * sp.sqrt(d))
                + c / (2 * sp.pi * d ** sp.Rational(3, 2)))

    def dual_diag(a):
        th = sp.asin(a / (1 + a))
        return a / 4 + a * th / (2 * sp.pi) + a**2 / (sp.pi * (1 + a) * sp.sqrt(1 + 2 * a))

    def dual_prime_diag(a):
        th = sp.asin(a / (1 + a))
        return (sp.Rational(1, 4) + th / (2 * sp.pi) + a / (sp.pi * (1 + a) * sp.sqrt(1 + 2 * a))
                + a / (2 * sp.pi * (1 + 2 * a) ** sp.Rational(3, 2)))

    return Activation.named("gelu", (), phi, dphi, {
        "dual": dual, "dual_diag": dual_diag,
        "dual_prime": dual_prime, "dual_prime_diag": dual_prime_diag})
