"""Say where a kernel went numerically wrong: the pair (i, j) and the layer (node id).

:func:`check_result` scans a finished stack of kernel matrices once, in row chunks (no n x n
temporaries), for

* entries that are NaN or inf, or too large for the requested dtype: a
  :class:`~ntksym.errors.DataError` naming the kernel, the first such pair and, found by
  replaying that one pair with the program's own expressions (:mod:`ntksym.engine.trace`),
  the first layer whose value is not finite;
* underflow: entries that are denormal in the requested dtype, or a kernel that is zero
  everywhere: a :class:`~ntksym.errors.NumericalWarning` naming the pair and the layer where
  the diagonal of that example first drops below the smallest normal number.

Replaying a pair costs about one pair of the kernel (NumPy instead of compiled code), so the
diagnosis is free beside the matrix.

>>> import numpy as np
>>> out = np.array([[[1.0, np.inf], [np.inf, 1.0]]])
>>> check_result(out, ["ntk"], "float64")
Traceback (most recent call last):
...
ntksym.errors.DataError: the ntk kernel is not finite at (0, 1) (inf): the recursion
overflowed; check the weight variances, the activation and the input scale
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ntksym.errors import DataError, NumericalWarning

#: entries scanned at a time (a few MB of temporaries whatever n)
CHUNK = 1 << 20


@dataclass
class Source:
    """What a result was computed from, for the diagnosis: the kernel program and the checked
    data (X2 None for K(X, X)); ``offset`` shifts the reported indices (tiles); ``hp`` the
    values of the learnable constants the kernel received (the generated code's ``hp``
    argument; None: the program's own), which the replay must use too: the program holds them
    as symbols, and its derive-time values need not be the current ones."""

    prog: object
    X: np.ndarray
    X2: np.ndarray = None
    offset: tuple = (0, 0)
    hp: np.ndarray = None


def _scan(block, big, tiny):
    """First (i, j) of a non-finite or too large entry, first (i, j) of a denormal entry, and
    whether any entry is nonzero; ``block`` is (n1, m), scanned by rows."""
    n1, m = block.shape
    step = max(1, CHUNK // max(m, 1))
    bad = small = None
    nonzero = False
    buf = np.empty(min(step, n1) * m)
    for r0 in range(0, n1, step):
        b = block[r0:r0 + step]
        lo, hi = b.min(), b.max()           # NaN propagates: a NaN chunk takes the full scan
        if tiny <= lo and hi <= big:
            nonzero = True                  # every entry normal, positive and in range: the
            continue                        # common case, two reductions and no temporaries
        a = np.abs(b, out=buf[:b.size].reshape(b.shape))
        if -big <= lo and hi <= big and tiny <= a.min():
            nonzero = True                  # both signs, every entry normal and in range
            continue
        if bad is None:
            hit = ~(a <= big)                       # NaN compares False
            if hit.any():
                i, j = np.argwhere(hit)[0]
                bad = (r0 + int(i), int(j))
        if small is None:
            hit = (a < tiny) & (a > 0)
            if hit.any():
                i, j = np.argwhere(hit)[0]
                small = (r0 + int(i), int(j))
        nonzero = nonzero or bool((a > 0).any())
    return bad, small, nonzero


def _pair_index(j, out_shape):
    """Column index j of the (n1, n2 * extra) view of one kernel of the stack ``out``
    (len(names), n1, n2, extra...) back to the pair's column."""
    return j // int(np.prod(out_shape[3:], dtype=np.int64))


def _who(side, i, j):
    return {"x": f"K(x_{i}, x_{i})", "y": f"K(x_{j}, x_{j})", "pair": f"K(x_{i}, x_{j})"}[side]


def _first(values, test):
    """(name, value) of the first entry of a step's values for which test(array) holds."""
    for name, v in values.items():
        v = np.asarray(v, dtype=float)
        hit = test(v)
        if np.any(hit):
            return name, float(v[hit].flat[0]) if v.ndim else float(v)
    return None


def _examples(src, i, j):
    x = src.X[i]
    y = x if src.X2 is None and i == j else (src.X if src.X2 is None else src.X2)[j]
    return x, y


def _trace(src, i, j):
    if src is None or src.prog is None:
        return None, "the layer is not traced without the program"
    from ntksym.engine.trace import trace_pair
    x, y = _examples(src, i, j)
    steps = trace_pair(src.prog, x, y, src.hp)
    if steps is None:
        return None, ("the layer is not traced for sequence specs"
                      if src.prog.input_kind == "sequence" else
                      "the layer is not traced for images of this size with quadrature "
                      "activations")
    return steps, None


def locate_nonfinite(src, i, j, diagonal_only=False):
    """' at layer NODE (...)' for the first step of pair (i, j) whose value is not finite,
    or a note saying why it could not be found."""
    steps, why = _trace(src, i, j)
    if steps is None:
        return f" ({why})"
    for st in steps:
        if diagonal_only and st.side != "x":
            continue
        hit = _first(st.values, lambda v: ~np.isfinite(v))
        if hit:
            name, v = hit
            gi, gj = i + src.offset[0], j + src.offset[1]
            return (f"; it first appears at layer {st.node} in {name} of "
                    f"{_who(st.side, gi, gj)} = {v:g} ({st.description})")
    return " (replaying the pair in NumPy gives finite values: the compiled arithmetic differs)"


def locate_underflow(src, i):
    """' at layer NODE (...)' where the diagonal K(x_i, x_i) first drops below the smallest
    normal float64 (its NNGP state, Sigma), or a note saying why it could not be found."""
    steps, why = _trace(src, i, i)
    if steps is None:
        return f" ({why})"
    tiny = np.finfo(np.float64).tiny
    gi = i + src.offset[0]
    for st in steps:
        if st.side != "x":
            continue
        sig = {k: v for k, v in st.values.items() if k.startswith("Sigma")}
        if not sig:
            continue
        peak = max(float(np.max(np.abs(v))) for v in sig.values())
        if peak < tiny:
            name = next(iter(sig))
            if st.node == "input":
                if not np.any(src.X[i]):
                    return f" (example {gi} is all zeros)"
                return (f"; the input itself underflows: {name} = |x_{gi}|^2 / d = {peak:g} "
                        f"for a nonzero x_{gi} (below the smallest normal float64 "
                        f"{tiny:.3g}): rescale the inputs")
            return (f"; the diagonal K(x_{gi}, x_{gi}) first underflows at layer {st.node} "
                    f"({name} = {peak:g}, below the smallest normal float64 {tiny:.3g})")
    return ""


def check_result(out, names, dtype, source=None, off_diagonal_checked=False):
    """DataError for a non-finite entry (or one that overflows ``dtype``), NumericalWarning for
    an underflowed kernel; ``out`` is the stacked float64 result (len(names), n1, n2, ...),
    ``source`` a :class:`Source` for naming the layer (None: the pair only).

    ``off_diagonal_checked``: the caller already found every entry of the square kernels off
    their diagonals with a magnitude in [tiny, big] of ``dtype`` (the generated mirror reads
    them anyway); then, when the diagonals pass too, nothing else is scanned, and otherwise the
    full scan below finds and reports the entry."""
    info = np.finfo(np.dtype(dtype))
    big, tiny = float(info.max), float(info.tiny)
    if off_diagonal_checked and out.ndim == 3 and out.shape[1] == out.shape[2]:
        diag = np.abs(np.diagonal(out, axis1=1, axis2=2))
        if diag.size and tiny <= diag.min() and diag.max() <= big:
            return
    for q, name in enumerate(names):
        block = out[q].reshape(out.shape[1], -1)
        bad, small, nonzero = _scan(block, big, tiny)
        if bad is not None:
            i, j = bad
            v = float(block[i, j])
            j = _pair_index(j, out.shape)
            gi, gj = (i, j) if source is None else (i + source.offset[0], j + source.offset[1])
            if np.isfinite(v):
                raise DataError(f"the {name} kernel at ({gi}, {gj}) is {v:g}, too large for "
                                f"{dtype} (at most {big:.3g}); use --dtype float64 or smaller "
                                "weight variances / inputs")
            what = "overflowed" if np.isinf(v) else "gave NaN"
            where = "" if source is None else locate_nonfinite(
                source, i, j, diagonal_only=source.X2 is None and i == j)
            raise DataError(f"the {name} kernel is not finite at ({gi}, {gj}) ({v:g}): the "
                            f"recursion {what}{where}; check the weight variances, the "
                            "activation and the input scale")
        if small is None and (nonzero or source is None):
            continue
        i, j = small if small is not None else (0, 0)
        where = "" if source is None else locate_underflow(source, i)
        if small is None and not where.startswith(";"):
            continue        # zero everywhere, but not by underflow (e.g. a zero-variance term)
        j = _pair_index(j, out.shape)
        gi, gj = (i, j) if source is None else (i + source.offset[0], j + source.offset[1])
        what = (f"K[{gi}, {gj}] = {float(block[small]):g} is denormal in {dtype} (below "
                f"{tiny:.3g}, precision lost)" if small is not None
                else "every entry is zero")
        advice = ("" if "rescale the inputs" in where else "; check the weight variances "
                  "(their product over the layers) and the input scale")
        warnings.warn(f"the {name} kernel underflows: {what}{where}{advice}",
                      NumericalWarning, stacklevel=2)
