"""Evaluation: validate data once, pick the compiled program and its target, run, finish.

``kernel`` is :func:`ntksym.engine.dispatch.kernel`; the modules of this package import from
their siblings (:mod:`ntksym.engine.common` below all of them), never from this ``__init__``.
"""

from ntksym.engine.common import check_data, output_names
from ntksym.engine.dispatch import kernel

__all__ = ["kernel", "check_data", "output_names"]
