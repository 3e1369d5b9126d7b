"""The whitelist parser for user activation expressions: text -> sympy expression of z.

Spec files are untrusted, so the text is never evaluated (no ``eval``, no ``sympify`` of the
string).  It is parsed by :func:`ast.parse` and the tree is walked node by node; only these
are accepted:

* numeric literals (int / float, |x| <= 1e6), the name ``z``, the constants ``pi`` and ``e``;
* unary ``+ -`` and binary ``+ - * / **``;
* calls by plain name, positional arguments only, of: exp, log, sqrt, sin, cos, tan, tanh,
  sinh, cosh, erf, abs, sigmoid, softplus, relu, heaviside / step (1 arg); max, min (2+ args).

Anything else -- attributes, subscripts, lambdas, comprehensions, keywords, strings, other
names such as ``__import__`` -- raises :class:`ntksym.errors.SpecError` naming what was refused.

Resource guards (so that no input can make parsing slow or huge): text <= 500 characters,
<= 200 AST nodes, nesting depth <= 40, the exponent of ``**`` must be a numeric constant
(a literal, optionally signed, or a ratio of literals such as ``1/2``) with |p| <= 16, every
constant subexpression is first computed in floats and must stay finite and below 1e300 (so
sympy never evaluates e.g. exp(exp(1e6))), and the polynomial degree implied by the tree is at
most 64.  ``9**9**9**9`` is therefore refused without being evaluated.

Conventions: ``heaviside(0) = step(0) = 0``, ``relu(x) = x if x > 0 else 0`` (both as
``Piecewise``), ``sigmoid(x) = (1 + tanh(x/2)) / 2`` and ``softplus(x) = max(x, 0) +
log(1 + exp(-|x|))``, forms that cannot overflow in floating point; ``log(1 + exp(x))``
written out is rewritten as ``softplus(x)`` (:func:`stable_forms`).

Example
-------
>>> parse_expression("z**3 - z")
z**3 - z
>>> parse_expression("z.__class__")
Traceback (most recent call last):
...
ntksym.errors.SpecError: key 'expr': attribute access is not allowed in an expression
(use numbers, z, pi, e, + - * / ** and named functions)
"""

from __future__ import annotations

import ast
import math

import sympy as sp

from ntksym.errors import SpecError
from ntksym.ir.functions import Z

MAX_LENGTH = 500
MAX_NODES = 200
MAX_DEPTH = 40
MAX_LITERAL = 1e6
MAX_EXPONENT = 16
MAX_DEGREE = 64


def _step(x):
    return sp.Piecewise((sp.Integer(1), x > 0), (sp.Integer(0), True))


def _relu(x):
    return sp.Piecewise((x, x > 0), (sp.Integer(0), True))


def _sigmoid(x):
    return (1 + sp.tanh(x / 2)) / 2


def _softplus(x):
    return sp.Max(x, 0) + sp.log(1 + sp.exp(-sp.Abs(x)))


# name -> (arity: int or "2+", builder)
FUNCTIONS = {
    "exp": (1, sp.exp), "log": (1, sp.log), "sqrt": (1, sp.sqrt),
    "sin": (1, sp.sin), "cos": (1, sp.cos), "tan": (1, sp.tan),
    "tanh": (1, sp.tanh), "sinh": (1, sp.sinh), "cosh": (1, sp.cosh),
    "erf": (1, sp.erf), "abs": (1, sp.Abs),
    "sigmoid": (1, _sigmoid), "softplus": (1, _softplus), "relu": (1, _relu),
    "heaviside": (1, _step), "step": (1, _step),
    "max": ("2+", lambda *xs: sp.Max(*xs)), "min": ("2+", lambda *xs: sp.Min(*xs)),
}
NAMES = {"z": Z, "pi": sp.pi, "e": sp.E}

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


def _refuse(what, hint=None):
    raise SpecError(what, key="expr", hint=hint)


def _describe(node):
    """A short human name of an AST node for error messages."""
    names = {ast.Attribute: "attribute access", ast.Subscript: "a subscript",
             ast.Lambda: "a lambda", ast.ListComp: "a comprehension",
             ast.GeneratorExp: "a comprehension", ast.SetComp: "a comprehension",
             ast.DictComp: "a comprehension", ast.Compare: "a comparison",
             ast.BoolOp: "a boolean operator", ast.IfExp: "an if-expression",
             ast.Tuple: "a tuple", ast.List: "a list", ast.Dict: "a dict", ast.Set: "a set",
             ast.Starred: "a starred argument", ast.NamedExpr: "an assignment expression",
             ast.JoinedStr: "an f-string", ast.Await: "await", ast.Yield: "yield"}
    for cls, name in names.items():
        if isinstance(node, cls):
            return name
    return type(node).__name__


def _check_shape(tree):
    """Node count and depth, computed iteratively (the tree may be deep)."""
    count = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            _refuse("expression too large (more than %d syntax nodes)" % MAX_NODES)
        if depth > MAX_DEPTH:
            _refuse("expression nested too deeply (more than %d levels)" % MAX_DEPTH)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _number(node):
    """The value of a numeric literal node, or None."""
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        return v
    return None


def _exponent(node):
    """A numeric constant exponent: literal, signed literal, or a ratio of those."""
    sign = 1
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        if isinstance(node.op, ast.USub):
            sign = -sign
        node = node.operand
    v = _number(node)
    if v is not None:
        return sign * v
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        p, q = _exponent(node.left), _exponent(node.right)
        if p is not None and q is not None and q != 0:
            return sign * sp.Rational(p) / sp.Rational(q) if all(
                isinstance(x, int) for x in (p, q)) else sign * p / q
    return None


def _math_sigmoid(x):
    return 0.5 * (1.0 + math.tanh(0.5 * x))


def _math_softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


# float shadows of the functions, used to bound constant subexpressions before sympy sees them
_MATH = {
    "exp": math.exp, "log": math.log, "sqrt": math.sqrt, "sin": math.sin, "cos": math.cos,
    "tan": math.tan, "tanh": math.tanh, "sinh": math.sinh, "cosh": math.cosh, "erf": math.erf,
    "abs": abs, "sigmoid": _math_sigmoid, "softplus": _math_softplus,
    "relu": lambda x: max(x, 0.0), "heaviside": lambda x: 1.0 if x > 0 else 0.0,
    "step": lambda x: 1.0 if x > 0 else 0.0, "max": max, "min": min,
}
MAX_CONSTANT = 1e300


class _Builder:
    """Walks the checked AST and returns (sympy expression, polynomial degree bound, value).

    ``value`` is the float value of a constant subexpression (None where z occurs).  It is
    computed with Python's math first and bounded by 1e300, because sympy evaluates functions
    of Float arguments eagerly and e.g. exp(exp(1e6)) would never finish.
    """

    def build(self, node):
        if isinstance(node, ast.Constant):
            v = _number(node)
            if v is None:
                _refuse("constant %r is not allowed (only numbers)" % (node.value,))
            if not math.isfinite(v) or abs(v) > MAX_LITERAL:
                _refuse("number %r is out of range (|x| <= %g)" % (v, MAX_LITERAL))
            return (sp.Integer(v) if isinstance(v, int) else sp.Float(v)), 0, float(v)
        if isinstance(node, ast.Name):
            if node.id not in NAMES:
                hint = ("'%s' is a function: call it, e.g. %s(z)" % (node.id, node.id)
                        if node.id in FUNCTIONS else None)
                _refuse("name '%s' is not allowed (allowed: z, pi, e)" % node.id, hint)
            if node.id == "z":
                return Z, 1, None
            return NAMES[node.id], 0, (math.pi if node.id == "pi" else math.e)
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.UAdd, ast.USub)):
                _refuse("operator %s is not allowed" % type(node.op).__name__)
            x, d, v = self.build(node.operand)
            if isinstance(node.op, ast.USub):
                return -x, d, (None if v is None else -v)
            return x, d, v
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        _refuse("%s is not allowed in an expression" % _describe(node),
                "use numbers, z, pi, e, + - * / ** and named functions")

    @staticmethod
    def _value(what, fn, *vals):
        """fn(*vals) in floats, refused when it overflows, is undefined or is too large."""
        if any(v is None for v in vals):
            return None
        try:
            out = fn(*vals)
        except (OverflowError, ValueError, ZeroDivisionError):
            _refuse("the constant %s is undefined or too large" % what)
        if isinstance(out, complex) or not math.isfinite(out) or abs(out) > MAX_CONSTANT:
            _refuse("the constant %s is not a finite real number below %g" % (what, MAX_CONSTANT))
        return float(out)

    def binop(self, node):
        op = type(node.op)
        if op not in _BINOPS:
            _refuse("operator %s is not allowed (allowed: + - * / **)" % op.__name__)
        if op is ast.Pow:
            p = _exponent(node.right)
            if p is None:
                _refuse("the exponent of ** must be a numeric constant",
                        "e.g. z**3 or z**(1/2); use exp(...) for variable exponents")
            if not math.isfinite(float(p)) or abs(float(p)) > MAX_EXPONENT:
                _refuse("exponent %s is out of range (|p| <= %d)" % (p, MAX_EXPONENT))
            base, d, bv = self.build(node.left)
            pf = float(p)
            val = self._value("(%s)**(%s)" % (sp.sstr(base), p), lambda x: x ** pf, bv)
            if pf.is_integer():
                pe, deg = sp.Integer(int(pf)), d * int(abs(pf))
            else:
                pe, deg = (p if isinstance(p, sp.Rational) else sp.Float(pf)), d
            return base ** pe, self._deg(deg), val
        (x, dx, vx), (y, dy, vy) = self.build(node.left), self.build(node.right)
        sym = _BINOPS[op]
        what = "(%s) %s (%s)" % (sp.sstr(x), sym, sp.sstr(y))
        if op is ast.Add:
            return x + y, max(dx, dy), self._value(what, lambda s, t: s + t, vx, vy)
        if op is ast.Sub:
            return x - y, max(dx, dy), self._value(what, lambda s, t: s - t, vx, vy)
        if op is ast.Mult:
            return x * y, self._deg(dx + dy), self._value(what, lambda s, t: s * t, vx, vy)
        if y == 0 or vy == 0.0:
            _refuse("division by zero")
        return x / y, max(dx, dy), self._value(what, lambda s, t: s / t, vx, vy)

    @staticmethod
    def _deg(d):
        if d > MAX_DEGREE:
            _refuse("expression degree too high (more than %d)" % MAX_DEGREE)
        return d

    def call(self, node):
        if not isinstance(node.func, ast.Name):
            _refuse("only plain function names may be called (%s refused)" % _describe(node.func))
        name = node.func.id
        if name not in FUNCTIONS:
            _refuse("function '%s' is not allowed" % name,
                    "allowed: " + ", ".join(sorted(FUNCTIONS)))
        if node.keywords:
            _refuse("keyword arguments are not allowed (in %s(...))" % name)
        arity, fn = FUNCTIONS[name]
        n = len(node.args)
        if (arity == "2+" and n < 2) or (arity != "2+" and n != arity):
            _refuse("%s takes %s argument(s), got %d"
                    % (name, "2 or more" if arity == "2+" else arity, n))
        built = [self.build(a) for a in node.args]
        args = [b[0] for b in built]
        deg = max(b[1] for b in built)
        val = self._value("%s(%s)" % (name, ", ".join(sp.sstr(a) for a in args)),
                          _MATH[name], *[b[2] for b in built])
        return fn(*args), (deg if name in ("max", "min", "abs", "relu") else max(deg, 1)), val


def parse_expression(text: str) -> sp.Expr:
    """Parse an activation expression of ``z`` into sympy without evaluating any code.

    Raises :class:`ntksym.errors.SpecError` (key ``expr``) naming what was refused.

    >>> parse_expression("relu(z) + 0.1*sin(pi*z)")
    Piecewise((z, z > 0), (0, True)) + 0.1*sin(pi*z)
    >>> parse_expression("9**9**9**9")
    Traceback (most recent call last):
    ...
    ntksym.errors.SpecError: key 'expr': the exponent of ** must be a numeric constant
    (e.g. z**3 or z**(1/2); use exp(...) for variable exponents)
    """
    if not isinstance(text, str):
        _refuse("the expression must be a string, got %s" % type(text).__name__)
    if len(text) > MAX_LENGTH:
        _refuse("expression too long (%d characters, at most %d)" % (len(text), MAX_LENGTH))
    if not text.strip():
        _refuse("empty expression", "e.g. \"z**3 - z\"")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        msg = getattr(exc, "msg", None) or type(exc).__name__
        _refuse("cannot parse expression %r: %s" % (text, msg))
    _check_shape(tree)
    try:
        expr, _, _ = _Builder().build(tree.body)
    except SpecError:
        raise
    except (RecursionError, MemoryError, OverflowError, ZeroDivisionError, ValueError,
            TypeError) as exc:  # sympy refusing a construction: still a user error
        _refuse("cannot build expression %r (%s)" % (text, type(exc).__name__))
    if not isinstance(expr, sp.Expr) or expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo, sp.I):
        _refuse("expression %r is not a finite real function of z" % text)
    check_real(expr, text)
    return stable_forms(expr)


def stable_forms(expr):
    """Rewrite log(1 + exp(x)) as softplus(x) = max(x, 0) + log(1 + exp(-|x|)), the same
    function in a form that cannot overflow (exp(x) is inf for x > 709: at large variances
    the Gaussian reaches such x, and log(1 + exp(x)) and its derivative exp(x) / (1 + exp(x))
    would be inf and NaN there).

    >>> stable_forms(parse_expression("z"))
    z
    >>> stable_forms(sp.log(1 + sp.exp(Z)))
    log(1 + exp(-Abs(z))) + Max(0, z)
    """
    w = sp.Wild("w")
    return expr.replace(sp.log(1 + sp.exp(w)), lambda w: _softplus(w)) if expr.has(sp.log) \
        else expr


# ----------------------------------------------------------------- real for every real z

#: probe points, in the order a counterexample is reported (z = 0 is left out: log(z**2) and
#: abs(z)**(-1/2) are real almost everywhere, which is all a Gaussian expectation needs)
PROBES = (-1.0, -0.5, -2.0, 1.0, 0.5, 2.0, -0.1, -3.0, -5.0, -10.0, -0.01, -1e-4, 0.1, 3.0,
          5.0, 10.0, 0.01, 1e-4, -30.0, 30.0, -100.0, 100.0, -1e3, 1e3) + tuple(
          round(-4.0 + 0.0625 * k, 4) for k in range(129) if k != 64)


def _radicands(expr):
    """(subexpression, argument) pairs whose argument sympy cannot prove to be in the domain:
    the bases of fractional powers (>= 0) and the arguments of logarithms (> 0)."""
    out = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Pow) and not node.exp.is_integer:
            if not node.base.is_nonnegative:
                out.append((sp.sstr(node), node.base))
        elif isinstance(node, sp.log) and not node.args[0].is_positive:
            out.append((sp.sstr(node), node.args[0]))
    return out


def _value_at(fn, z):
    """fn(z) in floats: a real number, "complex" (or undefined), or None (overflow)."""
    try:
        v = fn(z)
    except ValueError:              # math domain error: sqrt/log of a negative number, log(0)
        return "complex"
    except TypeError:               # a complex intermediate (z**2.5 at z < 0) fed to math.log
        return "complex"
    except (OverflowError, ZeroDivisionError):
        return None
    if isinstance(v, complex):
        return "complex" if v.imag != 0 or v.real != v.real else v.real
    return v


_HINT = "make the argument nonnegative, e.g. sqrt(abs(z)) or sqrt(z**2 + 1)"


def check_real(expr, text):
    """SpecError unless ``expr`` is real for every real z (z is Gaussian over the whole real
    line, so ``sqrt(z)`` or ``z**0.5`` or ``log(z)`` would make the kernel complex).

    sympy's assumptions prove most expressions real (``sqrt(abs(z))``, ``sqrt(z**2 + 1)``,
    ``log(1 + exp(z))``: every radicand is nonnegative); the others are probed at real points
    and refused with a point where they are complex or undefined.

    >>> check_real(sp.sqrt(abs(Z)), "sqrt(abs(z))")
    >>> check_real(sp.sqrt(Z), "sqrt(z)")
    Traceback (most recent call last):
    ...
    ntksym.errors.SpecError: key 'expr': expression 'sqrt(z)' is not real for every real z:
    sqrt(z) is complex at z = -1 (its argument z is negative there), and z is Gaussian over
    all the reals (make the argument nonnegative, e.g. sqrt(abs(z)) or sqrt(z**2 + 1))
    """
    suspects = _radicands(expr)
    if not suspects:
        return
    fn = sp.lambdify(Z, expr, "math")
    for z in PROBES:
        if _value_at(fn, z) != "complex":
            continue
        where = "%g" % z
        for what, arg in suspects:
            a = _value_at(sp.lambdify(Z, arg, "math"), z)
            if isinstance(a, (int, float)) and a <= 0:
                sign = "negative" if a < 0 else "zero"
                _refuse("expression %r is not real for every real z: %s is %s at z = %s "
                        "(its argument %s is %s there), and z is Gaussian over all the reals"
                        % (text, what, "complex" if a < 0 else "undefined", where,
                           sp.sstr(arg), sign),
                        _HINT)
        _refuse("expression %r is not a real number at z = %s, and z is Gaussian over all the "
                "reals" % (text, where),
                "make every sqrt, log and fractional power act on a nonnegative argument")
