"""Output files, written one way: refused if they exist (unless forced), never half-written.

Every file ntksym writes (kernel arrays, text, CSV tables, PNG figures, JSON manifests,
generated modules in the cache) goes through :func:`atomic_write`: the data go to a temporary
name in the same directory, are flushed to disk, and the temporary file is renamed over the
target, so a reader sees the old file or the new one, never a part.  On any error the
temporary file is removed.

>>> import os, tempfile
>>> p = os.path.join(tempfile.mkdtemp(), "out.txt")
>>> with atomic_write(p) as fh:
...     _ = fh.write("done\\n")
>>> open(p).read(), sorted(os.listdir(os.path.dirname(p)))
('done\\n', ['out.txt'])
>>> refuse_existing(p, force=False)
Traceback (most recent call last):
...
ntksym.errors.OutputExistsError: ... exists; pass --force to overwrite it
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ntksym.errors import DataError, OutputExistsError


def refuse_existing(path, force):
    """Raise OutputExistsError if ``path`` exists and ``force`` is false (None: no output)."""
    if path is not None and Path(path).exists() and not force:
        raise OutputExistsError(f"{path} exists; pass --force to overwrite it")


def fsync_dir(path):
    """Make a rename inside directory ``path`` durable (best effort: some filesystems refuse)."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode="w", **open_kw):
    """Open a temporary file beside ``path`` for writing (``mode`` "w" or "wb", ``open_kw``
    as for :func:`open`); when the block ends without error, fsync it and rename it to
    ``path``; on an error remove it.  Missing parent directories are created.  The file gets
    the permissions a plain ``open`` would give (not mkstemp's private 0600).

    Example: ``with atomic_write("K.npy", "wb") as fh: np.save(fh, K)``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes whole files: mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, mode, **open_kw) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def save_arrays(path, arrays: dict, force=False, meta=None):
    """Write one array (.npy) or several (.npz, keyed by name, plus ``meta`` entries)
    atomically; refused if ``path`` exists and ``force`` is false.

    A ``.npy`` path takes exactly one array.

    >>> import os, tempfile, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "K.npz")
    >>> save_arrays(p, {"ntk": np.eye(2), "nngp": np.ones((2, 2))})
    >>> sorted(np.load(p).files)
    ['nngp', 'ntk']
    """
    import numpy as np
    path = Path(path)
    refuse_existing(path, force)
    if path.suffix not in (".npy", ".npz"):
        raise DataError(f"{path}: output must end in .npy or .npz")
    if path.suffix == ".npy" and len(arrays) != 1:
        raise DataError(f"{path}: a .npy file holds one array, but {len(arrays)} were computed "
                        f"({', '.join(arrays)}); use an .npz output")
    with atomic_write(path, "wb") as fh:
        if path.suffix == ".npy":
            np.save(fh, next(iter(arrays.values())))
        else:
            extra = {k: np.asarray(v) for k, v in (meta or {}).items()}
            np.savez(fh, **arrays, **extra)
