"""The symbols of kernel programs: the x'-side twin of a diagonal symbol, identifiers, and the
symbols of hyperparameters (learnable constants, :mod:`ntksym.ir.hyper`).

>>> import sympy as sp
>>> y_side(sp.Symbol("Sigma_3_xx", real=True))
Sigma_3_yy
>>> identifier("Theta_3[dense_0.W]")
'Theta_3__dense_0_W'
>>> HyperSymbol("weight_var").is_positive
True
"""

from __future__ import annotations

import re

import sympy as sp


def y_side(sym):
    """The x'-side twin of a diagonal symbol: Sigma_3_xx -> Sigma_3_yy."""
    assert sym.name.endswith("_xx"), sym
    return sp.Symbol(sym.name[:-3] + "_yy", real=True)


def identifier(name):
    """A Python identifier for a symbol name: 'Theta_3[dense_0.W]' -> 'Theta_3__dense_0_W'."""
    s = re.sub(r"[^0-9a-zA-Z_]", "_", name.replace("[", "__").replace("]", ""))
    return s if not s[0].isdigit() else "_" + s


class HyperSymbol(sp.Symbol):
    """The positive sympy symbol of a hyperparameter (a subclass, so that passes over a
    program tell it from the state entries: it is a runtime argument, not state)."""

    def __new__(cls, name, **assumptions):
        return super().__new__(cls, name, positive=True)

    def __getnewargs_ex__(self):
        return ((self.name,), {})


def hyper_symbols(expr):
    """The hyperparameter symbols of an expression."""
    return {s for s in expr.free_symbols if isinstance(s, HyperSymbol)}


def state_symbols(expr):
    """The state entries (every free symbol but the hyperparameters) of an expression."""
    return {s for s in expr.free_symbols if not isinstance(s, HyperSymbol)}
