"""The manifest of a tiled run and the checks a resume makes before it trusts anything on disk.

A tiled run for ``-o K.npy`` keeps ``K.npy.manifest.json`` beside its memmap (see
:mod:`ntksym.scale.tiles`).  A resume believes the manifest and the partial file only after
:func:`check_manifest` has validated the manifest *as a whole* (every field present, of its
type, consistent with the others and with the tile grid of the run) and :func:`check_npy` and
:func:`first_bad_tile` have checked the files (header and size before mapping; every tile the
manifest calls done against the checksum recorded when it was written).  Whatever does not
hold is refused with one :class:`ResumeError` line that says what is wrong and how to start
afresh; a resume never fills the gaps with zeros and never finishes a run it cannot verify.

Manifest version 2 (this one) adds ``"checksums"``: per tile, null while pending, else the
``blake2b`` digest (8 bytes, hex) of the tile's bounds and of its bytes in every output file
(:func:`tile_checksum`).
Version-1 manifests (no checksums) are refused: their tiles cannot be verified.

>>> bits = encode_bits(np.array([1, 0, 1], bool))
>>> bits, decode_bits(bits, 3).tolist()
('oA==', [True, False, True])
>>> decode_bits("oA==", 9)
Traceback (most recent call last):
...
ValueError: 1 bytes, expected 2 for 9 tiles
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ntksym.errors import DataError
from ntksym.io import atomic_write

MANIFEST_FORMAT = "ntksym-tiles"
MANIFEST_VERSION = 2
CHECKSUM = "blake2b-64/64-rows"   # the "checksum" field: what "checksums" holds
CHUNK_ROWS = 64                    # rows per separately hashed chunk of a tile

# every field of a version-2 manifest and the JSON types it may take (None: null)
FIELDS = {
    "format": str, "version": int, "status": str, "spec_name": str, "spec_hash": str,
    "kind": str, "outputs": list, "dtype": str, "shape": list, "symmetric": bool,
    "x_hash": str, "x2_hash": (str, type(None)), "tile": int, "n_tiles": int, "n_done": int,
    "output": str, "partial": (str, type(None)), "files": dict, "ntksym_version": str,
    "created": str, "updated": str, "done": str, "checksum": str, "checksums": list,
}

# identity of a run: what a resume must share with it (field -> what the message calls it)
IDENTITY = {"spec_hash": "spec", "x_hash": "data (X)", "x2_hash": "data (X2)",
            "kind": "kernel kind", "outputs": "kernels (--per-layer)", "dtype": "dtype",
            "shape": "shape", "symmetric": "symmetric/cross layout"}

_WORDS = {str: "a string", int: "an integer", bool: "true or false", list: "a list",
          dict: "an object"}
_HEX = re.compile(r"[0-9a-f]{16}")


class ResumeError(DataError):
    """A tiled run that cannot be resumed as it is: a manifest or partial file that is damaged,
    inconsistent, from another run or from an older ntksym.  One line; exit status 2."""


def manifest_path(output):
    return Path(str(output) + ".manifest.json")


def partial_path(output):
    return Path(str(output) + ".partial")


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


# ------------------------------------------------------------------------ reading and writing

def write_manifest(path, manifest):
    """Replace the manifest at ``path`` atomically: readers see the old one or the new one."""
    with atomic_write(path) as fh:
        json.dump(manifest, fh, indent=1)


def read_manifest(path):
    """The manifest dict at ``path``, or None if there is none; ResumeError if unreadable."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as e:
        reason = str(e).splitlines()[0][:80] if str(e) else type(e).__name__
        raise ResumeError(f"{path}: unreadable manifest ({reason}); delete it or pass --force"
                          ) from None
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
        raise ResumeError(f"{path}: not an ntksym tile manifest; delete it or pass --force")
    return m


def encode_bits(done):
    """The done flags as base64 of ``numpy.packbits`` (bit k = tile k, padding bits zero)."""
    return base64.b64encode(np.packbits(done).tobytes()).decode()


def decode_bits(text, n):
    """The inverse of :func:`encode_bits`, strictly: ValueError unless ``text`` is canonical
    base64 of exactly ceil(n / 8) bytes whose padding bits are zero."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not base64") from None
    if len(raw) != (n + 7) // 8:
        raise ValueError(f"{len(raw)} bytes, expected {(n + 7) // 8} for {n} tiles")
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))
    if bits[n:].any() or base64.b64encode(raw).decode() != text:
        raise ValueError("not the canonical encoding")
    return bits[:n].astype(bool)


def tile_checksum(arrays, bounds):
    """The checksum of a tile: blake2b (8 bytes, hex) of its bounds and of the blake2b digests
    of its chunks of :data:`CHUNK_ROWS` rows in each array, in order.

    The chunks are hashed on a thread pool (hashlib lets go of the GIL), so a large tile costs
    a few milliseconds, not a noticeable share of a cheap kernel's time; the result does not
    depend on the number of threads.  The bounds are hashed too, so a checksum only fits the
    tile it was made for: a manifest whose tile size was edited fails the check even where the
    bytes happen to agree.
    """
    i0, i1, j0, j1 = bounds
    jobs = [(a, r, min(r + CHUNK_ROWS, i1), j0, j1)
            for a in arrays for r in range(i0, i1, CHUNK_ROWS)]
    big = sum(a.itemsize for a in arrays) * (i1 - i0) * (j1 - j0) > 2**20
    digests = _pool().map(_chunk_digest, jobs) if big and len(jobs) > 1 else map(_chunk_digest,
                                                                                  jobs)
    h = hashlib.blake2b(f"{i0}:{i1}:{j0}:{j1}".encode(), digest_size=8)
    for d in digests:
        h.update(d)
    return h.hexdigest()


def _chunk_digest(job):
    a, r0, r1, j0, j1 = job
    return hashlib.blake2b(np.ascontiguousarray(a[r0:r1, j0:j1]).data, digest_size=8).digest()


@functools.cache
def _pool():
    return ThreadPoolExecutor(max_workers=min(32, len(os.sched_getaffinity(0))),
                              thread_name_prefix="ntksym-checksum")


# ------------------------------------------------------------------------ the checks

def _same(a, b):
    """Equal as JSON values: 1 is not True, 4.0 is not 4."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def check_manifest(m, *, ident, expected, tiles_for, requested_tile, refuse):
    """Validate the manifest ``m`` of a run whose identity is ``ident`` as a whole; return
    ``(tile, tiles, done, checksums)``.

    ``expected`` holds the file fields the run would write (``output``, ``partial``,
    ``files``); ``tiles_for(tile)`` is the run's tile grid for a tile size;
    ``requested_tile`` the ``--tile`` asked now (None: keep the run's); ``refuse(problem)``
    makes the ResumeError to raise (it adds how to start afresh).
    """
    version = m.get("version")
    if type(version) is int and version < MANIFEST_VERSION:
        raise refuse(f"its manifest is version {version}, from an ntksym that did not record "
                     "tile checksums, so its tiles cannot be verified")
    if not _same(version, MANIFEST_VERSION):
        raise refuse(f"its manifest has version {json.dumps(version)[:20]}; this ntksym reads "
                     f"version {MANIFEST_VERSION}")
    missing = [k for k in FIELDS if k not in m]
    unknown = [k for k in m if k not in FIELDS]
    if missing or unknown:
        raise refuse("its manifest " + "; ".join(
            ([f"lacks {', '.join(repr(k) for k in missing)}"] if missing else [])
            + ([f"has unknown fields {', '.join(repr(k[:20]) for k in unknown)}"]
               if unknown else [])))
    for k, types in FIELDS.items():
        ok = isinstance(m[k], types) and not (isinstance(m[k], bool) and types is not bool)
        if not ok:
            raise refuse(f"its manifest has {k!r} = {json.dumps(m[k])[:30]}, not "
                         f"{_WORDS.get(types, 'a string or null')}")
    if m["status"] not in ("running", "complete"):
        raise refuse(f"its manifest has status {m['status'][:20]!r}, not 'running' or "
                     "'complete'")
    bad = [f"{label} ({json.dumps(m[k])[:16]} there, {json.dumps(ident[k])[:16]} now)"
           for k, label in IDENTITY.items() if not _same(m[k], ident[k])]
    if bad:
        raise ResumeError(f"cannot resume {expected['output']}: it was computed with a "
                          "different " + "; different ".join(bad)
                          + ". Use another -o, or --force to discard it and start over")
    tile = m["tile"]
    if tile < 1:
        raise refuse(f"its manifest has tile {tile}")
    if requested_tile and int(requested_tile) != tile:
        raise ResumeError(f"cannot resume {expected['output']}: it was started with --tile "
                          f"{tile}, not {requested_tile}; omit --tile or use --force to "
                          "start over")
    for k in ("output", "partial", "files"):
        if not _same(m[k], expected[k]):
            raise refuse(f"its manifest names {k} {json.dumps(m[k])[:40]}, not "
                         f"{json.dumps(expected[k])[:40]}")
    if m["checksum"] != CHECKSUM:
        raise refuse(f"its manifest has checksums of kind {m['checksum'][:20]!r}, not "
                     f"{CHECKSUM!r}")
    tiles = tiles_for(tile)
    if m["n_tiles"] != len(tiles):
        raise refuse(f"its manifest says {m['n_tiles']} tiles, but tiles of {tile} make "
                     f"{len(tiles)} for shape {tuple(ident['shape'])}")
    try:
        done = decode_bits(m["done"], len(tiles))
    except ValueError as e:
        raise refuse(f"its manifest's done bitmap is damaged ({e})") from None
    if m["n_done"] != int(done.sum()):
        raise refuse(f"its manifest says {m['n_done']} tiles done, its bitmap {int(done.sum())}")
    sums = m["checksums"]
    if len(sums) != len(tiles):
        raise refuse(f"its manifest has {len(sums)} checksums for {len(tiles)} tiles")
    for k, (d, s) in enumerate(zip(done, sums)):
        if not ((s is None and not d) or (d and isinstance(s, str) and _HEX.fullmatch(s))):
            what = "no checksum" if s is None else "a malformed checksum" if d else "a checksum"
            raise refuse(f"its manifest gives {'done' if d else 'pending'} tile {k} {what}")
    if m["status"] == "complete" and not done.all():
        raise refuse(f"its manifest says complete with {int((~done).sum())} of {len(tiles)} "
                     "tiles not done")
    return tile, tiles, done, list(sums)


def check_npy(path, shape, dtype):
    """None if ``path`` is a C-order .npy file of ``shape`` and ``dtype`` whose size is exactly
    its header plus its data, else what is wrong.  Checked before the file is mapped: numpy's
    ``r+`` memmap would silently extend a truncated file with zeros."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                hshape, fortran, hdtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                hshape, fortran, hdtype = np.lib.format.read_array_header_2_0(fh)
            else:
                return f"an .npy header of version {version}"
            offset = fh.tell()
        size = os.path.getsize(path)
    except Exception as e:         # numpy's header parser raises ValueError, TokenError, ...
        reason = str(e).splitlines()[0][:60] if str(e) else type(e).__name__
        return f"no readable .npy header ({reason})"
    if tuple(hshape) != tuple(shape) or hdtype != np.dtype(dtype) or fortran:
        return (f"a {hdtype} {tuple(hshape)}{' Fortran-order' if fortran else ''} array, "
                f"not {np.dtype(dtype)} {tuple(shape)}")
    want = offset + int(np.prod(shape)) * np.dtype(dtype).itemsize
    if size != want:
        return f"{size} bytes where its header says {want}: truncated or extended"
    return None


def first_bad_tile(arrays, tiles, sums):
    """The first tile the manifest calls done (``sums[k]`` not None) whose bytes in
    ``arrays`` (one per output, in the run's order) no longer match its checksum, as a phrase;
    None if all match.  One read of those tiles."""
    for k, (bounds, s) in enumerate(zip(tiles, sums)):
        if s is not None and tile_checksum(arrays, bounds) != s:
            i0, i1, j0, j1 = bounds
            return f"tile {k} (rows {i0}:{i1}, columns {j0}:{j1}) does not match its checksum"
    return None


def first_unmirrored(arrays, tiles):
    """The first lower-triangle block of a finished symmetric file that is not, bit for bit,
    the transpose of its upper block, as a phrase; None if all are."""
    for i0, i1, j0, j1 in tiles:
        if j0 > i0:
            for a in arrays:
                up, low = a[i0:i1, j0:j1], a[j0:j1, i0:i1]
                if np.ascontiguousarray(up).tobytes() != np.ascontiguousarray(low.T).tobytes():
                    return (f"rows {j0}:{j1}, columns {i0}:{i1} are not the mirror of rows "
                            f"{i0}:{i1}, columns {j0}:{j1}")
    return None
