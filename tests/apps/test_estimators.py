import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import parametrize_with_checks

import ntksym
from ntksym.apps.predict import kernel_classify, kernel_regression
from ntksym.data import load_dataset, split_dataset
from ntksym.estimators import NTKClassifier, NTKRegressor, kernel_callable

# A small ReLU MLP (NTK parameterization, c_sigma = 2, a little bias so that the kernel is
# positive definite on the tiny, sometimes duplicated data sets of scikit-learn's checks).
MLP = """
name = "test-mlp"
input = { shape = [4] }
[defaults]
parameterization = "ntk"
weight_var = 2.0
bias_var = 0.1
[[layer]]
kind = "dense"
activation = "relu"
repeat = 2
[[layer]]
kind = "dense"
width = 1
"""


@pytest.fixture(scope="module")
def iris_split():
    return split_dataset(load_dataset("iris"), 100, 50, seed=0)


def test_classifier_agrees_with_kernel_classify(iris_split):
    train, test = iris_split
    clf = NTKClassifier(spec=MLP, ridge=1e-8).fit(train.X, train.y)
    arch = ntksym.loads_spec(MLP)
    K = ntksym.kernel(arch, train.X, kind="ntk")
    Ks = ntksym.kernel(arch, test.X, train.X, kind="ntk")
    np.testing.assert_array_equal(clf.predict(test.X), kernel_classify(K, train.y, Ks, 1e-8))
    assert clf.score(test.X, test.y) >= 0.9
    assert clf.decision_function(test.X).shape == (50, 3)


def test_regressor_nngp_agrees_with_kernel_regression():
    ds = load_dataset("diabetes:120")
    X, y = ds.X[:, :4], (ds.y - ds.y.mean()) / ds.y.std()
    reg = NTKRegressor(spec=MLP, kernel="nngp", ridge=0.5).fit(X[:80], y[:80])
    arch = ntksym.loads_spec(MLP)
    want = kernel_regression(ntksym.kernel(arch, X[:80], kind="nngp"), y[:80],
                             ntksym.kernel(arch, X[80:], X[:80], kind="nngp"), ridge=0.5)
    np.testing.assert_allclose(reg.predict(X[80:]), want, rtol=1e-10)
    # multi-output targets keep their shape
    Y2 = np.column_stack([y, -y])
    assert reg.fit(X[:80], Y2[:80]).predict(X[80:]).shape == (40, 2)


def test_input_shape_auto_adapts_vector_specs(iris_split):
    train, _ = iris_split
    # The spec says 4 features; "auto" rebuilds it for 3, "spec" refuses.
    clf = NTKClassifier(spec=MLP, ridge=1e-6).fit(train.X[:, :3], train.y)  # iris has duplicates
    assert clf.arch_.input_shape == (3,) and clf.arch_.hash != ntksym.loads_spec(MLP).hash
    with pytest.raises(ValueError, match="X has 3 features, but the input shape"):
        NTKClassifier(spec=MLP, input_shape="spec").fit(train.X[:, :3], train.y)
    with pytest.raises(ValueError, match="X has 4 features"):
        clf.predict(train.X)


def test_pipeline_gridsearch_on_iris():
    # Issue 7, done-when 1: a shipped MLP spec in Pipeline + GridSearchCV over the ridge, on
    # raw iris (the scaler is part of the pipeline).  An MLP with biases: the bias-free ReLU
    # NTK of the CNTK paper is positively homogeneous and reaches only ~0.89 on centred iris.
    X, y = load_iris(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=50, stratify=y, random_state=0)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("clf", NTKClassifier(spec="spec/leaky_relu_mlp.toml"))])
    search = GridSearchCV(pipe, {"clf__ridge": [1e-6, 1e-3, 1e-1, 1.0, 10.0]}, cv=5)
    search.fit(Xtr, ytr)
    assert search.best_score_ >= 0.9
    assert search.score(Xte, yte) >= 0.9


def test_cntk_mlp_on_digits():
    # Issue 7, done-when 2: the CNTK paper's ReLU MLP NTK, unregularized, on a random
    # 1000 / 797 split of digits (pixels / 16); a plain numpy computation reaches 0.991.
    train, test = split_dataset(load_dataset("digits"), 1000, 797, seed=0)
    clf = NTKClassifier(spec="spec/cntk_mlp_depth3.toml", input_shape="spec")
    assert clf.fit(train.X, train.y).score(test.X, test.y) >= 0.985


def test_params_clone_and_pickle(iris_split, tmp_path):
    path = tmp_path / "mlp.toml"
    path.write_text(MLP)
    clf = NTKClassifier(spec=str(path), kernel="nngp", ridge=0.1)
    assert clf.get_params() == {"spec": str(path), "kernel": "nngp", "ridge": 0.1,
                                "dtype": "float64", "input_shape": "auto",
                                "hyperparameters": None}
    assert clone(clf).set_params(ridge=2.0).ridge == 2.0
    train, test = iris_split
    clf.fit(train.X, train.y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict(test.X), clf.predict(test.X))


@pytest.mark.parametrize("params, message", [
    ({"spec": None}, "needs a spec"),
    ({"kernel": "rbf"}, "kernel must be one of"),
    ({"dtype": "float16"}, "dtype must be one of"),
    ({"ridge": -1.0}, "ridge must be"),
    ({"input_shape": "bogus"}, "input_shape must be"),
])
def test_bad_parameters(params, message, iris_split):
    clf = NTKClassifier(**{"spec": MLP, **params})
    with pytest.raises(ValueError, match=message):
        clf.fit(iris_split[0].X, iris_split[0].y)


def test_kernel_callable_with_svc(iris_split):
    train, test = iris_split
    k = kernel_callable(MLP, "ntk")
    K = k(train.X, train.X)
    np.testing.assert_allclose(K, ntksym.kernel(ntksym.loads_spec(MLP), train.X), rtol=1e-12)
    np.testing.assert_allclose(k(test.X, train.X),
                               ntksym.kernel(ntksym.loads_spec(MLP), test.X, train.X), rtol=1e-12)
    by_callable = SVC(kernel=k, C=10.0).fit(train.X, train.y)
    by_matrix = SVC(kernel="precomputed", C=10.0).fit(K, train.y)
    np.testing.assert_array_equal(by_callable.predict(test.X),
                                  by_matrix.predict(k(test.X, train.X)))
    assert by_callable.score(test.X, test.y) >= 0.9
    assert "test-mlp" in repr(pickle.loads(pickle.dumps(k)))


@parametrize_with_checks([NTKRegressor(spec=MLP), NTKClassifier(spec=MLP)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
