"""The Gaussian-process log marginal likelihood of a spec's kernel, and its maximization over
the spec's learnable constants (what ``ntksym fit`` runs through :mod:`ntksym.apps.fit`, and
the estimators' ``hyperparameters="lml"``).

The model is y = f(x) + noise with f ~ GP(0, K) for the NNGP (or the NTK used as a
covariance) of the spec and noise ~ N(0, s^2 I); the free hyperparameters are the spec's
learnable constants (docs/hyperparameters.md) and, unless fixed, the noise variance s^2, all
optimized in log space by L-BFGS-B.  Each evaluation is one fused pass of the
generated code giving K and every dK/dtheta, then

    LML = -1/2 y^T (K + s^2 I)^-1 y - 1/2 log det(K + s^2 I) - n/2 log(2 pi)      (per target)
    dLML/dtheta = 1/2 tr((a a^T - (K + s^2 I)^-1) dK/dtheta),   a = (K + s^2 I)^-1 y.

Several targets (one-hot classes) share the kernel: their LMLs add.  Targets are standardized
(``normalize_y``, as scikit-learn's ``GaussianProcessRegressor(normalize_y=True)``) unless
asked otherwise.

>>> import numpy as np, ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [2] }\\n[defaults]\\n'
...     'weight_var = { value = 1.0, learn = true }\\n[[layer]]\\nkind = "dense"\\n'
...     'activation = "relu"\\n[[layer]]\\nkind = "dense"\\n')
>>> rng = np.random.default_rng(0); X = rng.standard_normal((30, 2))
>>> r = fit_hyperparameters(arch, X, np.abs(X[:, 0]), maxiter=20)
>>> r.lml > r.path[0].lml, list(r.values)
(True, ['weight_var'])
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from ntksym.errors import DataError

__all__ = ["FitResult", "FitStep", "fit_hyperparameters", "format_step",
           "log_marginal_likelihood"]

#: bounds of every learnable constant and of the noise variance during the search
VALUE_BOUNDS = (1e-4, 1e4)
NOISE_BOUNDS = (1e-8, 1e2)


@dataclasses.dataclass
class FitStep:
    """One iterate of the search: the values, the noise, the LML and its gradient's norm
    (with respect to the logs of the free hyperparameters)."""

    iteration: int
    values: dict
    noise: float
    lml: float
    grad_norm: float

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class FitResult:
    """The fitted values and how the search went; ``arch`` is the fitted Architecture and
    ``spec_text`` its spec file (the input's text with the new values filled in)."""

    spec: str
    kind: str
    n: int
    targets: int
    values: dict
    noise: float
    lml: float
    lml_start: float
    iterations: int
    converged: bool
    message: str
    seconds: float
    path: list
    arch: object = dataclasses.field(repr=False, default=None)
    spec_text: str = dataclasses.field(repr=False, default="")

    def as_dict(self):
        d = {k: getattr(self, k) for k in ("spec", "kind", "n", "targets", "values", "noise",
                                           "lml_start", "lml", "iterations", "converged",
                                           "message", "seconds")}
        d["path"] = [s.as_dict() for s in self.path]
        return d


def format_step(step: FitStep) -> str:
    """One line of the printed path.

    >>> format_step(FitStep(3, {"weight_var": 1.5}, 0.1, -12.25, 0.5))
    'iter   3  LML -12.2500  |grad| 5.000e-01  weight_var=1.5  noise=0.1'
    """
    vals = "  ".join(f"{k}={v:.6g}" for k, v in step.values.items())
    return (f"iter {step.iteration:3d}  LML {step.lml:.4f}  |grad| {step.grad_norm:.3e}  "
            f"{vals}  noise={step.noise:.6g}")


def log_marginal_likelihood(arch, X, Y, kind="nngp", noise=1e-2):
    """(LML, dLML/dlog(value) for each learnable constant in spec order, dLML/dlog(noise)) of
    targets Y ((n,) or (n, m)) under GP(0, K + noise I) with ``arch``'s kernel at its current
    values.  DataError when K + noise I is not positive definite.

    >>> import ntksym
    >>> a = ntksym.loads_spec('name = "m"\\ninput = { shape = [2] }\\n[[layer]]\\n'
    ...                       'kind = "dense"\\nweight_var = { value = 1.0, learn = true }\\n')
    >>> lml, g, g_noise = log_marginal_likelihood(a, np.eye(2), np.array([1.0, -1.0]))
    >>> g.shape, bool(np.isfinite(lml))
    ((1,), True)
    """
    import ntksym

    Y = np.asarray(Y, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    n, m = Y.shape
    names = list(arch.hyperparameters)
    out = ntksym.kernel(arch, X, kind=kind, gradient=bool(names))
    out = out if isinstance(out, dict) else {kind: out}
    K = out[kind] + noise * np.eye(n)
    try:
        L = np.linalg.cholesky(K)
    except np.linalg.LinAlgError:
        raise DataError(f"K + noise I is not positive definite at {dict(arch.hyperparameters)}"
                        f", noise {noise:g}; start from a larger noise") from None
    Linv = np.linalg.solve(L, np.eye(n))
    Kinv = Linv.T @ Linv
    alpha = Kinv @ Y
    lml = (-0.5 * float(np.sum(Y * alpha)) - m * float(np.log(np.diag(L)).sum())
           - 0.5 * n * m * math.log(2 * math.pi))
    W = alpha @ alpha.T - m * Kinv
    grads = np.array([0.5 * float(np.sum(W * out[f"d{kind}/d[{h}]"])) * v
                      for h, v in arch.hyperparameters.items()])
    return lml, grads, 0.5 * float(np.trace(W)) * noise


def fit_hyperparameters(arch, X, y, kind="nngp", noise=0.1, learn_noise=True,
                        normalize_y=True, maxiter=100, callback=None) -> FitResult:
    """Maximize the LML over ``arch``'s learnable constants (and the noise variance unless
    ``learn_noise`` is False), starting from the spec's values and ``noise``.

    ``X``: examples of the spec's input shape; ``y``: (n,) or (n, m) targets;
    ``callback(step)``: called with each :class:`FitStep` (the start is step 0).
    """
    try:
        from scipy.optimize import minimize
    except ImportError:                                  # pragma: no cover
        raise DataError("fitting hyperparameters needs scipy: pip install 'ntksym[fit]'") \
            from None
    names = list(arch.hyperparameters)
    if not names and not learn_noise:
        raise DataError(f"'{arch.name}' has no learnable constants and the noise is fixed: "
                        "nothing to fit; mark a constant with e.g. "
                        "weight_var = { value = 2.0, learn = true }")
    if not (math.isfinite(noise) and noise > 0):
        raise DataError(f"the noise variance must be > 0, got {noise!r}")
    Y = np.asarray(y, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    if len(Y) != len(X):
        raise DataError(f"{len(X)} examples but {len(Y)} targets")
    if normalize_y:
        sd = Y.std(axis=0)
        Y = (Y - Y.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    start = time.perf_counter()
    v0 = np.array([arch.hyperparameters[h] for h in names])
    x0 = np.log(np.concatenate([v0, [noise]] if learn_noise else [v0]))
    cache, path = {}, []

    def unpack(x):
        vals = dict(zip(names, np.exp(x[:len(names)]).tolist()))
        return vals, float(np.exp(x[len(names)])) if learn_noise else float(noise)

    def evaluate(x):
        key = x.tobytes()
        if key not in cache:
            vals, s2 = unpack(x)
            lml, g, gn = log_marginal_likelihood(arch.with_hyperparameters(vals) if vals
                                                 else arch, X, Y, kind, s2)
            cache[key] = (lml, np.concatenate([g, [gn]]) if learn_noise else g)
        return cache[key]

    def record(x):
        lml, g = evaluate(x)
        vals, s2 = unpack(x)
        step = FitStep(len(path), vals, s2, lml, float(np.linalg.norm(g)))
        path.append(step)
        if callback is not None:
            callback(step)

    def objective(x):
        try:
            lml, g = evaluate(x)
        except DataError:                # not positive definite: steer the search away
            return 1e25, np.zeros_like(x)
        return -lml, -g

    record(x0)
    bounds = [tuple(np.log(VALUE_BOUNDS))] * len(names) + (
        [tuple(np.log(NOISE_BOUNDS))] if learn_noise else [])
    res = minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                   callback=lambda intermediate_result: record(intermediate_result.x),
                   options={"maxiter": int(maxiter)})
    best = max(path, key=lambda s: s.lml)
    if path[-1].values != unpack(res.x)[0]:
        record(res.x)
        best = max(path, key=lambda s: s.lml)
    fitted = arch.with_hyperparameters(best.values) if names else arch
    text = ""
    if names and arch.spec.text:
        from ntksym.spec.fitted import with_values_text
        text = with_values_text(arch.spec, best.values)
    return FitResult(spec=arch.name, kind=kind, n=len(X), targets=Y.shape[1],
                     values=best.values, noise=best.noise, lml=best.lml,
                     lml_start=path[0].lml, iterations=int(res.nit),
                     converged=bool(res.success), message=str(res.message),
                     seconds=time.perf_counter() - start, path=path, arch=fitted,
                     spec_text=text)
