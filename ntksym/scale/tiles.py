"""Tiled, resumable kernel matrices on disk: ``OUT.npy`` memmap + ``OUT.npy.manifest.json``.

A long Gram matrix K(X1, X2) is cut into square tiles of ``tile`` rows x ``tile`` columns.  Each
tile is one call of :func:`compute_tile` (the engine on a row slice and a column slice: its BLAS
Gram block is ``tile x tile``, never ``n x n``) and is written into a ``.npy`` memmap as soon as
it is done.  A JSON manifest beside the output records what the file is (spec hash, data
hashes, kind, dtype, tile size) and which tiles are done, so that an interrupted run resumes
where it stopped.  Files of a run for ``-o K.npy``:

``K.npy.partial``         the memmap while the run is in progress (a valid .npy header, but
                          never a name a reader would take for the finished output)
``K.npy.manifest.json``   the manifest; ``"status": "running"`` or ``"complete"``
``K.npy``                 appears only when every tile is done, by rename of the partial file
``K.npy.lock``            the lock of the one run writing the output (:mod:`ntksym.scale.lock`)

Why the order of writes matters: tile data are flushed (msync + fsync) *before* the manifest
that marks them done is replaced (:func:`ntksym.io.atomic_write`: tmp + fsync + rename), so a
crash at any moment leaves a manifest that claims no more than what is on disk.  A SIGKILL
loses at most the tiles computed since the last checkpoint (``checkpoint_every`` seconds).

A resume trusts nothing on disk it has not checked (:mod:`ntksym.scale.manifest`): the whole
manifest, each file's header and size, and the checksum of every tile done, recorded when the
tile was written.  Whatever does not hold is refused with one line (docs/reliability.md).

Symmetric runs (X2 = None) compute only tiles on or above the diagonal; the lower triangle is
mirrored block by block at the end (idempotent, so a crash while mirroring is harmless).

>>> import numpy as np, ntksym, tempfile, os
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [3] }\\n'
...                          '[[layer]]\\nkind = "dense"\\nactivation = "relu"\\n'
...                          '[[layer]]\\nkind = "dense"\\n')
>>> X = np.random.default_rng(0).normal(size=(7, 3))
>>> out = os.path.join(tempfile.mkdtemp(), "K.npy")
>>> info = tiled_kernel(arch, X, output=out, tile=3, progress=False)
>>> info["tiles"], bool(np.allclose(np.load(out), ntksym.kernel(arch, X), rtol=1e-12))
(6, True)
"""

from __future__ import annotations

import time

from ntksym.engine.common import check_data, check_options, output_names
from ntksym.scale.manifest import manifest_path, partial_path, tile_grid
from ntksym.scale.progress import Progress, Tee
from ntksym.scale.store import DEFAULT_TILE, TiledRun, data_hash, output_files

__all__ = ["DEFAULT_TILE", "TiledRun", "compute_tile", "compute_tiles", "data_hash",
           "manifest_path", "output_files", "pairs_computed", "partial_path", "run_threaded",
           "tile_grid", "tiled_kernel"]


# ------------------------------------------------------------------------ the per-tile call

def compute_tile(arch, X1_rows, X2_cols=None, kind="ntk", dtype="float64", per_layer=False,
                 offset=(0, 0), engine="compiled"):
    """One tile of the kernel matrix: K(X1_rows, X2_cols), or K(X1_rows, X1_rows) if
    ``X2_cols`` is None (a diagonal tile: upper triangle computed, diagonal by the exact rule).
    With ``kind="both"`` or ``per_layer`` it is a dict name -> block, as from the engine.

    The rows and columns are slices of data checked once for the whole run
    (:func:`ntksym.engine.common.check_data`: float64, C order); the tile goes to
    :func:`ntksym.engine.dispatch.evaluate` without a second check, so every input kind the
    engine evaluates tiles the same way, and the compiled program is reused from tile to tile.
    Only the rows and columns of the tile are touched: the BLAS Gram block is
    ``len(X1_rows) x len(X2_cols)``.  Dask workers make the same call
    (:mod:`ntksym.scale.cluster`).

    ``offset`` = (first row, first column) of the tile in the whole matrix: a NaN, inf or
    underflow is then reported at its place in the whole matrix, not in the tile.
    ``engine``: tiled runs are large, so their tiles run the compiled program (not the NumPy
    tier that ``engine="auto"`` picks for a small tile).

    Example: ``compute_tile(arch, X[0:512], X[512:1024])`` is ``kernel(arch, X)[0:512, 512:1024]``
    up to the last bits of the Gram product.
    """
    from ntksym.engine.dispatch import evaluate
    check_options(dtype)
    names = output_names(arch, kind, per_layer)
    # progress=False: the run reports tiles; a per-tile bar from the engine would interleave
    return evaluate(arch, X1_rows, X2_cols, names, dtype=dtype, per_layer=per_layer,
                    progress=False, offset=offset, engine=engine)


def pairs_computed(n1, n2, symmetric):
    """Distinct pairs a run evaluates: n(n+1)/2 for K(X, X) (upper triangle with diagonal)."""
    return n1 * (n1 + 1) // 2 if symmetric else n1 * n2


def run_threaded(run, progress=None):
    """Compute every pending tile in this process (numba threads inside each tile)."""
    for k in run.pending():
        X1, X2 = run.tile_inputs(k)
        i0, _, j0, _ = run.tiles[k]
        run.write(k, compute_tile(run.arch, X1, X2, kind=run.kind, dtype=run.dtype,
                                  per_layer=run.per_layer, offset=(i0, j0)))
        if progress is not None:
            progress.update(run.n_done)


def tiled_kernel(arch, X, X2=None, *, output, kind="ntk", dtype="float64", tile=None,
                 resume=False, force=False, progress=None, client=None, threads=None,
                 checkpoint_every=0.5, on_tile=None, per_layer=False):
    """Compute K(X, X2) tile by tile into the ``.npy`` file ``output`` (resumable).

    Parameters
    ----------
    arch, X, X2, kind, dtype, per_layer : as :func:`ntksym.engine.dispatch.kernel`.
    output : path ending in ``.npy``; written as ``output + ".partial"`` and renamed when done;
        the manifest is ``output + ".manifest.json"``.  Several kernels (``kind="both"``,
        ``per_layer``) go to one file each, ``OUT.<name>.npy`` (:func:`output_files`).
    tile : rows (and columns) per tile (default 1024; a resume keeps the run's tile size).
    resume : continue a partial run of the same spec, data, kind and dtype (DataError if any
        differs); with nothing to resume, start afresh.
    force : discard any previous run or output.
    progress : True/False, or None for "on when stderr is a terminal".
    client : a ``dask.distributed.Client``: tiles run on its workers (:mod:`ntksym.scale.cluster`).
    threads : numba threads per tile (default: all cores; per worker with a client).
    on_tile : optional callback ``on_tile(n_done, n_tiles)`` after every tile (tests, GUIs).

    Returns a summary dict: output, files (name -> path), shape, tiles, computed (tiles done
    in this call), seconds.

    Example: ``tiled_kernel(arch, X, output="K.npy", tile=2048, resume=True)``.
    """
    X = check_data(X, arch.input_shape, "X")
    X2 = None if X2 is None else check_data(X2, arch.input_shape, "X2")
    return compute_tiles(arch, X, X2, output=output, kind=kind, dtype=dtype, tile=tile,
                         resume=resume, force=force, progress=progress, client=client,
                         threads=threads, checkpoint_every=checkpoint_every, on_tile=on_tile,
                         per_layer=per_layer)


def compute_tiles(arch, X, X2=None, *, output, kind="ntk", dtype="float64", tile=None,
                  resume=False, force=False, progress=None, client=None, threads=None,
                  checkpoint_every=0.5, on_tile=None, per_layer=False):
    """:func:`tiled_kernel` on data already checked (:func:`ntksym.engine.common.check_data`),
    for callers that checked it once themselves (:func:`ntksym.scale.run.kernel_command`)."""
    run = TiledRun(arch, X, X2, output, kind=kind, dtype=dtype, tile=tile, resume=resume,
                   force=force, checkpoint_every=checkpoint_every, per_layer=per_layer)
    t0 = time.perf_counter()
    run.open()
    try:
        n_before = run.n_done
        bar = Progress(len(run.tiles), run.n_done, enabled=progress)
        if not run.already_complete:
            prog = Tee(bar, on_tile, len(run.tiles))
            if client is not None:
                from ntksym.scale.cluster import run_dask
                run_dask(run, client, progress=prog, threads=threads)
            else:
                if threads:
                    import numba
                    numba.set_num_threads(int(threads))
                run_threaded(run, progress=prog)
            run.finish()
        bar.close()
    finally:
        run.close()
    return {"output": str(run.output), "files": {n: str(f) for n, f in run.files.items()},
            "shape": list(run.shape), "tiles": len(run.tiles),
            "computed": run.n_done - n_before if not run.already_complete else 0,
            "tile": run.tile, "seconds": round(time.perf_counter() - t0, 4),
            "already_complete": run.already_complete}

