"""rnn with ``readout = "all"`` followed by layers: the layers act at every pair of time steps.

The oracle is a plain-numpy recursion written here from the conventions of
:mod:`ntksym.layers.rnn` (Sigma_0(t, t') = <x_t, x'_t'> / d, h_0 ~ N(0, hidden_init_var) per
example, so Sigma_h(0, 0) = hidden_init_var 1{x = x'} and 0 when one time index is 0; Theta_h = 0
on the boundary), the dense rule nngp' = w nngp + b, ntk' = w ntk + nngp', the ReLU arc-cosine
duals, add (sum of scale^2 times each branch) and layer_norm (divide by sqrt(Sigma(x, x; t)
Sigma(x', x'; t'))).  The same example of K(X, X) uses the exact diagonal rules at t = t'.  The
output of "all" is (n1, n2, T1', T2') per kind, T' = T - readout_from + 1, 0 past a sequence's
length.  The finite networks built from the same specs agree within 4 standard errors (on the
entries within both sequences' lengths: past a length the finite network's per-step layers
still act on the zeroed states, while the limit kernel is defined as 0 there).
"""

import numpy as np
import pytest

import ntksym

RNN = '''
[[layer]]
kind = "rnn"
weight_var = 1.5
input_var = 1.0
bias_var = 0.2
hidden_init_var = 0.3
readout = "all"
readout_from = {frm}
'''

# rnn(all) -> dense -> relu -> dense
CHAIN = 'name = "all-chain"\ninput = { shape = [-1, 3] }\n' + RNN.format(frm=1) + '''
[[layer]]
kind = "dense"
weight_var = 2.0
bias_var = 0.1
[[layer]]
kind = "relu"
[[layer]]
kind = "dense"
weight_var = 1.5
bias_var = 0.2
'''

# rnn(all, from step 2) -> dense (a) -> relu -> dense (b) -> add(a, b) -> layer_norm -> dense
GRAPH = 'name = "all-graph"\ninput = { shape = [-1, 3] }\n' + RNN.format(frm=2) + '''
[[layer]]
kind = "dense"
id = "a"
weight_var = 2.0
bias_var = 0.1
[[layer]]
kind = "relu"
[[layer]]
kind = "dense"
id = "b"
weight_var = 2.0
[[layer]]
kind = "add"
inputs = ["a", "b"]
scales = [1.0, 0.5]
[[layer]]
kind = "layer_norm"
[[layer]]
kind = "dense"
bias_var = 0.1
'''

W_H, A_H, B_H, H0 = 1.5, 1.0, 0.2, 0.3       # the rnn of both specs


# ------------------------------------------------------------------ the plain-numpy oracle
# A state: (S, Th, dx, tx, dy, ty): the cross matrices over (t, t') and the diagonal series
# Sigma(x, x; t), Theta(x, x; t) of both sides (column / row vectors).

def _exact_diagonal(state, same):
    """The same example of K(X, X): the entries t = t' are the diagonal rule's values."""
    S, Th, dx, tx, dy, ty = state
    if same:
        S, Th = S.copy(), Th.copy()
        k = np.arange(min(S.shape))
        S[k, k], Th[k, k] = dx[k, 0], tx[k, 0]
    return S, Th, dx, tx, dy, ty


def _relu_cross(S, a, b):
    n = np.sqrt(a * b)
    th = np.arccos(np.clip(S / n, -1.0, 1.0))
    return n * (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi), (np.pi - th) / (2 * np.pi)


def _rnn(x, y, same):
    """The rnn's grid over (t, t') for sequences x (T1, d), y (T2, d), and its diagonals."""
    d = x.shape[1]

    def series(z):
        s, th, S, Th = H0, 0.0, [], []
        for zt in z:
            g = W_H * s + A_H * (zt @ zt) / d + B_H
            tg = W_H * th + W_H * s + A_H * (zt @ zt) / d + B_H
            s, th = g / 2, tg / 2                       # ReLU on the diagonal
            S.append(s)
            Th.append(th)
        return np.array(S)[:, None], np.array(Th)[:, None]

    dx, tx = series(x)
    dy, ty = series(y)
    gx, gy = 2 * dx, 2 * dy                             # Sigma_g(x, x; t)
    S, Th = np.zeros((len(x), len(y))), np.zeros((len(x), len(y)))
    for t in range(len(x)):
        for u in range(len(y)):
            if same and t == u:
                S[t, u], Th[t, u] = dx[t, 0], tx[t, 0]
                continue
            if t and u:
                sp, tp = S[t - 1, u - 1], Th[t - 1, u - 1]
            else:
                sp, tp = (H0 if same and t == u == 0 else 0.0), 0.0
            sin = x[t] @ y[u] / d
            g = W_H * sp + A_H * sin + B_H
            tg = W_H * tp + W_H * sp + A_H * sin + B_H
            s, k1 = _relu_cross(np.array(g), gx[t, 0], gy[u, 0])
            S[t, u], Th[t, u] = s, k1 * tg
    return S, Th, dx, tx, dy.T, ty.T


def _dense(state, w, b, same):
    S, Th, dx, tx, dy, ty = state
    S2, dx2, dy2 = w * S + b, w * dx + b, w * dy + b
    return _exact_diagonal((S2, w * Th + S2, dx2, w * tx + dx2, dy2, w * ty + dy2), same)


def _relu(state, same):
    S, Th, dx, tx, dy, ty = state
    S2, k1 = _relu_cross(S, dx, dy)
    return _exact_diagonal((S2, k1 * Th, dx / 2, tx / 2, dy / 2, ty / 2), same)


def _add(s1, s2, c2, same):
    return _exact_diagonal(tuple(a + c2 ** 2 * b for a, b in zip(s1, s2)), same)


def _layer_norm(state, same):
    S, Th, dx, tx, dy, ty = state
    r = 1 / np.sqrt(dx * dy)
    one_x, one_y = np.ones_like(dx), np.ones_like(dy)
    return _exact_diagonal((S * r, Th * r, one_x, tx / dx, one_y, ty / dy), same)


def _chain(x, y, same):
    h = _rnn(x, y, same)
    return _dense(_relu(_dense(h, 2.0, 0.1, same), same), 1.5, 0.2, same)


def _graph(x, y, same):
    h = _rnn(x, y, same)
    S, Th, dx, tx, dy, ty = h                                  # readout_from = 2:
    h = (S[1:, 1:], Th[1:, 1:], dx[1:], tx[1:], dy[:, 1:], ty[:, 1:])  # steps t, t' >= 2
    a = _dense(h, 2.0, 0.1, same)
    b = _dense(_relu(a, same), 2.0, 0.0, same)
    return _dense(_layer_norm(_add(a, b, 0.5, same), same), 1.0, 0.1, same)


def oracle(net, frm, seqs1, seqs2=None):
    """{kind: (n1, n2, T1', T2')}: 0 past each sequence's length."""
    sym = seqs2 is None
    seqs2 = seqs1 if sym else seqs2
    T1 = max(len(s) for s in seqs1) - frm + 1
    T2 = max(len(s) for s in seqs2) - frm + 1
    out = {k: np.zeros((len(seqs1), len(seqs2), T1, T2)) for k in ("nngp", "ntk")}
    for i, x in enumerate(seqs1):
        for j, y in enumerate(seqs2):
            S, Th = net(x, y, sym and i == j)[:2]
            out["nngp"][i, j, :S.shape[0], :S.shape[1]] = S
            out["ntk"][i, j, :S.shape[0], :S.shape[1]] = Th
    return out


CASES = {"chain": (CHAIN, _chain, 1), "graph": (GRAPH, _graph, 2)}


def _seqs(lengths, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((T, 3)) / np.sqrt(3) for T in lengths]


@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_equals_numpy_recursion(case):
    text, net, frm = CASES[case]
    arch = ntksym.loads_spec(text)
    for seqs1, seqs2 in [(_seqs((3, 3, 3), 1), None),               # equal lengths
                         (_seqs((4, 2, 3), 2), None),               # unequal
                         (_seqs((4, 2, 3), 3), _seqs((2, 5), 4))]:  # X vs X2
        K = ntksym.kernel(arch, seqs1, seqs2, kind="both")
        ref = oracle(net, frm, seqs1, seqs2)
        for k in ("nngp", "ntk"):
            assert K[k].shape == ref[k].shape
            np.testing.assert_allclose(K[k], ref[k], rtol=1e-12, atol=1e-12, err_msg=k)


def test_readout_all_alone_is_the_rnn_grid():
    """No layer after the readout: the outputs are the rnn's own grid (Sigma_h, Theta_h)."""
    arch = ntksym.loads_spec('name = "all-alone"\ninput = { shape = [-1, 3] }\n' +
                             RNN.format(frm=1))
    seqs = _seqs((4, 2, 3), 5)
    K = ntksym.kernel(arch, seqs, kind="both")
    ref = oracle(lambda x, y, same: _rnn(x, y, same), 1, seqs)
    for k in ("nngp", "ntk"):
        np.testing.assert_allclose(K[k], ref[k], rtol=1e-12, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("case", sorted(CASES))
def test_finite_network_agrees(case):
    """Monte Carlo over 24 networks of width 256: within 4 standard errors on every entry
    inside both sequences' lengths (the O(1/width) bias is below that: checked at 96 draws of
    widths 256 and 1024)."""
    text, _, frm = CASES[case]
    arch = ntksym.loads_spec(text)
    seqs = _seqs((4, 2, 3), 6)
    K = ntksym.kernel(arch, seqs, kind="both")
    E = ntksym.empirical_kernel(arch, seqs, width=256, samples=24, seed=11, kind="both")
    L = np.array([len(s) for s in seqs]) - frm + 1
    steps = np.arange(K["nngp"].shape[-1])
    inside = (steps[None, :] < L[:, None])
    inside = inside[:, None, :, None] & inside[None, :, None, :]
    for k in ("nngp", "ntk"):
        assert K[k].shape == E.mean[k].shape
        dev, se = np.abs(E.mean[k] - K[k])[inside], E.stderr[k][inside]
        # + 1e-12: after layer_norm the finite NNGP of a step with itself is exact (|y|^2 = n)
        assert np.all(dev <= 4 * se + 1e-12), (k, (dev / se).max())


# ------------------------------------------------------------------ an rnn further below
# An rnn reading the sequence through per-step layers: the first rnn's "all" readout is no
# readout at all (derive emits none), both recurrences walk the same time pairs.

STACK = '''
name = "stack"
input = { shape = [4, 3] }
[[layer]]
kind = "rnn"
weight_var = 1.5
bias_var = 0.1
hidden_init_var = 0.3
readout = "all"
%s
[[layer]]
kind = "rnn"
weight_var = 1.2
input_var = 2.0
activation = "relu"
readout = "mean"
trainable = ["W", "A"]
[[layer]]
kind = "dense"
'''

IDENTITY = '''[[layer]]
kind = "dense"
weight_var = 1.0
trainable = false
'''


def test_rnn_through_an_identity_dense_is_the_direct_stack():
    """A frozen dense of weight_var 1 without bias is the identity on kernels: the stack
    through it equals the direct stack (tests/empirical/test_rnn_montecarlo.py) to 1e-12."""
    X = np.random.default_rng(7).standard_normal((3, 4, 3))
    K1 = ntksym.kernel(ntksym.loads_spec(STACK % ""), X, kind="both")
    K2 = ntksym.kernel(ntksym.loads_spec(STACK % IDENTITY), X, kind="both")
    for k in ("nngp", "ntk"):
        np.testing.assert_allclose(K2[k], K1[k], rtol=1e-12, atol=1e-12, err_msg=k)


def test_rnn_through_dense_relu_finite_network_agrees():
    """rnn(all) -> dense -> relu -> rnn(last) -> dense, unequal lengths: Monte Carlo."""
    text = STACK.replace("[4, 3]", "[-1, 3]").replace('"mean"', '"last"') % (
        '[[layer]]\nkind = "dense"\nweight_var = 2.0\nbias_var = 0.1\nactivation = "relu"\n')
    arch = ntksym.loads_spec(text)
    seqs = _seqs((4, 2, 3), 8)
    K = ntksym.kernel(arch, seqs, kind="both")
    E = ntksym.empirical_kernel(arch, seqs, width=256, samples=24, seed=11, kind="both")
    for k in ("nngp", "ntk"):
        assert K[k].shape == E.mean[k].shape == (3, 3)
        dev = np.abs(E.mean[k] - K[k])
        assert np.all(dev <= 4 * E.stderr[k] + 1e-12), (k, (dev / E.stderr[k]).max())


def test_rnn_below_needs_readout_from_one():
    from ntksym.errors import SpecError
    bad = STACK.replace('readout = "all"', 'readout = "all"\nreadout_from = 2')
    for between in ("", IDENTITY):
        with pytest.raises(SpecError, match="'rnn_0', whose readout_from must be 1"):
            ntksym.loads_spec(bad % between).derive()
