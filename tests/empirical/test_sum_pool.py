"""``sum_pool`` (neural-tangents' SumPool): the layer added after the one-pipeline redesign
(docs/architecture.md lists the files it touched).

Oracles: a numpy computation of the linear network's kernel from pooled images; the average
pool of the same window (the sum is m times the mean, so a positively homogeneous network's
kernels scale by m^2); the finite network at growing width (Monte Carlo, 4 standard errors);
finite differences for the backward pass.
"""

import numpy as np
import pytest

import ntksym
from testkit import assert_input_gradient_matches_finite_differences

LINEAR = '''
name = "sum-pool-linear"
input = {{ shape = [6, 6, 2] }}
[[layer]]
kind = "{pool}"
window = {window}
stride = {stride}
[[layer]]
kind = "flatten"
[[layer]]
kind = "dense"
'''

RELU_CNN = '''
name = "sum-pool-cnn"
input = {{ shape = [6, 6, 2] }}
[defaults]
weight_var = 2.0
[[layer]]
kind = "conv"
padding = "same"
activation = "relu"
[[layer]]
kind = "{pool}"
window = 2
[[layer]]
kind = "conv"
activation = "relu"
[[layer]]
kind = "flatten"
[[layer]]
kind = "dense"
'''


def _images(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 6, 6, 2))


def _sum_pooled(X, window, stride):
    """Windows summed by plain loops (valid padding)."""
    n, H, W, C = X.shape
    Ho, Wo = (H - window) // stride + 1, (W - window) // stride + 1
    out = np.zeros((n, Ho, Wo, C))
    for i in range(Ho):
        for j in range(Wo):
            out[:, i, j] = X[:, i * stride:i * stride + window,
                             j * stride:j * stride + window].sum(axis=(1, 2))
    return out


@pytest.mark.parametrize("window, stride", [(2, 2), (3, 1), (2, 1)])
def test_linear_network_kernel_equals_numpy(window, stride):
    """input -> sum_pool -> flatten -> dense (weight_var 1): NNGP = <pool(x), pool(x')> / (P C)
    with P the pooled pixels; the NTK adds the readout's own term, the same number."""
    X, X2 = _images(3), _images(2, seed=1)
    arch = ntksym.loads_spec(LINEAR.format(pool="sum_pool", window=window, stride=stride))
    K = ntksym.kernel(arch, X, X2, kind="both", progress=False)
    A, B = _sum_pooled(X, window, stride), _sum_pooled(X2, window, stride)
    want = np.einsum("nhwc,mhwc->nm", A, B) / (A.shape[1] * A.shape[2] * A.shape[3])
    np.testing.assert_allclose(K["nngp"], want, rtol=1e-12)
    np.testing.assert_allclose(K["ntk"], want, rtol=1e-12)


def test_kernel_is_window_area_squared_times_avg_pool():
    X = _images(3)
    K = {pool: ntksym.kernel(ntksym.loads_spec(RELU_CNN.format(pool=pool)), X, kind="both",
                             progress=False) for pool in ("sum_pool", "avg_pool")}
    for k in ("nngp", "ntk"):
        np.testing.assert_allclose(K["sum_pool"][k], 16 * K["avg_pool"][k], rtol=1e-12)


def test_derive_prints_the_sum_pool_step():
    text = str(ntksym.loads_spec(RELU_CNN.format(pool="sum_pool")).derive())
    assert "sum_pool_2: sum_pool 2x2, stride [2, 2], padding valid" in text
    assert "[sum_pool] sum_{a, a' in window}" in text


def test_finite_network_converges_to_the_kernel():
    arch = ntksym.loads_spec(RELU_CNN.format(pool="sum_pool"))
    X = _images(3) / np.sqrt(2)
    K = ntksym.kernel(arch, X, progress=False)
    E = ntksym.empirical_kernel(arch, X, width=256, samples=6, seed=1, kind="ntk")
    err = np.abs(E.mean["ntk"] - K)
    assert np.all(err <= 4 * E.stderr["ntk"] + np.abs(K) / 256), (err, E.stderr["ntk"])


def test_backward_is_the_adjoint_of_forward():
    arch = ntksym.loads_spec(RELU_CNN.format(pool="sum_pool"))
    X = np.random.default_rng(1).standard_normal((2, 6, 6, 2))
    assert_input_gradient_matches_finite_differences(arch, X)
