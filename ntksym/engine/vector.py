"""Evaluate compiled vector (MLP) kernel programs: one BLAS Gram product, then the fused
generated loop over the pairs (upper triangle only for K(X, X)).

Called by :func:`ntksym.engine.dispatch.kernel` for specs with inputs (n, d).

>>> import numpy as np, ntksym
>>> from ntksym.engine.common import compiled, finish
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [2] }\\n'
...                          '[[layer]]\\nkind = "dense"\\nactivation = "relu"\\n'
...                          '[[layer]]\\nkind = "dense"\\n')
>>> out, diag, select, scanned = vector_kernel(compiled(arch), np.eye(2), None, ["nngp"],
...                                            "float64")
>>> K = finish(out, ["nngp"], "float64", diag, select, off_diagonal_checked=scanned)
>>> bool(np.allclose(K, ntksym.kernel(arch, np.eye(2), kind="nngp")))
True
"""

from __future__ import annotations

import numpy as np

#: entries of float64 Gram rows computed per BLAS call on the blocked path (32 MiB)
BLOCK_ENTRIES = 1 << 22

#: rows per BLAS call of :func:`upper_gram`
GRAM_ROWS = 512


def upper_gram(X, rows=GRAM_ROWS):
    """G = X @ X.T on and above the diagonal: one BLAS gemm per block of ``rows`` rows, from the
    block's first column on, into its slice of G; the entries left of the diagonal blocks are
    not set.  numpy's X @ X.T is one syrk followed by a single-threaded strided copy of the
    upper triangle into the lower one, which the pair loop never reads and the mirror
    overwrites: 45 -> 27 ms at n = 3000, d = 100 (2 cores, the same values).

    >>> X = np.arange(6.0).reshape(3, 2)
    >>> bool(np.array_equal(np.triu(upper_gram(X, rows=2)), np.triu(X @ X.T)))
    True
    """
    n = len(X)
    G = np.empty((n, n))
    for i0 in range(0, n, rows):
        np.matmul(X[i0:i0 + rows], X[i0:].T, out=G[i0:i0 + rows, i0:])
    return G


def vector_kernel(mod, X, X2, names, dtype, hp=None):
    """(out, diagonal, select, off_diagonal_checked) for :func:`ntksym.engine.common.finish`:
    out is the stacked (len(names), n1, n2) result in ``dtype`` with its diagonal still to fill
    (``diagonal`` is None for a cross block K(X, X2)); ``off_diagonal_checked``: every entry
    off the diagonal is finite, normal and in range for ``dtype`` (found by the mirror, which
    reads them anyway), so the finish checks the diagonal only.

    One output in float64: the Gram matrix (for K(X, X) its upper part, :func:`upper_gram`) is
    the output, overwritten in place row by row (each row of G is read before it is written).
    G is not divided by INPUT_SCALE here: the generated loop divides each entry as it reads it
    (the same rounding, one pass over n^2 entries fewer).  Otherwise (float32, or several
    outputs) the Gram matrix is computed in row blocks of about
    BLOCK_ENTRIES entries (for K(X, X) only the upper part, columns from the block's first row
    on) and each block's pairs are written straight into ``out``: no float64 temporary of size
    n^2.  For K(X, X) only j > i is computed, then mirrored.

    X, X2 are validated float64 (n, d) arrays (:func:`ntksym.engine.common.check_data`);
    ``hp``: the values of the learnable constants of a module that has them.
    """
    extra = () if hp is None else (hp,)
    select = np.array([mod.OUTPUTS.index(o) for o in names], dtype=np.int64)
    scale = float(mod.INPUT_SCALE)
    D1, O1 = mod.diagonal(np.einsum("ij,ij->i", X, X) / scale, *extra)
    symmetric = X2 is None
    if symmetric:
        X2, D2 = X, D1
    else:
        D2, _ = mod.diagonal(np.einsum("ij,ij->i", X2, X2) / scale, *extra)
    n1, n2 = len(X), len(X2)
    if len(names) == 1 and dtype == "float64":
        G = upper_gram(X) if symmetric else X @ X2.T
        out = G.reshape((1,) + G.shape)      # in place: each entry is read before it is written
        mod.cross_rows(G, D1, D2, select, out, 0, 0, symmetric, *extra)
    else:
        out = np.empty((len(names), n1, n2), dtype=dtype)
        rows = max(16, BLOCK_ENTRIES // max(n2, 1))
        # a module whose rows read the columns' state transposed (Hermite series) prepares it
        # once for all blocks
        tables = mod.column_tables(D2) if hasattr(mod, "column_tables") else None
        for i0 in range(0, n1, rows):
            i1 = min(n1, i0 + rows)
            j0 = i0 if symmetric else 0
            G = X[i0:i1] @ X2[j0:].T
            if tables is None:
                mod.cross_rows(G, D1[i0:i1], D2[j0:], select, out, i0, j0, symmetric, *extra)
            else:
                mod.cross_rows_columns(G, D1[i0:i1], D2, *tables, select, out, i0, j0, j0,
                                       symmetric, *extra)
    checked = False
    if symmetric:
        info = np.finfo(np.dtype(dtype))
        checked = bool(mod.mirror(out, float(info.tiny), float(info.max)))
    return out, (O1 if symmetric else None), select, checked
