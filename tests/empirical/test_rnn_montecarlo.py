"""Analytic RNN kernels against Monte Carlo kernels of the finite RNNs built from the same spec.

Each check draws S independent networks of width m; the estimate is the mean over draws, its
standard error std/sqrt(S).  The analytic kernel must lie within 4 standard errors of it at every
entry, and the finite-width bias (O(1/m)) is below that at the widths used (checked: it would
show up as a systematic deviation of the same sign growing with S).
"""

import numpy as np
import pytest

import ntksym


# (width m, draws S): the O(1/m) bias relative to the standard error grows like sqrt(S / m),
# 0.31 and 0.22; the wider networks cost 4x and run with -m slow
@pytest.fixture(params=[pytest.param((256, 24), id="m256-S24"),
                        pytest.param((512, 24), id="m512-S24", marks=pytest.mark.slow)])
def size(request):
    return request.param


def compare(arch, X, size, lengths=None, kinds=("nngp", "ntk")):
    width, samples = size
    K = ntksym.kernel(arch, X, kind="both", lengths=lengths)
    E = ntksym.empirical_kernel(arch, X, width=width, samples=samples, seed=11, kind="both",
                                lengths=lengths)
    for k in kinds:
        assert K[k].shape == E.mean[k].shape
        z = np.abs(E.mean[k] - K[k]) / E.stderr[k]
        assert z.max() < 4.0, (k, z.max(), K[k], E.mean[k])
    return K, E


def sequences(n, T, d, seed=0):
    return np.random.default_rng(seed).standard_normal((n, T, d)) / np.sqrt(d)


def test_rntk_last_readout_variable_lengths(size):
    """RNTK-style spec (bias, random h_0, all trained) with lengths 5, 3, 4, 2: last states are
    compared aligned from the end, h_0's 1{x = x'} term on the diagonal."""
    arch = ntksym.load_spec("spec/rntk_last.toml")
    X = sequences(4, 5, 4, 1)
    compare(arch, X, size, lengths=np.array([5, 3, 4, 2]))


def test_mean_readout_exact_cross_time_terms(size):
    arch = ntksym.loads_spec('''
name = "mean"
input = { shape = [-1, 3] }
[[layer]]
kind = "rnn"
weight_var = 1.5
input_var = 1.0
bias_var = 0.2
activation = "erf"
readout = "mean"
[[layer]]
kind = "dense"
bias_var = 0.1
''')
    compare(arch, [np.random.default_rng(i).standard_normal((T, 3)) for i, T in
                   enumerate((4, 2, 3))], size)


def test_allen_zhu_network_all_readout_from_step_two(size):
    """The paper's network: per-step outputs from step 2 on, only W trained: an (n, n, 5, 5)
    kernel, one matrix per pair of steps."""
    arch = ntksym.load_spec("spec/allen_zhu_rnn.toml")
    X = sequences(3, 6, 4, 2)
    K, E = compare(arch, X, size)
    assert K["ntk"].shape == (3, 3, 5, 5)


def test_two_layer_stack(size):
    """Layer 2 reads layer 1's sequence (readout = "all" below), mean readout on top."""
    arch = ntksym.loads_spec('''
name = "stack"
input = { shape = [4, 3] }
[[layer]]
kind = "rnn"
weight_var = 1.5
bias_var = 0.1
hidden_init_var = 0.3
readout = "all"
[[layer]]
kind = "rnn"
weight_var = 1.2
input_var = 2.0
activation = "relu"
readout = "mean"
trainable = ["W", "A"]
[[layer]]
kind = "dense"
''')
    compare(arch, sequences(3, 4, 3, 3), size)
