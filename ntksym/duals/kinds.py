"""The activation kinds as plain Python: what ``ntksym check`` needs to validate and describe an
activation layer without building its sympy expressions (docs/startup.md).

``ACTIVATION_KINDS`` maps each kind to

* ``params``: its parameters (name -> default, ``REQUIRED`` if none) and ``args``: how the
  constructor's arguments come from them, with their checks (a SpecError naming the parameter);
* ``doc``: one line for the spec reference; ``make``: the constructor that builds its sympy
  :class:`~ntksym.duals.base.Activation` ("closed.make_relu": a function of
  :mod:`ntksym.duals.closed` or :mod:`ntksym.duals.expansions`);
* ``method`` (which path computes its duals: "closed", or "mehler" for the Hermite series),
  ``source``, ``breakpoints``, ``soft`` (soft features) and ``phi`` (the text sympy prints for
  phi(z)): constants or functions of the constructor's arguments.

The constructors take method, source, breakpoints and soft from this table
(:meth:`~ntksym.duals.base.Activation.named`), so the table is their one source;
tests/duals/test_activation_kinds.py checks that ``phi`` is what sympy prints for the phi each
constructor builds.  The user expression (kind ``activation``, ``expr = "..."``) has none of
them: its method, breakpoints and phi follow from parsing the expression, which needs sympy.

>>> describe_named("leaky_relu", {"slope": 0.1})
'leaky_relu(slope=0.1): phi(z) = Piecewise((z, z > 0), (0.1*z, True)); closed form (slope*c + \
(1-slope)^2 * ReLU arc-cosine kernel)'
>>> parse_shorthand("relu_power(2)")
('relu_power', {'k': 2})
"""

from __future__ import annotations

import ast
import difflib
import math
from decimal import ROUND_DOWN, Decimal

from ntksym.errors import SpecError
from ntksym.ir.accuracy import QUAD_ORDER, QUAD_RANGE, hermite_description
from ntksym.ir.hyper import Learnable

#: the default of a parameter without one (the one "required" sentinel of the spec keys too)
REQUIRED = "REQUIRED"


def _check_number(kind, name, v, positive=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SpecError("%s: parameter '%s' must be a finite number, got %r" % (kind, name, v))
    if positive and v <= 0:
        raise SpecError("%s: parameter '%s' must be > 0, got %r" % (kind, name, v))
    return v


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


# ------------------------------------------------------------------- phi(z) as sympy prints it

def float_text(x):
    """The text sympy prints for ``Float(x)`` inside an expression: mpmath's 15 significant
    digits (the exact binary value truncated to 16 digits, then rounded half up), trailing
    zeros stripped, fixed-point for decimal exponents -5 < e < 15.

    >>> float_text(0.1), float_text(2.0), float_text(1e-7), float_text(1e20), float_text(1/2.2)
    ('0.1', '2.0', '1.0e-7', '1.0e+20', '0.454545454545455')
    """
    sign = "-" if x < 0 else ""
    d = Decimal(abs(x))                                    # exact
    exponent = d.adjusted()
    q, r = divmod(int(d.scaleb(15 - exponent).to_integral_value(rounding=ROUND_DOWN)), 10)
    if r >= 5:
        q += 1
        if q == 10 ** 15:
            q, exponent = 10 ** 14, exponent + 1
    digits, split = str(q), 1
    if -5 < exponent < 15:
        if exponent < 0:
            digits = "0" * -exponent + digits
        else:
            split = exponent + 1
        exponent = 0
    text = (digits[:split] + "." + digits[split:]).rstrip("0")
    text += "0" if text.endswith(".") else ""
    if exponent == 0:
        return sign + text
    return sign + text + ("e+%d" % exponent if exponent > 0 else "e%d" % exponent)


def _times_z(c):
    """c*z as sympy prints it: an int exactly (sympy.nsimplify), a float as a Float, a
    learnable constant as its symbol (which sympy orders before z)."""
    if isinstance(c, Learnable):
        return "%s*z" % c.name
    if isinstance(c, int):
        return {0: "0", 1: "z", -1: "-z"}.get(c, "%d*z" % c)
    return "0" if c == 0 else "%s*z" % float_text(c)


def _leaky_relu_phi(slope):
    if isinstance(slope, int) and slope == 1:
        return "z"                                # sympy folds Piecewise((z, ...), (z, True))
    return "Piecewise((z, z > 0), (%s, True))" % _times_z(slope)


def _relu_power_phi(k):
    return "Piecewise((%s, z > 0), (0, True))" % ("z" if k == 1 else "z**%d" % k)


def _huberized_relu_phi(h):
    # the constructor computes with H = Float(h), whose arithmetic is correctly rounded, as
    # Python's: z**2/(2H) has the coefficient 0.5/H, z - H/2 the constant H/2 (exact)
    H = float(h)
    return "Piecewise((0, z < 0), (%s*z**2, z <= %s), (z - %s, True))" % (
        float_text(0.5 / H), float_text(H), float_text(H / 2))


def _swish_phi(h):
    return "%s*z*(tanh(%s*z) + 1)" % (float_text(1 / 2.2), float_text(1 / float(h)))


#: kind -> its parameters, doc, constructor and static facts (see the module docstring).  A new
#: activation is one entry here plus its constructor (closed.py or expansions.py).
ACTIVATION_KINDS = {
    "relu": {"params": {}, "doc": "max(z, 0); arc-cosine kernel of order 1 (closed form)",
             "make": "closed.make_relu", "method": "closed", "breakpoints": (0.0,),
             "source": "arc-cosine kernel of order 1, Cho & Saul 2009",
             "phi": "Piecewise((z, z > 0), (0, True))"},
    "leaky_relu": {"params": {"slope": REQUIRED},
                   "doc": "z for z > 0, slope*z otherwise "
                          "(closed form: slope*c + (1-slope)^2 J_relu)",
                   "make": "closed.make_leaky_relu", "args": (_number("slope"),),
                   "method": "closed", "breakpoints": (0.0,),
                   "source": "slope*c + (1-slope)^2 * ReLU arc-cosine kernel",
                   "phi": _leaky_relu_phi},
    "abs": {"params": {}, "doc": "|z| (closed form)", "make": "closed.make_abs",
            "method": "closed", "breakpoints": (0.0,),
            "source": "|z| = relu(z) + relu(-z): 2 J(rho) + 2 J(-rho)", "phi": "Abs(z)"},
    "erf": {"params": {}, "doc": "erf(z) (closed form, Williams 1997)", "make": "closed.make_erf",
            "method": "closed", "source": "Williams 1997", "phi": "erf(z)"},
    "identity": {"params": {}, "doc": "z (closed form)", "make": "closed.make_identity",
                 "method": "closed", "source": "linear", "phi": "z"},
    "step": {"params": {}, "make": "closed.make_step",
             "doc": "1[z > 0] (closed form; phi' = 0 a.e., so the derivative dual is 0)",
             "method": "closed", "breakpoints": (0.0,),
             "source": "arc-cosine kernel of order 0, Cho & Saul 2009; phi' = 0 a.e.",
             "phi": "Piecewise((1, z > 0), (0, True))"},
    "relu_power": {"params": {"k": REQUIRED},
                   "doc": "max(z, 0)^k, integer k >= 1 "
                          "(arc-cosine kernel of order k, Cho & Saul 2009)",
                   "make": "closed.make_relu_power", "args": (_relu_power_k,),
                   "method": "closed", "breakpoints": (0.0,),
                   "source": lambda k: ("arc-cosine kernel of order %d, Cho & Saul 2009; J_%d "
                                        "derived by sympy" % (k, k)),
                   "phi": _relu_power_phi},
    "sin": {"params": {}, "doc": "sin(z) (closed form)", "make": "closed.make_sin",
            "method": "closed", "phi": "sin(z)",
            "source": "E[sin u sin v] = exp(-(a+b)/2) sinh c, "
                      "E[cos u cos v] = exp(-(a+b)/2) cosh c"},
    "cos": {"params": {}, "doc": "cos(z) (closed form)", "make": "closed.make_cos",
            "method": "closed", "phi": "cos(z)",
            "source": "E[cos u cos v] = exp(-(a+b)/2) cosh c, "
                      "E[sin u sin v] = exp(-(a+b)/2) sinh c"},
    "exp": {"params": {}, "doc": "exp(z) (closed form: exp((a+b)/2 + c))",
            "make": "closed.make_exp", "method": "closed", "phi": "exp(z)",
            "source": "E[exp(u) exp(v)] = exp((a+b)/2 + c)"},
    "gelu": {"params": {}, "make": "closed.make_gelu",
             "doc": "z Phi(z), Phi the normal CDF: the exact GELU (closed form)",
             "method": "closed", "phi": "z*(erf(sqrt(2)*z/2)/2 + 1/2)",
             "source": "exact GELU z Phi(z): second-order Stein on E[u v 1{u > xi1} "
                       "1{v > xi2}]; E[phi' phi'] = d/dc E[phi phi]"},
    "gaussian": {"params": {}, "make": "closed.make_gaussian",
                 "doc": "exp(-z^2/2) (closed form: det(I + Sigma)^(-1/2))",
                 "method": "closed", "phi": "exp(-z**2/2)",
                 "source": "E = det(I + Sigma)^(-1/2), E' = c det(I + Sigma)^(-3/2)"},
    "sign": {"params": {}, "make": "closed.make_sign",
             "doc": "sign(z), sign(0) = 0 (closed form (2/pi) asin rho; phi' = 0 a.e., "
                    "so the derivative dual is 0)",
             "method": "closed", "breakpoints": (0.0,),
             "source": "E[sign u sign v] = (2/pi) asin rho (sign(0) = 0); phi' = 0 a.e.",
             "phi": "Piecewise((1, z > 0), (-1, z < 0), (0, True))"},
    "tanh": {"params": {}, "doc": "tanh(z) (quadrature)", "make": "expansions.make_tanh",
             # soft feature: tanh turns at 0 on the scale pi/2 (its poles +-i pi/2)
             "method": "mehler", "soft": ((0.0, math.pi / 2),), "source": "no closed form",
             "phi": "tanh(z)"},
    "huberized_relu": {"params": {"h": REQUIRED},
                       "doc": "0 (z<0), z^2/(2h) (0<=z<=h), z - h/2 (z>h); "
                              "Chatterji-Long-Bartlett (quadrature)",
                       "make": "expansions.make_huberized_relu",
                       "args": (_number("h", positive=True),), "method": "mehler",
                       "breakpoints": lambda h: (0.0, float(h)),
                       "source": "Chatterji, Long & Bartlett, eq. (1)",
                       "phi": _huberized_relu_phi},
    "swish": {"params": {"h": REQUIRED},
              "doc": "z / (1.1 (1 + exp(-2z/h))), "
                     "Chatterji-Long-Bartlett's scaled Swish (quadrature)",
              "make": "expansions.make_swish", "args": (_number("h", positive=True),),
              "method": "mehler", "soft": lambda h: ((0.0, math.pi * float(h) / 2),),
              "source": "scaled Swish of Chatterji, Long & Bartlett", "phi": _swish_phi},
    "activation": {"params": {"expr": REQUIRED},
                   "doc": "a user expression of z: Hermite (exact) if polynomial, else quadrature",
                   "make": "expansions.make_expression", "args": (_expression,)},
}


def _fact(kind, key, args, default):
    value = ACTIVATION_KINDS[kind].get(key, default)
    return value(*args) if callable(value) else value


def _check_kind(kind):
    if kind not in ACTIVATION_KINDS:
        close = difflib.get_close_matches(str(kind), ACTIVATION_KINDS, n=1)
        hint = ("did you mean '%s'? " % close[0]) if close else ""
        raise SpecError("unknown activation '%s' (%svalid: %s)"
                        % (kind, hint, ", ".join(ACTIVATION_KINDS)))


def check_params(kind, params):
    """The kind's parameters with defaults filled in; a SpecError naming an unknown kind or
    parameter, or a missing one."""
    _check_kind(kind)
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


def constructor_args(kind, params):
    """The checked arguments of the kind's constructor (``params`` as :func:`check_params`
    returns them); a SpecError for a bad value."""
    return tuple(arg(kind, params) for arg in ACTIVATION_KINDS[kind].get("args", ()))


def is_static(kind):
    """Whether ``kind`` is described by this table (every kind but the user expression); a
    SpecError naming the valid kinds if it is none."""
    _check_kind(kind)
    return "phi" in ACTIVATION_KINDS[kind]


def format_name(kind, params):
    """The display name of a kind with its constructor's parameters: ``relu``,
    ``leaky_relu(slope=0.1)``, ``activation(expr="z**2")``; a learnable parameter shows the
    name of its symbol."""
    if not params:
        return kind

    def fmt(v):
        if isinstance(v, str):
            return '"%s"' % v
        # a Learnable (a float) or a sympy symbol: the name of its hyperparameter
        return v.name if hasattr(v, "name") else repr(v)

    return "%s(%s)" % (kind, ", ".join("%s=%s" % (k, fmt(v)) for k, v in params.items()))


def activation_name(kind, params):
    """The name that ``get_activation(kind, **params)`` has, without building it (defaults
    filled in, arguments as the constructor takes them).

    >>> activation_name("relu_power", {"k": 2.0})
    'relu_power(k=2)'
    """
    args = constructor_args(kind, check_params(kind, params))
    return format_name(kind, dict(zip(ACTIVATION_KINDS[kind]["params"], args)))


def named_facts(kind, args):
    """The keyword arguments of :class:`~ntksym.duals.base.Activation` that the table fixes
    for a kind with constructor arguments ``args``: params, method, breakpoints, source, soft.

    >>> named_facts("huberized_relu", (0.5,))["breakpoints"]
    (0.0, 0.5)
    """
    return {"params": dict(zip(ACTIVATION_KINDS[kind]["params"], args)),
            "method": ACTIVATION_KINDS[kind]["method"],
            "breakpoints": _fact(kind, "breakpoints", args, ()),
            "source": _fact(kind, "source", args, ""),
            "soft": _fact(kind, "soft", args, ())}


def method_text(method, breakpoints=(), soft=()):
    """How the duals are computed, as ``check`` and ``derive`` print it."""
    if method == "closed":
        return "closed form"
    if method == "hermite":
        return "exact Hermite expansion (polynomial in a, b, c)"
    bp = ", ".join("%g" % p for p in breakpoints) or "none"
    if method == "mehler":
        return "%s; breakpoints: %s" % (hermite_description(soft), bp)
    return ("Gauss-Legendre quadrature, order %d per piece on [-%g, %g] std, breakpoints: %s"
            % (QUAD_ORDER, QUAD_RANGE, QUAD_RANGE, bp))


def description_text(name, phi, method, breakpoints=(), soft=(), source=""):
    """One line: the activation, phi(z), its path and the formula's source."""
    return "%s: phi(z) = %s; %s%s" % (name, phi, method_text(method, breakpoints, soft),
                                       " (%s)" % source if source else "")


def describe_named(kind, params):
    """The description of a kind of this table (:func:`is_static`) with parameters ``params``
    (values, or learnable constants), without sympy; the text
    :meth:`~ntksym.duals.base.Activation.description` gives for the same activation."""
    args = constructor_args(kind, check_params(kind, params))
    facts = named_facts(kind, args)
    return description_text(format_name(kind, facts["params"]),
                            _fact(kind, "phi", args, None), facts["method"],
                            facts["breakpoints"], facts["soft"], facts["source"])


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
    _check_kind(kind)

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
    check_params(kind, params)
    return kind, params
