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
* ``"quadrature"``: ``quadrature_expectation(label, phi, phi, breakpoints)`` -- piecewise
  Gauss-Legendre of order ``QUAD_ORDER`` (see :mod:`ntksym.duals.quadrature`).

``phi`` and ``dphi`` are sympy expressions of ``ntksym.ir.functions.Z`` built only from
functions with a ``math``-module equivalent and ``Piecewise`` (never ``Heaviside``/``sign``,
whose value at 0 differs between printers): the convention is phi'(0) = right-hand value for
kinks at 0 of ReLU-like functions, i.e. Heaviside(0) = 0 (the derivative set is measure zero;
it never changes a dual).

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

import ast
import functools
import math

from ntksym.errors import SpecError

from .base import Activation
from .closed import (  # noqa: F401
    arccos_J,
    make_abs,
    make_cos,
    make_erf,
    make_exp,
    make_gaussian,
    make_gelu,
    make_identity,
    make_leaky_relu,
    make_relu,
    make_relu_power,
    make_sign,
    make_sin,
    make_step,
)
from .expansions import make_expression, make_huberized_relu, make_swish, make_tanh

__all__ = ["ACTIVATION_KINDS", "REQUIRED", "Activation", "arccos_J", "get_activation",
           "parse_shorthand"]

#: the default of a parameter without one (the one "required" sentinel of the spec keys too)
REQUIRED = "REQUIRED"

def _number(name, positive=False):
    """A constructor argument: the parameter ``name``, a finite (positive) number."""
    return lambda kind, p: _check_number(kind, name, p[name], positive)


def _relu_power_k(kind, p):
    k = p["k"]
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 8:
        raise SpecError("relu_power: parameter 'k' must be an integer in 1..8, got %r" % (k,))
    return k


def _expression(kind, p):
    if not isinstance(p["expr"], str):
        raise SpecError("activation: parameter 'expr' must be a string, got %r" % (p["expr"],))
    return p["expr"]


#: kind -> its parameters (name -> default, REQUIRED if none), a one-line doc, and how to
#: build it: ``make(*[arg(kind, params) for arg in args])``.  A new activation is one entry
#: here plus its constructor (closed.py or expansions.py).
ACTIVATION_KINDS = {
    "relu": {"params": {}, "doc": "max(z, 0); arc-cosine kernel of order 1 (closed form)",
             "make": make_relu},
    "leaky_relu": {"params": {"slope": REQUIRED},
                   "doc": "z for z > 0, slope*z otherwise "
                          "(closed form: slope*c + (1-slope)^2 J_relu)",
                   "make": make_leaky_relu, "args": (_number("slope"),)},
    "abs": {"params": {}, "doc": "|z| (closed form)", "make": make_abs},
    "erf": {"params": {}, "doc": "erf(z) (closed form, Williams 1997)", "make": make_erf},
    "identity": {"params": {}, "doc": "z (closed form)", "make": make_identity},
    "step": {"params": {}, "make": make_step,
             "doc": "1[z > 0] (closed form; phi' = 0 a.e., so the derivative dual is 0)"},
    "relu_power": {"params": {"k": REQUIRED},
                   "doc": "max(z, 0)^k, integer k >= 1 "
                          "(arc-cosine kernel of order k, Cho & Saul 2009)",
                   "make": make_relu_power, "args": (_relu_power_k,)},
    "sin": {"params": {}, "doc": "sin(z) (closed form)", "make": make_sin},
    "cos": {"params": {}, "doc": "cos(z) (closed form)", "make": make_cos},
    "exp": {"params": {}, "doc": "exp(z) (closed form: exp((a+b)/2 + c))", "make": make_exp},
    "gelu": {"params": {}, "make": make_gelu,
             "doc": "z Phi(z), Phi the normal CDF: the exact GELU (closed form)"},
    "gaussian": {"params": {}, "make": make_gaussian,
                 "doc": "exp(-z^2/2) (closed form: det(I + Sigma)^(-1/2))"},
    "sign": {"params": {}, "make": make_sign,
             "doc": "sign(z), sign(0) = 0 (closed form (2/pi) asin rho; phi' = 0 a.e., "
                    "so the derivative dual is 0)"},
    "tanh": {"params": {}, "doc": "tanh(z) (quadrature)", "make": make_tanh},
    "huberized_relu": {"params": {"h": REQUIRED},
                       "doc": "0 (z<0), z^2/(2h) (0<=z<=h), z - h/2 (z>h); "
                              "Chatterji-Long-Bartlett (quadrature)",
                       "make": make_huberized_relu, "args": (_number("h", positive=True),)},
    "swish": {"params": {"h": REQUIRED},
              "doc": "z / (1.1 (1 + exp(-2z/h))), "
                     "Chatterji-Long-Bartlett's scaled Swish (quadrature)",
              "make": make_swish, "args": (_number("h", positive=True),)},
    "activation": {"params": {"expr": REQUIRED},
                   "doc": "a user expression of z: Hermite (exact) if polynomial, else quadrature",
                   "make": make_expression, "args": (_expression,)},
}


def _check_number(kind, name, v, positive=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SpecError("%s: parameter '%s' must be a finite number, got %r" % (kind, name, v))
    if positive and v <= 0:
        raise SpecError("%s: parameter '%s' must be > 0, got %r" % (kind, name, v))
    return v


def _check_params(kind, params):
    allowed = ACTIVATION_KINDS[kind]["params"]
    for name in params:
        if name not in allowed:
            valid = ", ".join(allowed) or "none"
            raise SpecError("activation '%s' has no parameter '%s' (valid: %s)"
                            % (kind, name, valid))
    out = {}
    for name, default in allowed.items():
        if name in params:
            out[name] = params[name]
        elif default is REQUIRED:
            raise SpecError("activation '%s' needs parameter '%s'" % (kind, name))
        else:
            out[name] = default
    return out


def _freeze(params):
    return tuple(sorted(params.items()))


@functools.lru_cache(maxsize=256)
def _build(kind, frozen):
    entry, p = ACTIVATION_KINDS[kind], dict(frozen)
    return entry["make"](*[arg(kind, p) for arg in entry.get("args", ())])


def get_activation(kind: str, **params) -> Activation:
    """The :class:`Activation` of a registry kind with parameters (memoized).

    Raises :class:`ntksym.errors.SpecError` (a ValueError) naming the valid kinds or parameters.

    >>> get_activation("leaky_relu", slope=0.1).name
    'leaky_relu(slope=0.1)'
    >>> get_activation("activation", expr="z**2").method
    'hermite'
    """
    if kind not in ACTIVATION_KINDS:
        import difflib
        close = difflib.get_close_matches(str(kind), ACTIVATION_KINDS, n=1)
        hint = ("did you mean '%s'? " % close[0]) if close else ""
        raise SpecError("unknown activation '%s' (%svalid: %s)"
                        % (kind, hint, ", ".join(ACTIVATION_KINDS)))
    params = _check_params(kind, params)
    try:
        return _build(kind, _freeze(params))
    except TypeError:  # unhashable parameter values
        raise SpecError("activation '%s': parameters must be numbers or strings, got %r"
                        % (kind, params)) from None


def parse_shorthand(text: str):
    """Parse ``"relu"``, ``"leaky_relu(0.1)"``, ``"leaky_relu(slope=0.1)"``, ``"relu_power(2)"``,
    ``'activation("z**3 - z")'`` into ``(kind, params)``; positional arguments fill the kind's
    parameters in order.  Only literals are accepted (no evaluation).

    >>> parse_shorthand("huberized_relu(h=0.5)")
    ('huberized_relu', {'h': 0.5})
    >>> parse_shorthand("relu")
    ('relu', {})
    """
    if not isinstance(text, str) or len(text) > 600:
        raise SpecError("activation shorthand must be a short string, got %r" % (text,))
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise SpecError("cannot parse activation %r (expected e.g. 'relu' or 'leaky_relu(0.1)')"
                        % text) from None
    if isinstance(tree, ast.Name):
        kind, args, kwargs = tree.id, [], []
    elif isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name):
        kind, args, kwargs = tree.func.id, tree.args, tree.keywords
    else:
        raise SpecError("cannot parse activation %r (expected e.g. 'relu' or 'leaky_relu(0.1)')"
                        % text)
    if kind not in ACTIVATION_KINDS:
        get_activation(kind)  # raises with the valid kinds

    def literal(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)) \
                and not isinstance(node.value, bool):
            return node.value
        if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
                and isinstance(node.operand, ast.Constant)
                and isinstance(node.operand.value, (int, float))
                and not isinstance(node.operand.value, bool)):
            v = node.operand.value
            return -v if isinstance(node.op, ast.USub) else v
        raise SpecError("activation %r: arguments must be number or string literals" % text)

    names = list(ACTIVATION_KINDS[kind]["params"])
    if len(args) > len(names):
        raise SpecError("activation '%s' takes %d argument(s) (%s), got %d"
                        % (kind, len(names), ", ".join(names) or "none", len(args)))
    params = {names[i]: literal(x) for i, x in enumerate(args)}
    for kw in kwargs:
        if kw.arg is None or kw.arg in params:
            raise SpecError("activation %r: bad or repeated keyword argument" % text)
        params[kw.arg] = literal(kw.value)
    _check_params(kind, params)
    return kind, params
