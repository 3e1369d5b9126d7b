"""Evaluate compiled image kernel programs (see :mod:`ntksym.codegen.image`) on data.

Called by :func:`ntksym.engine.dispatch.kernel` when ``program.input_kind == "image"``.  Per-image
diagonals are computed once per image (``diagonal``), then pairs stream in blocks of rows
(``cross_rows``), only the upper triangle for K(X, X).  The generated drivers are serial and
release the GIL; blocks run in ``numba.get_num_threads()`` Python threads (a ``prange`` in the
generated module would cost more cold JIT than the rest of it).  Between blocks a progress bar
is drawn on a terminal (stderr); nothing is drawn when stderr is not a terminal or
``progress=False``.

>>> import numpy as np, ntksym
>>> arch = ntksym.loads_spec('name = "c"\\ninput = { shape = [3, 3, 1] }\\n'
...     '[[layer]]\\nkind = "conv"\\nactivation = "relu"\\n'
...     '[[layer]]\\nkind = "flatten"\\n[[layer]]\\nkind = "dense"\\n')
>>> K = ntksym.kernel(arch, np.random.default_rng(0).standard_normal((4, 3, 3, 1)))
>>> K.shape, bool(np.allclose(K, K.T))
((4, 4), True)
"""

from __future__ import annotations

import sys

import numpy as np


def _row_blocks(n1, n2, symmetric, pairs_per_block):
    """Row index arrays of about ``pairs_per_block`` pairs each, balanced for threads."""
    if symmetric:
        # pair row r with row n1-1-r: equal work per task
        order = []
        for r in range((n1 + 1) // 2):
            order.append(r)
            if n1 - 1 - r != r:
                order.append(n1 - 1 - r)
    else:
        order = list(range(n1))
    per_row = max(n2 // (2 if symmetric else 1), 1)
    rows_per_block = max(1, pairs_per_block // per_row)
    return [np.array(order[k:k + rows_per_block], dtype=np.int64)
            for k in range(0, len(order), rows_per_block)]


def _threaded(fn, tasks, threads):
    """fn(*task) for every task, results in order as they complete (the generated drivers
    release the GIL, so ``threads`` Python threads run them on as many cores)."""
    if threads <= 1 or len(tasks) <= 1:
        for t in tasks:
            yield fn(*t)
        return
    from concurrent.futures import ThreadPoolExecutor, as_completed
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for f in as_completed([pool.submit(fn, *t) for t in tasks]):
            yield f.result()


def _diagonal(mod, X, threads, extra=()):
    """mod.diagonal on chunks of images in threads: (D, O) for all of X."""
    n = X.shape[0]
    step = max(1, -(-n // (4 * threads)))
    chunks = [(k, X[k:k + step]) for k in range(0, n, step)]
    parts = dict(_threaded(lambda k, Xc: (k, mod.diagonal(Xc, *extra)), chunks, threads))
    return (np.concatenate([parts[k][0] for k, _ in chunks]),
            np.concatenate([parts[k][1] for k, _ in chunks]))


def image_kernel(mod, X, X2, names, progress=None, hp=None):
    """(out, diagonal, select) for :func:`ntksym.engine.common.finish`: out is the stacked
    (len(names), n1, n2) float64 result, mirrored for K(X, X), its diagonal still to fill
    (``diagonal`` is None for a cross block K(X, X2)).

    X, X2 are validated float64 image arrays (n, H, W, C)
    (:func:`ntksym.engine.common.check_data`); ``mod`` is the compiled image module;
    ``hp``: the values of its learnable constants, if it has any.
    """
    extra = () if hp is None else (hp,)
    import numba
    threads = numba.get_num_threads()
    shape = X.shape
    X1 = np.ascontiguousarray(X.reshape(shape[0], shape[1] * shape[2], shape[3]))
    select = np.array([mod.OUTPUTS.index(o) for o in names], dtype=np.int64)
    D1, O1 = _diagonal(mod, X1, threads, extra)
    if X2 is None:
        Xb, D2, symmetric = X1, D1, True
    else:
        Xb = np.ascontiguousarray(X2.reshape(X2.shape[0], -1, X2.shape[3]))
        D2, _ = _diagonal(mod, Xb, threads, extra)
        symmetric = False
    n1, n2 = X1.shape[0], Xb.shape[0]
    out = np.zeros((len(names), n1, n2))
    total = n1 * (n1 - 1) // 2 if symmetric else n1 * n2
    pixels = X1.shape[1]
    # blocks small enough to keep every thread busy to the end
    per_block = min(max(8, int(2e8 // max(pixels * pixels, 1))), max(8, total // (8 * threads)))
    blocks = _row_blocks(n1, n2, symmetric, per_block)
    show = progress if progress is not None else sys.stderr.isatty()
    done = 0

    def run(rows):
        # blocks write disjoint rows of out
        mod.cross_rows(X1, Xb, D1, D2, select, out, rows, symmetric, *extra)
        return rows

    for rows in _threaded(run, [(b,) for b in blocks], threads):
        done += sum((n2 - r - 1) if symmetric else n2 for r in rows)
        if show:
            frac = done / max(total, 1)
            bar = "#" * int(30 * frac)
            sys.stderr.write(f"\r  pairs {done}/{total} [{bar:30s}] {100 * frac:5.1f}%")
            sys.stderr.flush()
    if show:
        sys.stderr.write("\n")
    if symmetric:
        iu = np.triu_indices(n1, 1)
        for q in range(len(names)):
            out[q][iu[1], iu[0]] = out[q][iu]
    return out, (O1 if symmetric else None), select
