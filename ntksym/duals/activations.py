"""The activation registry: phi(z), phi'(z) and their Gaussian dual kernels.

For (u, v) ~ N(0, [[a, c], [c, b]]) an :class:`Activation` gives sympy expressions of

* ``dual(a, b, c)``        = E[phi(u) phi(v)]
* ``dual_diag(a)``         = E[phi(u)^2],  u ~ N(0, a)   (its own exact rule, not dual(a, a, a))
* ``dual_prime(a, b, c)``  = E[phi'(u) phi'(v)]
* ``dual_prime_diag(a)``   = E[phi'(u)^2]

Each activation takes one of three paths (``Activation.method``):

* ``"closed"``: a closed form (arc-cosine kernels of ReLU / leaky ReLU / |z| / step / sign /
  ReLU^k (Cho & Saul 2009), erf (Williams 1997), GELU, the Gaussian bump exp(-z^2/2),
  identity, sin, cos, exp).  Every arccos / arcsin /
  sqrt(1 - rho^2) takes ``rho = ClippedCorrelation(c, a, b)`` so round-off cannot push |rho|
  above 1.
* ``"hermite"``: a polynomial user expression; exact duals by Hermite expansion, derived by
  sympy: a polynomial in a, b, c with no square roots.
* ``"mehler"``: the Hermite (Mehler) series with per-example coefficients and a tail bound,
  quadrature where the bound fails (tanh, Huberized ReLU, swish, non-polynomial expressions;
  :mod:`ntksym.ir.hermite`);
* ``"quadrature"``: ``quadrature_expectation(label, phi, phi, breakpoints)`` -- piecewise
  Gauss-Legendre of order ``QUAD_ORDER`` (see :mod:`ntksym.duals.quadrature`).

``phi`` and ``dphi`` are sympy expressions of ``ntksym.ir.functions.Z`` built only from
functions with a ``math``-module equivalent and ``Piecewise`` (never ``Heaviside``/``sign``,
whose value at 0 differs between printers): the convention is phi'(0) = right-hand value for
kinks at 0 of ReLU-like functions, i.e. Heaviside(0) = 0 (the derivative set is measure zero;
it never changes a dual).

The table of kinds (``ACTIVATION_KINDS``: parameters, checks, method, source, the text of
phi) is plain Python (:mod:`ntksym.duals.kinds`), and so is this module until an activation is
built: :func:`check_activation` and :func:`describe_activation` validate and describe a named
activation without loading sympy, so that ``ntksym check`` does not (docs/startup.md).

Example
-------
>>> import sympy as sp
>>> a, b, c = sp.symbols("a b c", positive=True)
>>> relu = get_activation("relu")
>>> relu.dual_diag(a)
a/2
>>> float(relu.dual(1, 1, 0).evalf()) == float(1 / (2 * sp.pi))
True
>>> parse_shorthand("leaky_relu(0.1)")
('leaky_relu', {'slope': 0.1})
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ntksym.errors import SpecError

from .kinds import (  # noqa: F401  (the registry's table and parser, re-exported)
    ACTIVATION_KINDS,
    REQUIRED,
    activation_name,
    check_params,
    constructor_args,
    describe_named,
    is_static,
    parse_shorthand,
)

if TYPE_CHECKING:          # sympy: loaded only when an activation is built
    from .base import Activation

__all__ = ["ACTIVATION_KINDS", "REQUIRED", "activation_name", "check_activation",
           "describe_activation", "get_activation", "make_activation", "parse_shorthand"]


def make_activation(kind, *args):
    """The kind's constructor called on ``args`` (no checks): e.g. a leaky ReLU whose slope is
    a sympy symbol (a learnable constant, :mod:`ntksym.layers.activation`)."""
    # sympy loads here, with the first activation built (ntksym check builds none)
    from . import closed, expansions
    module, name = ACTIVATION_KINDS[kind]["make"].split(".")
    return getattr({"closed": closed, "expansions": expansions}[module], name)(*args)


def _freeze(params):
    # the type and repr are part of the key: leaky_relu(slope=1) and leaky_relu(slope=1.0)
    # are different activations (an int slope is exact, a float one a Float), and so are the
    # names of slope=0.0 and slope=-0.0, though 1 == 1.0 and 0.0 == -0.0
    return tuple(sorted((k, type(v).__name__, repr(v), v) for k, v in params.items()))


@functools.lru_cache(maxsize=256)
def _build(kind, frozen):
    p = {k: v for k, _, _, v in frozen}
    return make_activation(kind, *constructor_args(kind, p))


def get_activation(kind: str, **params) -> Activation:
    """The :class:`~ntksym.duals.base.Activation` of a registry kind with parameters
    (memoized).

    Raises :class:`ntksym.errors.SpecError` (a ValueError) naming the valid kinds or parameters.

    >>> get_activation("leaky_relu", slope=0.1).name
    'leaky_relu(slope=0.1)'
    >>> get_activation("activation", expr="z**2").method
    'hermite'
    """
    params = check_params(kind, params)
    try:
        return _build(kind, _freeze(params))
    except TypeError:  # unhashable parameter values
        raise SpecError("activation '%s': parameters must be numbers or strings, got %r"
                        % (kind, params)) from None


def check_activation(kind: str, **params):
    """Raise the :class:`~ntksym.errors.SpecError` that :func:`get_activation` would raise, if
    any.  A named kind is checked without sympy (its constructor accepts every checked
    argument); a user expression is parsed (sympy), which is what checks it.

    >>> check_activation("relu_power", k=9)
    Traceback (most recent call last):
    ...
    ntksym.errors.SpecError: relu_power: parameter 'k' must be an integer in 1..8, got 9
    """
    if is_static(kind):
        constructor_args(kind, check_params(kind, params))
    else:
        get_activation(kind, **params)


def describe_activation(kind: str, **params) -> str:
    """One line for ``ntksym check`` and ``derive``: the activation, phi(z), how its duals are
    computed and the formula's source (:meth:`~ntksym.duals.base.Activation.description`).
    A named kind is described without sympy; a parameter may be a learnable constant
    (:class:`~ntksym.ir.hyper.Learnable`, shown by its name).

    >>> describe_activation("erf")
    'erf: phi(z) = erf(z); closed form (Williams 1997)'
    """
    if is_static(kind):
        return describe_named(kind, params)
    return get_activation(kind, **params).description()
