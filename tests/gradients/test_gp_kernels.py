"""Issue #17, done-when 2: NNGPKernel / NTKKernel are scikit-learn GP kernels -- scikit-learn's
kernel checks that apply (clone, get/set_params, theta round trip, bounds, fixed bounds,
gradient vs its _approx_fprime, auto vs cross, diag, composition) -- and a Gaussian process
with NNGPKernel + WhiteKernel fits the diabetes data, raising the log marginal likelihood."""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_almost_equal
from sklearn.base import clone
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import (
    RBF,
    ConstantKernel,
    WhiteKernel,
    _approx_fprime,
)

from ntksym.data import load_dataset, split_dataset
from ntksym.gp import NNGPKernel, NTKKernel

SPEC = '''name = "gp-mlp"
input = { shape = [3] }
[defaults]
weight_var = { value = 2.0, learn = true }
bias_var = { value = 0.1, learn = true }
[[layer]]
kind = "dense"
activation = "relu"
[[layer]]
kind = "dense"
activation = "erf"
[[layer]]
kind = "dense"
'''

X = np.random.default_rng(0).standard_normal((6, 3))
Y = np.random.default_rng(1).standard_normal((4, 3))

KERNELS = [NNGPKernel(spec=SPEC), NTKKernel(spec=SPEC),
           NNGPKernel(spec=SPEC, values=[1.5, 0.3]),
           NNGPKernel(spec=SPEC) + WhiteKernel(0.1),
           ConstantKernel(2.0) * NTKKernel(spec=SPEC, values=[1.2, 0.05]),
           NNGPKernel(spec=SPEC) * NTKKernel(spec=SPEC)]
IDS = ["nngp", "ntk", "nngp-values", "nngp+white", "const*ntk", "nngp*ntk"]


@pytest.mark.parametrize("kernel", KERNELS, ids=IDS)
def test_gradient_matches_sklearn_approx_fprime(kernel):
    kernel = clone(kernel)
    K, dK = kernel(X, eval_gradient=True)
    assert dK.shape == (len(X), len(X), len(kernel.theta))
    approx = _approx_fprime(kernel.theta, lambda t: kernel.clone_with_theta(t)(X), 1e-7)
    assert_almost_equal(dK, approx, 5)
    assert_allclose(K, kernel(X), rtol=1e-14)


@pytest.mark.parametrize("kernel", KERNELS, ids=IDS)
def test_clone_theta_round_trip_and_bounds(kernel):
    kernel = clone(kernel)
    cloned = clone(kernel)
    assert cloned == kernel and cloned is not kernel
    assert kernel.get_params().keys() == cloned.get_params().keys()
    theta = kernel.theta + 0.25
    other = kernel.clone_with_theta(theta)
    assert_allclose(other.theta, theta, rtol=1e-14)
    assert_allclose(kernel.theta, theta - 0.25)                # the original is unchanged
    assert kernel.bounds.shape == (len(theta), 2)
    assert kernel.n_dims == len(theta)
    repr(kernel)
    assert_allclose(pickle.loads(pickle.dumps(other))(X), other(X), rtol=1e-14)


def test_theta_is_log_of_values_in_spec_order_and_set_get_params():
    k = NNGPKernel(spec=SPEC)
    assert k.hyperparameter_names == ["weight_var", "bias_var"]
    assert_allclose(np.exp(k.theta), [2.0, 0.1])
    (hp,) = k.hyperparameters
    assert hp.name == "values" and hp.n_elements == 2 and not hp.fixed
    k.set_params(values=[3.0, 0.5])
    assert_allclose(np.exp(k.theta), [3.0, 0.5])
    assert_allclose(k.get_params()["values"], np.exp(k.theta))
    k.theta = np.log([1.0, 0.2])
    assert_allclose(k.get_params()["values"], [1.0, 0.2])
    with pytest.raises(ValueError, match="correct number"):
        k.theta = np.zeros(3)
    with pytest.raises(ValueError, match="values"):
        NNGPKernel(spec=SPEC, values=[1.0])(X)


def test_fixed_bounds_leave_theta_and_gradient_empty():
    k = NNGPKernel(spec=SPEC, values_bounds="fixed")
    assert k.theta.shape == (0,) and k.hyperparameters[0].fixed
    K, dK = k(X, eval_gradient=True)
    assert dK.shape == (len(X), len(X), 0)
    assert_allclose(K, NNGPKernel(spec=SPEC)(X), rtol=1e-14)


@pytest.mark.parametrize("kernel", KERNELS[:2], ids=IDS[:2])
def test_auto_vs_cross_diag_and_stationarity(kernel):
    assert_allclose(kernel(X), kernel(X, X), rtol=1e-12, atol=1e-14)
    assert_allclose(kernel.diag(X), np.diag(kernel(X)), rtol=1e-13)
    assert kernel(X, Y).shape == (len(X), len(Y))
    assert not kernel.is_stationary()
    with pytest.raises(ValueError, match="Gradient can only be evaluated"):
        kernel(X, Y, eval_gradient=True)


def test_composition_with_white_and_constant():
    k = NNGPKernel(spec=SPEC)
    assert_allclose((k + WhiteKernel(0.5))(X), k(X) + 0.5 * np.eye(len(X)), rtol=1e-14)
    assert_allclose((3.0 * k)(X), 3.0 * k(X), rtol=1e-14)
    assert_allclose((k * k)(X), k(X) ** 2, rtol=1e-14)
    assert (k + WhiteKernel()).n_dims == 3


def test_a_spec_without_learnable_constants_has_no_hyperparameters():
    plain = SPEC.replace("{ value = 2.0, learn = true }", "2.0").replace(
        "{ value = 0.1, learn = true }", "0.1")
    k = NNGPKernel(spec=plain)
    assert k.hyperparameters == [] and k.theta.shape == (0,)
    K, dK = k(X, eval_gradient=True)
    assert dK.shape == (len(X), len(X), 0)
    assert_allclose(K, NNGPKernel(spec=SPEC)(X), rtol=1e-14)


DIABETES_SPEC = '''name = "diabetes-nngp"
input = { shape = [10] }
[defaults]
weight_var = { value = 2.0, learn = true }
bias_var = { value = 0.1, learn = true }
[[layer]]
kind = "dense"
activation = "relu"
repeat = 2
[[layer]]
kind = "dense"
'''


def test_gaussian_process_on_diabetes_raises_the_marginal_likelihood():
    train, test = split_dataset(load_dataset("diabetes"), 200, 100, seed=0)
    kernel = NNGPKernel(spec=DIABETES_SPEC) + WhiteKernel()
    gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=0)
    gp.fit(train.X, train.y)
    start = gp.log_marginal_likelihood(kernel.theta)
    assert gp.log_marginal_likelihood_value_ > start + 10
    assert_allclose(gp.log_marginal_likelihood(gp.kernel_.theta),
                    gp.log_marginal_likelihood_value_, rtol=1e-10)
    r2 = gp.score(test.X, test.y)
    rbf = GaussianProcessRegressor(kernel=ConstantKernel() * RBF() + WhiteKernel(),
                                   normalize_y=True, random_state=0).fit(train.X, train.y)
    print(f"diabetes LML {start:.2f} -> {gp.log_marginal_likelihood_value_:.2f}, test R^2 "
          f"{r2:.3f} (RBF {rbf.score(test.X, test.y):.3f}), {gp.kernel_}")
    assert r2 > 0.3
    mean, std = gp.predict(test.X[:5], return_std=True)
    assert np.isfinite(mean).all() and (std > 0).all()
