"""The orders, ranges and tolerances that fix the accuracy of the numerical Gaussian
expectations (the Gauss-Legendre quadrature of :mod:`ntksym.ir.gaussian`, the Hermite series of
:mod:`ntksym.ir.hermite`), and the one-line descriptions that state them.

Plain Python: ``ntksym check`` prints these descriptions for a tanh or Huberized-ReLU layer
without loading NumPy or sympy (docs/startup.md); the numerical modules import the numbers
from here.

>>> QUAD_ORDER, HERMITE_K
(48, 95)
>>> "soft features: 0 (scale 1.57)" in hermite_description(((0.0, 1.5707963),))
True
"""

from __future__ import annotations

# Gauss-Legendre quadrature: nodes per smooth piece and the truncation of the real line
# in standard deviations.  exp(-QUAD_RANGE**2 / 2) ~ 2e-22 bounds the discarded Gaussian mass.
QUAD_ORDER = 48
QUAD_RANGE = 10.0

#: the highest degree of the series (the per-example vectors hold K + 1 coefficients, checked
#: by the tail bound in groups of GROUP terms).  95, not 63: on real data (digits, a depth-3
#: tanh MLP) the deeper layers' correlations pass 0.9 and K = 63 sent those pairs to the 2-D
#: quadrature (5.3 s against 0.61 s for 150 examples); terms beyond what a pair's bound needs
#: are never summed, so the cost is the longer per-example vectors.  (127 would be faster
#: still, 0.22 s, but the tangents' extended families are told apart by their degree, TANGENT_K)
HERMITE_K = 95
#: the highest degree of a family extended by derivatives (the tangents' mixed series such as
#: E[f''(u) f(v)]: the coefficients of f'' decay ~k times slower than f's, and K = 63 would
#: send pairs with |rho| above ~0.75 to the quadrature)
TANGENT_K = 127
GROUP = 4
#: truncate where the tail bound is below this fraction of sqrt(E[f(u)^2] E[f(v)^2])
HERMITE_TOL = 1e-12
#: the coefficient rule: Gauss-Legendre order per piece, longest piece, range (in std)
COEF_ORDER = 24
COEF_PIECE = 3.0
COEF_RANGE = 12.0
#: t_K^2 >= TAIL_FLOOR: covers the relative error of T_K = E - sum h_k^2 (coefficients to
#: ~1e-15 sqrt(E) each, 64 terms)
TAIL_FLOOR = 1e-13


def degree_clause(K=HERMITE_K):
    """The clause of :func:`hermite_description` that states the series' highest degree; a
    tangent program whose duals moved to the extended family (degree ``TANGENT_K``) restates
    it with :func:`ntksym.ir.tangent.tangent_program`.

    >>> degree_clause(), degree_clause(TANGENT_K)
    ('k <= K <= 95 per pair', 'k <= K <= 127 per pair')
    """
    return "k <= K <= %d per pair" % K


def hermite_description(soft=()):
    """One line: the Hermite method, its K, tolerance and coefficient rule (for ``derive``)."""
    feats = ", ".join("%g (scale %.3g)" % (p, w) for p, w in soft) or "none"
    return ("Hermite series sum_k h_k(a) h_k(b) rho^k, h_k(a) = E[phi(sqrt(a) z) He_k(z)]/sqrt(k!) "
            "once per example (Gauss-Legendre %d per piece on [-%g, %g], soft features: %s), "
            "%s, stopped where the tail bound |rho|^(K+1) t_K(a) t_K(b) "
            "<= %g (t_K^2 = 1 - sum_{k<=K} h_k^2 / E[phi^2]; error <= %g sqrt(E[phi(u)^2] "
            "E[phi(v)^2])), else Gauss-Legendre quadrature, order %d per piece on [-%g, %g] std"
            % (COEF_ORDER, COEF_RANGE, COEF_RANGE, feats, degree_clause(), HERMITE_TOL,
               HERMITE_TOL, QUAD_ORDER, QUAD_RANGE, QUAD_RANGE))
