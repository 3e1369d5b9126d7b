"""The activations without closed-form duals: polynomial user expressions (exact duals by Hermite
expansion, derived by sympy: polynomials in a, b, c with no square roots) and the numerical
ones (tanh, huberized ReLU, swish, non-polynomial expressions): method "mehler",
``hermite_expectation(label, phi, breakpoints, soft)`` -- the Hermite series with per-example
coefficients and a tail bound, quadrature where the bound fails (:mod:`ntksym.ir.hermite`).

>>> make_expression("z**2").dual_diag(sp.Symbol("a"))
3*a**2
"""

from __future__ import annotations

import sympy as sp

from ntksym.errors import SpecError
from ntksym.ir.functions import Z

from .base import (
    Activation,
    clean_derivative,
    double_factorial_odd,
    expression_breakpoints,
    expression_features,
    piecewise_form,
)


def hermite_dual_coeffs(p):
    """beta_k(a) with E[p(u) p(v)] = sum_k k! beta_k(a) beta_k(b) c^k for a polynomial p(z).

    From z^m = sum_j m! / (2^j j! (m-2j)!) He_{m-2j}(z): phi(sqrt(a) z) = sum_k alpha_k(a) He_k(z)
    with alpha_k(a) = a^(k/2) beta_k(a), so the square roots cancel against rho^k = c^k/(ab)^(k/2).
    """
    A = sp.Symbol("A_", positive=True)
    poly = sp.Poly(sp.expand(p), Z)
    beta = {}
    for (m,), pm in poly.terms():
        for j in range(m // 2 + 1):
            k = m - 2 * j
            term = pm * A**j * sp.factorial(m) / (2**j * sp.factorial(j) * sp.factorial(k))
            beta[k] = beta.get(k, 0) + term
    return beta, A


def hermite_dual(p, a, b, c):
    beta, A = hermite_dual_coeffs(p)
    out = sp.Integer(0)
    for k, bk in sorted(beta.items()):
        out += sp.factorial(k) * bk.subs(A, a) * bk.subs(A, b) * c**k
    return sp.expand(out)


def gaussian_moment_poly(p, a):
    """E[p(u)], u ~ N(0, a), for a polynomial p(z): sum_m p_m a^(m/2) (m-1)!! over even m."""
    poly = sp.Poly(sp.expand(p), Z)
    out = sp.Integer(0)
    for (m,), pm in poly.terms():
        if m % 2 == 0:
            out += pm * a ** (m // 2) * double_factorial_odd(m // 2)
    return sp.expand(out)


def make_tanh():
    t = sp.tanh(Z)
    # its soft feature (tanh turns at 0 on the scale pi/2): ntksym.duals.kinds
    return Activation.named("tanh", (), t, 1 - t**2)


def make_huberized_relu(h):
    # a 53-bit Float also for an int h (sympy would widen Float(h) to h's digits beyond 15),
    # so that ntksym.duals.kinds prints phi without sympy
    H = sp.Float(float(h))
    phi = sp.Piecewise((sp.Integer(0), Z < 0), (Z**2 / (2 * H), Z <= H), (Z - H / 2, True))
    dphi = sp.Piecewise((sp.Integer(0), Z < 0), (Z / H, Z <= H), (sp.Integer(1), True))
    return Activation.named("huberized_relu", (h,), phi, dphi)


def make_swish(h):
    H = sp.Float(float(h))          # 53 bits, as in make_huberized_relu
    # z / (1.1 (1 + exp(-2z/h))) written with tanh: 1/(1+exp(-2x)) = (1 + tanh x)/2, which
    # never overflows (exp(-2z/h) does for z << 0 in Python's math).
    t = sp.tanh(Z / H)
    phi = Z * (1 + t) / sp.Float(2.2)
    dphi = (1 + t) / sp.Float(2.2) + Z * (1 - t**2) / (sp.Float(2.2) * H)
    return Activation.named("swish", (h,), phi, dphi)


MAX_HERMITE_DEGREE = 64


def make_expression(text):
    from ntksym.duals.expr import parse_expression

    phi = parse_expression(text)
    if phi.is_polynomial(Z):
        deg = sp.degree(phi, Z) if phi.has(Z) else 0
        if deg > MAX_HERMITE_DEGREE:
            raise SpecError("polynomial activation of degree %d is too large (at most %d)"
                            % (deg, MAX_HERMITE_DEGREE), key="expr")
        dphi = sp.expand(sp.diff(phi, Z))
        return Activation("activation", {"expr": text}, phi, dphi, "hermite", (), {
            "dual": lambda a, b, c: hermite_dual(phi, a, b, c),
            "dual_diag": lambda a: gaussian_moment_poly(sp.expand(phi**2), a),
            "dual_prime": lambda a, b, c: hermite_dual(dphi, a, b, c),
            "dual_prime_diag": lambda a: gaussian_moment_poly(sp.expand(dphi**2), a)},
            "polynomial: Hermite expansion")
    bps = expression_breakpoints(phi)
    dphi = clean_derivative(sp.diff(piecewise_form(phi), Z))
    return Activation("activation", {"expr": text}, phi, dphi, "mehler", bps,
                      source="user expression", soft=expression_features(phi))
