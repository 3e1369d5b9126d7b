import numpy as np
import pytest
from scipy.linalg import expm

from ntksym.apps.predict import (
    gradient_descent_mse,
    kernel_classify,
    kernel_regression,
    nngp_posterior,
    one_hot_targets,
)
from ntksym.data import load_dataset
from ntksym.errors import DataError


def relu_mlp_kernels(X, Z, depth=2):
    """NNGP and NTK of a bias-free ReLU MLP (c_sigma = 2), written out in numpy for the tests."""
    def arccos(S, dx, dz):
        rho = np.clip(S / np.sqrt(np.outer(dx, dz)), -1, 1)
        theta = np.arccos(rho)
        k0 = (np.pi - theta) / np.pi
        k1 = (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / np.pi
        return np.sqrt(np.outer(dx, dz)) * k1, k0

    S = X @ Z.T / X.shape[1]
    dx, dz = (X * X).sum(1) / X.shape[1], (Z * Z).sum(1) / X.shape[1]
    T = S.copy()
    for _ in range(depth):
        S, dot = arccos(S, dx, dz)       # ReLU with c_sigma = 2 keeps the diagonals fixed
        T = T * dot + S
    return S, T


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    X, Xs = rng.normal(size=(12, 5)), rng.normal(size=(4, 5))
    K, Th = relu_mlp_kernels(X, X)
    Ks, Ths = relu_mlp_kernels(Xs, X)
    Kss, Thss = relu_mlp_kernels(Xs, Xs)
    Y = rng.normal(size=(12, 2))
    return dict(K=K, Th=Th, Ks=Ks, Ths=Ths, Kss=Kss, Thss=Thss, Y=Y)


# ------------------------------------------------------------------ regression

def test_one_hot_targets():
    Y = one_hot_targets(np.array([1, 0, 3]))
    assert Y.shape == (3, 4)
    np.testing.assert_allclose(Y[0], [-0.1, 0.9, -0.1, -0.1])
    np.testing.assert_allclose(Y.sum(1), 1 - 0.4)
    assert one_hot_targets([0], n_classes=10).shape == (1, 10)
    for bad in ([0.5, 1.0], [-1, 0], [[0, 1]]):
        with pytest.raises(DataError, match="class labels"):
            one_hot_targets(np.array(bad))
    with pytest.raises(DataError, match="out of range"):
        one_hot_targets([0, 5], n_classes=3)


def test_kernel_regression_matches_direct_solve(toy):
    K, Ks, Y = toy["K"], toy["Ks"], toy["Y"]
    np.testing.assert_allclose(kernel_regression(K, Y, Ks), Ks @ np.linalg.solve(K, Y),
                               rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(kernel_regression(K, Y, Ks, ridge=0.3),
                               Ks @ np.linalg.solve(K + 0.3 * np.eye(12), Y), rtol=1e-10)
    # unregularized regression interpolates the training set; 1-D targets stay 1-D
    fit = kernel_regression(K, Y[:, 0], K)
    assert fit.shape == (12,)
    np.testing.assert_allclose(fit, Y[:, 0], atol=1e-8)


def test_kernel_classify_digits_with_relu_ntk():
    ds = load_dataset("digits:500")
    Xtr, ytr, Xte, yte = ds.X[:400], ds.y[:400], ds.X[400:], ds.y[400:]
    _, Th = relu_mlp_kernels(Xtr, Xtr)
    _, Ths = relu_mlp_kernels(Xte, Xtr)
    pred = kernel_classify(Th, ytr, Ths)
    assert pred.dtype == ytr.dtype
    assert np.mean(pred == yte) >= 0.9
    # arbitrary label values come back as themselves
    names = np.array(list("abcdefghij"))[ytr]
    np.testing.assert_array_equal(kernel_classify(Th, names, Ths),
                                  np.array(list("abcdefghij"))[pred])


def test_singular_kernel_needs_ridge():
    X = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])     # a duplicated input
    K = X @ X.T
    with pytest.raises(DataError, match=r"singular or not positive definite \(smallest "
                                        r"eigenvalue .*pass a ridge, e\.g\. --ridge"):
        kernel_regression(K, [1.0, 1.0, 0.0], K)
    out = kernel_regression(K, [1.0, 1.0, 0.0], K, ridge=1e-6)
    np.testing.assert_allclose(out, [1, 1, 0], atol=1e-5)
    with pytest.raises(DataError, match="singular"):
        gradient_descent_mse(K, [1.0, 1.0, 0.0], t=np.inf)
    with pytest.raises(DataError, match="singular"):
        nngp_posterior(K, [1.0, 1.0, 0.0], K)
    with pytest.raises(DataError, match="ridge must be"):
        kernel_regression(K, [1.0, 1.0, 0.0], K, ridge=-1.0)


def test_bad_shapes_and_labels(toy):
    K, Ks, Y = toy["K"], toy["Ks"], toy["Y"]
    with pytest.raises(DataError, match="labels: got 11 labels for 12 training examples"):
        kernel_regression(K, Y[:11], Ks)
    with pytest.raises(DataError, match="labels"):
        kernel_classify(K, np.zeros(13, int), Ks)
    with pytest.raises(DataError, match="labels: got 5 labels for 12"):
        gradient_descent_mse(K, Y[:5], t=1.0)
    with pytest.raises(DataError, match="labels: got 3 labels"):
        nngp_posterior(K, Y[:3], Ks)
    with pytest.raises(DataError, match=r"K_test_train: expected shape \? x 12"):
        kernel_regression(K, Y, Ks[:, :5])
    with pytest.raises(DataError, match="square"):
        kernel_regression(K[:5], Y, Ks)
    bad = K.copy()
    bad[2, 3] = np.nan
    with pytest.raises(DataError, match=r"K_train has a non-finite value nan at index \(2, 3\)"):
        kernel_regression(bad, Y, Ks)


# ------------------------------------------------------------------ gradient descent ensembles

def test_infinite_time_is_kernel_regression(toy):
    Th, Ths, Y = toy["Th"], toy["Ths"], toy["Y"]
    expected = kernel_regression(Th, Y, Ths)
    got = gradient_descent_mse(Th, Y, np.inf, Ths).mean
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-8)
    # a long finite time approaches the same limit
    late = gradient_descent_mse(Th, Y, 1e6, Ths, learning_rate=1.0).mean
    np.testing.assert_allclose(late, expected, atol=1e-8)


def test_time_zero_is_the_initial_ensemble(toy):
    p = gradient_descent_mse(toy["Th"], toy["Y"], 0.0, toy["Ths"],
                             nngp_train_train=toy["K"], nngp_test_train=toy["Ks"],
                             nngp_test_test=toy["Kss"])
    np.testing.assert_array_equal(p.mean, np.zeros((4, 2)))
    np.testing.assert_allclose(p.cov, toy["Kss"], rtol=0, atol=1e-14)


def test_covariance_symmetric_psd_and_time_axis(toy):
    times = np.array([0.0, 0.1, 1.0, 10.0, np.inf])
    p = gradient_descent_mse(toy["Th"], toy["Y"], times, toy["Ths"],
                             nngp_train_train=toy["K"], nngp_test_train=toy["Ks"],
                             nngp_test_test=toy["Kss"])
    assert p.mean.shape == (5, 4, 2) and p.cov.shape == (5, 4, 4)
    for i, t in enumerate(times):
        np.testing.assert_array_equal(p.cov[i], p.cov[i].T)
        assert np.linalg.eigvalsh(p.cov[i])[0] > -1e-10
        single = gradient_descent_mse(toy["Th"], toy["Y"], t, toy["Ths"],
                                      nngp_train_train=toy["K"], nngp_test_train=toy["Ks"],
                                      nngp_test_test=toy["Kss"])
        np.testing.assert_allclose(single.mean, p.mean[i], atol=1e-12)
        np.testing.assert_allclose(single.cov, p.cov[i], atol=1e-12)


def test_training_points_are_fit_and_their_variance_vanishes(toy):
    p = gradient_descent_mse(toy["Th"], toy["Y"], np.inf, nngp_train_train=toy["K"])
    np.testing.assert_allclose(p.mean, toy["Y"], atol=1e-8)
    np.testing.assert_allclose(p.cov, 0, atol=1e-8)
    # at finite time the training residual shrinks monotonically
    res = [np.linalg.norm(gradient_descent_mse(toy["Th"], toy["Y"], t).mean - toy["Y"])
           for t in (0.0, 0.5, 2.0, 8.0)]
    assert all(a > b for a, b in zip(res, res[1:]))


def test_matches_a_linear_model_trained_in_parameter_space():
    """f(x) = φ(x)·θ + ψ(x)·ω, θ trained, ω frozen, θ, ω ~ N(0, I): NTK ΦΦᵀ, NNGP ΦΦᵀ + ΨΨᵀ.

    Its gradient flow is solved exactly with a matrix exponential in parameter space, which
    gives the mean and covariance of f_t without any function-space formula.
    """
    rng = np.random.default_rng(4)
    n, m, p, q, eta, t = 5, 3, 12, 4, 0.7, 0.9
    Phi, Phis = rng.normal(size=(n, p)), rng.normal(size=(m, p))
    Psi, Psis = rng.normal(size=(n, q)), rng.normal(size=(m, q))
    Y = rng.normal(size=n)
    # dθ/dt = -η Φᵀ(Φθ + Ψω - Y): θ_t = E θ_0 + F b, b = -η Φᵀ(Ψω - Y), F = ∫_0^t e^{-ηMs} ds
    M = Phi.T @ Phi
    big = np.zeros((2 * p, 2 * p))
    big[:p, :p], big[:p, p:] = -eta * M, np.eye(p)
    ex = expm(big * t)
    E, F = ex[:p, :p], ex[:p, p:]
    mean = eta * Phis @ F @ Phi.T @ Y
    A = Phis @ E                                      # coefficient of θ_0
    B = Psis - eta * Phis @ F @ Phi.T @ Psi           # coefficient of ω
    cov = A @ A.T + B @ B.T

    got = gradient_descent_mse(Phi @ Phi.T, Y, t, Phis @ Phi.T, learning_rate=eta,
                               nngp_train_train=Phi @ Phi.T + Psi @ Psi.T,
                               nngp_test_train=Phis @ Phi.T + Psis @ Psi.T,
                               nngp_test_test=Phis @ Phis.T + Psis @ Psis.T)
    np.testing.assert_allclose(got.mean, mean, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(got.cov, cov, rtol=1e-9, atol=1e-10)


def test_gradient_descent_argument_errors(toy):
    with pytest.raises(DataError, match="t must be"):
        gradient_descent_mse(toy["Th"], toy["Y"], -1.0)
    with pytest.raises(DataError, match="learning_rate"):
        gradient_descent_mse(toy["Th"], toy["Y"], 1.0, learning_rate=0.0)
    with pytest.raises(DataError, match="needs nngp_test_train and nngp_test_test"):
        gradient_descent_mse(toy["Th"], toy["Y"], 1.0, toy["Ths"], nngp_train_train=toy["K"])
    not_psd = np.array([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(DataError, match="not positive definite"):
        gradient_descent_mse(not_psd, [1.0, 0.0], 1.0)


# ------------------------------------------------------------------ NNGP posterior

def test_nngp_posterior(toy):
    K, Ks, Kss, Y = toy["K"], toy["Ks"], toy["Kss"], toy["Y"]
    p = nngp_posterior(K, Y, Ks, Kss, noise=0.1)
    A = np.linalg.inv(K + 0.1 * np.eye(12))
    np.testing.assert_allclose(p.mean, Ks @ A @ Y, rtol=1e-9)
    np.testing.assert_allclose(p.cov, Kss - Ks @ A @ Ks.T, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(p.cov, p.cov.T)
    assert np.linalg.eigvalsh(p.cov)[0] > -1e-12
    # noise-free posterior interpolates and is certain at the training inputs
    q = nngp_posterior(K, Y, K, K)
    np.testing.assert_allclose(q.mean, Y, atol=1e-8)
    np.testing.assert_allclose(q.cov, 0, atol=1e-8)
    assert nngp_posterior(K, Y, Ks).cov is None
