"""Learnable constants: a spec value that is a free hyperparameter, and its sympy symbol.

A spec marks a constant as learnable with ``weight_var = { value = 2.0, learn = true }``
(SPEC.md "Learnable constants").  The parser stores such a value as a :class:`Learnable`: a
``float`` (so that every numeric use -- finite networks, descriptions, checks -- sees its
current value) that also carries the name of its hyperparameter.  The layers' kernel rules turn
it into a :class:`~ntksym.ir.symbols.HyperSymbol` (``ntksym.layers.base.sympy_number``), so the
derived program keeps it as a positive sympy symbol; its values are runtime arguments of the
generated code.  This module is plain Python (no sympy): the spec parser imports it, and
``ntksym check`` must not load sympy (docs/startup.md).

The tangent (dK/dtheta) of a state entry ``Sigma_3`` with respect to ``weight_var`` is the
state entry ``dSigma_3/d[weight_var]``; diagonal entries keep their ``_xx`` / ``_yy`` suffix
(``dSigma_3/d[weight_var]_xx``), so every rule about diagonals applies to tangents unchanged.

>>> w = Learnable(2.0, "weight_var")
>>> w * 2, w.name, str(w)
(4.0, 'weight_var', 'learnable weight_var')
>>> tangent_name("Sigma_3_xx", "weight_var")
'dSigma_3/d[weight_var]_xx'
>>> split_tangent("dSigma_3/d[weight_var]_xx")
('Sigma_3_xx', 'weight_var')
"""

from __future__ import annotations

import re

#: the name of a hyperparameter: a Python identifier that no state entry or generated local
#: variable can take (state entries are Sigma_k / Theta_k ...; diagonals end in _xx / _yy)
HYPER_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESERVED = re.compile(r"^(Sigma|Theta|rho)_|_(xx|yy|sqrt|isqrt)$")


def check_hyper_name(name):
    """None if ``name`` can name a hyperparameter, else what is wrong with it.

    >>> check_hyper_name("w_1") is None, check_hyper_name("Sigma_1") is not None
    (True, True)
    """
    if not isinstance(name, str) or not HYPER_NAME_RE.match(name):
        return "a hyperparameter name is a letter followed by letters, digits or '_'"
    if _RESERVED.search(name) or len(name) > 80:
        return ("a hyperparameter name must not start with Sigma_, Theta_ or rho_, end in "
                "_xx, _yy, _sqrt or _isqrt, or exceed 80 characters")
    return None


class Learnable(float):
    """A spec constant marked ``learn = true``: its current value, and ``name``, the name of
    its hyperparameter (one name may be shared by several layers: then one symbol ties them).
    """

    def __new__(cls, value, name):
        obj = float.__new__(cls, value)
        obj.name = name
        return obj

    def __reduce__(self):
        return (Learnable, (float(self), self.name))

    def __str__(self):
        # descriptions (``ntksym check``, ``derive``, generated code) name it, never its value:
        # the generated code must not change when the value does
        return f"learnable {self.name}"

    def with_value(self, value):
        return Learnable(value, self.name)


_TANGENT = re.compile(r"^d(?P<base>.+)/d\[(?P<hp>[A-Za-z0-9_]+)\](?P<side>_xx|_yy)?$")


def tangent_name(name, hp):
    """The name of the tangent d(name)/d(hp) of a state entry (diagonal suffix kept last)."""
    side = ""
    if name.endswith(("_xx", "_yy")):
        name, side = name[:-3], name[-3:]
    return f"d{name}/d[{hp}]{side}"


def split_tangent(name):
    """(state entry, hyperparameter) of a tangent name, or None for other names."""
    m = _TANGENT.match(name)
    if m is None:
        return None
    return m.group("base") + (m.group("side") or ""), m.group("hp")


def tangent_output(name, hp):
    """The output name of d(output)/d(hp): ``dnngp/d[weight_var]``."""
    return f"d{name}/d[{hp}]"
