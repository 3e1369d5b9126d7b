"""The finite network's readouts of an ``rnn`` layer: which steps it reads ("last", "mean" or
"all" from ``readout_from``), the output from the states h_1..h_T, and its adjoint.

>>> import numpy as np
>>> node = {"params": {"readout": "mean", "readout_from": 2}}
>>> H = np.arange(6.0).reshape(1, 3, 2)            # one sequence, T = 3, width 2
>>> readout(node, H, np.array([3]))                 # mean of h_2, h_3
array([[[3., 4.]]])
"""

from __future__ import annotations

import numpy as np


def readout_mask(node, T, L):
    """(n, T) bool: the steps the "mean" / "all" readout reads (from readout_from, within
    each sequence's length)."""
    steps = np.arange(T)[None, :]
    if node["params"]["readout"] == "mean":
        return (steps >= node["params"]["readout_from"] - 1) & (steps < L[:, None])
    return steps < L[:, None]


def readout(node, Hs, L):
    """The layer's output from its states h_1..h_T (n, T, width) and the lengths L."""
    mode, frm = node["params"]["readout"], node["params"]["readout_from"]
    n, T, _ = Hs.shape
    if mode == "last":
        return Hs[np.arange(n), L - 1][:, None, :]
    mask = readout_mask(node, T, L)
    if mode == "mean":
        return ((Hs * mask[:, :, None]).sum(1) / mask.sum(1)[:, None])[:, None, :]
    return (Hs * mask[:, :, None])[:, frm - 1:]


def readout_adjoint(node, grad, shape, L):
    """The gradients w.r.t. h_1..h_T (O, n, T, width) from those w.r.t. the readout (O, n,
    T_out, width); ``shape`` = (n, T, width), zero past each length."""
    mode, frm = node["params"]["readout"], node["params"]["readout_from"]
    n, T, m = shape
    dH = np.zeros(grad.shape[:2] + (T, m))
    if mode == "last":
        dH[:, np.arange(n), L - 1] = grad[:, :, 0]
        return dH
    mask = readout_mask(node, T, L)
    if mode == "mean":
        dH += grad[:, :, :1] * (mask / mask.sum(1)[:, None])[None, :, :, None]
    else:
        dH[:, :, frm - 1:] = grad * mask[None, :, frm - 1:, None]
    return dH
