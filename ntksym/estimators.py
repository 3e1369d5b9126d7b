"""scikit-learn estimators (public facade of :mod:`ntksym.apps.estimators`).

>>> from ntksym.estimators import NTKRegressor
"""

from ntksym.apps.estimators import KernelCallable, NTKClassifier, NTKRegressor, kernel_callable  # noqa: F401

__all__ = ["NTKRegressor", "NTKClassifier", "KernelCallable", "kernel_callable"]
