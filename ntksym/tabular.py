"""Delimited text (CSV, TSV) as input data: one example per row, every cell a finite number.

``--x data.csv`` / ``--x2`` (and :func:`ntksym.data.load_array`) read a ``.csv`` (comma) or
``.tsv`` (tab) file, or any other text file with an explicit ``delimiter``:

* **delimiter**: from the extension (``.csv`` comma, ``.tsv`` tab) unless given: one character,
  or the names ``comma``, ``tab``, ``semicolon``, ``space``, ``whitespace`` (runs of blanks);
* **header**: ``True`` skips the first non-empty line, ``False`` reads it as data, ``None``
  (default) treats it as a header exactly when none of its cells is a number;
* **shape**: a row is one example flattened in row-major (C) order: vectors ``[d]`` take d
  columns, images ``[H, W, C]`` take H*W*C columns (channels last: pixel (i, j) channel c is
  column (i*W + j)*C + c), sequences ``[T, d]`` take T*d columns (time-major; with T = -1 every
  row holds the same number of steps, columns / d; variable lengths need an ``.npz`` with
  ``lengths``).  :func:`shape_rows` reshapes.

Blank lines are skipped; cells may be quoted; nothing is ever evaluated.  A bad cell is one
:class:`~ntksym.errors.DataError` naming the file, line and column: text that is not a number,
an empty cell, NaN or infinity, or a row with a different number of columns than the first.

>>> import os, tempfile
>>> p = os.path.join(tempfile.mkdtemp(), "x.csv")
>>> _ = open(p, "w").write("a,b,c,d\\n1,2,3,4\\n5,6,7,8\\n")
>>> read_delimited(p)                       # the header is detected: no cell is a number
array([[1., 2., 3., 4.],
       [5., 6., 7., 8.]])
>>> shape_rows(read_delimited(p), [2, 2, 1], "--x", p).shape
(2, 2, 2, 1)
>>> _ = open(p, "w").write("1,2\\n3,oops\\n")
>>> read_delimited(p, name="--x")                                  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ntksym.errors.DataError: --x: ...x.csv: line 2, column 2: 'oops' is not a number
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import numpy as np

from ntksym.errors import DataError

__all__ = ["DELIMITED_SUFFIXES", "DELIMITER_NAMES", "is_delimited", "read_delimited",
           "shape_rows"]

#: file extensions read as delimited text, and their delimiter
DELIMITED_SUFFIXES = {".csv": ",", ".tsv": "\t"}
#: names accepted for a delimiter (besides any single character)
DELIMITER_NAMES = {"comma": ",", "tab": "\t", "\\t": "\t", "semicolon": ";", "space": " ",
                   "whitespace": None, "pipe": "|"}
_WHITESPACE = "whitespace"


def is_delimited(path, delimiter=None) -> bool:
    """Whether ``path`` is read as delimited text: a .csv/.tsv name, or any name but .npy/.npz
    when a ``delimiter`` is given.

    >>> is_delimited("x.tsv"), is_delimited("x.txt"), is_delimited("x.txt", ";")
    (True, False, True)
    """
    suffix = Path(path).suffix.lower()
    return suffix in DELIMITED_SUFFIXES or (delimiter is not None
                                            and suffix not in (".npy", ".npz"))


def _delimiter(path, delimiter, name):
    if delimiter is None:
        suffix = Path(path).suffix.lower()
        if suffix not in DELIMITED_SUFFIXES:
            raise DataError(f"{name}: {path}: give a delimiter (--delimiter) for a "
                            f"{suffix or 'suffix-less'} file, or name it .csv / .tsv")
        return DELIMITED_SUFFIXES[suffix]
    if delimiter in DELIMITER_NAMES:
        return DELIMITER_NAMES[delimiter] or _WHITESPACE
    if len(delimiter) != 1 or delimiter in "\"\r\n" or delimiter.isalnum() or delimiter in ".-+":
        raise DataError(f"{name}: delimiter {delimiter!r} must be one character other than a "
                        f"digit, letter, quote, '.', '-' or '+', or one of "
                        f"{', '.join(DELIMITER_NAMES)}")
    return delimiter


def _rows(fh, delimiter):
    """(line number, cells) of every non-blank line."""
    if delimiter == _WHITESPACE:
        for no, line in enumerate(fh, 1):
            cells = line.split()
            if cells:
                yield no, cells
        return
    reader = csv.reader(fh, delimiter=delimiter, skipinitialspace=delimiter != " ")
    start = 1
    for cells in reader:
        if cells and any(c.strip() for c in cells) or len(cells) > 1:
            yield start, cells
        start = reader.line_num + 1


def _is_header(cells):
    """Auto-detection: no cell is a number, nor numbers joined by another delimiter (a
    semicolon-separated file read as CSV is data, not a header)."""
    for c in cells:
        c = c.strip()
        if _number(c) is not None:
            return False
        for other in ";,\t| ":
            parts = c.split(other)
            if len(parts) > 1 and all(_number(q.strip()) is not None for q in parts):
                return False
    return True


def _number(cell):
    try:
        return float(cell)
    except ValueError:
        return None


def read_delimited(path, name="X", delimiter=None, header=None) -> np.ndarray:
    """The rows of a delimited text file as a float64 array (rows, columns).

    ``delimiter``: see the module docstring (None: from the extension); ``header``: True,
    False or None (auto: a first line without any number is a header).  DataError, naming
    the file, line and column, for a cell that is not a finite number or a row of the wrong
    length; DataError for a missing file or one without data rows.
    """
    path = Path(path)
    where = f"{name}: {path}"
    if not path.is_file():
        raise DataError(f"{name}: file not found: {path}")
    sep = _delimiter(path, delimiter, name)
    fast = _fast(path, sep, header)
    if fast is not None:
        return fast
    values, first_line, ncols = [], None, None
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            for no, cells in _rows(fh, sep):
                if first_line is None:
                    first_line = no
                    skip = header if header is not None else _is_header(cells)
                    if skip:
                        continue
                if ncols is None:
                    ncols = (no, len(cells))
                elif len(cells) != ncols[1]:
                    k, n = len(cells), ncols[1]
                    what = "an extra cell" if k > n else "missing"
                    raise DataError(f"{where}: line {no}, column {min(k, n) + 1}: {what}; the "
                                    f"row has {k} column{'s' if k != 1 else ''}, line "
                                    f"{ncols[0]} has {n}" + _hint(cells, sep, delimiter))
                values.append([_cell(c, no, j, where, sep, delimiter, first_line, header)
                               for j, c in enumerate(cells, 1)])
    except UnicodeDecodeError as e:
        raise DataError(f"{where}: not a text file ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise DataError(f"{where}: cannot parse it as delimited text ({e})") from None
    except OSError as e:
        raise DataError(f"{where}: cannot read it ({e})") from None
    if not values:
        raise DataError(f"{where}: no data rows" + (" (only a header)" if first_line else ""))
    return np.array(values, dtype=np.float64)


def _fast(path, sep, header):
    """numpy's C parser for a clean file (the common case); None when anything is unusual
    (then the line-by-line reader finds and names the problem, or reads what numpy cannot,
    such as quoted cells)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            first = next(_rows(fh, sep), None)
        if first is None:
            return None
        no, cells = first
        skip = header if header is not None else _is_header(cells)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")       # "input contained no data": ours says it
            X = np.loadtxt(path, delimiter=None if sep == _WHITESPACE else sep, comments=None,
                           skiprows=no if skip else 0, ndmin=2, dtype=np.float64,
                           encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError, csv.Error, OSError):
        return None
    if X.size == 0 or not np.isfinite(X).all():
        return None
    return X


def _cell(cell, line, col, where, sep, delimiter, first_line, header):
    text = cell.strip()
    at = f"{where}: line {line}, column {col}"
    if not text:
        raise DataError(f"{at}: empty cell")
    v = _number(text)
    if v is None:
        hint = _hint([text], sep, delimiter)
        if not hint and line == first_line and header is None:
            hint = " (if line 1 is a header, pass --header)"
        raise DataError(f"{at}: {text[:40]!r} is not a number{hint}")
    if not math.isfinite(v):
        raise DataError(f"{at}: {text!r} is not a finite number; remove or impute it first")
    return v


def _hint(cells, sep, delimiter):
    """A delimiter suggestion when the cells look split by another one."""
    for other, word in ((";", "semicolon"), ("\t", "tab"), (",", "comma"), ("|", "pipe")):
        if other != sep and any(other in c for c in cells):
            return f" (the file looks {word}-separated: pass --delimiter {word})"
    return ""


def shape_rows(X, input_shape, name="X", path=None) -> np.ndarray:
    """Rows (n, m) as examples of ``input_shape``: [d] unchanged, [H, W, C] and [T, d]
    reshaped in row-major order (T = -1: m / d steps); DataError if m does not fit.

    >>> shape_rows(np.arange(12.0).reshape(2, 6), [-1, 3]).shape
    (2, 2, 3)
    """
    shape = [int(s) for s in input_shape]
    m = X.shape[1]
    where = f"{name}: {path}" if path is not None else name
    if len(shape) == 2 and shape[0] == -1:
        if m % shape[1]:
            raise DataError(f"{where}: rows of {m} values are not whole steps of {shape[1]} "
                            f"features (the spec's input is [T, {shape[1]}]); variable-length "
                            "sequences need an .npz with x and lengths")
        return X.reshape(X.shape[0], m // shape[1], shape[1])
    need = math.prod(shape)
    if m != need:
        what = ("a vector" if len(shape) == 1 else
                "an image, flattened row-major, channels last" if len(shape) == 3 else
                "a sequence, flattened time-major")
        raise DataError(f"{where}: rows have {m} values, but an example of the spec's input "
                        f"shape {shape} is {need} values ({what})")
    return X.reshape(X.shape[0], *shape)
