"""RNN kernels: reductions to the MLP, structure of the time recursion, bad inputs."""

import numpy as np
import pytest

import ntksym
from ntksym.errors import DataError

RNN = '''
name = "r"
input = {{ shape = [{T}, {d}] }}
[[layer]]
kind = "rnn"
weight_var = {w}
input_var = {a}
bias_var = {b}
hidden_init_var = {h0}
activation = "{act}"
readout = "{readout}"
{extra}
[[layer]]
kind = "dense"
weight_var = 1.5
bias_var = 0.2
'''

MLP = '''
name = "m"
input = {{ shape = [{d}] }}
[[layer]]
kind = "dense"
weight_var = {a}
bias_var = {b}
activation = "{act}"
[[layer]]
kind = "dense"
weight_var = 1.5
bias_var = 0.2
'''


def rnn(T=3, d=4, w=2.0, a=1.0, b=0.1, h0=0.0, act="relu", readout="last", extra=""):
    return ntksym.loads_spec(RNN.format(T=T, d=d, w=w, a=a, b=b, h0=h0, act=act,
                                        readout=readout, extra=extra))


# one spec per case: every spec compiles its own Numba module (seconds each on a cold cache)
@pytest.mark.parametrize("act, readout", [("relu", "last"), ("erf", "mean"),
                                          ("leaky_relu(0.1)", "mean"), ("tanh", "last")])
def test_single_step_is_the_mlp(act, readout):
    """T = 1 and h_0 = 0: h_1 = phi(A x + b), the one-hidden-layer MLP of the same parameters."""
    X = np.random.default_rng(1).standard_normal((6, 1, 4))
    R = ntksym.kernel(rnn(T=1, act=act, readout=readout), X, kind="both")
    M = ntksym.kernel(ntksym.loads_spec(MLP.format(d=4, a=1.0, b=0.1, act=act)), X[:, 0],
                      kind="both")
    for k in ("nngp", "ntk"):
        np.testing.assert_allclose(R[k], M[k], rtol=1e-12, atol=1e-12)


def test_single_step_initial_state_enters_the_variances_only():
    """T = 1, h_0 ~ N(0, s): the pre-activation covariance is a <x, x'>/d + b + w s 1{x = x'}
    (the same example only), so the variances grow by w s and the cross terms do not; checked
    against the erf arcsine kernel (Williams 1997) written out here."""
    X = np.random.default_rng(2).standard_normal((5, 1, 4))
    R = ntksym.kernel(rnn(T=1, h0=0.5, act="erf"), X, kind="nngp")
    x = X[:, 0]
    c = x @ x.T / 4 + 0.1
    v = np.diag(c) + 2.0 * 0.5
    V = 2 / np.pi * np.arcsin(2 * c / np.sqrt(np.outer(1 + 2 * v, 1 + 2 * v)))
    np.fill_diagonal(V, 2 / np.pi * np.arcsin(2 * v / (1 + 2 * v)))
    np.testing.assert_allclose(R, 1.5 * V + 0.2, rtol=1e-12)
