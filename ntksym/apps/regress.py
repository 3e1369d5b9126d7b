"""Kernel regression and classification on a dataset split, as the CNTK paper does it.

:func:`regress` is what ``ntksym regress`` runs: load a dataset, split it at random into
``n_train`` training and ``n_test`` test examples, compute the two kernel blocks that the
prediction needs -- train-train (upper triangle only) and test-train; the test-test block is
never computed -- and solve.

* Classification (digits, iris, wine, breast_cancer, CIFAR-10, MNIST): the targets are the
  CNTK paper's -0.1·1 + e_c, regressed with ``(K_train + ridge I)^{-1} Y``, and the predicted
  class is the argmax (:func:`ntksym.apps.predict.kernel_classify`); the score is the accuracy.
* Regression (diabetes): targets are regressed as they are (not centred: the network starts at
  output 0); the scores are the mean squared error and R² on the test set.

``ridge`` is an absolute value added to the diagonal of K_train; the default 0 is the paper's
unregularized solve.  A kernel that is numerically singular (smallest eigenvalue at or below
n·eps·largest, or a failed Cholesky factorization) is a :class:`~ntksym.errors.DataError` that
suggests a ridge.  The report includes the 2-norm condition number of K_train + ridge I.

>>> import ntksym
>>> arch = ntksym.load_spec("spec/cntk_mlp_depth3.toml")
>>> r = regress(arch, "digits:300", 200, 100, seed=0)
>>> r.task, r.n_train, r.n_test, r.score_name, r.score > 0.9
('classification', 200, 100, 'accuracy', True)
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from ntksym.apps.predict import kernel_classify, kernel_regression
from ntksym.data import load_dataset, split_dataset
from ntksym.errors import DataError

__all__ = ["RegressionResult", "regress", "as_spec_input"]


@dataclasses.dataclass
class RegressionResult:
    """What one kernel-regression run measured.

    ``score`` is the test accuracy (classification) or test MSE (regression), named by
    ``score_name``; ``extra`` holds further scores (``r2`` for regression).  Times are wall
    seconds: ``kernel_seconds`` for both kernel blocks, ``solve_seconds`` for the
    eigenvalues, the Cholesky solve and the prediction.
    """

    spec: str
    dataset: str
    task: str
    kernel: str
    n_train: int
    n_test: int
    ridge: float
    seed: int
    score_name: str
    score: float
    condition_number: float
    min_eigenvalue: float
    max_eigenvalue: float
    kernel_seconds: float
    solve_seconds: float
    input_shape: tuple
    extra: dict = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict:
        """A flat, JSON-ready dict (the ``--json`` output of ``ntksym regress``)."""
        d = {}
        for f in dataclasses.fields(self):
            if f.name in ("score_name", "score", "extra"):
                continue
            d[f.name] = getattr(self, f.name)
            if f.name == "seed":                    # the scores right after the setup
                d[self.score_name] = self.score
                d.update(self.extra)
        d["input_shape"] = list(self.input_shape)
        return d


def as_spec_input(arch, X):
    """Fit the rows of ``X`` to the spec's input: returns ``(arch', X')``.

    * An image spec (H, W, C) and flat rows of H·W·C entries: the rows are reshaped
      (C order), so ``digits`` works with an 8x8x1 spec.
    * A vector spec (d,) and vector rows of another length d': the spec's d is replaced by d'
      (its hash changes, so cached kernels never mix).  A kernel depends on d only through the
      1/d of a normalized first layer, so one MLP spec serves any tabular dataset -- the same
      rule as ``NTKClassifier(input_shape="auto")``.
    * Otherwise ``X`` is returned unchanged and the engine checks its shape.

    >>> import ntksym, numpy as np
    >>> arch = ntksym.load_spec("spec/cntk_mlp_depth3.toml")
    >>> a2, X2 = as_spec_input(arch, np.zeros((5, 4)))
    >>> tuple(a2.input_shape), X2.shape
    ((4,), (5, 4))
    """
    shape = tuple(arch.input_shape)
    X = np.asarray(X)
    if X.ndim == 2 and len(shape) == 3 and int(np.prod(shape)) == X.shape[1]:
        return arch, X.reshape((-1,) + shape)
    if X.ndim == 2 and len(shape) == 1 and shape[0] != X.shape[1] and shape[0] != -1:
        from ntksym.apps.estimators import with_input_shape
        arch, _ = with_input_shape(arch, "auto", X.shape[1])
    return arch, X


def _kernel(arch, X, X2, kind, dtype):
    # Module-level so that a test can count the blocks that are computed.
    import ntksym
    return np.asarray(ntksym.kernel(arch, X, X2, kind=kind, dtype=dtype), dtype=np.float64)


def regress(arch, dataset: str, n_train: int, n_test: int, *, ridge: float = 0.0,
            kind: str = "ntk", seed: int = 0, dtype: str = "float64") -> RegressionResult:
    """Kernel regression / classification of ``dataset`` (``NAME[:N]``) with ``arch``'s kernel.

    The split is :func:`ntksym.data.split_dataset` with ``seed`` (a seeded permutation of the
    dataset, the first ``n_train`` rows train, the next ``n_test`` test).  ``kind`` is
    ``"ntk"`` (the infinitely wide network trained to convergence) or ``"nngp"`` (the GP
    posterior mean).  Data are fitted to the spec's input by :func:`as_spec_input`.

    Example: ``regress(ntksym.load_spec("spec/cntk_mlp_depth3.toml"), "digits", 1000, 797)``
    (the CNTK MLP on digits, a random 1000/797 split: accuracy 0.991 for seed 0).
    """
    if kind not in ("ntk", "nngp"):
        raise DataError(f"unknown kernel kind {kind!r}; valid: ntk, nngp")
    if not np.isfinite(ridge) or ridge < 0:
        raise DataError(f"ridge must be a finite number >= 0, got {ridge}")
    ds = load_dataset(dataset)
    train, test = split_dataset(ds, int(n_train), int(n_test), seed=seed)
    arch, Xtr = as_spec_input(arch, train.X)
    _, Xte = as_spec_input(arch, test.X)

    t0 = time.perf_counter()
    K = _kernel(arch, Xtr, None, kind, dtype)
    Ks = _kernel(arch, Xte, Xtr, kind, dtype)
    t1 = time.perf_counter()

    Kr = K + ridge * np.eye(len(K)) if ridge else K
    lam = np.linalg.eigvalsh(Kr)
    lo, hi = float(lam[0]), float(lam[-1])
    if lo <= len(K) * np.finfo(np.float64).eps * abs(hi):
        suggestion = 1e-6 * float(np.trace(K)) / len(K)
        raise DataError(
            f"the {kind} kernel of {len(K)} training examples of '{dataset}' is numerically "
            f"singular (smallest eigenvalue {lo:.3g}, largest {hi:.3g}, ridge {ridge:g}); "
            f"duplicated examples or a low-rank kernel: pass a ridge, e.g. "
            f"--ridge {suggestion:.3g} (1e-6·trace/n)")
    cond = hi / lo

    extra = {}
    if ds.task == "classification":
        pred = kernel_classify(K, train.y, Ks, ridge=ridge)
        score_name, score = "accuracy", float(np.mean(pred == test.y))
    else:
        pred = kernel_regression(K, train.y, Ks, ridge=ridge)
        resid = pred - test.y
        score_name, score = "mse", float(np.mean(resid ** 2))
        spread = float(np.sum((test.y - test.y.mean()) ** 2))
        extra["r2"] = 1.0 - float(np.sum(resid ** 2)) / spread if spread > 0 else float("nan")
    t2 = time.perf_counter()
    return RegressionResult(
        spec=arch.name, dataset=dataset, task=ds.task, kernel=kind, n_train=len(train),
        n_test=len(test), ridge=float(ridge), seed=int(seed), score_name=score_name,
        score=score, condition_number=cond, min_eigenvalue=lo, max_eigenvalue=hi,
        kernel_seconds=t1 - t0, solve_seconds=t2 - t1, input_shape=tuple(arch.input_shape),
        extra=extra)
