"""Gaussian expectations E[f(u) g(v)] by piecewise Gauss-Legendre quadrature (pure Python).

The reference evaluator of the IR's quadrature expectations (``evalf``); the generated kernels
use the same algorithm as Numba source (:mod:`ntksym.duals.quadrature`).

For (u, v) ~ N(0, [[a, c], [c, b]]) write

    u = sqrt(a) z1,   v = sqrt(b) (rho z1 + s z2),   rho = clip(c / sqrt(a b), -1, 1),
    s = sqrt(1 - rho^2),   z1, z2 ~ N(0, 1) independent,

and integrate z1 (outer) and z2 (inner) over [-R, R], R = ``QUAD_RANGE`` = 10 standard
deviations (the discarded Gaussian mass is 2 Phi(-10) ~ 1.5e-23).  Each range is split into
pieces on which the integrand is smooth, and every piece gets a Gauss-Legendre rule of
``QUAD_ORDER`` = 48 nodes against the Gaussian density.  Every range is always cut at
``FIXED_CUTS`` = -3, 0, 3 standard deviations (smooth integrands with nearby complex
singularities, tanh, erf, need pieces shorter than [-10, 10]), and in addition:

* outer (z1): at ``p / sqrt(a)`` for every breakpoint p of f; and, for every breakpoint q of g,
  at ``q / (sqrt(b) rho)`` and ``q / (sqrt(b) rho) +- R s / |rho|`` -- the inner integral
  G(z1) = E[g(v) | z1] has a kink of width ~ s there, which these extra splits resolve
  uniformly as rho -> +-1 (without them the error grows like s^2 near rho = +-1);
* inner (z2): at ``(q / sqrt(b) - rho z1) / s``, where v crosses a breakpoint of g.

Smooth activations that turn on a scale w around a point p (tanh at 0 on the scale pi/2, the
distance of its poles from the real axis) carry *soft features* (p, w).  At large variances
f(sqrt(a) z) turns within |z| < w / sqrt(a), far below the fixed pieces; the ranges are then
also cut at ``graded_cuts``: center +- delta 2^j up to ``GRADE_LIMIT`` standard deviations,
with delta = w / sqrt(a) around p / sqrt(a) (outer, f), w / (sqrt(b) s) around
(p / sqrt(b) - rho z1) / s (inner, g) and (w / sqrt(b) + s) / |rho| around p / (sqrt(b) rho)
(outer: E[g(v) | z1] turns there).  Geometric grading keeps every piece at a distance from the
feature comparable to its length, where Gauss-Legendre converges geometrically; at moderate
variances (delta > ``GRADE_LIMIT``) no cut is added and the rule is the plain one.

Degenerate cases: s < 1e-12 (|rho| = 1 to double precision) uses G(z1) = g(sqrt(b) rho z1);
a = 0 (u = 0) gives f(0) E[g(v)]; b = 0 gives g(0) E[f(u)].

With breakpoints at every kink the pieces are analytic and the rule is accurate to ~1e-15
relative; e.g. the quadrature dual of ReLU matches its arc-cosine closed form to 1e-12 over
rho in [-1, 1] including rho = +-1 +- 1e-k (tests/test_activations.py).

Example
-------
>>> import math
>>> relu = lambda x: max(x, 0.0)
>>> round(gaussian_expectation(relu, relu, 1.0, 1.0, 1.0, breakpoints=(0.0,)), 12)
0.5
"""

from __future__ import annotations

import math

import numpy as np

# the quadrature's order and range (in standard deviations): ntksym.ir.accuracy
from .accuracy import QUAD_ORDER, QUAD_RANGE  # noqa: F401

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# Below this s = sqrt(1 - rho^2) the pair is treated as exactly (anti)collinear; the error of
# doing so is O(s^2) relative, far below double precision at 1e-12.
_S_DEGENERATE = 1e-12

# Fixed extra cuts (in standard deviations) of every range: a single 48-node piece over
# [-10, 10] resolves the Gaussian but not tanh (poles at +-i pi/2) or erf (e^{y^2} growth off
# the axis): one piece gives ~3e-8 error for erf; pieces of half-length <= 3.5 give < 1e-14.
FIXED_CUTS = (-3.0, 0.0, 3.0)

#: graded cuts towards a soft feature stop at this distance (in std)
GRADE_LIMIT = 1.5

_RULES: dict = {}


def _rule(order):
    r = _RULES.get(order)
    if r is None:
        r = _RULES[order] = np.polynomial.legendre.leggauss(order)
    return r


def _vectorized(f):
    """Wrap a scalar callable (e.g. sympy.lambdify(..., "math")) so it maps arrays."""
    try:
        probe = np.asarray(f(np.array([0.25, -0.75])), dtype=float)
        if probe.shape == (2,):
            return lambda x: np.asarray(f(x), dtype=float) * np.ones_like(x)
    except Exception:  # scalar-only callable: fall back to a loop
        pass
    return lambda x: np.fromiter((f(float(t)) for t in x), dtype=float, count=len(x))


def graded_cuts(center, delta, limit=GRADE_LIMIT):
    """center +- delta 2^j for j = 0, 1, ... while delta 2^j <= limit (none if delta > limit).

    >>> graded_cuts(0.0, 0.4)
    [-0.4, 0.4, -0.8, 0.8]
    """
    out = []
    d = delta
    while 0.0 < d <= limit:
        out += [center - d, center + d]
        d *= 2.0
    return out


def _soft_cuts(soft, scale):
    """graded cuts of the soft features (p, w) of a function of sqrt(a) z, scale = sqrt(a)."""
    return [x for p, w in soft for x in graded_cuts(p / scale, w / scale)]


def _nodes(points, lo, hi, order):
    """Gauss-Legendre nodes and Gaussian-weighted weights over [lo, hi] split at points."""
    cuts = sorted({lo, hi, *(p for p in (*points, *FIXED_CUTS) if lo < p < hi)})
    t, w = _rule(order)
    xs, ws = [], []
    for l, h in zip(cuts[:-1], cuts[1:]):
        if h <= l:
            continue
        half, mid = 0.5 * (h - l), 0.5 * (h + l)
        x = mid + half * t
        xs.append(x)
        ws.append(half * w * np.exp(-0.5 * x * x) * _INV_SQRT_2PI)
    if not xs:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(xs), np.concatenate(ws)


def gaussian_expectation_1d(f, a, breakpoints=(), order=QUAD_ORDER, zrange=QUAD_RANGE,
                            soft=()):
    """E[f(u)], u ~ N(0, a), split at the breakpoints of f (and graded towards its soft
    features).

    >>> round(gaussian_expectation_1d(lambda x: x * x, 2.0), 12)
    2.0
    """
    if a <= 0.0:
        return float(f(0.0))
    sa = math.sqrt(a)
    x, w = _nodes([p / sa for p in breakpoints] + _soft_cuts(soft, sa), -zrange, zrange, order)
    return float(np.dot(w, _vectorized(f)(sa * x)))


def gaussian_expectation(f, g, a, b, c, breakpoints=(), order=QUAD_ORDER, zrange=QUAD_RANGE,
                         breakpoints_g=None, soft=(), soft_g=None):
    """E[f(u) g(v)] for (u, v) ~ N(0, [[a, c], [c, b]]): the pure Python/numpy reference.

    Parameters
    ----------
    f, g : callables of one float (scalar callables are looped over; numpy-aware ones are
        called on arrays).
    a, b, c : the covariance entries; c is clipped so that |c| <= sqrt(a b).
    breakpoints : points where f (and g, unless ``breakpoints_g`` is given) is not smooth.
    order, zrange : Gauss-Legendre nodes per piece and truncation in standard deviations.
    soft, soft_g : soft features (point, width) of f (and of g, unless ``soft_g`` is given).

    >>> relu = lambda x: max(x, 0.0)
    >>> abs(gaussian_expectation(relu, relu, 1.0, 1.0, 0.0, (0.0,)) - 1 / (2 * math.pi)) < 1e-14
    True
    """
    a, b, c = float(a), float(b), float(c)
    bpf = tuple(float(p) for p in breakpoints)
    bpg = bpf if breakpoints_g is None else tuple(float(q) for q in breakpoints_g)
    sf = tuple(soft)
    sg = sf if soft_g is None else tuple(soft_g)
    R = zrange
    if a <= 0.0 and b <= 0.0:
        return float(f(0.0)) * float(g(0.0))
    if a <= 0.0:
        return float(f(0.0)) * gaussian_expectation_1d(g, b, bpg, order, zrange, sg)
    if b <= 0.0:
        return float(g(0.0)) * gaussian_expectation_1d(f, a, bpf, order, zrange, sf)
    sa, sb = math.sqrt(a), math.sqrt(b)
    rho = max(-1.0, min(1.0, c / math.sqrt(a * b)))
    s = math.sqrt(max(0.0, 1.0 - rho * rho))
    fv, gv = _vectorized(f), _vectorized(g)

    outer = [p / sa for p in bpf] + _soft_cuts(sf, sa)
    if rho != 0.0:
        for q in bpg:
            m = q / (sb * rho)
            d = R * s / abs(rho)
            outer += [m, m - d, m + d]
        for q, w in sg:
            outer += graded_cuts(q / (sb * rho), (w / sb + s) / abs(rho))
    x1, w1 = _nodes(outer, -R, R, order)
    fx = fv(sa * x1)

    if s < _S_DEGENERATE:
        return float(np.dot(w1 * fx, gv(sb * rho * x1)))

    total = 0.0
    for z1, wz, fz in zip(x1, w1, fx):
        if fz == 0.0:  # ReLU-like f: half the outer nodes need no inner integral
            continue
        inner = [(q / sb - rho * z1) / s for q in bpg]
        for q, w in sg:
            inner += graded_cuts((q / sb - rho * z1) / s, w / (sb * s))
        x2, w2 = _nodes(inner, -R, R, order)
        total += wz * fz * float(np.dot(w2, gv(sb * (rho * z1 + s * x2))))
    return float(total)
