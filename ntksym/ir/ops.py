"""Typed structural operations: the index-moving steps of a kernel program.

An elementwise step maps the state at one index (pixel pair, time pair) to the state at the
same index; a structural step moves indices: a convolution's patch sum, a pooling window, the
global average or the trace (flatten) that reduces a pixel grid to one number per pair, an rnn
layer's recurrence over time pairs and its readout.  Each is a small frozen dataclass carrying
only its static parameters; the printers (text, LaTeX, Python in :mod:`ntksym.ir.printing`,
Numba) handle each with a ``_print_<Op>`` / ``_emit_<Op>`` method named after the class (or a
base class), so a new index-moving layer adds one class here and one method per printer, never
an ``if`` chain.

>>> op = PatchSum(in_hw=(8, 8), out_hw=(8, 8), filter=(3, 3), stride=(1, 1),
...               padding="same", pads=(1, 1))
>>> op.label, op.is_stride_one
('patch_sum', True)
>>> GlobalAvg(in_hw=(8, 8)).out_hw is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class StructuralOp:
    """Base class of the index-moving operations."""

    #: the name printed by ``ntksym derive`` (and in generated headers)
    label: ClassVar[str] = ""
    #: one output entry in terms of the input entry In, for the text printer
    formula: ClassVar[str] = ""

    def parameters(self):
        """The static parameters printed by ``ntksym derive`` (besides the grids)."""
        return {}


@dataclass(frozen=True)
class ImageOp(StructuralOp):
    """An index-moving operation on image state, from an (H, W) pixel grid."""

    in_hw: tuple


@dataclass(frozen=True)
class WindowOp(ImageOp):
    """A sliding window over both pixels of a pair: output (p, p') sums the input over the
    windows of p and p' (``pads`` = the zero padding before the first row / column)."""

    out_hw: tuple
    filter: tuple
    stride: tuple
    padding: str
    pads: tuple

    def __post_init__(self):
        for name in ("in_hw", "out_hw", "filter", "stride", "pads"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))

    @property
    def is_stride_one(self):
        return self.stride == (1, 1)

    @property
    def circular(self):
        return self.padding == "circular"

    def parameters(self):
        return {"filter": self.filter, "stride": self.stride, "padding": self.padding,
                "pads": self.pads}


@dataclass(frozen=True)
class PatchSum(WindowOp):
    """The convolution's patch sum: the same filter offset a for both pixels of the pair."""

    label: ClassVar[str] = "patch_sum"
    formula: ClassVar[str] = "sum_{a in filter} In[s*p + a - pad, s*p' + a - pad]"


@dataclass(frozen=True)
class AvgPool(WindowOp):
    """Average pooling: every pair of window offsets (a, a'), divided by the window size^2."""

    label: ClassVar[str] = "avg_pool"
    formula: ClassVar[str] = "(1/m^2) sum_{a, a' in window} In[s*p + a - pad, s*p' + a' - pad]"


@dataclass(frozen=True)
class GlobalAvg(ImageOp):
    """Global average pooling: the mean over all pixel pairs (p, p')."""

    label: ClassVar[str] = "global_avg"
    formula: ClassVar[str] = "(1/P^2) sum_{p, p'} In[p, p']"
    out_hw: ClassVar[None] = None       # one number per pair


@dataclass(frozen=True)
class Flatten(ImageOp):
    """Flatten then a dense layer: the trace, the mean over the pixel diagonal (p, p)."""

    label: ClassVar[str] = "flatten"
    formula: ClassVar[str] = "(1/P) sum_p In[p, p]"
    out_hw: ClassVar[None] = None       # one number per pair


# ------------------------------------------------------------------------- sequences

@dataclass(frozen=True)
class TimeRecurrence(StructuralOp):
    """An rnn layer's recurrence over time pairs (t, t'), t = 1..T of x, t' = 1..T' of x'.

    ``cross`` / ``diag``: the elementwise body (Assign tuples, pre-activation ``Sigma_kg`` ...
    then post-activation ``Sigma_k`` ...), for the pair and per example (a time series);
    ``carry`` / ``carry_diag``: (previous, current, boundary value) triples: the symbol ``*p``
    read at (t, t') holds the current symbol of (t-1, t'-1), and the boundary value at t = 0 or
    t' = 0 (the cross boundary ``hidden_init_var`` applies to the same example only);
    ``k``: the index of the layer's symbols.
    """

    label: ClassVar[str] = "time_recurrence"

    cross: tuple
    diag: tuple
    carry: tuple
    carry_diag: tuple
    hidden_init_var: object
    k: int

    def __post_init__(self):
        for name in ("cross", "diag", "carry", "carry_diag"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


@dataclass(frozen=True)
class Readout(StructuralOp):
    """An rnn layer's readout of its time-pair grid.

    ``mode``: "last" (the pair (T, T'), aligned from the end), "mean" (the average over all
    pairs t, t' >= ``start``) or "all" (the grid itself from step ``start`` on: the outputs are
    one kernel per pair of time steps; ``map`` is then empty).  ``map`` / ``map_diag``:
    (new symbol, grid symbol) pairs, every state entry read out the same way.

    >>> Readout(mode="all", start=2).label
    'readout'
    """

    label: ClassVar[str] = "readout"

    mode: str
    start: int = 1
    map: tuple = ()
    map_diag: tuple = ()

    def __post_init__(self):
        for name in ("map", "map_diag"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
