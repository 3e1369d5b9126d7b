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

Why the order of writes matters: tile data are flushed (msync + fsync) *before* the manifest
that marks them done is replaced (:func:`ntksym.io.atomic_write`: tmp + fsync + rename), so a
crash at any moment leaves a manifest that claims no more than what is on disk.  A SIGKILL
loses at most the tiles computed since the last checkpoint (``checkpoint_every`` seconds).

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

import base64
import hashlib
import json
import os
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from ntksym.engine.common import KINDS, check_data, check_options, output_names
from ntksym.errors import DataError, OutputExistsError
from ntksym.io import atomic_write, fsync_dir
from ntksym.scale.progress import Progress, Tee

MANIFEST_FORMAT = "ntksym-tiles"
MANIFEST_VERSION = 1
DEFAULT_TILE = 1024


# ------------------------------------------------------------------------ the per-tile call

def compute_tile(arch, X1_rows, X2_cols=None, kind="ntk", dtype="float64", per_layer=False):
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

    Example: ``compute_tile(arch, X[0:512], X[512:1024])`` is ``kernel(arch, X)[0:512, 512:1024]``
    up to the last bits of the Gram product.
    """
    from ntksym.engine.dispatch import evaluate
    check_options(dtype)
    names = output_names(arch, kind, per_layer)
    # progress=False: the run reports tiles; a per-tile bar from the engine would interleave
    return evaluate(arch, X1_rows, X2_cols, names, dtype=dtype, per_layer=per_layer,
                    progress=False)


def tile_grid(n1, n2, tile, symmetric):
    """The tiles of an (n1, n2) matrix as (i0, i1, j0, j1), row-major; a symmetric matrix
    keeps only tiles on or above the diagonal.  The list index is a tile's id in the manifest.

    >>> tile_grid(5, 5, 2, True)
    [(0, 2, 0, 2), (0, 2, 2, 4), (0, 2, 4, 5), (2, 4, 2, 4), (2, 4, 4, 5), (4, 5, 4, 5)]
    """
    rows = [(a, min(a + tile, n1)) for a in range(0, n1, tile)]
    cols = [(b, min(b + tile, n2)) for b in range(0, n2, tile)]
    return [(i0, i1, j0, j1) for bi, (i0, i1) in enumerate(rows)
            for bj, (j0, j1) in enumerate(cols) if not symmetric or bj >= bi]


def pairs_computed(n1, n2, symmetric):
    """Distinct pairs a run evaluates: n(n+1)/2 for K(X, X) (upper triangle with diagonal)."""
    return n1 * (n1 + 1) // 2 if symmetric else n1 * n2


def data_hash(X):
    """sha256 of an array's dtype, shape and bytes (float64, C order: what the engine reads)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    h = hashlib.sha256(f"{X.dtype.str}{X.shape}".encode())
    h.update(memoryview(X).cast("B"))
    return h.hexdigest()


def output_files(output, names):
    """Where each kernel of a tiled run goes: one kernel -> ``output`` itself; several
    (``--kernel both``, ``--per-layer``) -> one memmap each, ``OUT.<name>.npy`` beside
    ``OUT.npy``, with a per-layer name's brackets turned into a dash (``ntk[l1.W]`` ->
    ``OUT.ntk-l1.W.npy``).  ``OUT.npy`` itself is then not written; the one manifest is
    ``OUT.npy.manifest.json`` and lists the files under ``"files"``.

    >>> output_files("K.npy", ["nngp", "ntk", "ntk[l1.W]"])
    {'nngp': 'K.nngp.npy', 'ntk': 'K.ntk.npy', 'ntk[l1.W]': 'K.ntk-l1.W.npy'}
    >>> output_files("K.npy", ["ntk"])
    {'ntk': 'K.npy'}
    """
    output = str(output)
    if len(names) == 1:
        return {names[0]: output}
    stem = output[:-len(".npy")] if output.endswith(".npy") else output
    safe = {n: n.replace("[", "-").replace("]", "").replace("/", "_") for n in names}
    return {n: f"{stem}.{safe[n]}.npy" for n in names}


# ------------------------------------------------------------------------ the manifest

def write_manifest(path, manifest):
    """Replace the manifest at ``path`` atomically: readers see the old one or the new one."""
    with atomic_write(path) as fh:
        json.dump(manifest, fh, indent=1)


def read_manifest(path):
    """The manifest dict at ``path``, or None if there is none; DataError if unreadable."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable manifest ({e}); delete it or pass --force") from None
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{path}: not an ntksym tile manifest; delete it or pass --force")
    return m


def _version():
    """ntksym's version for the manifest (from the installed metadata; read, not imported)."""
    try:
        return metadata.version("ntksym")
    except metadata.PackageNotFoundError:
        return "unknown"


def manifest_path(output):
    return Path(str(output) + ".manifest.json")


def partial_path(output):
    return Path(str(output) + ".partial")


def _encode_bits(done):
    return base64.b64encode(np.packbits(done).tobytes()).decode()


def _decode_bits(text, n):
    raw = np.frombuffer(base64.b64decode(text), dtype=np.uint8)
    return np.unpackbits(raw)[:n].astype(bool)


# ------------------------------------------------------------------------ the run

class TiledRun:
    """The on-disk state of one tiled kernel computation (see the module docstring).

    ``open()`` creates or validates-and-reopens the partial memmap and manifest; ``write(k,
    block)`` stores tile k; ``finish()`` mirrors, flushes and renames into place.  Backends only
    call ``pending()``, ``bounds(k)``, ``write`` and ``finish``.  X and X2 are data already
    checked (:func:`ntksym.engine.common.check_data`), as :func:`tiled_kernel` passes them.
    """

    def __init__(self, arch, X, X2, output, kind="ntk", dtype="float64", tile=None,
                 resume=False, force=False, checkpoint_every=0.5, per_layer=False):
        if kind not in KINDS:
            raise DataError(f"unknown kernel kind {kind!r}; valid: {', '.join(KINDS)}")
        check_options(dtype)
        self.output = Path(output)
        if self.output.suffix != ".npy":
            raise DataError(f"{output}: a tiled run writes one .npy file (a memmap); "
                            "use an output ending in .npy")
        self.arch, self.kind, self.dtype, self.per_layer = arch, kind, dtype, bool(per_layer)
        self.names = output_names(arch, kind, self.per_layer)
        # several kernels: one memmap (and one partial file) each; one manifest for all
        self.files = {n: Path(f) for n, f in output_files(self.output, self.names).items()}
        self.partials = {n: partial_path(f) for n, f in self.files.items()}
        self.X, self.X2 = X, X2                   # checked by the caller (check_data)
        self.symmetric = self.X2 is None
        self.shape = (self.X.shape[0], (self.X if self.symmetric else self.X2).shape[0])
        self.requested_tile = tile
        self.tile = int(tile or DEFAULT_TILE)
        if self.tile < 1:
            raise DataError(f"--tile must be positive, got {tile}")
        self.resume, self.force = resume, force
        self.checkpoint_every = checkpoint_every
        self.manifest_file = manifest_path(self.output)
        self.partial_file = partial_path(self.output)
        self.already_complete = False

    # -- identity of the run: what must match for a resume
    def identity(self):
        return {"spec_name": self.arch.name, "spec_hash": self.arch.hash, "kind": self.kind,
                "outputs": self.names, "dtype": self.dtype, "shape": list(self.shape),
                "symmetric": self.symmetric,
                "x_hash": data_hash(self.X),
                "x2_hash": None if self.symmetric else data_hash(self.X2)}

    def open(self):
        """Create a fresh run or reopen a matching partial one; refuse what does not match."""
        ident = self.identity()
        m = read_manifest(self.manifest_file)
        if self.force:
            m = None
        elif m is not None and not self.resume:
            state = ("finished" if m.get("status") == "complete"
                     else f"partial ({m.get('n_done', '?')}/{m.get('n_tiles', '?')} tiles)")
            raise OutputExistsError(
                f"{self.output}: a {state} tiled run exists ({self.manifest_file}); pass --resume "
                "to continue it or --force to start over")
        elif m is None and not self.force:
            for f in self.files.values():
                if f.exists():
                    raise OutputExistsError(f"{f} exists; pass --force to overwrite it")
        if m is not None:
            self._check_same(m, ident)
            if self.requested_tile and int(self.requested_tile) != m["tile"]:
                raise DataError(f"cannot resume {self.output}: it was started with --tile "
                                f"{m['tile']}, not {self.requested_tile}; omit --tile or use "
                                "--force to start over")
            self.tile = int(m["tile"])
        self.tiles = tile_grid(*self.shape, self.tile, self.symmetric)
        if m is not None and m.get("status") == "complete":
            for n, f in self.files.items():
                if self.partials[n].exists() and not f.exists():
                    os.replace(self.partials[n], f)             # crashed between the steps
                    fsync_dir(f.parent)
            if all(f.exists() for f in self.files.values()):
                self.already_complete = True
                self.done = np.ones(len(self.tiles), dtype=bool)
                self.manifest = m
                return self
            m = None                                           # output deleted: start over
        if m is not None and not all(p.exists() for p in self.partials.values()):
            m = None                                           # partial deleted: start over
        if m is None:
            self._create(ident)
        else:
            self.manifest = m
            self.done = _decode_bits(m["done"], len(self.tiles))
            self.mms = {n: np.lib.format.open_memmap(p, mode="r+")
                        for n, p in self.partials.items()}
            for n, mm in self.mms.items():
                if mm.shape != self.shape or mm.dtype != np.dtype(self.dtype):
                    raise DataError(f"{self.partials[n]}: holds a {mm.dtype} {mm.shape} array, "
                                    "not what its manifest says; pass --force to start over")
        self._last_checkpoint = time.monotonic()
        return self

    def _check_same(self, m, ident):
        what = {"spec_hash": "spec", "x_hash": "data (X)", "x2_hash": "data (X2)",
                "kind": "kernel kind", "outputs": "kernels (--per-layer)", "dtype": "dtype",
                "shape": "shape",
                "symmetric": "symmetric/cross layout"}
        m = dict(m)
        m.setdefault("outputs", [m.get("kind")])   # manifests of one kernel before "outputs"
        bad = [f"{label} ({m.get(k)!s:.16} there, {ident[k]!s:.16} now)"
               for k, label in what.items() if m.get(k) != ident[k]]
        if bad:
            raise DataError(f"cannot resume {self.output}: it was computed with a different "
                            + "; different ".join(bad)
                            + ". Use another -o, or --force to discard it and start over")

    def _create(self, ident):
        for p in (*self.partials.values(), self.manifest_file):
            if p.exists():
                p.unlink()
        self.output.parent.mkdir(parents=True, exist_ok=True)
        # the memmaps exist (sparse, zero-filled) before any manifest refers to them
        self.mms = {n: np.lib.format.open_memmap(p, mode="w+", dtype=np.dtype(self.dtype),
                                                 shape=self.shape)
                    for n, p in self.partials.items()}
        self.done = np.zeros(len(self.tiles), dtype=bool)
        self.manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
                         "status": "running", **ident, "tile": self.tile,
                         "n_tiles": len(self.tiles), "n_done": 0,
                         "output": self.output.name,
                         "partial": self.partial_file.name if len(self.names) == 1 else None,
                         "files": {n: f.name for n, f in self.files.items()},
                         "ntksym_version": _version(),
                         "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "done": ""}
        self.checkpoint()

    # -- backends use these
    def pending(self):
        """Ids of the tiles still to compute, in order."""
        return [int(k) for k in np.flatnonzero(~self.done)]

    def bounds(self, k):
        return self.tiles[k]

    def tile_inputs(self, k):
        """(X1_rows, X2_cols or None) for tile k: None marks a diagonal tile."""
        i0, i1, j0, j1 = self.tiles[k]
        if self.symmetric and i0 == j0:
            return self.X[i0:i1], None
        return self.X[i0:i1], (self.X if self.symmetric else self.X2)[j0:j1]

    def write(self, k, block):
        """Store tile k: an array (one kernel) or a dict name -> array (several)."""
        i0, i1, j0, j1 = self.tiles[k]
        blocks = block if isinstance(block, dict) else {self.names[0]: block}
        if set(blocks) != set(self.names):
            raise RuntimeError(f"tile {k} has kernels {sorted(blocks)}, expected {self.names}")
        for b in blocks.values():
            if b.shape != (i1 - i0, j1 - j0):
                raise RuntimeError(f"tile {k} has shape {b.shape}, expected "
                                   f"{(i1 - i0, j1 - j0)}")
        for n, b in blocks.items():
            self.mms[n][i0:i1, j0:j1] = b
        self.done[k] = True
        if time.monotonic() - self._last_checkpoint >= self.checkpoint_every:
            self.checkpoint()

    def checkpoint(self):
        """Make the tiles written so far durable, then record them in the manifest."""
        for mm in self.mms.values():             # msync: data reach the files before the claim
            mm.flush()
        self.checkpoint_manifest_only()
        self._last_checkpoint = time.monotonic()

    @property
    def n_done(self):
        return int(self.done.sum())

    def finish(self):
        """Mirror the lower triangle, make everything durable, mark complete, rename."""
        if self.already_complete:
            return
        if not self.done.all():
            raise RuntimeError(f"finish() with {len(self.done) - self.n_done} tiles missing")
        self.checkpoint()
        for n, mm in self.mms.items():
            if self.symmetric:
                for i0, i1, j0, j1 in self.tiles:
                    if j0 > i0:
                        mm[j0:j1, i0:i1] = mm[i0:i1, j0:j1].T
            mm.flush()
            with open(self.partials[n], "rb+") as fh:
                os.fsync(fh.fileno())
        del self.mms
        self.manifest["status"] = "complete"
        self.checkpoint_manifest_only()
        # the manifest says complete first: a crash among the renames is finished by --resume
        for n, f in self.files.items():
            os.replace(self.partials[n], f)
        fsync_dir(self.output.parent)

    def checkpoint_manifest_only(self):
        self.manifest.update(n_done=self.n_done, done=_encode_bits(self.done),
                             updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        write_manifest(self.manifest_file, self.manifest)


def run_threaded(run, progress=None):
    """Compute every pending tile in this process (numba threads inside each tile)."""
    for k in run.pending():
        X1, X2 = run.tile_inputs(k)
        run.write(k, compute_tile(run.arch, X1, X2, kind=run.kind, dtype=run.dtype,
                                  per_layer=run.per_layer))
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
                   force=force, checkpoint_every=checkpoint_every, per_layer=per_layer).open()
    t0 = time.perf_counter()
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
    return {"output": str(run.output), "files": {n: str(f) for n, f in run.files.items()},
            "shape": list(run.shape), "tiles": len(run.tiles),
            "computed": run.n_done - n_before if not run.already_complete else 0,
            "tile": run.tile, "seconds": round(time.perf_counter() - t0, 4),
            "already_complete": run.already_complete}

