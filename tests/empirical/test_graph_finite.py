"""The finite networks of the graph architectures (tests/graph_cases.py: ``add`` with and without
scales, ``[[block]]`` repeats, ``concat``, ``layer_norm``, residual CNNs) against their
infinite-width kernels, and the finite layers' forward/backward against finite differences.

Monte Carlo check: the mean of the Monte Carlo NNGP and of the empirical NTK over S networks of
width n (network s drawn with seed ``SEED + s``) must lie, entry by entry (diagonal and
off-diagonal), within 4 standard errors of the analytic kernel plus an allowance for the
finite-width bias, which is O(1/n): |mean - K| <= 4 stderr + BIAS * max|K| / n.  The bias was
measured apart (means over 4000 networks of width 64 for the vector cases, 800 of widths 32 and
64 for the CNNs, 8000 of widths 16, 32, 128 for layer_norm): n |E[K_n] - K| / max|K| is at most
0.9 except for the layer_norm MLP, where it is a clean 1/n term (the finite layer divides by the
sample standard deviation of n centred features) of 0.45 (nngp) and 1.3 - 1.9 (ntk diagonal) at
all three widths.  BIAS = 4 is twice the largest.  At the widths used here (1024 for vectors, 256
channels for the CNNs, 16 networks) the allowance is 0.2 to 1.6 standard errors (the most on the
low-variance NNGP diagonals of the layer_norm and dense-shortcut cases), so the test keeps its
power.  A second width, 16 times narrower, shows the spread of one network shrinking like 1/sqrt(n)
(a ratio above 2 where 4 is expected).  The slow variant (-m slow): width 2048 for vectors, 512
channels for the CNNs, 64 / 48 networks, about 3 minutes.

Finite-difference check: one network's empirical NTK (computed per layer from the backward
pass) equals J J^T, J the Jacobian of the outputs with respect to every parameter by central
differences, at width 3 in float64 (34 to 265 parameters); and the input gradient through
the graph layers against a directional central difference.
"""

import numpy as np
import pytest

import ntksym
from graph_cases import CASES
from ntksym.empirical.network import FiniteNetwork
from ntksym.layers import LAYER_KINDS

SEED = 0
BIAS = 4.0
KINDS = ("nngp", "ntk")


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """The products here are small: BLAS threads only contend on a shared machine (about 3x
    the CPU time on 2 busy cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:          # installed with scikit-learn; without it, run as it comes
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def inputs(arch, n=3, seed=5):
    return np.random.default_rng(seed).standard_normal((n,) + tuple(arch.input_shape))


def monte_carlo_check(case, width, samples, narrow=None):
    """Max z-score (|mean - K| / stderr) per kind after asserting the tolerance; with
    ``narrow``, also the spread of one network at width ``narrow`` against ``width``."""
    arch = ntksym.loads_spec(CASES[case])
    X = inputs(arch)
    K = ntksym.kernel(arch, X, kind="both", progress=False)
    E = ntksym.empirical_kernel(arch, X, width=width, samples=samples, seed=SEED)
    zs = {}
    for kind in KINDS:
        scale = np.abs(K[kind]).max()
        dev = np.abs(E.mean[kind] - K[kind])
        tol = 4 * E.stderr[kind] + BIAS * scale / width
        assert np.all(dev <= tol), (kind, dev / E.stderr[kind], E.stderr[kind] / scale)
        # the check has power: the estimate is much tighter than the kernel itself
        assert E.stderr[kind].max() < 0.1 * scale, (kind, E.stderr[kind].max() / scale)
        zs[kind] = (dev / E.stderr[kind]).max()
    if narrow is not None:
        N = ntksym.empirical_kernel(arch, X, width=narrow, samples=samples, seed=SEED + 1000)
        for kind in KINDS:
            # one network's fluctuation is O(1/sqrt(n)): width / narrow = 16 quarters it (the
            # standard deviations of 16 networks scatter by ~30%, alike for all entries)
            ratio = N.std[kind].mean() / E.std[kind].mean()
            assert ratio > 2.0, (kind, ratio)
    return zs


# (width, samples, narrower width): vectors are cheap, the CNNs pay ~width^2 per pixel
FAST = {"residual_cnn_gap": (256, 16, 16), "residual_cnn_pool": (256, 16, 16)}
FAST_MLP = (1024, 16, 64)


@pytest.mark.parametrize("case", sorted(CASES))
def test_finite_network_agrees_with_its_limit(case):
    width, samples, narrow = FAST.get(case, FAST_MLP)
    monte_carlo_check(case, width, samples, narrow)


SLOW = {"residual_cnn_gap": (512, 48), "residual_cnn_pool": (512, 48)}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_finite_network_agrees_with_its_limit_wide(case):
    width, samples = SLOW.get(case, (2048, 64))
    monte_carlo_check(case, width, samples)


# ------------------------------------------------------------------ forward / backward
def finite_difference_ntk(net, X, h=1e-6):
    """J J^T with J[i, p] = d f(x_i) / d theta_p by central differences over every parameter
    (the N(0, 1) W and b of each dense / conv layer: the NTK parameterization's variables)."""
    out = net.graph.graph["output"]
    rows = []
    for node in net.order:
        for w in net.weights[node].values():
            flat = w.reshape(-1)            # a view: perturbs the network's own array
            for p in range(flat.size):
                old = flat[p]
                flat[p] = old + h
                fp = net.forward(X)[0][out][:, 0]
                flat[p] = old - h
                fm = net.forward(X)[0][out][:, 0]
                flat[p] = old
                rows.append((fp - fm) / (2 * h))
    J = np.array(rows).T
    return J @ J.T, J.shape[1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_empirical_ntk_is_the_jacobian_gram(case):
    arch = ntksym.loads_spec(CASES[case])
    X = inputs(arch, seed=9)
    net = FiniteNetwork(arch.finite_graph(3), seed=2)
    assert all(w.dtype == np.float64 for ws in net.weights.values() for w in ws.values())
    fd, n_params = finite_difference_ntk(net, X)
    assert n_params > 30
    np.testing.assert_allclose(net.ntk(X), fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case", sorted(CASES))
def test_input_gradient_through_graph_layers(case):
    """The backward pass through add / concat / layer_norm is the adjoint of the forward pass:
    the input gradient (summed over every layer that reads the input: the concat case forks
    there), contracted with a direction V, equals the central difference of the outputs.
    (testkit's helper assumes a single layer reads the input.)"""
    arch = ntksym.loads_spec(CASES[case])
    X = inputs(arch, n=2, seed=4)
    net = FiniteNetwork(arch.finite_graph(4), seed=3)
    _, caches = net.forward(X)
    deltas = net.backward(caches, len(X))
    grad_in = np.zeros_like(X)
    for node in net.order:
        preds = list(net.graph.predecessors(node))
        if "input" in preds:
            attrs = net.graph.nodes[node]
            grads = LAYER_KINDS[attrs["kind"]].backward(attrs, net.weights[node], caches[node],
                                                        deltas[node])
            grad_in += grads[preds.index("input")]
    V = np.random.default_rng(6).standard_normal(X.shape)
    out, h = net.graph.graph["output"], 1e-6
    fd = (net.forward(X + h * V)[0][out] - net.forward(X - h * V)[0][out])[:, 0] / (2 * h)
    np.testing.assert_allclose((grad_in * V).reshape(len(X), -1).sum(1), fd, rtol=1e-6, atol=1e-9)
