"""scikit-learn estimators (public facade of :mod:`ntksym.apps.estimators`).

>>> from ntksym.estimators import NTKRegressor
"""

from ntksym.apps.estimators import (NTKClassifier, NTKRegressor, KernelCallable,  # noqa: F401
                                    kernel_callable)

__all__ = ["NTKRegressor", "NTKClassifier", "KernelCallable", "kernel_callable"]
