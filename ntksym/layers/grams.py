"""Gradient Gram products of a weight matrix and a bias at finite width: the NTK terms that
``dense`` and ``rnn`` share (z = c W y + c_b b, applied once or at every time step).

Two layouts of the gradients D (w.r.t. the layer's pre-activations z) and inputs Y:

* examples: D (n, m), Y (n, k): one output per example, one position (vector graphs);
* sequences: D (O, n, T, m), Y (n, T, k): O outputs per example (readout steps), the matrix
  acting at T steps.  The term of a pair sums over step pairs,
  sum_{t, s} <D1[o, i, t], D2[p, j, s]> <Y1[i, t], Y2[j, s]>, and has shape (O1, n1, O2, n2).

The Jacobian is never formed.  Masked matrices (stored as W ⊙ m, m = 0 or s) use the gradients
with respect to W: only the kept entries, times s^2.

>>> r = np.random.default_rng(0)
>>> D, Y = r.standard_normal((4, 3)), r.standard_normal((4, 2))
>>> J = np.einsum("ak,am->akm", Y, D).reshape(4, -1)      # dz/dW per example
>>> bool(np.allclose(weight_term(1.0, D, Y, D, Y), J @ J.T))
True
>>> S = weight_term(1.0, D[None, :, None], Y[:, None], D[None, :, None], Y[:, None])
>>> bool(np.allclose(S[0, :, 0], J @ J.T))               # one step, one output: the same
True
"""

from __future__ import annotations

import numpy as np


def weight_term(scale, D1, Y1, D2, Y2, kept=None, value=1.0):
    """``scale`` times the W-gradient inner products of the examples, with ``kept`` (bool,
    the kept entries of W) and ``value`` (s) for a masked matrix."""
    if D1.ndim == 2:
        if kept is None:
            return scale * (D1 @ D2.T) * (Y1 @ Y2.T)
        return scale * value * value * masked_gram(Y1, D1, Y2, D2, kept)
    if kept is None:
        return scale * pair_sum(D1, Y1, D2, Y2)
    return scale * (value * value * masked_pair_sum(D1, Y1, D2, Y2, kept))


def bias_term(scale, D1, D2):
    """``scale`` times the b-gradient inner products (the gradients summed over steps)."""
    if D1.ndim == 2:
        return scale * (D1 @ D2.T)
    return scale * pair_sum(D1, None, D2, None)


def pair_sum(D1, Y1, D2, Y2):
    """sum_{t, s} <D1[o, i, t], D2[p, j, s]> <Y1[i, t], Y2[j, s]>  ->  (O1, n1, O2, n2).

    D: (O, n, T, m) gradients, Y: (n, T, k) inputs (or None: the bias, Y = 1)."""
    O1, n1, T1, m = D1.shape
    O2, n2, T2, _ = D2.shape
    P = D1.reshape(O1 * n1 * T1, m) @ D2.reshape(O2 * n2 * T2, m).T
    P = P.reshape(O1, n1, T1, O2, n2, T2)
    if Y1 is None:
        return P.sum(axis=(2, 5))
    Q = (Y1.reshape(n1 * T1, -1) @ Y2.reshape(n2 * T2, -1).T).reshape(n1, T1, n2, T2)
    return np.einsum("oitpjs,itjs->oipj", P, Q)


def masked_pair_sum(D1, Y1, D2, Y2, kept, budget=1 << 24):
    """The term of a masked matrix: sum_{t,s} sum_{i,j} Y1[i', t, i] Y2[j', s, i] kept[i, j]
    D1[o, i', t, j] D2[p, j', s, j]  ->  (O1, n1, O2, n2).

    The gradient of output o of example i' w.r.t. the matrix (k x m) is sum_t y_t delta_t^T on
    the kept entries (times the constants, applied by the caller); the term is the Gram matrix
    of these per-example gradients.  kept^2 = kept, so the mask is applied to one side only.
    Rows of (output, example) are processed in chunks of about ``budget`` floats.

    >>> r = np.random.default_rng(0)
    >>> D, Y, K = (r.standard_normal((1, 2, 3, 4)), r.standard_normal((2, 3, 5)),
    ...            r.random((5, 4)) < .5)
    >>> ref = np.einsum("ati,bsi,ij,oatj,pbsj->oapb", Y, Y, K, D, D)
    >>> bool(np.allclose(masked_pair_sum(D, Y, D, Y, K), ref))
    True
    """
    O1, n1, _, m = D1.shape
    O2, n2, _, _ = D2.shape
    size = Y1.shape[2] * m
    Kf = kept.reshape(-1).astype(np.float64)
    step = max(1, budget // max(size, 1))

    def grads(Y, D, lo, hi):
        o, a = np.divmod(np.arange(lo, hi), D.shape[1])
        return np.matmul(Y[a].transpose(0, 2, 1), D[o, a]).reshape(hi - lo, size)

    out = np.empty((O1 * n1, O2 * n2))
    for lo2 in range(0, O2 * n2, step):
        hi2 = min(O2 * n2, lo2 + step)
        G2 = grads(Y2, D2, lo2, hi2)
        for lo1 in range(0, O1 * n1, step):
            hi1 = min(O1 * n1, lo1 + step)
            out[lo1:hi1, lo2:hi2] = (grads(Y1, D1, lo1, hi1) * Kf) @ G2.T
    return out.reshape(O1, n1, O2, n2)


def masked_gram(y1, d1, y2, d2, kept, block=1 << 22):
    """sum_ij y1[a,i] y2[b,i] kept[i,j] d1[a,j] d2[b,j]: the W-gradient inner products of a
    masked layer (d/dW_ij = y_i m_ij delta_j), without forming the (n, fan_in, width) Jacobian.

    Rows a are processed in blocks so the temporary (rows * n2, fan_in) stays below ``block``.
    """
    n1, n2 = y1.shape[0], y2.shape[0]
    K = kept.astype(np.float64)
    out = np.empty((n1, n2))
    rows = max(1, block // max(1, n2 * max(y1.shape[1], d1.shape[1])))
    for a0 in range(0, n1, rows):
        a1 = min(n1, a0 + rows)
        yy = (y1[a0:a1, None, :] * y2[None, :, :]).reshape(-1, y1.shape[1])
        P = (yy @ K).reshape(a1 - a0, n2, -1)
        out[a0:a1] = np.einsum("abj,aj,bj->ab", P, d1[a0:a1], d2)
    return out
