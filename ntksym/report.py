"""Summaries for people and for machines: the text and JSON forms of what a command returns.

Every ``ntksym`` command that reports numbers builds one summary, a dict of scalars, lists,
nested dicts and :class:`Table` objects, and prints it either with :func:`render` (aligned
``key: value`` lines and tables, numbers rounded for reading) or, with ``--json``, as JSON
with every digit (:func:`to_json`).  The layout rules of :func:`render`:

* a scalar: ``key: value`` (keys of one block aligned); numbers by :func:`fmt_num`, with
  ``digits`` + 2 significant digits (3 for times, keys with "seconds"), ``digits`` in tables;
* a list of scalars: ``key: a, b, c``;
* a list of dicts (records) or a dict of dicts: a table under ``key:``, one row per record
  (or per key); turned on its side when that is narrower than :data:`MAX_WIDTH` and the
  other way is not;
* a :class:`Table`: its title and its rows;
* any other dict: ``key:`` and its entries indented.

>>> print(render({"spec": "mlp", "seconds": 0.6698957770004199, "ok": True,
...               "shape": [4, 4], "runs": [{"alpha": 0.5, "gap": 7.976e-05},
...                                         {"alpha": 0.25, "gap": 0.0027331}]}))
spec:    mlp
seconds: 0.67
ok:      yes
shape:   4, 4
runs:
  alpha        gap
    0.5  7.976e-05
   0.25   0.002733
>>> print(to_json({"t": Table(["a", "b"], [[1, 2.5]])}))
{
  "t": [
    {
      "a": 1,
      "b": 2.5
    }
  ]
}
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass, field

__all__ = ["Table", "fmt_num", "render", "render_table", "to_json", "json_default",
           "MAX_WIDTH"]

#: widest table :func:`render` prefers (characters)
MAX_WIDTH = 100

# a cell that reads as a number: right-aligned
_NUM = r"[-+]?(\d[\d.]*|\.\d+)(e[-+]?\d+)?"
_NUMERIC = re.compile(rf"^({_NUM}(, {_NUM})*( ?%| s)?|-|yes|no|inf|-inf|nan)$")


def fmt_num(x, digits=4) -> str:
    """A number for reading: ``digits`` significant digits, trailing zeros dropped, fixed
    notation between 1e-3 and 1e6 (10^digits if larger), scientific outside; integers as
    they are; booleans as yes/no; None as ``-``; anything else by ``str``.

    >>> fmt_num(14579999.999999996, 6), fmt_num(0.19540666872978918, 6), fmt_num(2.0)
    ('1.458e7', '0.195407', '2')
    >>> fmt_num(7.976070212236883e-05), fmt_num(-1234.5678), fmt_num(12), fmt_num(False)
    ('7.976e-05', '-1235', '12', 'no')
    >>> fmt_num(float("inf")), fmt_num(None), fmt_num("CNTK-V")
    ('inf', '-', 'CNTK-V')
    >>> import sympy
    >>> fmt_num(sympy.Float("1.2345678e-482", 30))
    '1.235e-482'

    """
    if x is None:
        return "-"
    if _is_bool(x):
        return "yes" if x else "no"
    if isinstance(x, numbers.Integral):
        return str(int(x))
    if not isinstance(x, numbers.Real):
        return str(x)
    exact, x = x, float(x)
    if (x == 0 or not math.isfinite(x)) and exact == exact and exact != x:
        # beyond float64 (a sympy.Float such as 1e-482): its own scientific form
        mant, _, e = f"{exact:.{digits}g}".partition("e")
        mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
        return f"{mant}e{int(e)}" if int(e) > 0 else f"{mant}e-{abs(int(e)):02d}"
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    ax = abs(x)
    if 1e-3 <= ax < 10.0 ** max(digits, 6):
        s = f"{x:.{digits}g}"
        if "e" in s:                                    # 12345.6 at 4 digits: '1.235e+04'
            s = f"{round(x, digits - 1 - int(math.floor(math.log10(ax)))):.0f}"
        return s
    mant, exp = f"{x:.{digits - 1}e}".split("e")
    mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
    e = int(exp)
    return f"{mant}e{e}" if e > 0 else f"{mant}e-{abs(e):02d}"


@dataclass
class Table:
    """A table of ``rows`` (sequences) under ``header``, with an optional ``title`` above and
    ``note`` below; cells are formatted by :func:`fmt_num` (``digits`` significant digits)
    unless they are strings already.  Its JSON form is a list of records (one dict per row,
    every column); its text form shows the columns named in ``show`` (default: all).

    >>> print(Table(["depth", "accuracy"], [[3, 0.91234], [21, 0.9]], title="digits").text())
    digits
    depth  accuracy
        3    0.9123
       21       0.9
    """

    header: list
    rows: list
    title: str = ""
    note: str = ""
    digits: int | None = field(default=None)    # significant digits (None: the renderer's)
    show: list | None = None                    # the columns of the text form (None: all)

    def records(self) -> list:
        """One dict per row, keyed by the header."""
        return [dict(zip(self.header, r)) for r in self.rows]

    def text(self, digits=4) -> str:
        """The aligned table (numbers right-aligned, text left-aligned)."""
        lines = [self.title] if self.title else []
        cols = list(range(len(self.header))) if self.show is None else \
            [self.header.index(c) for c in self.show]
        lines += render_table([self.header[i] for i in cols],
                              [[r[i] for i in cols] for r in self.rows],
                              self.digits or digits).splitlines()
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def render_table(header, rows, digits=4) -> str:
    """Rows under a header, two spaces between columns; numbers (and strings such as
    ``91.2%``) right-aligned, other text left-aligned.

    >>> print(render_table(["name", "value", "share"], [["a", 1.5, "9.5%"], ["bb", 10, "-"]]))
    name  value  share
    a       1.5   9.5%
    bb       10      -
    """
    cells = [[c if isinstance(c, str) else
              ", ".join(fmt_num(x, digits) for x in c) if isinstance(c, (list, tuple)) else
              fmt_num(c, digits) for c in r] for r in rows]
    right = [all(_NUMERIC.match(r[i]) for r in cells if i < len(r))
             for i in range(len(header))]
    widths = [max([len(str(h))] + [len(r[i]) for r in cells if i < len(r)])
              for i, h in enumerate(header)]

    def line(cols):
        out = [(c.rjust(w) if right[i] else c.ljust(w)) for i, (c, w) in
               enumerate(zip(cols, widths))]
        return "  ".join(out).rstrip()
    return "\n".join([line([str(h) for h in header])] + [line(r) for r in cells])


def _is_bool(v):
    return isinstance(v, bool) or (type(v).__module__ == "numpy" and
                                   type(v).__name__ in ("bool", "bool_"))


def _is_scalar(v):
    return v is None or isinstance(v, (str, numbers.Number)) or _is_bool(v)


def _flat(d, prefix=""):
    """{"a": {"1": x}, "b": [y, z]} -> {"a 1": x, "b": "y, z"} (for one table row)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + " "))
        elif isinstance(v, (list, tuple)) and all(_is_scalar(x) for x in v):
            out[key] = ", ".join(fmt_num(x) for x in v)
        else:
            out[key] = v
    return out


def _records_table(records, index=None, digits=4):
    """A table of records (dicts), as rows, or on its side when that fits and rows do not."""
    flat = [_flat(r) for r in records]
    cols = []
    for r in flat:
        cols += [k for k in r if k not in cols]
    lead = [] if index is None else [""]
    rows = [([] if index is None else [str(index[i])]) + [r.get(c) for c in cols]
            for i, r in enumerate(flat)]
    wide = render_table(lead + cols, rows, digits)
    side_header = [""] + ([str(i) for i in index] if index is not None else
                          [str(i + 1) for i in range(len(flat))])
    side = render_table(side_header, [[c] + [r.get(c) for r in flat] for c in cols], digits)

    def width(t):
        return max(map(len, t.splitlines()))
    if width(wide) > MAX_WIDTH and width(side) < width(wide):
        return side
    return wide


def _is_records(v):
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, dict) for x in v):
        return True
    return isinstance(v, dict) and len(v) > 1 and all(isinstance(x, dict) and x and
                                                      all(not isinstance(y, Table)
                                                          for y in x.values())
                                                      for x in v.values())


def render(summary, digits=4, indent=0) -> str:
    """The text form of a summary dict (see the module docstring for the layout)."""
    pad = " " * indent
    scalar_keys = [k for k, v in summary.items() if _is_scalar(v) or
                   (isinstance(v, (list, tuple)) and all(_is_scalar(x) for x in v))]
    kw = min(max([len(str(k)) for k in scalar_keys] or [0]) + 1, 40)
    lines = []
    for k, v in summary.items():
        if isinstance(v, Table):
            text = v.text(digits)
            lines += [pad + ln for ln in text.splitlines()]
        elif k in scalar_keys:
            # a value alone: 2 more digits than a table cell; a time: 3
            dg = 3 if "seconds" in str(k) else digits + 2
            text = ", ".join(fmt_num(x, dg) for x in v) if isinstance(v, (list, tuple)) \
                else fmt_num(v, dg)
            lines.append(f"{pad}{(str(k) + ':').ljust(kw)} {text}".rstrip())
        elif _is_records(v):
            index = list(v) if isinstance(v, dict) else None
            records = list(v.values()) if isinstance(v, dict) else list(v)
            lines.append(f"{pad}{k}:")
            lines += [pad + "  " + ln for ln in
                      _records_table(records, index, digits).splitlines()]
        elif isinstance(v, dict):
            lines.append(f"{pad}{k}:")
            lines.append(render(v, digits, indent + 2))
        else:
            lines.append(f"{pad}{k}: {v}")
    return "\n".join(lines)


def json_default(obj):
    """``json.dumps(..., default=json_default)``: tables as records, numpy numbers and arrays
    as Python ones, paths as strings."""
    if isinstance(obj, Table):
        return obj.records()
    if hasattr(obj, "tolist"):                          # numpy scalars and arrays
        return obj.tolist()
    if isinstance(obj, numbers.Real):
        return float(obj)
    return str(obj)


def to_json(summary) -> str:
    """The JSON form of a summary (indent 2, every digit kept)."""
    return json.dumps(summary, indent=2, default=json_default)
