"""Analytic NNGP/NTK against Monte Carlo kernels of the finite network built from the same spec.

Each check is the mean over S independent networks of width n; the tolerance is 4 standard
errors of that mean (plus the O(1/n) finite-width bias, which at these widths is well below one
standard error).  Three inputs, so all entries (diagonal and off-diagonal) are checked.
"""

import numpy as np
import pytest

import ntksym

SPECS = {
    "relu": ("relu", 2.0, 0.0),
    "leaky_relu": ("leaky_relu(0.2)", 1.9, 0.0),
    "erf_bias": ("erf", 1.5, 0.3),
    "tanh": ("tanh", 1.2, 0.1),
    "huberized_relu": ("huberized_relu(0.5)", 2.0, 0.0),
    "polynomial": ("activation", 0.6, 0.1),
}


def spec_text(act, wvar, bvar):
    layer = (f'activation = "{act}"' if act != "activation" else "")
    poly = ('[[layer]]\nkind = "activation"\nexpr = "z**3/6 - z/2 + 1/4"\n'
            if act == "activation" else "")
    return (f'name = "mc"\ninput = {{ shape = [5] }}\n[defaults]\nweight_var = {wvar}\n'
            f'bias_var = {bvar}\n'
            f'[[layer]]\nkind = "dense"\n{layer}\n{poly}'
            f'[[layer]]\nkind = "dense"\n{layer}\n{poly}'
            f'[[layer]]\nkind = "dense"\n')


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((3, 5))
    scales = np.array([[1.0], [0.7], [1.3]])
    return X / np.linalg.norm(X, axis=1, keepdims=True) * np.sqrt(5) * scales


# (width n, networks S): the finite-width bias relative to the standard error grows like
# sqrt(S / n), about 0.25 for both; the second costs 48x the first and runs with -m slow
SIZES = [pytest.param(256, 16, id="n256-S16"),
         pytest.param(1024, 48, id="n1024-S48", marks=pytest.mark.slow)]


@pytest.mark.parametrize("width, samples", SIZES)
@pytest.mark.parametrize("name", list(SPECS))
def test_monte_carlo_agrees_within_4_standard_errors(name, width, samples, X):
    arch = ntksym.loads_spec(spec_text(*SPECS[name]))
    analytic = ntksym.kernel(arch, X, kind="both")
    E = ntksym.empirical_kernel(arch, X, width=width, samples=samples, seed=1)
    for kind in ("nngp", "ntk"):
        dev = np.abs(E.mean[kind] - analytic[kind])
        assert np.all(dev <= 4 * E.stderr[kind] + 1e-12), (kind, dev / E.stderr[kind])
        # the check has power: the estimate is much tighter than the kernel itself
        assert np.all(E.stderr[kind] < 0.1 * np.abs(analytic[kind]).max())


def test_error_shrinks_with_width(X):
    arch = ntksym.loads_spec(spec_text("relu", 2.0, 0.0))
    A = ntksym.kernel(arch, X)
    spread = [ntksym.empirical_kernel(arch, X, width=w, samples=16, seed=3).std["ntk"].mean()
              for w in (64, 1024)]
    # the per-network fluctuation of the empirical NTK falls like 1/sqrt(width): 4x here
    assert spread[1] < spread[0] / 2.5
    assert np.isfinite(A).all()


def test_empirical_ntk_is_sum_of_gradient_products(X):
    """Finite-difference check of one network's empirical NTK (the per-layer formula)."""
    from ntksym.empirical.network import FiniteNetwork
    arch = ntksym.loads_spec(spec_text("tanh", 1.2, 0.1))
    g = arch.finite_graph(7)
    net = FiniteNetwork(g, seed=0)
    K = net.ntk(X)
    # J[i, p] = df(x_i)/dtheta_p by central differences over every parameter
    rows = []
    for node, ws in net.weights.items():
        for key, w in ws.items():
            flat = w.reshape(-1)
            for p in range(flat.size):
                old = flat[p]
                flat[p] = old + 1e-6
                fp = net.forward(X)[0][g.graph["output"]][:, 0]
                flat[p] = old - 1e-6
                fm = net.forward(X)[0][g.graph["output"]][:, 0]
                flat[p] = old
                rows.append((fp - fm) / 2e-6)
    J = np.array(rows).T
    np.testing.assert_allclose(K, J @ J.T, rtol=1e-6, atol=1e-8)
