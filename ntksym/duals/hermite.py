"""The Numba source of the Hermite-series duals of generated kernels.

The algorithm, its tail bound and its pure-Python reference are in :mod:`ntksym.ir.hermite`.
``NUMBA_HERMITE_SOURCE`` is pasted once into a generated module (after
``NUMBA_QUADRATURE_SOURCE``, whose quadrature is the fallback); :func:`numba_hermite_family`
emits, per family of functions f_0, f_1, ... (an activation's phi and phi', ``@numba.njit``
functions of one float) sharing one coefficient rule:

    NAME_coef(a, out) -> E       # member i: out[120 i + 5 g : 120 i + 5 g + 5]
                                 #   = h_4g..h_4g+3, t_4g+3 of f_i at variance a, g = 0..23;
                                 #   E = (E[f_i(sqrt(a) z)^2])_i by the same rule
    NAME_m<i>(c, a, b, Dx, ix, Dy, iy, off)
                                 # E[f_i(u) f_i(v)] from the two examples' vectors, stored in
                                 # Dx[ix, off:] and Dy[iy, off:] (per pair; inlined)
    NAME_m<i>_full(a, b, c)      # the same, computing both vectors itself
    NAME_m<i>_diag(a)            # E[f_i(u)^2] by the coefficient rule
    NAME_m<i>_quad(a, b, c)      # the quadrature fallback (numba_quadrature_wrapper)

``NAME_coef`` runs once per example and layer (the diagonal pass of the generated module): one
pass over the nodes evaluates every member and one Hermite recurrence serves them all.
``NAME_m<i>`` costs O(k) multiply-adds for the k terms its tail bound needs.  ``_full`` serves
the programs that do not hoist the coefficients out of the pair (images, sequences).

The tangents of a program with learnable constants use a family extended by derivatives
(phi, phi', phi'', phi''') of degree ``TANGENT_K`` = 127 (vectors of 160 per member): its
helpers ``_hc_project_k127``, ``_hc_pack_k127``, ``_h_series_k127`` and the mixed series
``_h_series_xy_k127`` come from :func:`hermite_k_source`, pasted only into modules with such a
family, and ``numba_hermite_family(..., mixed=((i, j), ...), K=127)`` adds per mixed member

    NAME_m<i>_<j>(c, a, b, Dx, ix, Dy, iy, off)
                                 # E[f_i(u) f_j(v)]: f_i's vector on the x side, f_j's on y
    NAME_m<i>_<j>_full(a, b, c), NAME_m<i>_<j>_quad(a, b, c), NAME_m<i>_<j>_quad_diag(a)

so that modules without learnable constants are unchanged.

>>> src = numba_hermite_family("E_tanh", ("tanh_f", "dtanh_f"), (), ((0.0, 1.57),))
>>> sorted(l[4:l.index("(")] for l in src.splitlines() if l.startswith("def E_tanh_m1"))
['E_tanh_m1', 'E_tanh_m1_diag', 'E_tanh_m1_full', 'E_tanh_m1_quad', 'E_tanh_m1_quad_diag']
"""

from __future__ import annotations

import functools

from ntksym.ir.hermite import (
    COEF_ORDER,
    COEF_PIECE,
    COEF_RANGE,
    GROUP,
    HERMITE_K,
    HERMITE_TOL,
    TAIL_FLOOR,
)

from .quadrature import array_literal, numba_quadrature_wrapper

assert (HERMITE_K + 1) % GROUP == 0 and GROUP == 4    # (K odd: _hc_project's degree pairs)
#: the length of a per-example coefficient vector: (K+1)/4 groups [h_4g..h_4g+3, t_4g+3]
HERMITE_WIDTH = (HERMITE_K + 1) // GROUP * (GROUP + 1)

NUMBA_HERMITE_SOURCE = '''
# ---- ntksym.duals.hermite: Hermite-series duals with per-example coefficients (generated) ----
# E[f(u) f(v)] = sum_k h_k(a) h_k(b) rho^k, h_k(a) = E[f(sqrt(a) z) He_k(z)] / sqrt(k!);
# summed per pair until the Cauchy-Schwarz tail bound |rho|^(k+1) t_k(a) t_k(b) <= _H_TOL,
# t_k^2 = (E - sum_{j<=k} h_j^2) / E + _H_FLOOR; else the quadrature above.
# Coefficients: Gauss-Legendre of order %(order)d on pieces of length <= %(piece)r over
# [-%(range)r, %(range)r], split at kinks, graded towards soft features.
_H_K = %(K)d
_H_NG = %(ngroups)d  # groups of 4 terms, stored as [h_4g, h_4g+1, h_4g+2, h_4g+3, t_4g+3]
_H_TOL = %(tol)r
_H_FLOOR = %(floor)r
_HC_T, _HC_W = np.polynomial.legendre.leggauss(%(order)d)
_HC_R = %(range)r
_HC_NP = %(npieces)d
_HC_SQ = np.sqrt(np.arange(%(K)d + 2.0))


@numba.njit(cache=True, nogil=True)
def _hc_nodes(sa, kinks, spt, swd, Z, W):
    """Nodes Z[:n] and weights W[:n] (Gaussian density included) of the coefficient rule at
    sqrt(variance) sa; returns n.  Z, W hold (_HC_NP + kinks + 2 _GQ_LEVELS soft) pieces."""
    R = _HC_R
    pts = np.empty(kinks.shape[0] + 2 * _GQ_LEVELS * spt.shape[0])
    n = 0
    for i in range(kinks.shape[0]):
        pts[n] = kinks[i] / sa
        n += 1
    for i in range(spt.shape[0]):
        n = _gq_graded(pts, n, spt[i] / sa, swd[i] / sa)
    cuts = np.empty(_HC_NP + 1 + n)
    for i in range(_HC_NP + 1):
        cuts[i] = -R + 2.0 * R * i / _HC_NP
    m = _HC_NP + 1
    for i in range(n):
        if -R < pts[i] < R:
            cuts[m] = pts[i]
            m += 1
    cuts = cuts[:m]
    cuts.sort()
    nn = 0
    for k in range(m - 1):
        lo = cuts[k]
        hi = cuts[k + 1]
        if hi <= lo:
            continue
        half = 0.5 * (hi - lo)
        mid = 0.5 * (hi + lo)
        for j in range(_HC_T.shape[0]):
            Z[nn] = mid + half * _HC_T[j]
            W[nn] = half * _HC_W[j]
            nn += 1
    # the Gaussian density: once per pair of mirrored nodes (+-z have the same exp)
    lo = nn // 2 if _hc_mirrored(Z, nn) else 0
    for j in range(lo, nn):
        g = math.exp(-0.5 * Z[j] * Z[j])
        W[j] = W[j] * g * _GQ_INV_SQRT_2PI
        if lo > 0:
            W[nn - 1 - j] = W[nn - 1 - j] * g * _GQ_INV_SQRT_2PI
    return nn


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _hc_dot(W, i, P, n):
    acc = 0.0
    for j in range(n):
        acc += W[i, j] * P[j]
    return acc


@numba.njit(cache=True, nogil=True)
def _hc_mirrored(Z, n):
    """Whether the nodes come in pairs: Z[n - 1 - j] = -Z[j] exactly (the rule of a function
    without off-centre kinks or features: its cuts are symmetric)."""
    if n != 2 * (n // 2):
        return False
    for j in range(n // 2):
        if Z[n - 1 - j] != -Z[j]:
            return False
    return True


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _hc_project(Z, W, n, h, folded):
    """h[i, k] = sum_j W[i, j] psi_k(Z[j]) for every member i, k = 0.._H_K, with
    psi_k = He_k / sqrt(k!) by the three-term recurrence over the nodes: two degrees per pass,
    summed into two members at a time in the same pass (loops that vectorize).  ``folded``
    (_hc_mirrored nodes): psi_k(-z) = (-1)^k psi_k(z), so the even degrees sum W(z) + W(-z)
    and the odd ones W(z) - W(-z) over the positive nodes only (half the recurrence)."""
    M = h.shape[0]
    m = n // 2
    if folded:                              # node m + j = z_j > 0, node m - 1 - j = -z_j
        Zp = Z[m:n].copy()
        We = np.empty((M, m))
        Wo = np.empty((M, m))
        for i in range(M):
            for j in range(m):
                We[i, j] = W[i, m + j] + W[i, m - 1 - j]
                Wo[i, j] = W[i, m + j] - W[i, m - 1 - j]
        _hc_recurrence(Zp, We, Wo, m, h)
    else:
        _hc_recurrence(Z[:n], W, W, n, h)


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _hc_recurrence(Z, We, Wo, n, h):
    """h[i, k] = sum_j We[i, j] psi_k(Z[j]) for even k, Wo's for odd k (see _hc_project)."""
    M = h.shape[0]
    P0 = np.ones(n)
    P1 = Z[:n].copy()
    for i in range(M):
        h[i, 0] = _hc_dot(We, i, P0, n)
        h[i, 1] = _hc_dot(Wo, i, P1, n)
    for k in range(1, _H_K, 2):             # P0 = psi_{k-1}, P1 = psi_k -> psi_{k+1}, psi_{k+2}
        a1 = 1.0 / _HC_SQ[k + 1]
        a0 = _HC_SQ[k] * a1
        b1 = 1.0 / _HC_SQ[k + 2]
        b0 = _HC_SQ[k + 1] * b1
        for i0 in range(0, M, 2):
            i1 = min(i0 + 1, M - 1)
            last = i0 + 2 >= M              # the last pass moves the recurrence on
            s0 = 0.0
            s1 = 0.0
            t0 = 0.0
            t1 = 0.0
            for j in range(n):
                p2 = a1 * Z[j] * P1[j] - a0 * P0[j]
                p3 = b1 * Z[j] * p2 - b0 * P1[j]
                s0 += We[i0, j] * p2
                s1 += We[i1, j] * p2
                t0 += Wo[i0, j] * p3
                t1 += Wo[i1, j] * p3
                if last:
                    P0[j] = p2
                    P1[j] = p3
            h[i0, k + 1] = s0
            h[i1, k + 1] = s1
            h[i0, k + 2] = t0
            h[i1, k + 2] = t1


@numba.njit(cache=True, nogil=True)
def _hc_pack(h, E, out):
    """Member i: out[80 i + 5g + r] = h[i, 4g + r] (r < 4), out[80 i + 5g + 4] = t_4g+3, where
    t_k = sqrt((E_i - sum_{j<=k} h_ij^2) / E_i + _H_FLOOR) (0 when E_i = 0)."""
    for i in range(h.shape[0]):
        o = 5 * _H_NG * i
        acc = 0.0
        for g in range(_H_NG):
            for r in range(4):
                v = h[i, 4 * g + r]
                out[o + 5 * g + r] = v
                acc += v * v
            out[o + 5 * g + 4] = (math.sqrt(max(E[i] - acc, 0.0) / E[i] + _H_FLOOR)
                                  if E[i] > 0.0 else 0.0)


@numba.njit(cache=True, nogil=True, inline="always")
def _h_series(c, a, b, Dx, ix, Dy, iy, off):
    """The truncated series of the vectors Dx[ix, off:] and Dy[iy, off:], four terms at a time;
    NaN when the tail bound does not reach _H_TOL by k = _H_K."""
    d = math.sqrt(a * b) if a > 0.0 and b > 0.0 else 0.0
    rho = 0.0
    if d > 0.0:
        rho = c / d
        if rho > 1.0:
            rho = 1.0
        elif rho < -1.0:
            rho = -1.0
    r2 = rho * rho
    r3 = r2 * rho
    r4 = r2 * r2
    acc = 0.0
    p = 1.0
    for g in range(_H_NG):
        o = off + 5 * g
        acc += p * (Dx[ix, o] * Dy[iy, o] + rho * (Dx[ix, o + 1] * Dy[iy, o + 1])
                    + r2 * (Dx[ix, o + 2] * Dy[iy, o + 2]) + r3 * (Dx[ix, o + 3] * Dy[iy, o + 3]))
        p *= r4
        if abs(p) * Dx[ix, o + 4] * Dy[iy, o + 4] <= _H_TOL:
            return acc
    return math.nan
# ---- end ntksym.duals.hermite ----
''' % {"order": COEF_ORDER, "piece": float(COEF_PIECE), "range": float(COEF_RANGE),
       "K": HERMITE_K, "tol": HERMITE_TOL, "floor": TAIL_FLOOR,
       "ngroups": (HERMITE_K + 1) // GROUP,
       "npieces": int(round(2 * COEF_RANGE / COEF_PIECE))}
NUMBA_HERMITE_SOURCE = NUMBA_HERMITE_SOURCE.lstrip("\n")

def hermite_width(K=HERMITE_K):
    """The length of one member's packed vector for degree K: (K+1)/4 groups of 5."""
    return (K + 1) // GROUP * (GROUP + 1)


def _k_names(K):
    """{name in NUMBA_HERMITE_SOURCE: its name in the degree-K block} (K != HERMITE_K)."""
    return {"_H_K": f"_HK{K}_K", "_H_NG": f"_HK{K}_NG", "_HC_SQ": f"_HK{K}_SQ",
            "_hc_project(": f"_hc_project_k{K}(", "_hc_recurrence(": f"_hc_recurrence_k{K}(",
            "_hc_pack(": f"_hc_pack_k{K}(",
            "_h_series(": f"_h_series_k{K}(", "_h_series_xy(": f"_h_series_xy_k{K}("}


def hermite_k_source(K):
    """The degree-K helpers of a family with K != HERMITE_K (an extended family of tangents,
    TANGENT_K): ``_hc_project_k<K>``, ``_hc_pack_k<K>``, ``_h_series_k<K>`` and the mixed
    series ``_h_series_xy_k<K>(c, a, b, Dx, ix, Dy, iy, offx, offy)`` -- the x vector at
    Dx[ix, offx:], the y vector at Dy[iy, offy:]: sum_k h^(i)_k(a) h^(j)_k(b) rho^k of two
    members, stopped by the same Cauchy-Schwarz step |rho|^(k+1) t^(i)_k(a) t^(j)_k(b)
    <= _H_TOL.  Written from NUMBA_HERMITE_SOURCE's text (after it in a module; the node
    rule ``_hc_nodes`` is shared), and pasted only where such a family is used, so that
    modules without one are unchanged.

    >>> src = hermite_k_source(127)
    >>> [l for l in src.splitlines() if l.startswith("def ")][-1]
    'def _h_series_xy_k127(c, a, b, Dx, ix, Dy, iy, offx, offy):'
    """
    assert (K + 1) % GROUP == 0
    src = NUMBA_HERMITE_SOURCE
    start = src.index("def _hc_project(")
    start = src.rindex("@numba.njit", 0, start)
    body = src[start:src.index("# ---- end ntksym.duals.hermite")]
    series = body[body.rindex("@numba.njit", 0, body.index("def _h_series(")):]
    xy = (series.replace("def _h_series(c, a, b, Dx, ix, Dy, iy, off):",
                         "def _h_series_xy(c, a, b, Dx, ix, Dy, iy, offx, offy):")
          .replace('"""The truncated series of the vectors Dx[ix, off:] and Dy[iy, off:]',
                   '"""The truncated series of the vectors Dx[ix, offx:] and Dy[iy, offy:]')
          .replace("        o = off + 5 * g\n",
                   "        o = offx + 5 * g\n        q = offy + 5 * g\n")
          .replace("Dy[iy, o]", "Dy[iy, q]").replace("Dy[iy, o + ", "Dy[iy, q + "))
    assert xy.count("Dy[iy, q") == 5 and "offy + 5" in xy
    out = (f"\n# ---- the degree-{K} series of families extended by derivatives (tangents)\n"
           f"_H_K = {K}\n_H_NG = {(K + 1) // GROUP}\n_HC_SQ = np.sqrt(np.arange({K} + 2.0))\n"
           f"\n\n{body.rstrip()}\n\n\n{xy.rstrip()}\n")
    for old, new in _k_names(K).items():
        out = out.replace(old, new)
    return out

# Per mixed member (i on the x side, j on the y side): __NAME__, __I__, __J__, __F__, __G__,
# __OFFX__, __OFFY__, __WIDTH__ are replaced (after the family's coefficients, whose
# placeholders are replaced with the family's).
_MIXED_TEMPLATE = """

@numba.njit(cache=True, nogil=True, inline="always")
def __NAME___m__I_____J__(c, a, b, Dx, ix, Dy, iy, off):
    \"\"\"E[__F__(u) __G__(v)] from the examples' coefficient vectors (quadrature if the tail
    bound fails).\"\"\"
    v = _h_series_xy(c, a, b, Dx, ix, Dy, iy, off + __OFFX__, off + __OFFY__)
    if v == v:
        return v
    return __NAME___m__I_____J___quad(a, b, c)


@numba.njit(cache=True, nogil=True)
def __NAME___m__I_____J___full(a, b, c):
    \"\"\"E[__F__(u) __G__(v)], computing both coefficient vectors.\"\"\"
    h = np.empty((2, __WIDTH__))
    __NAME___coef(a, h[0])
    __NAME___coef(b, h[1])
    return __NAME___m__I_____J__(c, a, b, h, 0, h, 1, 0)
"""


# Per family: __NAME__, __BP__, __SPF__, __SWF__, __NMAX__, __M__ (members), __EVAL__ (the
# evaluation of every member at x = sa * Z[j]) and __ZERO__ (at 0) are replaced.
_COEF_TEMPLATE = '''

@numba.njit(cache=True, nogil=True)
def __NAME___coef(a, out):
    """The packed coefficient vectors (_hc_pack) of the __M__ member(s) at variance a; returns
    E[f_i(u)^2] of each member by the same rule (what NAME_m<i>_diag(a) returns)."""
    h = np.zeros((__M__, _H_K + 1))
    E = np.zeros(__M__)
    if not a > 0.0:
__ZERO__
        _hc_pack(h, E, out)
        return E
    sa = math.sqrt(a)
    Z = np.empty(__NMAX__)
    Wz = np.empty(__NMAX__)
    n = _hc_nodes(sa, __BP__, __SPF__, __SWF__, Z, Wz)
    W = np.empty((__M__, n))
    folded = _hc_mirrored(Z, n)
    if folded:                  # x and -x: a member with a reflection is evaluated once
        for j in range(n // 2, n):
            x = sa * Z[j]
            jm = n - 1 - j
__FOLDEVAL__
    else:
        for j in range(n):
            x = sa * Z[j]
__EVAL__
    _hc_project(Z, W, n, h, folded)
    _hc_pack(h, E, out)
    return E
'''

# Per member: __NAME__, __I__, __F__, __OFF__ (its offset in the family's vector), __NMAX__,
# __BP__, __SPF__, __SWF__, __WIDTH__ are replaced.
_MEMBER_TEMPLATE = '''

@numba.njit(cache=True, nogil=True)
def __NAME___m__I___diag(a):
    """E[__F__(u)^2], u ~ N(0, a), by the coefficient rule."""
    if not a > 0.0:
        return __F__(0.0) * __F__(0.0)
    sa = math.sqrt(a)
    Z = np.empty(__NMAX__)
    W = np.empty(__NMAX__)
    n = _hc_nodes(sa, __BP__, __SPF__, __SWF__, Z, W)
    E = 0.0
    for j in range(n):
        fv = __F__(sa * Z[j])
        E += W[j] * fv * fv
    return E


@numba.njit(cache=True, nogil=True, inline="always")
def __NAME___m__I__(c, a, b, Dx, ix, Dy, iy, off):
    """E[__F__(u) __F__(v)] from the examples' coefficient vectors (quadrature if the tail
    bound fails)."""
    v = _h_series(c, a, b, Dx, ix, Dy, iy, off + __OFF__)
    if v == v:
        return v
    return __NAME___m__I___quad(a, b, c)


@numba.njit(cache=True, nogil=True)
def __NAME___m__I___full(a, b, c):
    """E[__F__(u) __F__(v)], computing both coefficient vectors."""
    h = np.empty((2, __WIDTH__))
    __NAME___coef(a, h[0])
    __NAME___coef(b, h[1])
    return __NAME___m__I__(c, a, b, h, 0, h, 1, 0)
'''


@functools.lru_cache(maxsize=None)     # once per function and process
def reflection(f, z):
    """(sign, r) with f(-z) = sign * f(z) + r(z) and r a polynomial of degree <= 2 in z (0
    for an even or odd f), or None: how a member of a family is evaluated at -x from its
    value at x (tanh: (-1, 0); swish and GELU, z Phi(z)-like: (1, -z)).  Symbolic, then
    confirmed at a few points.

    >>> import sympy as sp
    >>> z = sp.Symbol("z", real=True)
    >>> reflection(sp.tanh(z), z), reflection(z / (1 + sp.exp(-z)), z)
    ((-1, 0), (1, -z))
    >>> reflection(sp.exp(z), z) is None
    True
    """
    import sympy as sp
    if f.has(sp.Piecewise) or sp.count_ops(f) > 60:
        return None
    fm = f.subs(z, -z)
    # expand first (tanh, GELU: sympy's own odd functions cancel, ~1 ms); simplify (swish's
    # exp(-z) against exp(z), ~0.1 s of code generation) only where that leaves no polynomial
    for simplify in (sp.expand, sp.simplify):
        found = _reflection_by(simplify, f, fm, z)
        if found is not None:
            return found
    return None


def _reflection_by(simplify, f, fm, z):
    """:func:`reflection` with one simplification, or None."""
    import sympy as sp
    for sign in (-1, 1):
        r = simplify(fm - sign * f)
        if r.free_symbols <= {z} and r.is_polynomial(z) and sp.degree(r, z) <= 2:
            # a safeguard against a wrong simplification, at double-precision constants
            if all(abs(sp.N((fm - sign * f - r).subs(z, t), 30))
                   <= 1e-13 * (1 + abs(sp.N(f.subs(z, t), 30)) + abs(sp.N(fm.subs(z, t), 30)))
                   for t in (sp.Rational(3, 7), sp.Rational(-5, 3), sp.Integer(4))):
                return sign, sp.expand(r)
    return None


def _fold_eval(i, f, reflection):
    """The folded loop's lines of member i (function ``f``) at x and -x: f(-x) as
    ``sign * f(x) + r(x)`` where its reflection (sign, r) is known, else evaluated."""
    minus = f"{f}(-x)" if reflection is None else (
        f"{'' if reflection[0] > 0 else '-'}v" + (f" + {reflection[1]}(x)" if reflection[1]
                                                  else ""))
    return (f"            v = {f}(x)\n            vm = {minus}\n"
            f"            W[{i}, j] = Wz[j] * v\n            W[{i}, jm] = Wz[jm] * vm\n"
            f"            E[{i}] += W[{i}, j] * v + W[{i}, jm] * vm")


def numba_hermite_family(name, fnames, breakpoints=(), soft=(), mixed=(), K=HERMITE_K,
                         reflections=None):
    """Numba source of the Hermite duals of the njit functions ``fnames`` (called by global
    name; one family sharing a coefficient rule), with the quadrature fallbacks
    ``name_m<i>_quad``; needs ``NUMBA_QUADRATURE_SOURCE`` and ``NUMBA_HERMITE_SOURCE`` above.
    ``K``: the degree of the family's series; K != HERMITE_K (an extended family of
    tangents) calls the helpers of :func:`hermite_k_source` (K), pasted after
    ``NUMBA_HERMITE_SOURCE``.  ``mixed``: pairs (i, j) of members whose mixed series
    E[f_i(u) f_j(v)] is wanted (``name_m<i>_<j>``, ``_full``, quadrature fallback
    ``name_m<i>_<j>_quad``; only in such a family).  ``reflections``: per member None or
    (sign, r) with f(-z) = sign f(z) + r(z), r the name of an njit function or "" for 0
    (:func:`reflection`): on mirrored nodes such a member is evaluated at z only.

    >>> src = numba_hermite_family("E", ("f0", "f1", "f2"), mixed=((2, 0),), K=127)
    >>> "def E_m2_0(c, a, b, Dx, ix, Dy, iy, off):" in src and "off + 320, off + 0)" in src
    True
    """
    bps = [float(p) for p in breakpoints]
    soft = [(float(p), float(w)) for p, w in soft]
    m = len(fnames)
    reflections = reflections or [None] * m
    width = hermite_width(K)
    if mixed and K == HERMITE_K:
        raise ValueError("mixed members belong to a family extended by derivatives (TANGENT_K)")
    npieces = int(round(2 * COEF_RANGE / COEF_PIECE)) + len(bps) + 96 * len(soft)
    subs = {"__NAME__": name, "__BP__": array_literal(bps),
            "__SPF__": array_literal([p for p, _ in soft]),
            "__SWF__": array_literal([w for _, w in soft]),
            "__NMAX__": str(npieces * COEF_ORDER), "__M__": str(m),
            "__WIDTH__": str(m * width),
            "__ZERO__": "\n".join(f"        h[{i}, 0] = {f}(0.0)\n"
                                   f"        E[{i}] = h[{i}, 0] * h[{i}, 0]"
                                   for i, f in enumerate(fnames)),
            "__EVAL__": "\n".join(f"            v = {f}(x)\n            W[{i}, j] = Wz[j] * v\n"
                                   f"            E[{i}] += W[{i}, j] * v"
                                   for i, f in enumerate(fnames)),
            "__FOLDEVAL__": "\n".join(_fold_eval(i, f, refl)
                                       for i, (f, refl) in enumerate(zip(fnames, reflections)))}
    out = _COEF_TEMPLATE
    for i, f in enumerate(fnames):
        out += numba_quadrature_wrapper(f"{name}_m{i}_quad", f, f, bps, soft=soft)
        out += _MEMBER_TEMPLATE.replace("__I__", str(i)).replace("__F__", f).replace(
            "__OFF__", str(i * width))
    for i, j in mixed:
        out += numba_quadrature_wrapper(f"{name}_m{i}_{j}_quad", fnames[i], fnames[j], bps,
                                        soft=soft)
        out += (_MIXED_TEMPLATE.replace("__I__", str(i)).replace("__J__", str(j))
                .replace("__F__", fnames[i]).replace("__G__", fnames[j])
                .replace("__OFFX__", str(i * width))
                .replace("__OFFY__", str(j * width)))
    for key, val in subs.items():
        out = out.replace(key, val)
    if K != HERMITE_K:
        for key, val in _k_names(K).items():
            out = out.replace(key, val)
    return out
