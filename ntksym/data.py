"""Datasets: scikit-learn's embedded copies, user-supplied CIFAR-10 / MNIST files, arrays.

Nothing here downloads anything.  Every problem with data (an unknown name, a missing file, an
object array, NaN) raises :class:`~ntksym.errors.DataError` naming the dataset, file or array.

Name specs, as accepted by ``--dataset`` on the command line and by :func:`load_dataset`:

========================  ====================================================================
``digits``                1797 x 64 pixel vectors, divided by 16 so every entry is in [0, 1]
``digits-images``         the same pixels as 1797 x 8 x 8 x 1 images (channels last)
``iris``                  150 x 4, each feature standardized with the dataset's own mean/std
``wine``                  178 x 13, standardized the same way
``breast_cancer``         569 x 30, standardized the same way
``diabetes``              442 x 10, standardized the same way; float targets (regression)
``cifar10:DIR``           CIFAR-10 python batches in DIR, scaled to [0, 1], (n, 32, 32, 3)
``mnist:DIR``             MNIST idx files in DIR, scaled to [0, 1], (n, 28, 28, 1)
========================  ====================================================================

Any of them may end in ``:N`` to keep only the first N examples *in the shipped order* (no
shuffle, so ``digits:200`` is the same 200 images on every machine).  Beware that some shipped
orders are sorted by class (``iris:50`` is all setosa): pass ``seed`` to :func:`load_dataset` to
take the first N of a seeded permutation instead, or use :func:`split_dataset`.

Standardizing the small tabular sets with their *own* statistics (all rows, before any split)
is a convenience for demos; a careful study standardizes with training statistics only, e.g.
with scikit-learn's ``StandardScaler`` in a ``Pipeline``.  Image data are only scaled to [0, 1];
the CNTK authors' per-channel standardization with training statistics is
:func:`standardize_channels`, applied after the split.
"""

from __future__ import annotations

import difflib
import gzip
import math
import os
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .errors import DataError
from .tabular import is_delimited, read_delimited, shape_rows

__all__ = [
    "Dataset",
    "DATASET_NAMES",
    "load_dataset",
    "split_dataset",
    "load_cifar10_batches",
    "load_mnist_idx",
    "standardize_channels",
    "load_array",
    "check_finite",
]


@dataclass(frozen=True)
class Dataset:
    """A dataset: inputs ``X``, labels or targets ``y`` and what they mean.

    ``y`` holds integer class indices (0..k-1) for ``task == "classification"`` and floats for
    ``"regression"``; ``classes`` names the k classes (``None`` for regression).
    """

    X: np.ndarray
    y: np.ndarray
    name: str
    task: str
    classes: tuple | None
    description: str

    def __len__(self):
        return len(self.y)

    def take(self, index) -> "Dataset":
        """The examples at ``index`` (an integer array or slice), everything else unchanged."""
        return replace(self, X=self.X[index], y=self.y[index])


# --------------------------------------------------------------------------- embedded (sklearn)

def _standardized(X):
    # A constant column would divide by zero; leave it centred at 0 instead.
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _sk_digits(images: bool):
    from sklearn.datasets import load_digits

    b = load_digits()
    X = b.data.astype(np.float64) / 16.0           # pixels are integers 0..16
    shape = "1797 x 64 vectors"
    if images:
        X = X.reshape(-1, 8, 8, 1)
        shape = "1797 x 8 x 8 x 1 images (channels last)"
    classes = tuple(str(c) for c in b.target_names)
    desc = f"scikit-learn digits (UCI optical digits), {shape}, pixels / 16 in [0, 1]"
    return X, b.target.astype(np.int64), "classification", classes, desc


def _sk_tabular(loader_name: str, task: str):
    import sklearn.datasets as skd

    if loader_name == "load_diabetes":
        b = skd.load_diabetes(scaled=False)       # we standardize ourselves, like the others
    else:
        b = getattr(skd, loader_name)()
    X = _standardized(b.data.astype(np.float64))
    if task == "classification":
        y = b.target.astype(np.int64)
        classes = tuple(str(c) for c in b.target_names)
    else:
        y = b.target.astype(np.float64)
        classes = None
    n, d = X.shape
    desc = (f"scikit-learn {loader_name[5:]}, {n} x {d}, each feature standardized with the "
            f"dataset's own mean and std")
    return X, y, task, classes, desc


_EMBEDDED = {
    "digits": lambda: _sk_digits(images=False),
    "digits-images": lambda: _sk_digits(images=True),
    "iris": lambda: _sk_tabular("load_iris", "classification"),
    "wine": lambda: _sk_tabular("load_wine", "classification"),
    "breast_cancer": lambda: _sk_tabular("load_breast_cancer", "classification"),
    "diabetes": lambda: _sk_tabular("load_diabetes", "regression"),
}
_DIRECTORY = ("cifar10", "mnist")
DATASET_NAMES = tuple(_EMBEDDED) + tuple(f"{n}:DIR" for n in _DIRECTORY)


def _parse_name_spec(name_spec: str):
    """'digits:200' -> ('digits', None, 200); 'cifar10:/d:50' -> ('cifar10', '/d', 50)."""
    if not isinstance(name_spec, str) or not name_spec.strip():
        raise DataError(f"empty dataset name; valid names: {', '.join(DATASET_NAMES)}")
    head, sep, rest = name_spec.strip().partition(":")
    path, count = None, None
    if head in _DIRECTORY:
        if not rest:
            raise DataError(f"dataset '{head}' needs a directory: '{head}:/path/to/dir[:N]'")
        # The directory may itself contain ':'; only a trailing integer counts as N.
        stem, colon, last = rest.rpartition(":")
        if colon and _is_int(last):
            path, count = stem, last
        else:
            path = rest
    elif sep:
        count = rest
    if count is not None:
        if not _is_int(count):
            raise DataError(f"dataset '{name_spec}': N must be a positive integer, got '{count}'")
        count = int(count)
        if count <= 0:
            raise DataError(f"dataset '{name_spec}': N must be a positive integer, got {count}")
    return head, path, count


def _is_int(text: str) -> bool:
    return text.strip().lstrip("+-").isdigit()


def load_dataset(name_spec: str, *, seed: int | None = None) -> Dataset:
    """Load a dataset by name, ``NAME`` or ``NAME:N`` (see the module docstring for the names).

    ``NAME:N`` keeps the first N examples in the shipped order, or, when ``seed`` is an integer,
    the first N of the permutation ``numpy.random.default_rng(seed).permutation(n)`` (useful for
    class-sorted sets such as iris).  N larger than the dataset or N <= 0 is a ``DataError``.

    >>> ds = load_dataset("digits:200")
    >>> ds.X.shape, float(ds.X.max()) <= 1.0, ds.task
    ((200, 64), True, 'classification')
    >>> load_dataset("digits-images:3").X.shape
    (3, 8, 8, 1)
    """
    name, path, count = _parse_name_spec(name_spec)
    if name in _EMBEDDED:
        X, y, task, classes, desc = _EMBEDDED[name]()
    elif name == "cifar10":
        X, y, task, classes, desc = _cifar10_dir(path)
    elif name == "mnist":
        X, y, task, classes, desc = _mnist_dir(path)
    else:
        close = difflib.get_close_matches(name, list(_EMBEDDED) + list(_DIRECTORY), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise DataError(f"unknown dataset '{name}'{hint}; valid names: "
                        f"{', '.join(DATASET_NAMES)}, each optionally followed by ':N'")
    ds = Dataset(X=X, y=y, name=name_spec.strip(), task=task, classes=classes, description=desc)
    if seed is not None:
        ds = ds.take(np.random.default_rng(seed).permutation(len(ds)))
    if count is not None:
        if count > len(ds):
            raise DataError(f"dataset '{name_spec}': asked for {count} examples, "
                            f"only {len(ds)} available")
        ds = ds.take(slice(0, count))
    return ds


def split_dataset(ds: Dataset, n_train: int, n_test: int | None = None, *, seed: int = 0):
    """A random train/test split: a seeded permutation, first ``n_train`` rows, next ``n_test``.

    ``n_test=None`` takes all remaining rows.  Deterministic for a given ``seed``.

    >>> train, test = split_dataset(load_dataset("iris"), 100, 50, seed=0)
    >>> len(train), len(test), len(set(train.y.tolist()))
    (100, 50, 3)
    """
    n = len(ds)
    if n_test is None:
        n_test = n - n_train
    if n_train <= 0 or n_test <= 0 or n_train + n_test > n:
        raise DataError(f"dataset '{ds.name}' has {n} examples; cannot split into "
                        f"{n_train} train + {n_test} test (both must be positive)")
    perm = np.random.default_rng(seed).permutation(n)
    return ds.take(perm[:n_train]), ds.take(perm[n_train:n_train + n_test])


# --------------------------------------------------------------------------- CIFAR-10 batches

class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, nothing else.

    Pickle can call any importable function while loading (``os.system`` included), so a
    downloaded file is untrusted code.  Dicts, lists, bytes, str and numbers need no global
    lookup; the only globals allowed are the ones numpy uses to rebuild an ndarray or a
    scalar, plus
    ``_codecs.encode``, which Python 3 uses to pickle bytes at protocol 2.
    """

    _ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # numpy's array rebuilder, under its numpy 1.x and 2.x module names
        ("numpy.core.multiarray", "_reconstruct"): np.zeros(1).__reduce__()[0],
        ("numpy._core.multiarray", "_reconstruct"): np.zeros(1).__reduce__()[0],
        # ... and its pickle-protocol-5 rebuilder
        ("numpy.core.numeric", "_frombuffer"): np.zeros(1).__reduce_ex__(5)[0],
        ("numpy._core.numeric", "_frombuffer"): np.zeros(1).__reduce_ex__(5)[0],
        # numpy scalars (e.g. labels saved as a list of np.int64)
        ("numpy.core.multiarray", "scalar"): np.int64(0).__reduce__()[0],
        ("numpy._core.multiarray", "scalar"): np.int64(0).__reduce__()[0],
        ("_codecs", "encode"): __import__("codecs").encode,
    }

    def find_class(self, module, name):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global '{module}.{name}': only numpy arrays and plain "
                f"containers are allowed in a data file") from None


def _open_existing(path, what):
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what}: file not found: {path}")
    return path


def load_cifar10_batches(paths):
    """Read CIFAR-10 python batches (``data_batch_1`` ... ``test_batch``) given by ``paths``.

    Returns ``(X, y)``: ``X`` float64 of shape (n, 32, 32, 3), channels last, pixel / 255 in
    [0, 1]; ``y`` int64 labels 0..9.  Batches are concatenated in the order given.  The pickles
    are decoded by an unpickler that only rebuilds numpy arrays and plain containers.

    >>> X, y = load_cifar10_batches(["cifar-10-batches-py/data_batch_1"])  # doctest: +SKIP
    >>> X.shape, y.shape                                                    # doctest: +SKIP
    ((10000, 32, 32, 3), (10000,))
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    xs, ys = [], []
    for p in paths:
        p = _open_existing(p, "CIFAR-10 batch")
        try:
            with open(p, "rb") as f:
                # 'bytes' keeps the Python 2 str keys (b'data') as bytes, as the files expect.
                batch = _ArrayOnlyUnpickler(f, encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
            raise DataError(f"{p}: not a CIFAR-10 python batch ({e})") from None
        if not isinstance(batch, dict):
            raise DataError(f"{p}: not a CIFAR-10 python batch (expected a dict)")
        data = batch.get(b"data", batch.get("data"))
        labels = batch.get(b"labels", batch.get("labels"))
        if data is None or labels is None:
            raise DataError(f"{p}: CIFAR-10 batch without 'data' and 'labels' entries")
        data = np.asarray(data)
        labels = np.asarray(labels, dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
            raise DataError(f"{p}: expected data of shape (n, 3072) and n labels, got "
                            f"{data.shape} and {len(labels)} labels")
        # Each row is 1024 red, 1024 green, 1024 blue values, each a row-major 32 x 32 image.
        xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(labels)
    if not xs:
        raise DataError("no CIFAR-10 batch files given")
    return np.concatenate(xs).astype(np.float64) / 255.0, np.concatenate(ys)


_CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                  "dog", "frog", "horse", "ship", "truck")


def _cifar10_dir(directory):
    d = Path(directory)
    if not d.is_dir():
        raise DataError(f"cifar10: directory not found: {d}")
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    found = [d / n for n in names if (d / n).is_file()]
    if not found:
        raise DataError(f"cifar10: no batch files ({', '.join(names)}) in {d}")
    X, y = load_cifar10_batches(found)
    desc = (f"CIFAR-10 batches {', '.join(p.name for p in found)} from {d}, in that order, "
            f"(n, 32, 32, 3) pixels / 255 in [0, 1]")
    return X, y, "classification", _CIFAR_CLASSES, desc


# --------------------------------------------------------------------------- MNIST idx

# idx type byte -> big-endian numpy dtype (the format of LeCun's MNIST files)
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_idx(path) -> np.ndarray:
    path = _open_existing(path, "idx file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    # Header: two zero bytes, a type byte, the number of dimensions, then each dimension as a
    # big-endian uint32; the data follow in C order.
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an idx file (bad magic number)")
    dtype, ndim = np.dtype(_IDX_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated idx header")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: idx header says shape {shape} ({expected} bytes of data), "
                        f"file has {len(raw) - header}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def load_mnist_idx(images_path, labels_path):
    """Read an MNIST images/labels pair in idx format (optionally gzipped, ``.gz``).

    Returns ``(X, y)``: ``X`` float64 of shape (n, rows, cols, 1), pixel / 255 in [0, 1];
    ``y`` int64 labels.

    >>> X, y = load_mnist_idx("train-images-idx3-ubyte",            # doctest: +SKIP
    ...                       "train-labels-idx1-ubyte")
    >>> X.shape                                                     # doctest: +SKIP
    (60000, 28, 28, 1)
    """
    images, labels = _read_idx(images_path), _read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected an idx image file of shape (n, rows, cols), "
                        f"got shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{labels_path}: expected {len(images)} labels, got shape {labels.shape}")
    return images[..., None].astype(np.float64) / 255.0, labels.astype(np.int64)


def _mnist_dir(directory):
    d = Path(directory)
    if not d.is_dir():
        raise DataError(f"mnist: directory not found: {d}")
    pairs = [("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
    xs, ys, used = [], [], []
    for img, lab in pairs:
        for suffix in ("", ".gz"):
            if (d / (img + suffix)).is_file():
                X, y = load_mnist_idx(d / (img + suffix), d / (lab + suffix))
                xs.append(X), ys.append(y), used.append(img + suffix)
                break
    if not xs:
        raise DataError(f"mnist: no idx files ({pairs[0][0]}, {pairs[1][0]}, optionally .gz) "
                        f"in {d}")
    desc = f"MNIST {', '.join(used)} from {d}, in that order, (n, 28, 28, 1) pixels / 255"
    return (np.concatenate(xs), np.concatenate(ys), "classification",
            tuple(str(i) for i in range(10)), desc)


def standardize_channels(train, *others):
    """Per-channel standardization with the *training* statistics, as the CNTK authors' code.

    For channels-last images (n, H, W, C) (or any array whose last axis is the channel), each
    channel c of every array becomes (x - mean_c) / std_c with mean and std over all training
    pixels of that channel.  Returns the standardized training array followed by the others.

    >>> rng = np.random.default_rng(0)
    >>> tr, te = standardize_channels(rng.random((5, 4, 4, 3)), rng.random((2, 4, 4, 3)))
    >>> bool(np.allclose(tr.reshape(-1, 3).mean(0), 0) and np.allclose(tr.reshape(-1, 3).std(0), 1))
    True
    """
    train = np.asarray(train, dtype=np.float64)
    axes = tuple(range(train.ndim - 1))
    mean, std = train.mean(axis=axes), train.std(axis=axes)
    std = np.where(std > 0, std, 1.0)              # a constant channel stays centred at 0
    out = [(train - mean) / std]
    for a in others:
        a = np.asarray(a, dtype=np.float64)
        if a.shape[-1] != train.shape[-1]:
            raise DataError(f"standardize_channels: {a.shape[-1]} channels, training data has "
                            f"{train.shape[-1]}")
        out.append((a - mean) / std)
    return tuple(out) if others else out[0]


# --------------------------------------------------------------------------- arrays

def _check_npy_header(fh, nbytes, where, holder="the file"):
    """Refuse a ``.npy`` stream whose header claims more data than its ``nbytes`` hold.

    Read before numpy allocates anything, so a lying header (a 46 TiB shape in a 1 KiB file)
    is a DataError, not a MemoryError.  A stream that is not a numpy file is left to
    ``np.load``, which names the problem itself.
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(fh)
        offset = fh.tell()
    except (ValueError, UnicodeError, OSError, EOFError):
        return
    if dtype.hasobject:             # pickled data: np.load refuses it with its own message
        return
    claimed = math.prod(shape) * dtype.itemsize
    if offset + claimed > nbytes:
        raise DataError(f"{where}: the header claims shape {tuple(shape)} of {dtype} "
                        f"({claimed} bytes of data) but {holder} has {nbytes} bytes")


def read_numpy(path, name: str = "X", pick=None):
    """A ``.npy`` file as an array, or an ``.npz`` file as a dict {key: array}; never unpickles.

    The content decides, not the file name: a ``.npy`` header gives an array, a zip archive a
    dict.  ``pick(keys)``, when given, chooses the keys of an ``.npz`` to read (the others are
    never decompressed).  Each array's header is checked against the bytes that hold it before it is
    read; a corrupt or truncated file, a lying header or an object array is a DataError that
    names ``name`` and ``path``.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.npz"); np.savez(p, x=np.eye(2), y=np.ones(2))
    >>> {k: a.shape for k, a in read_numpy(p, pick=lambda keys: ["x"]).items()}
    {'x': (2, 2)}
    """
    import zipfile
    import zlib

    path = Path(path)
    where = f"{name}: {path}"
    if not path.is_file():
        raise DataError(f"{name}: file not found: {path}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
            fh.seek(0)
            if head == b"\x93NUMPY":
                _check_npy_header(fh, path.stat().st_size, where)
        if head == b"\x93NUMPY":
            return np.load(path, allow_pickle=False)
        if head[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise DataError(f"{where}: cannot read it (corrupt or not a numpy file: it starts "
                            f"with neither the .npy magic nor a zip header)")
        with np.load(path, allow_pickle=False) as z:
            out = {}
            for key in (pick(list(z.files)) if pick is not None else z.files):
                member = key + ".npy"
                if member not in z.zip.namelist():
                    raise DataError(f"{where}: member {key!r} is not a numpy array")
                with z.zip.open(member) as fh:
                    _check_npy_header(fh, z.zip.getinfo(member).file_size,
                                      f"{where}: array {key!r}", f"its member {member}")
                out[key] = z[key]
            return out
    except DataError:
        raise
    except ValueError as e:
        # numpy says "Object arrays cannot be loaded when allow_pickle=False" for pickles.
        raise DataError(f"{where}: cannot load ({e}); only numeric arrays are "
                        f"accepted") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
        raise DataError(f"{where}: cannot read it (corrupt or not a numpy file: {e})") from None


def load_array(path, name: str = "X", delimiter=None, header=None,
               input_shape=None) -> np.ndarray:
    """Load a numeric array from ``.npy``, ``.npz``, ``.csv`` or ``.tsv`` without ever
    unpickling.

    In an ``.npz``, the array is the one under key ``x`` or ``X``, or the only one.  ``name``
    is how messages refer to the array (``--x``, ``--x2`` ...).  Reading goes through
    :func:`read_numpy`, so corrupt files and lying headers are DataErrors.  Delimited text
    (``.csv``, ``.tsv``, or any text file with a ``delimiter``; ``header`` True/False/None =
    auto) is read by :mod:`ntksym.tabular`: one example per row, reshaped to ``input_shape``
    when given; a bad cell is a DataError naming its line and column.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.npy"); np.save(p, np.eye(2))
    >>> load_array(p).shape
    (2, 2)
    """
    path = Path(path)
    if is_delimited(path, delimiter):
        X = read_delimited(path, name, delimiter, header)
        return X if input_shape is None else shape_rows(X, input_shape, name, path)
    if path.suffix not in (".npy", ".npz"):
        raise DataError(f"{name}: {path}: expected a .npy, .npz, .csv or .tsv file (or a "
                        "text file with --delimiter)")

    def pick(keys):
        key = next((k for k in ("x", "X") if k in keys), None)
        if key is None and len(keys) == 1:
            key = keys[0]
        if key is None:
            raise DataError(f"{name}: {path}: no array named 'x' or 'X' among "
                            f"{keys}; save the input as x")
        return [key]

    loaded = read_numpy(path, name, pick=pick)
    arr = next(iter(loaded.values())) if isinstance(loaded, dict) else loaded
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{name}: {path}: expected a numeric array, got dtype {arr.dtype}")
    return arr


def check_finite(X, name: str = "X") -> np.ndarray:
    """Return ``X`` unchanged if every entry is finite; else DataError naming the first bad one.

    >>> check_finite(np.array([[0.0, np.nan]]), "X")
    Traceback (most recent call last):
    ...
    ntksym.errors.DataError: X has a non-finite value nan at index (0, 1) (1 non-finite entries)
    """
    X = np.asarray(X)
    if X.dtype.kind in "fc":
        bad = ~np.isfinite(X)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"{name} has a non-finite value {X[first]} at index {first} "
                            f"({int(bad.sum())} non-finite entries)")
    return X
