"""The durable store of a tiled run: :class:`TiledRun`, the partial memmaps and manifest of
``-o K.npy`` (the files and the order of writes are described in :mod:`ntksym.scale.tiles`).

Opening a run takes the output's lock (:mod:`ntksym.scale.lock`) and, for a resume, trusts
nothing on disk before :mod:`ntksym.scale.manifest` has checked it: the manifest as a whole,
each file's header and size, and the checksum of every tile the manifest calls done.

>>> output_files("K.npy", ["ntk"])
{'ntk': 'K.npy'}
"""

from __future__ import annotations

import hashlib
import os
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from ntksym.engine.common import KINDS, check_options, output_names
from ntksym.errors import DataError, OutputExistsError
from ntksym.io import fsync_dir
from ntksym.scale.lock import OutputLock
from ntksym.scale.manifest import (
    CHECKSUM,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    ResumeError,
    check_manifest,
    check_npy,
    encode_bits,
    first_bad_tile,
    first_unmirrored,
    manifest_path,
    partial_path,
    read_manifest,
    tile_checksum,
    tile_grid,
    write_manifest,
)

DEFAULT_TILE = 1024


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


def _version():
    """ntksym's version for the manifest (from the installed metadata; read, not imported)."""
    try:
        return metadata.version("ntksym")
    except metadata.PackageNotFoundError:
        return "unknown"


# ------------------------------------------------------------------------ the run

class TiledRun:
    """The on-disk state of one tiled kernel computation (see the module docstring).

    ``open()`` takes the output's lock (:mod:`ntksym.scale.lock`), then creates a fresh run or
    validates and reopens a partial one (:mod:`ntksym.scale.manifest`: the whole manifest, the
    files' headers and sizes, the checksum of every tile done); ``write(k, block)`` stores tile
    k and its checksum; ``finish()`` mirrors, flushes and renames into place; ``close()`` drops
    the lock (always: :func:`compute_tiles` calls it in ``finally``).  Backends only call
    ``pending()``, ``bounds(k)``, ``write`` and ``finish``.  X and X2 are data already
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
        self.lock = OutputLock(self.output)
        self.already_complete = False

    # -- identity of the run: what must match for a resume
    def identity(self):
        return {"spec_name": self.arch.name, "spec_hash": self.arch.hash, "kind": self.kind,
                "outputs": self.names, "dtype": self.dtype, "shape": list(self.shape),
                "symmetric": self.symmetric,
                "x_hash": data_hash(self.X),
                "x2_hash": None if self.symmetric else data_hash(self.X2)}

    def file_fields(self):
        """The manifest's file fields, as this run writes them."""
        return {"output": self.output.name,
                "partial": self.partial_file.name if len(self.names) == 1 else None,
                "files": {n: f.name for n, f in self.files.items()}}

    def grid(self, tile):
        return tile_grid(*self.shape, tile, self.symmetric)

    def refusal(self, problem, finished=False):
        """The ResumeError for ``problem``, with how to start afresh."""
        files = [*self.partials.values(), self.manifest_file]
        if finished:                                   # a finished output that fails its check
            files = [*self.files.values(), *files]
        files = [str(p) for p in files if p.exists()] or [str(self.manifest_file)]
        files = files[0] if len(files) == 1 else ", ".join(files[:-1]) + " and " + files[-1]
        return ResumeError(f"cannot resume {self.output}: {problem}; to start afresh, delete "
                           f"{files}, or pass --force instead of --resume")

    def open(self):
        """Lock the output, then create a fresh run or reopen a matching partial one (or find
        it complete); refuse whatever does not match or does not verify."""
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        self._last_checkpoint = time.monotonic()
        return self

    def close(self):
        """Let go of the memmaps and the lock (idempotent)."""
        self.__dict__.pop("mms", None)
        self.lock.release()

    def _open(self):
        ident = self.identity()
        m = None if self.force else read_manifest(self.manifest_file)
        if m is not None and not self.resume:
            state = ("finished" if m.get("status") == "complete"
                     else f"partial ({m.get('n_done', '?')!s:.12}/{m.get('n_tiles', '?')!s:.12}"
                          " tiles)")
            raise OutputExistsError(
                f"{self.output}: a {state} tiled run exists ({self.manifest_file}); pass --resume "
                "to continue it or --force to start over")
        if m is None:
            if not self.force:
                for f in self.files.values():
                    if f.exists() and self.resume:
                        raise ResumeError(f"cannot resume {self.output}: {f} exists but "
                                          f"{self.manifest_file} does not, so there is no run "
                                          "to resume; pass --force to compute it again")
                    if f.exists():
                        raise OutputExistsError(f"{f} exists; pass --force to overwrite it")
            return self._create(ident)
        self.tile, self.tiles, self.done, self.sums = check_manifest(
            m, ident=ident, expected=self.file_fields(), tiles_for=self.grid,
            requested_tile=self.requested_tile, refuse=self.refusal)
        self.manifest = m
        if m["status"] == "complete":
            return self._open_complete(ident)
        if not all(p.exists() for p in self.partials.values()):
            return self._create(ident)                 # partial deleted: start over
        self.mms = {n: self._map(self.partials[n], "r+") for n in self.names}
        problem = first_bad_tile(list(self.mms.values()), self.tiles, self.sums)
        if problem:
            raise self.refusal(f"in {', '.join(p.name for p in self.partials.values())}, "
                               f"{problem}: the file was changed after the tile was written")

    def _map(self, path, mode):
        """The .npy memmap at ``path``, once its header and size are what the run wrote."""
        problem = check_npy(path, self.shape, self.dtype)
        if problem:
            raise self.refusal(f"{path.name} holds {problem}",
                               finished=not path.name.endswith(".partial"))
        return np.lib.format.open_memmap(path, mode=mode)

    def _open_complete(self, ident):
        """A run its manifest calls complete: verify the finished files (and any partial one
        a crash left before its rename, which is then mirrored again and renamed)."""
        src = {n: (self.files[n] if self.files[n].exists() else
                   self.partials[n] if self.partials[n].exists() else None) for n in self.names}
        if any(p is None for p in src.values()):
            return self._create(ident)                 # output deleted: start over
        maps = {n: self._map(p, "r" if p == self.files[n] else "r+") for n, p in src.items()}
        finals = [maps[n] for n in self.names if src[n] == self.files[n]]
        problem = (first_bad_tile([maps[n] for n in self.names], self.tiles, self.sums)
                   or (self.symmetric and first_unmirrored(finals, self.tiles)))
        if problem:
            names = ", ".join(p.name for p in src.values())
            raise self.refusal(f"in {names}, {problem}: the file was changed after it was "
                               "written", finished=True)
        self.mms = {n: maps[n] for n in self.names if src[n] != self.files[n]}
        del maps, finals
        self._seal_and_rename()                        # crashed between the steps
        self.already_complete = True

    def _create(self, ident):
        for p in (*self.partials.values(), self.manifest_file):
            if p.exists():
                p.unlink()
        self.tiles = self.grid(self.tile)
        # the memmaps exist (sparse, zero-filled) before any manifest refers to them
        self.mms = {n: np.lib.format.open_memmap(p, mode="w+", dtype=np.dtype(self.dtype),
                                                 shape=self.shape)
                    for n, p in self.partials.items()}
        try:
            for p in self.partials.values():
                _reserve(p)
        except DataError:
            self.mms = {}
            for p in self.partials.values():
                p.unlink(missing_ok=True)
            raise
        self.done = np.zeros(len(self.tiles), dtype=bool)
        self.sums = [None] * len(self.tiles)
        self.manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
                         "status": "running", **ident, "tile": self.tile,
                         "n_tiles": len(self.tiles), "n_done": 0, **self.file_fields(),
                         "ntksym_version": _version(),
                         "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "done": "",
                         "checksum": CHECKSUM, "checksums": self.sums}
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
        """Store tile k (an array, one kernel, or a dict name -> array) and its checksum."""
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
        # of the bytes as stored (after the cast to dtype); recorded at the next checkpoint,
        # after the data are flushed
        self.sums[k] = tile_checksum([self.mms[n] for n in self.names], self.tiles[k])
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
        self._seal_and_rename(mark_complete=True)

    def _seal_and_rename(self, mark_complete=False):
        """Mirror, flush and fsync the open partial files, (mark the manifest complete,) then
        rename them into place.  Idempotent up to the renames."""
        for n, mm in self.mms.items():
            if self.symmetric:
                for i0, i1, j0, j1 in self.tiles:
                    if j0 > i0:
                        mm[j0:j1, i0:i1] = mm[i0:i1, j0:j1].T
            mm.flush()
            with open(self.partials[n], "rb+") as fh:
                os.fsync(fh.fileno())
        names = list(self.mms)
        del self.mms
        if mark_complete:
            self.manifest["status"] = "complete"
            self.checkpoint_manifest_only()
        # the manifest says complete first: a crash among the renames is finished by --resume
        for n in names:
            os.replace(self.partials[n], self.files[n])
        fsync_dir(self.output.parent)

    def checkpoint_manifest_only(self):
        self.manifest.update(n_done=self.n_done, done=encode_bits(self.done),
                             checksums=self.sums, updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        write_manifest(self.manifest_file, self.manifest)


def _reserve(path):
    """Allocate the blocks of a (sparse) partial file now: a disk that fills up during the run
    then fails here with one message, instead of killing the run later with SIGBUS when a page
    of the memmap cannot be written.  File systems without fallocate keep the sparse file."""
    import errno

    fd = os.open(path, os.O_RDWR)
    size = os.fstat(fd).st_size
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            return          # EOPNOTSUPP, EINVAL ...: no preallocation on this file system
        os.close(fd)
        fd = None
        Path(path).unlink(missing_ok=True)
        raise DataError(f"not enough disk space for {path}: its {size} bytes cannot be "
                        "allocated; free space or write the output elsewhere") from None
    finally:
        if fd is not None:
            os.close(fd)
