"""Compiled elementwise functions of one variable, for the finite-width networks.

The same printer that writes the kernel code turns phi(z) and phi'(z) into Numba functions that
map an array elementwise (in parallel), cached on disk like the kernels.

>>> import numpy as np, sympy as sp
>>> from ntksym.ir.program import Z
>>> f = elementwise_function(sp.Max(Z, 0))
>>> f(np.array([-1.0, 2.0]))
array([0., 2.])
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ntksym.codegen.cache import load_module
from ntksym.codegen.printer import NumbaPrinter

_TEMPLATE = '''import math
import numpy as np
from numba import njit, prange


@njit(cache=True)
def scalar(z):
    return {body}


@njit(cache=True, parallel=True)
def apply(a):
    out = np.empty(a.size)
    flat = a.ravel()
    for i in prange(a.size):
        out[i] = scalar(flat[i])
    return out
'''

_FUNCS: dict = {}


def elementwise_function(expr: sp.Expr):
    """A function mapping a float array elementwise through ``expr`` (an expression of Z)."""
    key = sp.srepr(expr)
    fn = _FUNCS.get(key)
    if fn is None:
        body = NumbaPrinter().doprint(expr)
        if not expr.free_symbols:
            body = f"{body} + 0.0 * z"
        mod = load_module(_TEMPLATE.format(body=body), "elementwise")

        def fn(a, _apply=mod.apply):
            a = np.ascontiguousarray(a, dtype=np.float64)
            return _apply(a).reshape(a.shape)

        _FUNCS[key] = fn
    return fn
