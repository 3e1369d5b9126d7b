"""Predictions from kernels: kernel regression, NTK gradient-descent ensembles, NNGP posterior.

All functions take kernel *blocks* as numpy arrays, so they work with any kernel (ntksym's, a
precomputed file, another library's):

* ``K_train`` / ``*_train_train``: (n, n) over the training inputs,
* ``K_test_train`` / ``*_test_train``: (m, n), rows test inputs, columns training inputs,
* ``*_test_test``: (m, m), needed only for covariances.

Targets ``y_train`` are (n,) or (n, k); predictions have the matching shape (m,) or (m, k).
For classification use :func:`one_hot_targets` (the CNTK paper's -0.1 / 0.9 coding) and
:func:`kernel_classify`.

Linear systems are solved by Cholesky factorization.  A kernel that is singular or not
positive definite (duplicate inputs, float32 round-off, an NNGP of too low rank) is a
``DataError`` that reports the smallest eigenvalue and suggests a ridge; nothing is silently
regularized.  ``ridge`` is always an absolute value added to the diagonal of ``K_train``.
See docs/predict.md for the conventions, with examples.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ntksym.errors import DataError

__all__ = [
    "Prediction",
    "one_hot_targets",
    "kernel_weights",
    "kernel_regression",
    "kernel_classify",
    "gradient_descent_mse",
    "nngp_posterior",
]


class Prediction(NamedTuple):
    """Mean prediction (m,) / (m, k), and covariance (m, m) over test inputs or ``None``.

    The covariance is shared by all k output columns: each output is an independent Gaussian
    process with this covariance (the ensemble's spread, or the posterior uncertainty).
    """

    mean: np.ndarray
    cov: np.ndarray | None


# --------------------------------------------------------------------------- checks and solves

def _matrix(K, name, shape):
    """K as a float array of the given shape (None entries of shape are free)."""
    K = np.asarray(K)
    if K.dtype.kind not in "biuf":
        raise DataError(f"{name}: expected a numeric matrix, got dtype {K.dtype}")
    K = K.astype(np.float64, copy=False)
    if K.ndim != 2 or any(s is not None and s != k for s, k in zip(shape, K.shape)):
        want = " x ".join("?" if s is None else str(s) for s in shape)
        raise DataError(f"{name}: expected shape {want}, got {K.shape}")
    if not np.all(np.isfinite(K)):
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(K))[0])
        raise DataError(f"{name} has a non-finite value {K[first]} at index {first}")
    return K


def _targets(y, n):
    y = np.asarray(y)
    if y.ndim not in (1, 2) or y.dtype.kind not in "biuf":
        raise DataError(f"labels: expected a numeric array of shape (n,) or (n, k), got "
                        f"shape {y.shape} and dtype {y.dtype}")
    if len(y) != n:
        raise DataError(f"labels: got {len(y)} labels for {n} training examples "
                        f"(the kernel has {n} training rows)")
    y = y.astype(np.float64)
    if not np.all(np.isfinite(y)):
        raise DataError("labels contain NaN or inf")
    return y


def _with_ridge(K, ridge):
    if not np.isfinite(ridge) or ridge < 0:
        raise DataError(f"ridge must be a finite number >= 0, got {ridge}")
    return K + ridge * np.eye(len(K)) if ridge else K


def _singular(K, ridge, what="kernel"):
    lam = np.linalg.eigvalsh(K)
    n = len(K)
    suggestion = 1e-6 * float(np.trace(K)) / n
    return DataError(
        f"{what} is singular or not positive definite (smallest eigenvalue {lam[0]:.3g}, "
        f"largest {lam[-1]:.3g}, n = {n}, ridge = {ridge:g}); pass a ridge, e.g. "
        f"--ridge {suggestion:.3g} (1e-6·trace/n)")


def _cholesky(K, ridge, what="kernel"):
    """Lower Cholesky factor of K + ridge I, or a DataError that says why not."""
    Kr = _with_ridge(K, ridge)
    try:
        return np.linalg.cholesky(Kr)
    except np.linalg.LinAlgError:
        raise _singular(Kr, ridge, what) from None


def _cho_solve(L, B):
    """(L L^T)^{-1} B for a lower-triangular L."""
    try:
        from scipy.linalg import solve_triangular
    except ImportError:                      # scipy is optional; numpy's general solve works
        return np.linalg.solve(L.T, np.linalg.solve(L, B))
    return solve_triangular(L.T, solve_triangular(L, B, lower=True), lower=False)


# --------------------------------------------------------------------------- regression

def one_hot_targets(y, n_classes: int | None = None) -> np.ndarray:
    """The CNTK paper's regression targets for class labels: -0.1 everywhere, 0.9 at the class.

    That is -0.1·1 + e_c for label c (Arora et al. 2019, Sec. 6): each row sums to 1 - 0.1·k,
    the targets are centred for k = 10, and only the argmax of a prediction is used.  Labels
    are integers 0..k-1; ``n_classes`` defaults to max(y) + 1.

    >>> one_hot_targets([0, 2])
    array([[ 0.9, -0.1, -0.1],
           [-0.1, -0.1,  0.9]])
    """
    y = np.asarray(y)
    if y.ndim != 1 or (y.size and (y.dtype.kind not in "iu" or y.min() < 0)):
        raise DataError(f"class labels must be a 1-D array of integers >= 0, got shape "
                        f"{y.shape} and dtype {y.dtype}")
    k = int(y.max()) + 1 if n_classes is None and y.size else int(n_classes or 0)
    if y.size and y.max() >= k:
        raise DataError(f"label {int(y.max())} is out of range for {k} classes")
    Y = np.full((len(y), k), -0.1)
    Y[np.arange(len(y)), y] += 1.0
    return Y


def kernel_weights(K_train, y_train, ridge: float = 0.0) -> np.ndarray:
    """The dual coefficients (K_train + ridge I)^{-1} y of kernel regression.

    Predictions at new inputs are then ``K_test_train @ weights``: compute them once when the
    same training set serves many test batches (the scikit-learn estimators do).

    >>> kernel_weights(np.array([[2.0, 0.0], [0.0, 4.0]]), [1.0, 1.0])
    array([0.5 , 0.25])
    """
    K = _matrix(K_train, "K_train", (None, None))
    n = len(K)
    if K.shape != (n, n):
        raise DataError(f"K_train: expected a square matrix, got shape {K.shape}")
    return _cho_solve(_cholesky(K, ridge), _targets(y_train, n))


def kernel_regression(K_train, y_train, K_test_train, ridge: float = 0.0) -> np.ndarray:
    """Kernel ("ridgeless" by default) regression: K_test_train (K_train + ridge I)^{-1} y.

    With the NTK this is the prediction of the infinitely wide network trained to convergence
    by gradient flow on the squared loss from a zero-output initialization (the mean of the
    infinite ensemble); with the NNGP it is the GP posterior mean.

    >>> X = np.array([[0.0], [1.0], [2.0]]); K = np.exp(-(X - X.T) ** 2)
    >>> np.round(kernel_regression(K, [0.0, 1.0, 4.0], K[1:2]), 12)
    array([1.])
    """
    weights = kernel_weights(K_train, y_train, ridge)
    return _matrix(K_test_train, "K_test_train", (None, len(weights))) @ weights


def kernel_classify(K_train, y_train, K_test_train, ridge: float = 0.0) -> np.ndarray:
    """Classify as the CNTK paper does: regress one-hot targets (-0.1 / 0.9), take the argmax.

    ``y_train`` may hold any labels (ints, strings); the prediction uses the same labels.

    >>> K = np.array([[1.0, 0.1], [0.1, 1.0]])
    >>> kernel_classify(K, ["cat", "dog"], np.array([[0.9, 0.2], [0.0, 0.5]])).tolist()
    ['cat', 'dog']
    """
    labels = np.asarray(y_train)
    K = _matrix(K_train, "K_train", (None, None))
    if labels.ndim != 1 or len(labels) != len(K):
        raise DataError(f"labels: got shape {labels.shape} for {len(K)} training examples")
    classes, codes = np.unique(labels, return_inverse=True)
    scores = kernel_regression(K, one_hot_targets(codes, len(classes)), K_test_train, ridge)
    return classes[np.argmax(scores, axis=1)]


# --------------------------------------------------------------------------- ensembles

def gradient_descent_mse(K_train_train_ntk, y_train, t, K_test_train_ntk=None,
                         learning_rate: float = 1.0, nngp_train_train=None,
                         nngp_test_train=None, nngp_test_test=None,
                         ridge: float = 0.0) -> Prediction:
    """Infinite ensemble of wide networks trained by gradient flow on the squared loss.

    Convention: loss ½ Σ_i |f(x_i) - y_i|² over the n training examples, parameter flow
    dθ/dt = -η ∇_θ loss (η = ``learning_rate``), so in the infinite-width limit
    df/dt = -η Θ (f - Y) with Θ the NTK (Lee et al. 2019).  For a loss averaged over the
    examples pass η/n.  At initialization f_0 is a centred GP with the NNGP kernel K, so

        mean f_t(x*) = Θ_* Θ^{-1} (I - exp(-η t Θ)) Y,
        cov  f_t(x*) = K_** - T K_*ᵀ - K_* Tᵀ + T K Tᵀ,   T = Θ_* Θ^{-1} (I - exp(-η t Θ)),

    evaluated through the eigendecomposition of Θ, so finite t needs no inverse (directions
    with eigenvalue 0 grow as η t).  ``t`` may be a scalar or a 1-D array of times (the result
    then has a leading time axis) and may be ``np.inf``, which is kernel regression.
    ``K_test_train_ntk=None`` predicts on the training inputs themselves.  The covariance is
    returned when the NNGP blocks are given (train-train, and test-train and test-test for
    test inputs); it is the spread over random initializations, shared by all outputs.

    >>> Th = np.array([[2.0, 0.5], [0.5, 1.0]])
    >>> gradient_descent_mse(Th, [1.0, -1.0], t=0.0).mean
    array([0., 0.])
    >>> np.round(gradient_descent_mse(Th, [1.0, -1.0], t=np.inf).mean, 12)
    array([ 1., -1.])
    """
    Th = _matrix(K_train_train_ntk, "K_train_train_ntk", (None, None))
    n = len(Th)
    if Th.shape != (n, n):
        raise DataError(f"K_train_train_ntk: expected a square matrix, got shape {Th.shape}")
    Y = _targets(y_train, n)
    Th = _with_ridge(Th, ridge)
    on_train = K_test_train_ntk is None
    Ths = Th if on_train else _matrix(K_test_train_ntk, "K_test_train_ntk", (None, n))
    times = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if times.ndim != 1 or np.any(np.isnan(times)) or np.any(times < 0):
        raise DataError(f"t must be a time >= 0 (or np.inf), or a 1-D array of them, got {t}")
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise DataError(f"learning_rate must be a positive number, got {learning_rate}")

    lam, V = np.linalg.eigh((Th + Th.T) / 2)
    # Eigenvalues below round-off are zero; clearly negative ones mean Θ is not a kernel and
    # the flow would diverge, which is a data problem, not something to paper over.
    tol = n * np.finfo(np.float64).eps * max(abs(lam[-1]), 1.0)
    if lam[0] < -tol * 1e3 or (np.isinf(times).any() and lam[0] <= tol):
        raise _singular(Th, ridge, "NTK train-train kernel")
    lam = np.where(lam > tol, lam, 0.0)

    cov_wanted = nngp_train_train is not None
    if cov_wanted:
        K = _matrix(nngp_train_train, "nngp_train_train", (n, n))
        if on_train:
            Ks, Kss = K, K
        else:
            m = len(Ths)
            if nngp_test_train is None or nngp_test_test is None:
                raise DataError("the covariance at test inputs needs nngp_test_train and "
                                "nngp_test_test as well as nngp_train_train")
            Ks = _matrix(nngp_test_train, "nngp_test_train", (m, n))
            Kss = _matrix(nngp_test_test, "nngp_test_test", (m, m))

    ThsV, VtY = Ths @ V, V.T @ Y
    means, covs = [], []
    for time in times:
        # g(λ) = (1 - exp(-η t λ)) / λ, continued by η t at λ = 0 and by 1/λ at t = inf
        with np.errstate(divide="ignore", invalid="ignore"):
            g = (1.0 / lam if np.isinf(time)
                 else np.where(lam > 0, -np.expm1(-learning_rate * time * lam) / lam,
                               learning_rate * time))
        T_V = ThsV * g                                  # T = (Θ_* V) diag(g) Vᵀ, kept factored
        means.append(T_V @ VtY)
        if cov_wanted:
            T = T_V @ V.T
            KsTt = Ks @ T.T
            cov = Kss - KsTt - KsTt.T + T @ K @ T.T
            covs.append((cov + cov.T) / 2)              # symmetric up to round-off; make it exact
    squeeze = np.ndim(t) == 0
    mean = means[0] if squeeze else np.stack(means)
    cov = None if not cov_wanted else (covs[0] if squeeze else np.stack(covs))
    return Prediction(mean, cov)


def nngp_posterior(K_train, y_train, K_test_train, K_test_test=None,
                   noise: float = 0.0) -> Prediction:
    """Gaussian-process posterior with the NNGP kernel (the Bayesian infinitely wide network).

    mean = K_* (K + σ² I)^{-1} Y and cov = K_** - K_* (K + σ² I)^{-1} K_*ᵀ, with σ² = ``noise``
    the observation-noise variance (0: exact interpolation).  The covariance is that of the
    latent function at the test inputs (add σ² I for noisy observations) and is returned only
    when ``K_test_test`` is given.

    >>> K = np.array([[1.0, 0.5], [0.5, 1.0]])
    >>> p = nngp_posterior(K, [1.0, 0.0], K, K)
    >>> np.round(p.mean, 12), np.round(p.cov, 12) + 0.0
    (array([1., 0.]), array([[0., 0.],
           [0., 0.]]))
    """
    K = _matrix(K_train, "K_train", (None, None))
    n = len(K)
    if K.shape != (n, n):
        raise DataError(f"K_train: expected a square matrix, got shape {K.shape}")
    Ks = _matrix(K_test_train, "K_test_train", (None, n))
    y = _targets(y_train, n)
    L = _cholesky(K, noise, "NNGP train-train kernel")
    mean = Ks @ _cho_solve(L, y)
    if K_test_test is None:
        return Prediction(mean, None)
    Kss = _matrix(K_test_test, "K_test_test", (len(Ks), len(Ks)))
    try:
        from scipy.linalg import solve_triangular
        W = solve_triangular(L, Ks.T, lower=True)      # cov = K_** - Wᵀ W, W = L^{-1} K_*ᵀ
    except ImportError:
        W = np.linalg.solve(L, Ks.T)
    cov = Kss - W.T @ W
    return Prediction(mean, (cov + cov.T) / 2)
