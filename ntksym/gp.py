"""scikit-learn Gaussian-process kernels with learnable constants (public facade of
:mod:`ntksym.apps.gp`).

>>> from ntksym.gp import NNGPKernel, NTKKernel
"""

from ntksym.apps.gp import NeuralKernel, NNGPKernel, NTKKernel  # noqa: F401

__all__ = ["NNGPKernel", "NTKKernel", "NeuralKernel"]
