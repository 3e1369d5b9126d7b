"""The graph kernels (add, concat, layer_norm; residual MLPs and CNNs) against a plain-numpy
recursion written here, to 1e-12.

The oracle is written differently from ntksym on purpose: the state of a layer is ONE covariance
matrix over every (example, pixel) pair of the batch, S[(x, p), (x', p')] (vectors: one pixel),
with the diagonal entries inside it, and each layer is matrix algebra on it:

* dense / conv (ntk parameterization, fan_in normalized, W and b trainable):
  S' = w * A(S) + b,  T' = w * A(T) + S', where A is the identity (dense) or the patch sum
  (1/q^2) sum_o Shift_o S Shift_o^T with both pixels shifted by the same offset o;
* activations: S' = E[phi(u) phi(v)], T' = E[phi'(u) phi'(v)] * T elementwise, with
  (u, v) ~ N(0, [[S_ii, S_ij], [S_ij, S_jj]]) read from the diagonal of S itself;
* add: S' = sum s_k^2 S_k (T alike); concat: the mean of the branches; layer_norm:
  S' = S / sqrt(d d^T), T' = T / sqrt(d d^T), d = diag(S);
* avg_pool: Pool S Pool^T; global_avg_pool: mean over pixel pairs; flatten: mean over the pixel
  diagonal of every example pair.
"""

import math

import numpy as np
import pytest

import ntksym
from graph_cases import CASES

W_VAR, B_VAR = 2.0, 0.1      # the [defaults] of every case


# ----------------------------------------------------------------------------- the oracle
class State:
    """S and T over (example, pixel) pairs; n examples of an (H, W) grid (1 x 1: vectors)."""

    def __init__(self, S, T, n, hw):
        self.S, self.T, self.n, self.hw = S, T, n, hw

    def with_(self, S, T, hw=None):
        return State(S, T, self.n, self.hw if hw is None else hw)


def inputs(X):
    n = X.shape[0]
    if X.ndim == 2:
        S = X @ X.T / X.shape[1]
        return State(S, np.zeros_like(S), n, (1, 1))
    _, H, W, C = X.shape
    F = X.reshape(n * H * W, C)
    S = F @ F.T / C
    return State(S, np.zeros_like(S), n, (H, W))


def shift(n, hw, di, dj):
    """The (n P) x (n P) matrix moving every example's pixel (i, j) to (i + di, j + dj), zero
    where that leaves the grid (zero padding)."""
    H, W = hw
    P = H * W
    M = np.zeros((n * P, n * P))
    for x in range(n):
        for i in range(H):
            for j in range(W):
                r, c = i + di, j + dj
                if 0 <= r < H and 0 <= c < W:
                    M[x * P + i * W + j, x * P + r * W + c] = 1.0
    return M


def patch_sum(st, M, q):
    offsets = [(a, b) for a in range(-(q // 2), q // 2 + 1) for b in range(-(q // 2), q // 2 + 1)]
    shifts = [shift(st.n, st.hw, a, b) for a, b in offsets]
    return sum(Sh @ M @ Sh.T for Sh in shifts) / q ** 2


def affine(st, w=W_VAR, b=B_VAR, q=None):
    """dense (q None) or a 'same' q x q conv, W and b trainable."""
    A = (lambda M: M) if q is None else (lambda M: patch_sum(st, M, q))
    S = w * A(st.S) + b
    return st.with_(S, w * A(st.T) + S)


def _pairs(S):
    d = np.diag(S)
    a, b = d[:, None], d[None, :]
    rho = np.clip(S / np.sqrt(a * b), -1.0, 1.0)
    return a, b, rho


def relu(st):
    a, b, rho = _pairs(st.S)
    th = np.arccos(rho)
    S = np.sqrt(a * b) * (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi)
    return st.with_(S, (np.pi - th) / (2 * np.pi) * st.T)


def leaky_relu(st, slope):
    # phi = slope z + (1 - slope) relu(z): E[z relu(v)] = c/2, E[1{u>0}] = 1/2
    a, b, rho = _pairs(st.S)
    th = np.arccos(rho)
    k1 = np.sqrt(a * b) * (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi)
    c = st.S
    S = slope ** 2 * c + slope * (1 - slope) * c + (1 - slope) ** 2 * k1
    dS = slope ** 2 + slope * (1 - slope) + (1 - slope) ** 2 * (np.pi - th) / (2 * np.pi)
    return st.with_(S, dS * st.T)


def erf(st):
    a, b, _ = _pairs(st.S)
    c = st.S
    den = np.sqrt((1 + 2 * a) * (1 + 2 * b))
    S = 2 / np.pi * np.arcsin(np.clip(2 * c / den, -1, 1))
    dS = 4 / np.pi / np.sqrt((1 + 2 * a) * (1 + 2 * b) - 4 * c ** 2)
    return st.with_(S, dS * st.T)


def add(states, scales):
    return states[0].with_(sum(s ** 2 * st.S for s, st in zip(scales, states)),
                           sum(s ** 2 * st.T for s, st in zip(scales, states)))


def concat(states):
    k = len(states)
    return states[0].with_(sum(st.S for st in states) / k, sum(st.T for st in states) / k)


def layer_norm(st):
    d = np.diag(st.S)
    r = 1 / np.sqrt(d[:, None] * d[None, :])
    return st.with_(st.S * r, st.T * r)


def avg_pool_2x2(st):
    H, W = st.hw
    Ho, Wo = H // 2, W // 2
    P, Po = H * W, Ho * Wo
    M = np.zeros((st.n * Po, st.n * P))
    for x in range(st.n):
        for i in range(Ho):
            for j in range(Wo):
                for a in range(2):
                    for b in range(2):
                        M[x * Po + i * Wo + j, x * P + (2 * i + a) * W + 2 * j + b] = 0.25
    return st.with_(M @ st.S @ M.T, M @ st.T @ M.T, (Ho, Wo))


def _per_example(st, reduce):
    P = st.hw[0] * st.hw[1]
    out = [np.empty((st.n, st.n)) for _ in range(2)]
    for x in range(st.n):
        for y in range(st.n):
            for M, O in zip((st.S, st.T), out):
                O[x, y] = reduce(M[x * P:(x + 1) * P, y * P:(y + 1) * P])
    return st.with_(out[0], out[1], (1, 1))


def global_avg_pool(st):
    return _per_example(st, np.mean)


def flatten(st):
    return _per_example(st, lambda B: np.mean(np.diag(B)))


# ----------------------------------------------------------------------------- the six cases
def residual_mlp(X):
    y = affine(inputs(X))
    for _ in range(2):
        branch = affine(relu(affine(relu(y))))
        y = add([y, branch], [1.0, 0.5])
    return affine(relu(y))


def dense_shortcut(X):
    stem = relu(affine(inputs(X)))
    branch = affine(leaky_relu(affine(stem), 0.2))
    shortcut = affine(stem, w=1.0)
    return affine(erf(add([branch, shortcut], [1.0, 1.0])))


def concat_relu_erf(X):
    x = inputs(X)
    a, b = relu(affine(x)), erf(affine(x, w=1.5))
    return affine(relu(affine(concat([a, b]))))


def layer_norm_mlp(X):
    y = relu(layer_norm(affine(inputs(X))))
    y = erf(layer_norm(affine(y)))
    return affine(y)


def residual_cnn_gap(X):
    stem = affine(inputs(X), q=3)
    branch = affine(relu(affine(relu(stem), q=3)), q=3)
    return affine(global_avg_pool(relu(add([stem, branch], [1.0, 1.0]))))


def residual_cnn_pool(X):
    r1 = relu(affine(inputs(X), q=3))
    branch = affine(relu(affine(r1, q=3)), q=3)
    shortcut = affine(r1, q=1)
    y = avg_pool_2x2(relu(add([shortcut, branch], [1.0, 1.0])))
    return affine(flatten(y))


ORACLES = {"residual_mlp": residual_mlp, "dense_shortcut": dense_shortcut,
           "concat_relu_erf": concat_relu_erf, "layer_norm_mlp": layer_norm_mlp,
           "residual_cnn_gap": residual_cnn_gap, "residual_cnn_pool": residual_cnn_pool}


@pytest.mark.parametrize("case", sorted(CASES))
def test_graph_kernel_matches_the_numpy_recursion(case):
    arch = ntksym.loads_spec(CASES[case])
    shape = tuple(arch.graph.graph["input_shape"])
    rng = np.random.default_rng(sum(map(ord, case)))
    X = rng.standard_normal((4,) + shape)
    X2 = rng.standard_normal((3,) + shape)
    both = np.concatenate([X, X2])
    want = ORACLES[case](both)
    got = ntksym.kernel(arch, X, kind="both")
    cross = ntksym.kernel(arch, X, X2, kind="both")
    for kind, M in (("nngp", want.S), ("ntk", want.T)):
        scale = np.abs(M).max()
        assert np.abs(got[kind] - M[:4, :4]).max() <= 1e-12 * scale, (case, kind)
        assert np.abs(cross[kind] - M[:4, 4:]).max() <= 1e-12 * scale, (case, kind, "X2")


def test_the_oracle_is_not_trivially_satisfied():
    """The branches matter: the residual MLP's kernel is not the plain MLP's, and a concat of
    relu and erf branches is neither branch alone."""
    X = np.random.default_rng(0).standard_normal((3, 5))
    res = residual_mlp(X).T
    plain = affine(relu(affine(relu(affine(relu(affine(relu(affine(inputs(X)))))))))).T
    assert np.abs(res - plain).max() > 0.1
    x = inputs(X)
    cat = affine(concat([relu(affine(x)), erf(affine(x, w=1.5))])).S
    only_relu = affine(relu(affine(x))).S
    assert np.abs(cat - only_relu).max() > 0.01
    assert math.isfinite(float(cat.sum()))
