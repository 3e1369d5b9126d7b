"""Evaluate compiled image kernel programs (see :mod:`ntksym.codegen.image`) on data.

Called by :func:`ntksym.engine.dispatch.kernel` when ``program.input_kind == "image"``.  Per-image
diagonals are computed once per image (``diagonal``), then pairs stream in blocks of
consecutive pairs (``cross_pairs``), only the upper triangle for K(X, X).  The generated
drivers are serial and release the GIL; blocks run in ``numba.get_num_threads()`` Python
threads (a ``prange`` in the generated module would cost more cold JIT than the rest of it).
Between blocks a progress bar is drawn on a terminal (stderr); nothing is drawn when stderr is
not a terminal or ``progress=False``.

>>> import numpy as np, ntksym
>>> arch = ntksym.loads_spec('name = "c"\\ninput = { shape = [3, 3, 1] }\\n'
...     '[[layer]]\\nkind = "conv"\\nactivation = "relu"\\n'
...     '[[layer]]\\nkind = "flatten"\\n[[layer]]\\nkind = "dense"\\n')
>>> K = ntksym.kernel(arch, np.random.default_rng(0).standard_normal((4, 3, 3, 1)))
>>> K.shape, bool(np.allclose(K, K.T))
((4, 4), True)
"""

from __future__ import annotations

import numpy as np

from ntksym.progress import task


def _pair_blocks(total, pairs_per_block, batch):
    """[k0, k1) ranges of the ``total`` pairs (numbered row by row), ``pairs_per_block`` each
    rounded up to a multiple of ``batch`` (the pairs one pass of the module carries: a
    block of another size computes its last batch partly for nothing)."""
    per = -(-max(pairs_per_block, 1) // batch) * batch
    return [(k, min(k + per, total)) for k in range(0, total, per)]


def _threaded(fn, tasks, threads):
    """fn(*task) for every task, results in order as they complete (the generated drivers
    release the GIL, so ``threads`` Python threads run them on as many cores)."""
    if threads <= 1 or len(tasks) <= 1:
        for t in tasks:
            yield fn(*t)
        return
    from concurrent.futures import ThreadPoolExecutor, as_completed
    pool = ThreadPoolExecutor(max_workers=threads)
    try:
        for f in as_completed([pool.submit(fn, *t) for t in tasks]):
            yield f.result()
    finally:
        # on Ctrl-C or an error, drop the blocks not started instead of computing them all
        pool.shutdown(wait=True, cancel_futures=True)


def _diagonal(mod, X, threads, extra=()):
    """mod.diagonal on chunks of images in threads: (D, O) for all of X."""
    n = X.shape[0]
    # chunks of a multiple of the images one pass carries (mod.BATCH)
    step = -(-max(1, -(-n // (4 * threads))) // mod.BATCH) * mod.BATCH
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
    blocks = _pair_blocks(total, per_block, mod.BATCH)
    done = 0

    def run(k0, k1):
        # blocks write disjoint pairs of out
        mod.cross_pairs(X1, Xb, D1, D2, select, out, k0, k1, symmetric, *extra)
        return k1 - k0

    with task("pairs", total, enabled=progress) as bar:
        for npairs in _threaded(run, blocks, threads):
            done += npairs
            bar.set(done)
    if symmetric:
        iu = np.triu_indices(n1, 1)
        for q in range(len(names)):
            out[q][iu[1], iu[0]] = out[q][iu]
    fill_duplicates(out, X1, Xb, symmetric, O1[:, select])
    return out, (O1 if symmetric else None), select


def duplicate_groups(X1, X2=None):
    """Groups of byte-identical examples: lists of (rows of X1, rows of X2) (X2 None: rows
    of X1 twice, groups of two or more).  Examples are matched by a digest, then compared."""
    import hashlib

    def digests(X):
        return [hashlib.blake2b(np.ascontiguousarray(x).data, digest_size=16).digest()
                for x in X]
    by_key = {}
    for i, k in enumerate(digests(X1)):
        by_key.setdefault(k, []).append(i)
    groups = []
    if X2 is None:
        for rows in by_key.values():
            if len(rows) > 1 and all(np.array_equal(X1[rows[0]], X1[r]) for r in rows[1:]):
                groups.append((rows, rows))
        return groups
    cols = {}
    for j, k in enumerate(digests(X2)):
        if k in by_key:
            cols.setdefault(k, []).append(j)
    for k, js in cols.items():
        rows = by_key[k]
        if all(np.array_equal(X1[rows[0]], X1[r]) for r in rows[1:]) and all(
                np.array_equal(X1[rows[0]], X2[j]) for j in js):
            groups.append((rows, js))
    return groups


def fill_duplicates(out, X1, X2, symmetric, exact):
    """K(x, x') of byte-identical examples is K(x, x): set it from the exact diagonal
    ``exact`` (n1, len(names)) of the rows.  The pair recursion would give the same value up
    to the round-off of arccos near a correlation of 1 (about 1e-10 relative)."""
    for rows, cols in duplicate_groups(X1, None if symmetric else X2):
        r = np.asarray(rows)
        c = np.asarray(cols)
        for q in range(out.shape[0]):
            out[q][np.ix_(r, c)] = exact[r[0], q]
