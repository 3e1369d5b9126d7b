"""``ntksym fit``: the learnable constants of a spec fitted to a dataset by maximizing the
Gaussian-process log marginal likelihood (the search itself: :mod:`ntksym.apps.marginal`).

>>> import ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [4] }\\n[defaults]\\n'
...     'weight_var = { value = 1.0, learn = true }\\n[[layer]]\\nkind = "dense"\\n'
...     'activation = "erf"\\n[[layer]]\\nkind = "dense"\\n')
>>> r = fit_dataset(arch, "iris", n_train=60, maxiter=5)
>>> r.targets, r.n, r.lml >= r.lml_start
(3, 60, True)
"""

from __future__ import annotations

import numpy as np

from ntksym.apps.marginal import (  # noqa: F401  (re-exported for the CLI)
    FitResult,
    FitStep,
    fit_hyperparameters,
    format_step,
)
from ntksym.errors import DataError

__all__ = ["fit_dataset", "format_step", "FitResult", "FitStep"]


def fit_dataset(arch, dataset, n_train=None, seed=0, **options) -> FitResult:
    """:func:`fit_hyperparameters` on a dataset by name (``NAME[:N]``,
    :func:`ntksym.data.load_dataset`), or on its first ``n_train`` examples of a seeded
    permutation.  Regression targets as they are; class labels as one-hot targets (one GP
    per class, sharing the kernel).  Vector specs take the dataset's feature count; image
    specs take flat rows (digits) as H x W x C."""
    from ntksym.apps.regress import as_spec_input
    from ntksym.data import load_dataset, split_dataset

    ds = load_dataset(dataset)
    if n_train is not None:
        if n_train > len(ds):
            raise DataError(f"dataset '{ds.name}' has {len(ds)} examples; --train {n_train} "
                            "asks for more")
        ds, _ = split_dataset(ds, n_train, len(ds) - n_train, seed=seed) \
            if n_train < len(ds) else (ds, None)
    arch, X = as_spec_input(arch, ds.X)
    y = ds.y if ds.task == "regression" else np.eye(len(ds.classes))[ds.y]
    return fit_hyperparameters(arch, X, y, **options)
