"""Gaussian expectations E[f(u) g(v)] by piecewise Gauss-Legendre quadrature.

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

Degenerate cases: s < 1e-12 (|rho| = 1 to double precision) uses G(z1) = g(sqrt(b) rho z1);
a = 0 (u = 0) gives f(0) E[g(v)]; b = 0 gives g(0) E[f(u)].

With breakpoints at every kink the pieces are analytic and the rule is accurate to ~1e-15
relative; e.g. the quadrature dual of ReLU matches its arc-cosine closed form to 1e-12 over
rho in [-1, 1] including rho = +-1 +- 1e-k (tests/test_activations.py).

``NUMBA_QUADRATURE_SOURCE`` is the same algorithm as Numba source (needs only math, numpy,
numba) for generated kernel modules: paste it once, emit per integrand ``@numba.njit`` functions
``f(z)``, ``g(z)`` and breakpoint arrays, and call

    _gauss_expect(f, g, a, b, c, bpf, bpg)     # E[f(u) g(v)]
    _gauss_expect_diag(f, g, a, bp)            # E[f(u) g(u)], u ~ N(0, a)

f and g are passed as first-class njit functions (each pair compiles one specialization); this
works with ``cache=True`` in a file-based module (tested in tests/test_activations.py) provided
the breakpoint arrays are not module-level globals (Numba then refuses to cache: "dynamic
globals"); :func:`numba_quadrature_wrapper` emits, per integrand pair, ``name(a, b, c)`` and
``name_diag(a)`` that build them locally.

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

from ntksym.ir.program import QUAD_ORDER, QUAD_RANGE

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# Below this s = sqrt(1 - rho^2) the pair is treated as exactly (anti)collinear; the error of
# doing so is O(s^2) relative, far below double precision at 1e-12.
_S_DEGENERATE = 1e-12

# Fixed extra cuts (in standard deviations) of every range: a single 48-node piece over
# [-10, 10] resolves the Gaussian but not tanh (poles at +-i pi/2) or erf (e^{y^2} growth off
# the axis): one piece gives ~3e-8 error for erf; pieces of half-length <= 3.5 give < 1e-14.
FIXED_CUTS = (-3.0, 0.0, 3.0)

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


def gaussian_expectation_1d(f, a, breakpoints=(), order=QUAD_ORDER, zrange=QUAD_RANGE):
    """E[f(u)], u ~ N(0, a), split at the breakpoints of f.

    >>> round(gaussian_expectation_1d(lambda x: x * x, 2.0), 12)
    2.0
    """
    if a <= 0.0:
        return float(f(0.0))
    sa = math.sqrt(a)
    x, w = _nodes([p / sa for p in breakpoints], -zrange, zrange, order)
    return float(np.dot(w, _vectorized(f)(sa * x)))


def gaussian_expectation(f, g, a, b, c, breakpoints=(), order=QUAD_ORDER, zrange=QUAD_RANGE,
                         breakpoints_g=None):
    """E[f(u) g(v)] for (u, v) ~ N(0, [[a, c], [c, b]]): the pure Python/numpy reference.

    Parameters
    ----------
    f, g : callables of one float (scalar callables are looped over; numpy-aware ones are
        called on arrays).
    a, b, c : the covariance entries; c is clipped so that |c| <= sqrt(a b).
    breakpoints : points where f (and g, unless ``breakpoints_g`` is given) is not smooth.
    order, zrange : Gauss-Legendre nodes per piece and truncation in standard deviations.

    >>> relu = lambda x: max(x, 0.0)
    >>> abs(gaussian_expectation(relu, relu, 1.0, 1.0, 0.0, (0.0,)) - 1 / (2 * math.pi)) < 1e-14
    True
    """
    a, b, c = float(a), float(b), float(c)
    bpf = tuple(float(p) for p in breakpoints)
    bpg = bpf if breakpoints_g is None else tuple(float(q) for q in breakpoints_g)
    R = zrange
    if a <= 0.0 and b <= 0.0:
        return float(f(0.0)) * float(g(0.0))
    if a <= 0.0:
        return float(f(0.0)) * gaussian_expectation_1d(g, b, bpg, order, zrange)
    if b <= 0.0:
        return float(g(0.0)) * gaussian_expectation_1d(f, a, bpf, order, zrange)
    sa, sb = math.sqrt(a), math.sqrt(b)
    rho = max(-1.0, min(1.0, c / math.sqrt(a * b)))
    s = math.sqrt(max(0.0, 1.0 - rho * rho))
    fv, gv = _vectorized(f), _vectorized(g)

    outer = [p / sa for p in bpf]
    if rho != 0.0:
        for q in bpg:
            m = q / (sb * rho)
            d = R * s / abs(rho)
            outer += [m, m - d, m + d]
    x1, w1 = _nodes(outer, -R, R, order)
    fx = fv(sa * x1)

    if s < _S_DEGENERATE:
        return float(np.dot(w1 * fx, gv(sb * rho * x1)))

    total = 0.0
    for z1, wz, fz in zip(x1, w1, fx):
        if fz == 0.0:  # ReLU-like f: half the outer nodes need no inner integral
            continue
        inner = [(q / sb - rho * z1) / s for q in bpg]
        x2, w2 = _nodes(inner, -R, R, order)
        total += wz * fz * float(np.dot(w2, gv(sb * (rho * z1 + s * x2))))
    return float(total)


NUMBA_QUADRATURE_SOURCE = '''
# ---- ntksym.duals.quadrature: piecewise Gauss-Legendre Gaussian expectations (generated) ----
# E[f(u) g(v)], (u, v) ~ N(0, [[a, c], [c, b]]); u = sqrt(a) z1, v = sqrt(b)(rho z1 + s z2).
# Per integrand pair, numba_quadrature_wrapper() emits NAME(a, b, c) and NAME_diag(a) calling
# the njit integrands f, g by their global names (first-class function arguments would stop
# Numba from caching: "dynamic globals").
# Order %(order)d Gauss-Legendre per smooth piece, z truncated to [-%(range)r, %(range)r].
import math
import numpy as np
import numba

_GQ_T, _GQ_W = np.polynomial.legendre.leggauss(%(order)d)
_GQ_R = %(range)r
_GQ_FIXED = np.array(%(fixed)r)  # fixed cuts: see ntksym.duals.quadrature.FIXED_CUTS
_GQ_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@numba.njit(cache=True, nogil=True)
def _gq_cuts(pts, npts, lo, hi):
    """Sorted split points: lo, the pts and the fixed cuts strictly inside (lo, hi), hi."""
    out = np.empty(npts + 2 + _GQ_FIXED.shape[0])
    out[0] = lo
    n = 1
    for i in range(npts):
        p = pts[i]
        if lo < p < hi:
            out[n] = p
            n += 1
    for i in range(_GQ_FIXED.shape[0]):
        p = _GQ_FIXED[i]
        if lo < p < hi:
            out[n] = p
            n += 1
    out[n] = hi
    n += 1
    inner = out[1:n - 1]
    inner.sort()
    return out[:n]
# ---- end ntksym.duals.quadrature ----
''' % {"order": QUAD_ORDER, "range": float(QUAD_RANGE),
     "fixed": FIXED_CUTS}
NUMBA_QUADRATURE_SOURCE = NUMBA_QUADRATURE_SOURCE.lstrip("\n")

# Per integrand pair; __NAME__, __F__, __G__, __BPF__, __BPG__, __BPD__ are replaced.
_NUMBA_PAIR_TEMPLATE = '''
@numba.njit(cache=True, nogil=True)
def __NAME___diag(a):
    """E[__F__(u) __G__(u)], u ~ N(0, a), by Gauss-Legendre quadrature (ntksym)."""
    bp = __BPD__
    if a <= 0.0:
        return __F__(0.0) * __G__(0.0)
    sa = math.sqrt(a)
    pts = np.empty(bp.shape[0])
    for i in range(bp.shape[0]):
        pts[i] = bp[i] / sa
    cuts = _gq_cuts(pts, bp.shape[0], -_GQ_R, _GQ_R)
    acc = 0.0
    for k in range(cuts.shape[0] - 1):
        lo = cuts[k]
        hi = cuts[k + 1]
        if hi <= lo:
            continue
        half = 0.5 * (hi - lo)
        mid = 0.5 * (hi + lo)
        for j in range(_GQ_T.shape[0]):
            x = mid + half * _GQ_T[j]
            u = sa * x
            acc += half * _GQ_W[j] * math.exp(-0.5 * x * x) * _GQ_INV_SQRT_2PI * __F__(u) * __G__(u)
    return acc


@numba.njit(cache=True, nogil=True)
def __NAME__(a, b, c):
    """E[__F__(u) __G__(v)], (u, v) ~ N(0, [[a, c], [c, b]]), by Gauss-Legendre quadrature."""
    bpf = __BPF__
    bpg = __BPG__
    R = _GQ_R
    if a <= 0.0 and b <= 0.0:
        return __F__(0.0) * __G__(0.0)
    # a = 0 or b = 0 (a zero-variance input) go through the same loops with rho = 0, s = 1 and
    # the degenerate side held at 0: correct, if 48x more work than needed, for a rare case.
    sa = math.sqrt(a) if a > 0.0 else 0.0
    sb = math.sqrt(b) if b > 0.0 else 0.0
    rho = 0.0
    if a > 0.0 and b > 0.0:
        rho = c / math.sqrt(a * b)
        if rho > 1.0:
            rho = 1.0
        elif rho < -1.0:
            rho = -1.0
    s = math.sqrt(max(0.0, 1.0 - rho * rho))
    nf = bpf.shape[0] if a > 0.0 else 0
    ng = bpg.shape[0] if b > 0.0 else 0
    pts = np.empty(nf + 3 * ng)
    npts = 0
    for i in range(nf):
        pts[npts] = bpf[i] / sa
        npts += 1
    if rho != 0.0:
        # the inner integral has a kink of width ~ s around q / (sqrt(b) rho): resolve it
        d = R * s / abs(rho)
        for i in range(ng):
            m = bpg[i] / (sb * rho)
            pts[npts] = m
            pts[npts + 1] = m - d
            pts[npts + 2] = m + d
            npts += 3
    cuts = _gq_cuts(pts, npts, -R, R)
    degenerate = s < 1e-12
    ipts = np.empty(ng)
    nT = _GQ_T.shape[0]
    acc = 0.0
    for k in range(cuts.shape[0] - 1):
        lo = cuts[k]
        hi = cuts[k + 1]
        if hi <= lo:
            continue
        half = 0.5 * (hi - lo)
        mid = 0.5 * (hi + lo)
        for j in range(nT):
            z1 = mid + half * _GQ_T[j]
            w1 = half * _GQ_W[j] * math.exp(-0.5 * z1 * z1) * _GQ_INV_SQRT_2PI
            fz = __F__(sa * z1)
            if fz == 0.0:
                continue
            if degenerate:
                acc += w1 * fz * __G__(sb * rho * z1)
                continue
            for i in range(ng):
                ipts[i] = (bpg[i] / sb - rho * z1) / s
            icuts = _gq_cuts(ipts, ng, -R, R)
            inner = 0.0
            for kk in range(icuts.shape[0] - 1):
                ilo = icuts[kk]
                ihi = icuts[kk + 1]
                if ihi <= ilo:
                    continue
                ihalf = 0.5 * (ihi - ilo)
                imid = 0.5 * (ihi + ilo)
                for jj in range(nT):
                    z2 = imid + ihalf * _GQ_T[jj]
                    inner += (ihalf * _GQ_W[jj] * math.exp(-0.5 * z2 * z2)
                              * __G__(sb * (rho * z1 + s * z2)))
            acc += w1 * fz * inner * _GQ_INV_SQRT_2PI
    return acc
'''


def _array_literal(points):
    pts = [float(p) for p in points]
    if not pts:
        return "np.zeros(0)"
    return "np.array((%s,))" % ", ".join(repr(p) for p in pts)


def numba_quadrature_wrapper(name, f, g, breakpoints_f=(), breakpoints_g=None):
    """Numba source of ``name(a, b, c)`` = E[f(u) g(v)] and ``name_diag(a)`` = E[f(u) g(u)].

    ``f`` and ``g`` are the names of ``@numba.njit`` functions of one float defined in the same
    module, after ``NUMBA_QUADRATURE_SOURCE``; breakpoints are their points of non-smoothness.
    The integrands are called by global name and the breakpoint arrays built locally, the two
    forms that Numba caches with ``cache=True`` (first-class function arguments and global
    arrays passed as arguments both make it refuse: "uses dynamic globals").

    >>> src = numba_quadrature_wrapper("E_relu", "relu_f", "relu_f", (0.0,))
    >>> [l for l in src.splitlines() if l.startswith("def ")]
    ['def E_relu_diag(a):', 'def E_relu(a, b, c):']
    """
    bf = [float(p) for p in breakpoints_f]
    bg = bf if breakpoints_g is None else [float(q) for q in breakpoints_g]
    out = _NUMBA_PAIR_TEMPLATE
    for key, val in (("__NAME__", name), ("__F__", f), ("__G__", g),
                     ("__BPF__", _array_literal(bf)), ("__BPG__", _array_literal(bg)),
                     ("__BPD__", _array_literal(sorted(set(bf) | set(bg))))):
        out = out.replace(key, val)
    return out.lstrip("\n")
