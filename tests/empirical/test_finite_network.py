"""The one finite network on sequence graphs: output layouts, the backward pass that stops
below the lowest trainable layer, the data handling of lengths, and same seeds -> same numbers.
(Monte Carlo agreement with the analytic kernels: test_rnn_montecarlo.py, test_rnn_masks.py.)"""

import numpy as np
import pytest

import ntksym
from ntksym.empirical.network import FiniteNetwork

STACK = '''
name = "stack"
input = {{ shape = [-1, 3] }}
[[layer]]
kind = "rnn"
bias_var = 0.1
hidden_init_var = 0.3
readout = "all"
trainable = {first}
[[layer]]
kind = "rnn"
activation = "tanh"
readout = "{readout}"
readout_from = {frm}
trainable = {second}
[[layer]]
kind = "dense"
bias_var = 0.2
trainable = {second}
'''


def stack(first="true", second="true", readout="mean", frm=2):
    return ntksym.loads_spec(STACK.format(first=first, second=second, readout=readout, frm=frm))


def sequences(n, T=4, seed=0):
    return np.random.default_rng(seed).standard_normal((n, T, 3)) / np.sqrt(3)


def test_backward_stops_below_the_lowest_trainable_rnn():
    net = FiniteNetwork(stack(first="false").finite_graph(6), seed=1)
    X, L = sequences(3), np.array([4, 2, 3])
    values, caches = net.forward(X, L)
    O = net.outputs_per_example(values)
    full = net.backward(caches, 3, outputs=O)
    part = net.backward(caches, 3, only_trainable=True, outputs=O)
    assert "rnn_0" in full and "rnn_0" not in part    # no BPTT through the fixed layer
    assert set(part) == {"dense_2", "rnn_1"}
    for node, d in part.items():
        np.testing.assert_array_equal(d, full[node])
    _, terms = net.ntk(X, per_layer=True, lengths=L)
    assert sorted(terms) == ["dense_2.W", "dense_2.b", "rnn_1.A", "rnn_1.W"]   # bias_var = 0


def test_readout_all_gives_one_kernel_per_pair_of_steps():
    net = FiniteNetwork(stack(readout="all").finite_graph(5), seed=2)
    X, X2 = sequences(3), sequences(2, seed=1)
    K = net.ntk(X, X2)
    assert K.shape == (3, 2, 3, 3)                 # T - readout_from + 1 = 3 outputs
    assert net.nngp(X, X2).shape == (3, 2, 3, 3)


def test_nothing_trainable_is_a_zero_kernel_of_the_output_shape():
    net = FiniteNetwork(stack(first="false", second="false", readout="all").finite_graph(4))
    K, terms = net.ntk(sequences(3), sequences(2, seed=1), per_layer=True)
    assert terms == {} and K.shape == (3, 2, 3, 3) and not K.any()


def test_lists_of_sequences_equal_padded_arrays_with_lengths():
    a = stack()
    X, L = sequences(3), np.array([4, 2, 3])
    listed = [X[i, :L[i]] for i in range(3)]
    E1 = ntksym.empirical_kernel(a, listed, listed[:2], width=8, samples=2, seed=4,
                                 per_layer=True)
    E2 = ntksym.empirical_kernel(a, X, X[:2], width=8, samples=2, seed=4, per_layer=True,
                                 lengths=L, lengths2=L[:2])
    assert sorted(E1.samples) == sorted(E2.samples)
    for k in E1.samples:
        np.testing.assert_array_equal(E1.samples[k], E2.samples[k])


@pytest.mark.parametrize("gradient", ["true", "fresh"])
def test_same_seeds_same_numbers(gradient):
    a = stack()
    X = sequences(2)
    E1, E2 = (ntksym.empirical_kernel(a, X, width=8, samples=2, seed=7, gradient=gradient)
              for _ in range(2))
    for k in ("nngp", "ntk"):
        np.testing.assert_array_equal(E1.samples[k], E2.samples[k])
    E3 = ntksym.empirical_kernel(a, X, width=8, samples=1, seed=8, gradient=gradient)
    np.testing.assert_array_equal(E3.samples["ntk"][0], E1.samples["ntk"][1])
