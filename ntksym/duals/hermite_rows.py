"""The Hermite-series duals of a row of pairs at once: Numba source for the row loop of the
vector (MLP) target (:mod:`ntksym.codegen.series_rows`).

A row i of the Gram matrix against a chunk of columns j (at most ``ROW_CHUNK`` of them, aligned
to multiples of ``ROW_CHUNK``) evaluates each series for all its pairs in one loop over j, so
that it vectorizes like the closed-form row loop (AVX2: 4 pairs per instruction):

    out[j] = sum_{k < 4G} h_k(a_i) h_k(b_j) rho_j^k,

by Horner's rule in rho_j^4 over groups of four terms (Estrin inside a group), one load of
h_k(b_j) per term and pair.  The coefficients of the y side come from D2T, the transposed
diagonal state (one row per coefficient, contiguous over j); the x side's are scalars of row
i.  Every pair of the chunk uses the same number of groups G, the first whose tail bound at
the chunk's worst case holds:

    R^(4G) t_{4G-1}(a_i) max_{j in chunk} t_{4G-1}(b_j) <= HERMITE_TOL,   R = max_j |rho_j|,

which bounds every pair's own Cauchy-Schwarz tail |rho_j|^(4G) t(a_i) t(b_j) (the bound of
:mod:`ntksym.ir.hermite`): the error stays below HERMITE_TOL sqrt(E_a E_b) per pair.  D2T and
the chunk maxima of the tails come from ``_hr_tables``, once per set of columns.  Where even
the last group does not bring the chunk's worst case within the tolerance, the chunk is summed
to the full degree and every pair whose own bound fails there is recomputed by the per-pair
form (``NAME_m<i>``: its own truncation, then the quadrature): a rare scalar fix-up.

Per member (and per mixed member of a tangent family) :func:`numba_hermite_rows` emits

    NAME_m<i>_row(c, a, b, rho, D1, i, D2, D2T, HM, jb, out, off)
    NAME_m<i>_<j>_row(...)                  # mixed members: f_i's vector on x, f_j's on y

for the pairs (i, jb + j), j < len(out); c, b, rho: arrays over the chunk.

>>> src = numba_hermite_rows("E", 2)
>>> [l[4:l.index("(")] for l in src.splitlines() if l.startswith("def ")]
['E_m0_row', 'E_m1_row']
"""

from __future__ import annotations

from ntksym.ir.hermite import GROUP, HERMITE_K

from .hermite import hermite_width

#: columns per chunk of a row: the pairs that share one truncation degree
ROW_CHUNK = 256

NUMBA_HERMITE_ROWS_SOURCE = '''
# ---- ntksym.duals.hermite_rows: the series of a row of pairs at once (generated) ----
from numba import prange

_HR_C = %(chunk)d  # columns per chunk (aligned to multiples of _HR_C): one degree per chunk


@numba.njit(cache=True, nogil=True, parallel=True)
def _hr_tables(D2, m):
    """(D2T, HM): the first m columns of D2 (one row per example) transposed, one row per
    column, contiguous over the examples; HM[r, q] = max of D2T[r, j] over chunk q (columns
    q _HR_C .. (q + 1) _HR_C - 1): the worst-case tails t_k(b_j) of a chunk (rows that hold
    no tail are never read).  Chunk by chunk in parallel, through cache-sized tiles, the
    maxima taken as the tiles pass (one pass over D2)."""
    n = D2.shape[0]
    nq = (n + _HR_C - 1) // _HR_C
    D2T = np.empty((m, n))
    HM = np.zeros((m, nq))
    for q in prange(nq):
        j0 = q * _HR_C
        j1 = min(n, j0 + _HR_C)
        for r0 in range(0, m, 16):
            r1 = min(m, r0 + 16)
            mx = np.zeros(16)
            for j in range(j0, j1):
                for r in range(r0, r1):
                    v = D2[j, r]
                    D2T[r, j] = v
                    mx[r - r0] = max(mx[r - r0], v)
            for r in range(r0, r1):
                HM[r, q] = mx[r - r0]
    return D2T, HM


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _hr_chunk(rho, D1, i, offx, D2T, jb, offy, HM, ng, out):
    """out[j] = the series of pair (i, jb + j), j < len(out), the x vector at D1[i, offx:],
    the y vectors at D2T[offy:, jb + j], summed over the first G groups whose tail bound at the
    chunk's worst case (largest |rho|, largest y tail) is within _H_TOL: True; else summed over
    all ng groups: False (the caller checks each pair's own bound)."""
    n = out.shape[0]
    R = 0.0
    for j in range(n):
        r = abs(rho[j])
        R = r if r > R else R
    q = jb // _HR_C
    R4 = (R * R) * (R * R)
    p = R4
    G = ng
    ok = False
    for g in range(ng):
        if p * D1[i, offx + 5 * g + 4] * HM[offy + 5 * g + 4, q] <= _H_TOL:
            G = g + 1
            ok = True
            break
        p *= R4
    for j in range(n):
        out[j] = 0.0
    for g in range(G - 1, -1, -1):
        ox = offx + 5 * g
        oy = offy + 5 * g
        h0 = D1[i, ox]
        h1 = D1[i, ox + 1]
        h2 = D1[i, ox + 2]
        h3 = D1[i, ox + 3]
        y0 = D2T[oy, jb:jb + n]
        y1 = D2T[oy + 1, jb:jb + n]
        y2 = D2T[oy + 2, jb:jb + n]
        y3 = D2T[oy + 3, jb:jb + n]
        for j in range(n):
            r = rho[j]
            r2 = r * r
            s = (h0 * y0[j] + r * (h1 * y1[j])) + r2 * (h2 * y2[j] + r * (h3 * y3[j]))
            out[j] = out[j] * (r2 * r2) + s
    return ok


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _hr_fails(r, D1, i, offx, D2T, j, offy, ng):
    """Whether the tail bound of pair (i, j) fails at the last of ng groups."""
    o = 5 * (ng - 1) + 4
    return not abs(r) ** (4 * ng) * D1[i, offx + o] * D2T[offy + o, j] <= _H_TOL
# ---- end ntksym.duals.hermite_rows ----
''' % {"chunk": ROW_CHUNK}
NUMBA_HERMITE_ROWS_SOURCE = NUMBA_HERMITE_ROWS_SOURCE.lstrip("\n")

# Per (mixed) member: __FN__ (the per-pair function), __OFFX__, __OFFY__, __NG__ are replaced.
_ROW_TEMPLATE = '''

@numba.njit(cache=True, nogil=True, error_model="numpy")
def __FN___row(c, a, b, rho, D1, i, D2, D2T, HM, jb, out, off):
    """__FN__ of the pairs (i, jb + j), j < len(out), of one chunk (_hr_chunk); the per-pair
    form where the chunk's bound and the pair's own fail at the full degree."""
    if _hr_chunk(rho, D1, i, off + __OFFX__, D2T, jb, off + __OFFY__, HM, __NG__, out):
        return
    for j in range(out.shape[0]):
        if _hr_fails(rho[j], D1, i, off + __OFFX__, D2T, jb + j, off + __OFFY__, __NG__):
            out[j] = __FN__(c[j], a, b[j], D1, i, D2, jb + j, off)
'''


def numba_hermite_rows(name, n_members, mixed=(), K=HERMITE_K):
    """Numba source of the row forms ``name_m<i>_row`` of a family of ``n_members`` functions
    of degree K (and ``name_m<i>_<j>_row`` of its ``mixed`` members); needs
    ``NUMBA_HERMITE_ROWS_SOURCE`` and the family's per-pair forms
    (:func:`ntksym.duals.hermite.numba_hermite_family`).

    >>> "def E_m2_0_row(" in numba_hermite_rows("E", 4, mixed=((2, 0),), K=127)
    True
    """
    width = hermite_width(K)
    ng = (K + 1) // GROUP
    parts = [(f"{name}_m{i}", i, i) for i in range(n_members)]
    parts += [(f"{name}_m{i}_{j}", i, j) for i, j in mixed]
    return "".join(_ROW_TEMPLATE.replace("__FN__", fn).replace("__OFFX__", str(i * width))
                   .replace("__OFFY__", str(j * width)).replace("__NG__", str(ng))
                   for fn, i, j in parts)
