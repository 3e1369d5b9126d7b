"""scikit-learn estimators on ntksym kernels: ``NTKRegressor``, ``NTKClassifier``,
``KernelCallable``.

The estimators are kernel regression with an infinite-width kernel (NTK: the infinitely wide
network trained to convergence by gradient flow on the squared loss; NNGP: the GP posterior
mean), so ``fit`` computes the n x n training kernel and solves one linear system, and
``predict`` computes the m x n test-train kernel.  They follow scikit-learn's conventions:
parameters are stored untouched by ``__init__``, fitted state ends in ``_``, ``X`` is 2-D.

Parameters common to both:

* ``spec``: a spec file path, spec text (TOML), or an :class:`ntksym.Architecture`.
* ``kernel``: ``"ntk"`` (default) or ``"nngp"``.
* ``ridge``: absolute value added to the training kernel's diagonal.  Default 0.0, the
  unregularized solve of the CNTK paper; a singular kernel (e.g. duplicated rows) then raises
  a ``DataError`` suggesting a ridge.  Tune it with ``GridSearchCV``.
* ``dtype``: ``"float64"`` (default) or ``"float32"`` for the kernel evaluation; the solve is
  always float64.
* ``hyperparameters``: the values of the spec's learnable constants (``weight_var = { value
  = 2.0, learn = true }``, docs/hyperparameters.md).  ``None`` (default): the spec's values.
  A dict ``{name: value}``: those values -- so ``GridSearchCV(est, {"hyperparameters":
  [...]})`` tunes them by cross-validated error.  ``"lml"``: fitted on the training data by
  maximizing the Gaussian-process log marginal likelihood of the targets as given (zero-mean
  prior; :mod:`ntksym.apps.marginal`), the noise variance with them; the fitted noise
  variance is then the ridge (``ridge`` is its starting value when > 0).  The values used are
  in ``hyperparameters_`` (and the fitted noise in ``ridge_``).
* ``input_shape``: how a 2-D row of ``X`` becomes one network input.  ``"auto"`` (default):
  for a spec whose input is a vector, the vector has as many entries as ``X`` has columns (the
  spec's own d is replaced, so one MLP spec serves any tabular data set; kernels of an MLP
  depend on d only through the 1/d of a normalized first layer); for image or sequence specs,
  each row is the flattened (C-order) input of the spec's shape.  ``"spec"``: the spec's shape,
  exactly.  A tuple: that shape.

Targets are not centred (the network starts at output 0); wrap a regressor in
``TransformedTargetRegressor`` with a ``StandardScaler`` to centre and scale them.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ntksym.apps.predict import kernel_weights, one_hot_targets
from ntksym.engine.common import DTYPES

try:                                           # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:                            # pragma: no cover - older scikit-learn
    def _validate_data(est, *args, **kw):
        return est._validate_data(*args, **kw)

__all__ = ["NTKRegressor", "NTKClassifier", "KernelCallable", "kernel_callable"]

_KINDS = ("ntk", "nngp")


# Architectures by spec hash: an Architecture caches its derivation, so reusing one across the
# many fits of a GridSearchCV saves the sympy work.  The hash covers the whole spec.
_ARCHITECTURES: dict = {}


def _shared(arch):
    return _ARCHITECTURES.setdefault(arch.hash, arch)


def load_architecture(spec):
    """A path, spec text or Architecture -> Architecture."""
    import ntksym

    if isinstance(spec, ntksym.Architecture):
        return spec
    if isinstance(spec, os.PathLike):
        return _shared(ntksym.load_spec(spec))
    if isinstance(spec, str):
        # Spec text always has a newline (name, input and a [[layer]] table); a path never does.
        arch = ntksym.loads_spec(spec) if "\n" in spec else ntksym.load_spec(spec)
        return _shared(arch)
    raise ValueError(f"spec must be a path, spec text or an ntksym.Architecture, got "
                     f"{type(spec).__name__}")


def with_input_shape(arch, input_shape, n_features):
    """(architecture, shape): ``arch`` on inputs of the shape a row of X (``n_features``
    values) is reshaped to; ``input_shape`` is "auto" (a vector spec takes the data's feature
    count), "spec" (keep the spec's shape) or a tuple.  ValueError when the sizes disagree.

    >>> import ntksym
    >>> a = ntksym.loads_spec('name = "m"\\ninput = { shape = [3] }\\n'
    ...                       '[[layer]]\\nkind = "dense"\\n')
    >>> with_input_shape(a, "auto", 5)[1], with_input_shape(a, "spec", 3)[0] is a
    ((5,), True)
    """
    spec_shape = tuple(arch.input_shape)
    if isinstance(input_shape, str):
        if input_shape not in ("auto", "spec"):
            raise ValueError(f"input_shape must be 'auto', 'spec' or a tuple, got {input_shape!r}")
        shape = (n_features,) if input_shape == "auto" and len(spec_shape) == 1 else spec_shape
    else:
        shape = tuple(int(s) for s in input_shape)
    if int(np.prod(shape)) != n_features:
        raise ValueError(f"X has {n_features} features, but the input shape {shape} of spec "
                         f"'{arch.name}' needs {int(np.prod(shape))} per example")
    if shape == spec_shape:
        return arch, shape
    # The spec's hash covers its input shape, so the kernel cache cannot mix the two.
    return _shared(type(arch)(dataclasses.replace(arch.spec, input_shape=shape))), shape


def _kernel(arch, X, X2, kind, dtype):
    import ntksym

    return np.asarray(ntksym.kernel(arch, X, X2, kind=kind, dtype=dtype))


class _NTKBase(BaseEstimator):
    def __init__(self, spec=None, kernel="ntk", ridge=0.0, dtype="float64",
                 input_shape="auto", hyperparameters=None):
        self.spec = spec
        self.kernel = kernel
        self.ridge = ridge
        self.dtype = dtype
        self.input_shape = input_shape
        self.hyperparameters = hyperparameters

    def _check_params(self):
        if self.spec is None:
            raise ValueError(f"{type(self).__name__} needs a spec: a path, spec text or an "
                             f"ntksym.Architecture")
        if self.kernel not in _KINDS:
            raise ValueError(f"kernel must be one of {_KINDS}, got {self.kernel!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if not (isinstance(self.ridge, (int, float, np.number)) and np.isfinite(self.ridge)
                and self.ridge >= 0):
            raise ValueError(f"ridge must be a number >= 0, got {self.ridge!r}")

    def _fit_targets(self, X, Y):
        self._check_params()
        arch, self.input_shape_ = with_input_shape(
            load_architecture(self.spec), self.input_shape, X.shape[1])
        self.X_fit_ = X.reshape((len(X),) + self.input_shape_)
        self.arch_, self.ridge_ = self._hyperparameters(arch, self.X_fit_, Y)
        self.hyperparameters_ = dict(self.arch_.hyperparameters)
        K = _kernel(self.arch_, self.X_fit_, None, self.kernel, self.dtype)
        self.dual_coef_ = kernel_weights(K, Y, self.ridge_)
        return self

    def _hyperparameters(self, arch, X, Y):
        """(architecture at the values to use, ridge) for ``hyperparameters``."""
        hp = self.hyperparameters
        if hp is None:
            return arch, float(self.ridge)
        if isinstance(hp, dict):
            try:
                return arch.with_hyperparameters(hp), float(self.ridge)
            except KeyError as e:
                raise ValueError(f"hyperparameters: {e.args[0]}") from None
        if isinstance(hp, str) and hp == "lml":
            from ntksym.apps.marginal import fit_hyperparameters
            start = float(self.ridge) if self.ridge > 0 else max(0.1 * float(np.mean(Y ** 2)),
                                                                   1e-6)
            r = fit_hyperparameters(arch, X, Y, kind=self.kernel, noise=start,
                                    normalize_y=False)
            self.lml_ = r.lml
            return r.arch, r.noise
        raise ValueError(f"hyperparameters must be None, a dict {{name: value}} or 'lml', "
                         f"got {hp!r}")

    def _scores(self, X):
        check_is_fitted(self, "dual_coef_")
        X = _validate_data(self, X, reset=False)
        Xr = X.reshape((len(X),) + self.input_shape_)
        return _kernel(self.arch_, Xr, self.X_fit_, self.kernel, self.dtype) @ self.dual_coef_


class NTKRegressor(RegressorMixin, _NTKBase):
    """Kernel regression with the NTK (or NNGP) of a spec; y of shape (n,) or (n, k).

    >>> from sklearn.datasets import load_diabetes                      # doctest: +SKIP
    >>> X, y = load_diabetes(return_X_y=True)                           # doctest: +SKIP
    >>> reg = NTKRegressor(spec="spec/mlp.toml", ridge=1e-3).fit(X[:300], y[:300])  # doctest: +SKIP
    >>> reg.score(X[300:], y[300:])                                     # doctest: +SKIP
    """

    def fit(self, X, y):
        X, y = _validate_data(self, X, y, multi_output=True, y_numeric=True,
                              dtype=np.float64)
        return self._fit_targets(X, np.asarray(y, dtype=np.float64))

    def predict(self, X):
        return self._scores(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class NTKClassifier(ClassifierMixin, _NTKBase):
    """The CNTK paper's classifier: regress -0.1 / 0.9 one-hot targets, predict the argmax.

    Any label values work (``classes_`` keeps them sorted).  ``decision_function`` gives the
    regressed scores, (m, k), or for two classes the difference class 1 minus class 0.

    >>> from sklearn.datasets import load_iris                        # doctest: +SKIP
    >>> X, y = load_iris(return_X_y=True)                              # doctest: +SKIP
    >>> NTKClassifier(spec="spec/mlp.toml").fit(X, y).score(X, y)      # doctest: +SKIP
    """

    def fit(self, X, y):
        X, y = _validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        return self._fit_targets(X, one_hot_targets(codes, len(self.classes_)))

    def decision_function(self, X):
        scores = self._scores(X)
        return scores[:, 1] - scores[:, 0] if len(self.classes_) == 2 else scores

    def predict(self, X):
        scores = self._scores(X)                   # checks that the estimator is fitted
        return self.classes_[np.argmax(scores, axis=1)]


class KernelCallable:
    """A picklable function ``(X, Y) -> K`` for ``SVC(kernel=...)``, ``GaussianProcess`` ...

    Rows of X and Y are reshaped to the spec's input shape (see ``input_shape`` in the module
    docstring).  ``K(X, X)`` with the same array computes only one triangle.

    >>> from sklearn.svm import SVC                                           # doctest: +SKIP
    >>> SVC(kernel=kernel_callable("spec/mlp.toml")).fit(X, y)                # doctest: +SKIP
    >>> K = kernel_callable("spec/mlp.toml")(X_train, X_train)                # doctest: +SKIP
    >>> SVC(kernel="precomputed").fit(K, y_train)                             # doctest: +SKIP
    """

    def __init__(self, spec, kind="ntk", dtype="float64", input_shape="auto"):
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        self.spec, self.kind, self.dtype, self.input_shape = spec, kind, dtype, input_shape
        self._arch = load_architecture(spec)      # fail early on a bad spec

    def __call__(self, X, Y=None):
        X = np.asarray(X, dtype=np.float64)
        same = Y is None or Y is X
        Y = X if same else np.asarray(Y, dtype=np.float64)
        arch, shape = with_input_shape(self._arch, self.input_shape, X.shape[1])
        Xr = X.reshape((len(X),) + shape)
        Yr = None if same else Y.reshape((len(Y),) + shape)
        return _kernel(arch, Xr, Yr, self.kind, self.dtype)

    def __repr__(self):
        return f"KernelCallable({self._arch.name!r}, kind={self.kind!r})"


def kernel_callable(spec, kind="ntk", dtype="float64", input_shape="auto") -> KernelCallable:
    """A function ``(X, Y) -> K`` of the spec's kernel; see :class:`KernelCallable`."""
    return KernelCallable(spec, kind, dtype, input_shape)
