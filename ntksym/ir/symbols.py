"""Symbol naming of kernel programs: the x'-side twin of a diagonal symbol, and identifiers.

>>> import sympy as sp
>>> y_side(sp.Symbol("Sigma_3_xx", real=True))
Sigma_3_yy
>>> identifier("Theta_3[dense_0.W]")
'Theta_3__dense_0_W'
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
