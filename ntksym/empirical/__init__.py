"""The same graph as a finite network: empirical NTK and Monte Carlo NNGP/NTK.

* :mod:`~ntksym.empirical.network`: :class:`FiniteNetwork`, one random draw of the finite
  network of any graph (vectors, images, sequences): forward, backward (through time),
  per-layer NTK terms, conditional NNGP.
* :mod:`~ntksym.empirical.montecarlo`: :func:`empirical_kernel`, the mean over independent
  networks, and :class:`EmpiricalResult`.
"""

from ntksym.empirical.montecarlo import EmpiricalResult, empirical_kernel
from ntksym.empirical.network import FiniteNetwork

__all__ = ["EmpiricalResult", "FiniteNetwork", "empirical_kernel"]
