"""The Numba source of the piecewise Gauss-Legendre Gaussian expectations of generated kernels.

The algorithm and its pure-Python reference are in :mod:`ntksym.ir.gaussian` (re-exported
here).  ``NUMBA_QUADRATURE_SOURCE`` is the same algorithm as Numba source (needs only math, numpy,
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

from ntksym.ir.gaussian import (  # noqa: F401  (re-exported)
    FIXED_CUTS,
    GRADE_LIMIT,
    QUAD_ORDER,
    QUAD_RANGE,
    gaussian_expectation,
    gaussian_expectation_1d,
)

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
_GQ_GRADE = %(grade)r  # graded cuts towards soft features up to here (std)
_GQ_LEVELS = 48       # at most this many graded levels per soft feature


@numba.njit(cache=True, nogil=True)
def _gq_graded(pts, n, center, delta):
    """Append center +- delta 2^j (j = 0, 1, ... while delta 2^j <= _GQ_GRADE) to pts[n:]."""
    d = delta
    j = 0
    while 0.0 < d <= _GQ_GRADE and j < _GQ_LEVELS:
        pts[n] = center - d
        pts[n + 1] = center + d
        n += 2
        d *= 2.0
        j += 1
    return n


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
     "fixed": FIXED_CUTS, "grade": float(GRADE_LIMIT)}
NUMBA_QUADRATURE_SOURCE = NUMBA_QUADRATURE_SOURCE.lstrip("\n")

# Per integrand pair; __NAME__, __F__, __G__, __BPF__, __BPG__, __BPD__, __SPF__, __SWF__
# (soft feature points and widths, of f and g alike) are replaced.
_NUMBA_PAIR_TEMPLATE = '''
@numba.njit(cache=True, nogil=True)
def __NAME___diag(a):
    """E[__F__(u) __G__(u)], u ~ N(0, a), by Gauss-Legendre quadrature (ntksym)."""
    bp = __BPD__
    spt = __SPF__
    swd = __SWF__
    if a <= 0.0:
        return __F__(0.0) * __G__(0.0)
    sa = math.sqrt(a)
    pts = np.empty(bp.shape[0] + 2 * _GQ_LEVELS * spt.shape[0])
    for i in range(bp.shape[0]):
        pts[i] = bp[i] / sa
    n = bp.shape[0]
    for i in range(spt.shape[0]):
        n = _gq_graded(pts, n, spt[i] / sa, swd[i] / sa)
    cuts = _gq_cuts(pts, n, -_GQ_R, _GQ_R)
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
    spt = __SPF__
    swd = __SWF__
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
    ns = spt.shape[0]
    pts = np.empty(nf + 3 * ng + 4 * _GQ_LEVELS * ns)
    npts = 0
    for i in range(nf):
        pts[npts] = bpf[i] / sa
        npts += 1
    if a > 0.0:
        # soft features of f: graded towards p / sqrt(a) from w / sqrt(a)
        for i in range(ns):
            npts = _gq_graded(pts, npts, spt[i] / sa, swd[i] / sa)
    if rho != 0.0:
        # the inner integral has a kink of width ~ s around q / (sqrt(b) rho): resolve it
        d = R * s / abs(rho)
        for i in range(ng):
            m = bpg[i] / (sb * rho)
            pts[npts] = m
            pts[npts + 1] = m - d
            pts[npts + 2] = m + d
            npts += 3
        if b > 0.0:
            # and turns around a soft feature p / (sqrt(b) rho) on the scale (w/sqrt(b) + s)/|rho|
            for i in range(ns):
                npts = _gq_graded(pts, npts, spt[i] / (sb * rho),
                                  (swd[i] / sb + s) / abs(rho))
    cuts = _gq_cuts(pts, npts, -R, R)
    degenerate = s < 1e-12
    nsg = ns if b > 0.0 and s > 0.0 else 0
    ipts = np.empty(ng + 2 * _GQ_LEVELS * nsg)
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
            ni = ng
            for i in range(nsg):
                ni = _gq_graded(ipts, ni, (spt[i] / sb - rho * z1) / s, swd[i] / (sb * s))
            icuts = _gq_cuts(ipts, ni, -R, R)
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


def array_literal(points):
    pts = [float(p) for p in points]
    if not pts:
        return "np.zeros(0)"
    return "np.array((%s,))" % ", ".join(repr(p) for p in pts)


def numba_quadrature_wrapper(name, f, g, breakpoints_f=(), breakpoints_g=None, soft=()):
    """Numba source of ``name(a, b, c)`` = E[f(u) g(v)] and ``name_diag(a)`` = E[f(u) g(u)].

    ``f`` and ``g`` are the names of ``@numba.njit`` functions of one float defined in the same
    module, after ``NUMBA_QUADRATURE_SOURCE``; breakpoints are their points of non-smoothness,
    ``soft`` their soft features (point, width) (:mod:`ntksym.ir.gaussian`).
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
                     ("__BPF__", array_literal(bf)), ("__BPG__", array_literal(bg)),
                     ("__BPD__", array_literal(sorted(set(bf) | set(bg)))),
                     ("__SPF__", array_literal([p for p, _ in soft])),
                     ("__SWF__", array_literal([w for _, w in soft]))):
        out = out.replace(key, val)
    return out.lstrip("\n")
