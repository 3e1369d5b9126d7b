"""Gaussian dual kernels by the Hermite (Mehler) series with per-example coefficients (pure
Python / NumPy reference; the generated kernels run the same algorithm as Numba source,
:mod:`ntksym.duals.hermite`).

For (u, v) ~ N(0, [[a, c], [c, b]]), rho = c / sqrt(a b), Mehler's formula gives

    E[f(u) f(v)] = sum_k h_k(a) h_k(b) rho^k,    h_k(a) = E[f(sqrt(a) z) He_k(z)] / sqrt(k!),

z ~ N(0, 1), He_k the probabilists' Hermite polynomials.  The coefficients depend on one
example only: they are computed once per example and layer (the diagonal pass), so a pair
costs O(K) multiply-adds.

**Coefficients.**  h_0 .. h_K (K = ``HERMITE_K``) and E = E[f(sqrt(a) z)^2] by one piecewise
Gauss-Legendre rule in z: order ``COEF_ORDER`` on pieces of length <= ``COEF_PIECE`` over
[-``COEF_RANGE``, ``COEF_RANGE``] (the normalized He_k, k <= K, oscillate inside |z| < 2 sqrt(K)
and are resolved there; |z| > 12 carries Gaussian mass < 4e-33), split at every kink p of f
(z = p / sqrt(a)) and graded geometrically (ratio 2) towards every soft feature (p, w) of f --
a point where f changes on the scale w, e.g. tanh at 0 on the scale pi/2, the distance of its
poles from the real line -- from w / sqrt(a) up to ``GRADE_LIMIT``, so that large variances,
where f(sqrt(a) z) turns sharply within |z| < w / sqrt(a), stay resolved.  The normalized
polynomials psi_k = He_k / sqrt(k!) come from the stable three-term recurrence
psi_{k+1} = (z psi_k - sqrt(k) psi_{k-1}) / sqrt(k+1).

**Tail bound.**  By Parseval sum_k h_k(a)^2 = E_a, so T_K(a) = E_a - sum_{k<=K} h_k(a)^2 is the
energy left beyond K and, by Cauchy-Schwarz,

    |sum_{k>K} h_k(a) h_k(b) rho^k|  <=  |rho|^(K+1) sqrt(T_K(a) T_K(b)).

Per example the code stores t_K(a) = sqrt(T_K(a) / E_a + ``TAIL_FLOOR``) (the floor covers the
round-off of the difference and of the quadrature, ~1e-15 of E_a) and per pair it sums groups
of four terms, K = 3, 7, 11, ..., until |rho|^(K+1) t_K(a) t_K(b) <= ``HERMITE_TOL``: the error
is then below ``HERMITE_TOL`` * sqrt(E_a E_b), the Cauchy-Schwarz scale of the dual itself.
(The generated code stores each example's vector as 16 groups [h_4g .. h_4g+3, t_4g+3], so
that the terms a pair needs lie in one or two cache lines.)  Where the bound
does not reach the tolerance by K = ``HERMITE_K`` (|rho| near 1, large variances, kinks: slowly
decaying coefficients) the pair falls back to the two-dimensional quadrature of
:mod:`ntksym.ir.gaussian`.

Example
-------
>>> import math
>>> h, t = hermite_coefficients(math.sin, 1.0)
>>> round(float(h[1]), 12) == round(math.exp(-0.5), 12)     # E[sin(z) z] = e^{-1/2}
True
>>> v = hermite_series(h, t, h, t, 0.5)
>>> abs(v - math.exp(-1.0) * math.sinh(0.5)) < 1e-14       # E[sin u sin v] = e^{-1} sinh c
True
"""

from __future__ import annotations

import math

import numpy as np

# the series' degree, tolerance and coefficient rule: ntksym.ir.accuracy
from .accuracy import (  # noqa: F401
    COEF_ORDER,
    COEF_PIECE,
    COEF_RANGE,
    GROUP,
    HERMITE_K,
    HERMITE_TOL,
    TAIL_FLOOR,
    TANGENT_K,
)
from .gaussian import GRADE_LIMIT, gaussian_expectation, graded_cuts  # noqa: F401

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def coefficient_rule(a, kinks=(), soft=()):
    """Nodes z and weights w (Gaussian density included) of the coefficient rule at variance a."""
    sa = math.sqrt(a)
    R = COEF_RANGE
    n = int(round(2 * R / COEF_PIECE))
    cuts = {-R + 2 * R * i / n for i in range(n + 1)}
    cuts.update(p / sa for p in kinks if abs(p / sa) < R)
    for p, w in soft:
        cuts.update(x for x in graded_cuts(p / sa, w / sa) if abs(x) < R)
    cuts = sorted(cuts)
    t, wt = np.polynomial.legendre.leggauss(COEF_ORDER)
    xs, ws = [], []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        half, mid = 0.5 * (hi - lo), 0.5 * (hi + lo)
        x = mid + half * t
        xs.append(x)
        ws.append(half * wt * np.exp(-0.5 * x * x) * _INV_SQRT_2PI)
    return np.concatenate(xs), np.concatenate(ws)


def _values(f, x):
    try:
        v = np.asarray(f(x), dtype=float)
        if v.shape == x.shape:
            return v
        return v * np.ones_like(x)
    except (TypeError, ValueError):
        return np.fromiter((f(float(t)) for t in x), dtype=float, count=len(x))


def hermite_coefficients(f, a, kinks=(), soft=(), K=HERMITE_K):
    """(h, t): h[k] = E[f(sqrt(a) z) He_k(z)] / sqrt(k!) and the relative tail
    t[k] = sqrt(T_k / E + TAIL_FLOOR), T_k = E - sum_{j<=k} h_j^2, E = E[f(sqrt(a) z)^2],
    for k = 0 .. K.  ``kinks``: points where f is not smooth; ``soft``: (point, width) pairs.
    A zero variance gives h = (f(0), 0, ...)."""
    h = np.zeros(K + 1)
    if a <= 0.0:
        h[0] = float(f(0.0))
        E = h[0] ** 2
    else:
        z, w = coefficient_rule(a, kinks, soft)
        fz = _values(f, math.sqrt(a) * z)
        fw = fz * w
        E = float(fw @ fz)
        p0, p1 = np.ones_like(z), z.copy()
        h[0] = fw.sum()
        if K >= 1:
            h[1] = fw @ p1
        for k in range(1, K):
            p0, p1 = p1, (z * p1 - math.sqrt(k) * p0) / math.sqrt(k + 1)
            h[k + 1] = fw @ p1
    if E > 0.0:
        T = np.maximum(E - np.cumsum(h * h), 0.0) / E
        t = np.sqrt(T + TAIL_FLOOR)
    else:
        t = np.zeros(K + 1)
    return h, t


def hermite_series(hx, tx, hy, ty, rho, tol=HERMITE_TOL):
    """sum_{k<=K} hx[k] hy[k] rho^k for the first K = 3, 7, 11, ... (groups of ``GROUP``) with
    |rho|^(K+1) tx[K] ty[K] <= tol; None if the bound does not reach tol by the last one."""
    acc, p = 0.0, 1.0
    for k in range(len(hx)):
        acc += hx[k] * hy[k] * p
        p *= rho
        if k % GROUP == GROUP - 1 and abs(p) * tx[k] * ty[k] <= tol:
            return float(acc)
    return None


def correlation(a, b, c):
    """clip(c / sqrt(a b), -1, 1); 0 when a variance is 0."""
    d = math.sqrt(max(a, 0.0) * max(b, 0.0))
    if d <= 0.0:
        return 0.0
    return max(-1.0, min(1.0, c / d))


def hermite_expectation_value(f, a, b, c, kinks=(), soft=(), g=None, K=HERMITE_K):
    """E[f(u) g(v)] (g = f by default) by the Hermite series where its tail bound holds, else
    by the quadrature (:func:`ntksym.ir.gaussian.gaussian_expectation` with the same kinks and
    soft features).  For g != f (a *mixed* series, e.g. E[f''(u) f(v)] in a tangent) the same
    Cauchy-Schwarz bound holds with f's tail at a and g's at b:
    |sum_{k>K} h^f_k(a) h^g_k(b) rho^k| <= |rho|^(K+1) sqrt(T^f_K(a) T^g_K(b)), so the error is
    below HERMITE_TOL * sqrt(E[f(u)^2] E[g(v)^2])."""
    g = f if g is None else g
    hx, tx = hermite_coefficients(f, a, kinks, soft, K)
    hy, ty = hermite_coefficients(g, b, kinks, soft, K)
    v = hermite_series(hx, tx, hy, ty, correlation(a, b, c))
    if v is not None:
        return v
    return gaussian_expectation(f, g, a, b, c, breakpoints=kinks, soft=soft)


def hermite_diag_value(f, a, kinks=(), soft=()):
    """E[f(u)^2], u ~ N(0, a), by the coefficient rule."""
    if a <= 0.0:
        return float(f(0.0)) ** 2
    z, w = coefficient_rule(a, kinks, soft)
    fz = _values(f, math.sqrt(a) * z)
    return float((fz * fz) @ w)
