"""The activation registry: phi(z), phi'(z) and their Gaussian dual kernels.

For (u, v) ~ N(0, [[a, c], [c, b]]) an :class:`Activation` gives sympy expressions of

* ``dual(a, b, c)``        = E[phi(u) phi(v)]
* ``dual_diag(a)``         = E[phi(u)^2],  u ~ N(0, a)   (its own exact rule, not dual(a, a, a))
* ``dual_prime(a, b, c)``  = E[phi'(u) phi'(v)]
* ``dual_prime_diag(a)``   = E[phi'(u)^2]

Each activation takes one of three paths (``Activation.method``):

* ``"closed"``: a closed form (arc-cosine kernels of ReLU / leaky ReLU / |z| / step / ReLU^k
  (Cho & Saul 2009), erf (Williams 1997), identity, sin).  Every arccos / arcsin /
  sqrt(1 - rho^2) takes ``rho = ClippedCorrelation(c, a, b)`` so round-off cannot push |rho|
  above 1.
* ``"hermite"``: a polynomial user expression; exact duals by Hermite expansion, derived by
  sympy: a polynomial in a, b, c with no square roots.
* ``"quadrature"``: ``quadrature_expectation(label, phi, phi, breakpoints)`` -- piecewise
  Gauss-Legendre of order ``QUAD_ORDER`` (see :mod:`ntksym.duals.quadrature`).

``phi`` and ``dphi`` are sympy expressions of ``ntksym.ir.functions.Z`` built only from functions with a
``math``-module equivalent and ``Piecewise`` (never ``Heaviside``/``sign``, whose value at 0
differs between printers): the convention is phi'(0) = right-hand value for kinks at 0 of
ReLU-like functions, i.e. Heaviside(0) = 0 (the derivative set is measure zero; it never
changes a dual).

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

import sympy as sp

from ntksym.errors import SpecError
from ntksym.ir.functions import QUAD_ORDER, QUAD_RANGE, ClippedCorrelation, Z, quadrature_expectation

REQUIRED = "REQUIRED"

ACTIVATION_KINDS = {
    "relu": {"params": {}, "doc": "max(z, 0); arc-cosine kernel of order 1 (closed form)"},
    "leaky_relu": {"params": {"slope": REQUIRED},
                   "doc": "z for z > 0, slope*z otherwise (closed form: slope*c + (1-slope)^2 J_relu)"},
    "abs": {"params": {}, "doc": "|z| (closed form)"},
    "erf": {"params": {}, "doc": "erf(z) (closed form, Williams 1997)"},
    "identity": {"params": {}, "doc": "z (closed form)"},
    "step": {"params": {}, "doc": "1[z > 0] (closed form; phi' = 0 a.e., so the derivative dual is 0)"},
    "relu_power": {"params": {"k": REQUIRED},
                   "doc": "max(z, 0)^k, integer k >= 1 (arc-cosine kernel of order k, Cho & Saul 2009)"},
    "sin": {"params": {}, "doc": "sin(z) (closed form)"},
    "tanh": {"params": {}, "doc": "tanh(z) (quadrature)"},
    "huberized_relu": {"params": {"h": REQUIRED},
                       "doc": "0 (z<0), z^2/(2h) (0<=z<=h), z - h/2 (z>h); Chatterji-Long-Bartlett (quadrature)"},
    "swish": {"params": {"h": REQUIRED},
              "doc": "z / (1.1 (1 + exp(-2z/h))), Chatterji-Long-Bartlett's scaled Swish (quadrature)"},
    "activation": {"params": {"expr": REQUIRED},
                   "doc": "a user expression of z: Hermite (exact) if polynomial, else quadrature"},
}


def _step(x):
    """1[x > 0] as a Piecewise (value 0 at 0, stated explicitly for every printer)."""
    return sp.Piecewise((sp.Integer(1), x > 0), (sp.Integer(0), True))


def _relu(x):
    return sp.Piecewise((x, x > 0), (sp.Integer(0), True))


def _sign(x):
    return sp.Piecewise((sp.Integer(1), x > 0), (sp.Integer(-1), x < 0), (sp.Integer(0), True))


def _relu_J(a, b, c):
    """E[relu(u) relu(v)] = sqrt(ab)/(2 pi) (sqrt(1 - rho^2) + (pi - acos rho) rho)."""
    rho = ClippedCorrelation(c, a, b)
    return sp.sqrt(a * b) / (2 * sp.pi) * (sp.sqrt(1 - rho**2) + (sp.pi - sp.acos(rho)) * rho)


def _relu_J0(a, b, c):
    """E[1[u>0] 1[v>0]] = (pi - acos rho) / (2 pi)."""
    rho = ClippedCorrelation(c, a, b)
    return (sp.pi - sp.acos(rho)) / (2 * sp.pi)


@functools.lru_cache(maxsize=None)
def arccos_J(k):
    """Cho & Saul's J_k as a sympy expression of a correlation symbol ``rho`` (returned too).

    J_k(theta) = (-1)^k sin(theta)^(2k+1) ((1/sin theta) d/dtheta)^k ((pi - theta)/sin theta),
    rewritten with cos theta = rho, sin theta = sqrt(1 - rho^2), theta = acos(rho).

    >>> J, rho = arccos_J(1)
    >>> sp.simplify(J - (sp.sqrt(1 - rho**2) + (sp.pi - sp.acos(rho)) * rho))
    0
    """
    th = sp.Symbol("theta", positive=True)
    rho = sp.Symbol("rho", real=True)
    S = sp.Symbol("S", positive=True)  # stands for sin(theta) while reducing
    expr = (sp.pi - th) / sp.sin(th)
    for _ in range(k):
        expr = sp.diff(expr, th) / sp.sin(th)
    expr = sp.expand((-1) ** k * sp.sin(th) ** (2 * k + 1) * expr)
    # Polynomial in sin, cos, theta: reduce S^2 -> 1 - rho^2 so only S^0 / S^1 remain.
    expr = sp.expand(expr.subs({sp.sin(th): S, sp.cos(th): rho}))
    expr = sp.expand(sp.cancel(expr))
    poly = sp.Poly(expr, S)
    reduced = sp.Integer(0)
    for (e,), coeff in poly.terms():
        reduced += coeff * (1 - rho**2) ** (e // 2) * S ** (e % 2)
    reduced = sp.expand(reduced)
    # Expected shape: S * P1(rho) + (pi - theta) * P2(rho); keep it in that compact form.
    p_th = reduced.coeff(th)
    p_s = sp.expand(reduced - p_th * th).coeff(S)
    rest = sp.expand(reduced - p_th * th - p_s * S)
    if sp.expand(rest + sp.pi * p_th) == 0:
        out = sp.sqrt(1 - rho**2) * sp.factor(p_s) + (sp.pi - sp.acos(rho)) * sp.factor(-p_th)
    else:  # not reached for k >= 1; kept as a safe fallback
        out = reduced.subs({S: sp.sqrt(1 - rho**2), th: sp.acos(rho)})
    return out, rho


def _double_factorial_odd(n):
    """(2n-1)!! with (-1)!! = 1: E[z^(2n)] for z ~ N(0, 1)."""
    return sp.factorial2(2 * n - 1) if n > 0 else sp.Integer(1)


def _hermite_dual_coeffs(p):
    """beta_k(a) with E[p(u) p(v)] = sum_k k! beta_k(a) beta_k(b) c^k for a polynomial p(z).

    From z^m = sum_j m! / (2^j j! (m-2j)!) He_{m-2j}(z): phi(sqrt(a) z) = sum_k alpha_k(a) He_k(z)
    with alpha_k(a) = a^(k/2) beta_k(a), so the square roots cancel against rho^k = c^k/(ab)^(k/2).
    """
    A = sp.Symbol("A_", positive=True)
    poly = sp.Poly(sp.expand(p), Z)
    beta = {}
    for (m,), pm in poly.terms():
        for j in range(m // 2 + 1):
            k = m - 2 * j
            term = pm * A**j * sp.factorial(m) / (2**j * sp.factorial(j) * sp.factorial(k))
            beta[k] = beta.get(k, 0) + term
    return beta, A


def _hermite_dual(p, a, b, c):
    beta, A = _hermite_dual_coeffs(p)
    out = sp.Integer(0)
    for k, bk in sorted(beta.items()):
        out += sp.factorial(k) * bk.subs(A, a) * bk.subs(A, b) * c**k
    return sp.expand(out)


def _gaussian_moment_poly(p, a):
    """E[p(u)], u ~ N(0, a), for a polynomial p(z): sum_m p_m a^(m/2) (m-1)!! over even m."""
    poly = sp.Poly(sp.expand(p), Z)
    out = sp.Integer(0)
    for (m,), pm in poly.terms():
        if m % 2 == 0:
            out += pm * a ** (m // 2) * _double_factorial_odd(m // 2)
    return sp.expand(out)


def _linear_root(arg):
    """The root of arg(z) if arg is linear in Z with a numeric root, else None."""
    arg = sp.expand(arg)
    if not arg.has(Z):
        return None
    if not arg.is_polynomial(Z) or sp.degree(arg, Z) != 1:
        return None
    root = sp.solve(sp.Eq(arg, 0), Z)
    if len(root) == 1 and root[0].is_number:
        return float(root[0])
    return None


def expression_breakpoints(expr):
    """Points of non-smoothness of a user expression, where they can be found exactly.

    Roots of the arguments of Abs / Heaviside / Max / Min / sign and of Piecewise conditions,
    when those arguments are linear in z.  Non-linear arguments contribute none (the
    quadrature is then less accurate near such kinks; documented in docs/activations.md).

    >>> expression_breakpoints(sp.Abs(Z - 1) + sp.Max(Z, 0))
    (0.0, 1.0)
    """
    pts = set()
    for node in sp.preorder_traversal(expr):
        args = []
        if isinstance(node, (sp.Abs, sp.Heaviside, sp.sign)):
            args = [node.args[0]]
        elif isinstance(node, (sp.Max, sp.Min)):
            xs = node.args
            args = [x - y for i, x in enumerate(xs) for y in xs[i + 1:]]
        elif isinstance(node, sp.Piecewise):
            for _, cond in node.args:
                if isinstance(cond, sp.core.relational.Relational):
                    args.append(cond.lhs - cond.rhs)
        for arg in args:
            r = _linear_root(arg)
            if r is not None and math.isfinite(r):
                pts.add(r)
    return tuple(sorted(pts))


def _piecewise_form(expr):
    """Rewrite Abs/Max/Min/Heaviside/sign as Piecewise so that diff gives no DiracDelta."""
    repl = {}
    for node in sp.postorder_traversal(expr):
        if isinstance(node, sp.Heaviside):
            repl[node] = _step(node.args[0])
        elif isinstance(node, sp.sign):
            repl[node] = _sign(node.args[0])
    expr = expr.xreplace(repl) if repl else expr
    return expr.rewrite(sp.Piecewise) if expr.has(sp.Abs, sp.Max, sp.Min) else expr


def _clean_derivative(d):
    """phi' in printable form: Heaviside/sign/DiracDelta from diff become Piecewise / 0."""
    d = d.replace(sp.DiracDelta, lambda *args: sp.Integer(0))
    repl = {}
    for node in sp.postorder_traversal(d):
        if isinstance(node, sp.Heaviside):
            repl[node] = _step(node.args[0])
        elif isinstance(node, sp.sign):
            repl[node] = _sign(node.args[0])
    d = d.xreplace(repl) if repl else d
    return sp.piecewise_fold(d) if d.has(sp.Piecewise) else d


def _fmt(v):
    return repr(v) if not isinstance(v, str) else '"%s"' % v


class Activation:
    """One activation function with fixed parameters, and its dual kernels.

    Attributes: ``name`` (canonical display, e.g. ``leaky_relu(slope=0.1)``), ``kind``,
    ``params``, ``phi`` and ``dphi`` (sympy expressions of ``ntksym.ir.functions.Z``), ``method``
    ("closed" | "hermite" | "quadrature"), ``breakpoints`` (kinks of phi / dphi).

    >>> act = get_activation("erf")
    >>> act.method
    'closed'
    """

    def __init__(self, kind, params, phi, dphi, method, breakpoints=(), rules=None, source=""):
        self.kind = kind
        self.params = dict(params)
        self.phi = phi
        self.dphi = dphi
        self.method = method
        self.breakpoints = tuple(float(p) for p in breakpoints)
        self.source = source
        self._rules = rules or {}
        if params:
            self.name = "%s(%s)" % (kind, ", ".join("%s=%s" % (k, _fmt(v)) for k, v in params.items()))
        else:
            self.name = kind

    def __repr__(self):
        return "Activation(%s, method=%s)" % (self.name, self.method)

    # The quadrature integrands are memoized sympy Function classes (one per (label, f, g)).
    def _quad(self, which):
        f = self.phi if which == "phi" else self.dphi
        label = self.name if which == "phi" else self.name + "'"
        return quadrature_expectation(label, f, f, self.breakpoints)

    def dual(self, a, b, c):
        """E[phi(u) phi(v)], (u, v) ~ N(0, [[a, c], [c, b]])."""
        a, b, c = sp.sympify(a), sp.sympify(b), sp.sympify(c)
        if self.method == "quadrature":
            return self._quad("phi")(a, b, c)
        return self._rules["dual"](a, b, c)

    def dual_diag(self, a):
        """E[phi(u)^2], u ~ N(0, a), by its own exact rule."""
        a = sp.sympify(a)
        if self.method == "quadrature":
            return self._quad("phi")(a)
        return self._rules["dual_diag"](a)

    def dual_prime(self, a, b, c):
        """E[phi'(u) phi'(v)]."""
        a, b, c = sp.sympify(a), sp.sympify(b), sp.sympify(c)
        if self.method == "quadrature":
            return self._quad("dphi")(a, b, c)
        return self._rules["dual_prime"](a, b, c)

    def dual_prime_diag(self, a):
        """E[phi'(u)^2], u ~ N(0, a)."""
        a = sp.sympify(a)
        if self.method == "quadrature":
            return self._quad("dphi")(a)
        return self._rules["dual_prime_diag"](a)

    def description(self):
        """One line: the activation, its path and the formula's source."""
        if self.method == "closed":
            how = "closed form"
        elif self.method == "hermite":
            how = "exact Hermite expansion (polynomial in a, b, c)"
        else:
            bp = ", ".join("%g" % p for p in self.breakpoints) or "none"
            how = ("Gauss-Legendre quadrature, order %d per piece on [-%g, %g] std, breakpoints: %s"
                   % (QUAD_ORDER, QUAD_RANGE, QUAD_RANGE, bp))
        return "%s: phi(z) = %s; %s%s" % (self.name, sp.sstr(self.phi), how,
                                           " (%s)" % self.source if self.source else "")


# ------------------------------------------------------------------------------ constructors

def _make_relu():
    return Activation("relu", {}, _relu(Z), _step(Z), "closed", (0.0,), {
        "dual": _relu_J, "dual_diag": lambda a: a / 2,
        "dual_prime": _relu_J0, "dual_prime_diag": lambda a: sp.Rational(1, 2)},
        "arc-cosine kernel of order 1, Cho & Saul 2009")


def _make_leaky_relu(slope):
    s = sp.nsimplify(slope) if isinstance(slope, int) else sp.Float(slope)
    phi = sp.Piecewise((Z, Z > 0), (s * Z, True))
    dphi = sp.Piecewise((sp.Integer(1), Z > 0), (s, True))
    q = (1 - s) ** 2
    return Activation("leaky_relu", {"slope": slope}, phi, dphi, "closed", (0.0,), {
        # phi = s z + (1-s) relu(z) and E[u relu(v)] = c/2 (Stein) give s c + (1-s)^2 J.
        "dual": lambda a, b, c: s * c + q * _relu_J(a, b, c),
        "dual_diag": lambda a: (1 + s**2) * a / 2,
        "dual_prime": lambda a, b, c: s + q * _relu_J0(a, b, c),
        "dual_prime_diag": lambda a: (1 + s**2) / 2},
        "slope*c + (1-slope)^2 * ReLU arc-cosine kernel")


def _make_abs():
    def dual(a, b, c):
        rho = ClippedCorrelation(c, a, b)
        return 2 * sp.sqrt(a * b) / sp.pi * (sp.sqrt(1 - rho**2) + rho * sp.asin(rho))

    return Activation("abs", {}, sp.Abs(Z), _sign(Z), "closed", (0.0,), {
        "dual": dual, "dual_diag": lambda a: a,
        "dual_prime": lambda a, b, c: 2 / sp.pi * sp.asin(ClippedCorrelation(c, a, b)),
        "dual_prime_diag": lambda a: sp.Integer(1)},
        "|z| = relu(z) + relu(-z): 2 J(rho) + 2 J(-rho)")


def _make_erf():
    def dual(a, b, c):
        # 2c / sqrt((1+2a)(1+2b)) is the correlation of the covariance [[1+2a, 2c], [2c, 1+2b]].
        return 2 / sp.pi * sp.asin(ClippedCorrelation(2 * c, 1 + 2 * a, 1 + 2 * b))

    return Activation("erf", {}, sp.erf(Z), 2 / sp.sqrt(sp.pi) * sp.exp(-Z**2), "closed", (), {
        "dual": dual,
        "dual_diag": lambda a: 2 / sp.pi * sp.asin(2 * a / (1 + 2 * a)),
        "dual_prime": lambda a, b, c: 4 / sp.pi / sp.sqrt((1 + 2 * a) * (1 + 2 * b) - 4 * c**2),
        "dual_prime_diag": lambda a: 4 / sp.pi / sp.sqrt(1 + 4 * a)},
        "Williams 1997")


def _make_identity():
    return Activation("identity", {}, Z, sp.Integer(1), "closed", (), {
        "dual": lambda a, b, c: c, "dual_diag": lambda a: a,
        "dual_prime": lambda a, b, c: sp.Integer(1), "dual_prime_diag": lambda a: sp.Integer(1)},
        "linear")


def _make_step():
    return Activation("step", {}, _step(Z), sp.Integer(0), "closed", (0.0,), {
        "dual": _relu_J0, "dual_diag": lambda a: sp.Rational(1, 2),
        # phi' = 0 almost everywhere (the delta at 0 is not a function): no gradient flows.
        "dual_prime": lambda a, b, c: sp.Integer(0), "dual_prime_diag": lambda a: sp.Integer(0)},
        "arc-cosine kernel of order 0, Cho & Saul 2009; phi' = 0 a.e.")


def _make_relu_power(k):
    J, rho_s = arccos_J(k)
    Jm, rho_m = arccos_J(k - 1) if k > 1 else (sp.pi - sp.acos(sp.Symbol("rho", real=True)),
                                                  sp.Symbol("rho", real=True))
    phi = sp.Piecewise((Z**k, Z > 0), (sp.Integer(0), True))
    dphi = _step(Z) if k == 1 else sp.Piecewise((k * Z ** (k - 1), Z > 0), (sp.Integer(0), True))

    def dual(a, b, c):
        return (a * b) ** sp.Rational(k, 2) / (2 * sp.pi) * J.subs(rho_s, ClippedCorrelation(c, a, b))

    def dual_prime(a, b, c):
        return (k**2 * (a * b) ** sp.Rational(k - 1, 2) / (2 * sp.pi)
                * Jm.subs(rho_m, ClippedCorrelation(c, a, b)))

    return Activation("relu_power", {"k": k}, phi, dphi, "closed", (0.0,), {
        "dual": dual,
        # E[relu(u)^(2k)] = a^k (2k-1)!! / 2 (half the Gaussian moment)
        "dual_diag": lambda a: a**k * _double_factorial_odd(k) / 2,
        "dual_prime": dual_prime,
        "dual_prime_diag": lambda a: k**2 * a ** (k - 1) * _double_factorial_odd(k - 1) / 2},
        "arc-cosine kernel of order %d, Cho & Saul 2009; J_%d derived by sympy" % (k, k))


def _make_sin():
    return Activation("sin", {}, sp.sin(Z), sp.cos(Z), "closed", (), {
        "dual": lambda a, b, c: sp.exp(-(a + b) / 2) * sp.sinh(c),
        "dual_diag": lambda a: (1 - sp.exp(-2 * a)) / 2,
        "dual_prime": lambda a, b, c: sp.exp(-(a + b) / 2) * sp.cosh(c),
        "dual_prime_diag": lambda a: (1 + sp.exp(-2 * a)) / 2},
        "E[sin u sin v] = exp(-(a+b)/2) sinh c, E[cos u cos v] = exp(-(a+b)/2) cosh c")


def _make_tanh():
    t = sp.tanh(Z)
    return Activation("tanh", {}, t, 1 - t**2, "quadrature", (), source="no closed form")


def _make_huberized_relu(h):
    H = sp.Float(h)
    phi = sp.Piecewise((sp.Integer(0), Z < 0), (Z**2 / (2 * H), Z <= H), (Z - H / 2, True))
    dphi = sp.Piecewise((sp.Integer(0), Z < 0), (Z / H, Z <= H), (sp.Integer(1), True))
    return Activation("huberized_relu", {"h": h}, phi, dphi, "quadrature", (0.0, float(h)),
                      source="Chatterji, Long & Bartlett, eq. (1)")


def _make_swish(h):
    H = sp.Float(h)
    # z / (1.1 (1 + exp(-2z/h))) written with tanh: 1/(1+exp(-2x)) = (1 + tanh x)/2, which
    # never overflows (exp(-2z/h) does for z << 0 in Python's math).
    t = sp.tanh(Z / H)
    phi = Z * (1 + t) / sp.Float(2.2)
    dphi = (1 + t) / sp.Float(2.2) + Z * (1 - t**2) / (sp.Float(2.2) * H)
    return Activation("swish", {"h": h}, phi, dphi, "quadrature", (),
                      source="scaled Swish of Chatterji, Long & Bartlett")


MAX_HERMITE_DEGREE = 64


def _make_expression(text):
    from ntksym.duals.expr import parse_expression

    phi = parse_expression(text)
    if phi.is_polynomial(Z):
        deg = sp.degree(phi, Z) if phi.has(Z) else 0
        if deg > MAX_HERMITE_DEGREE:
            raise SpecError("polynomial activation of degree %d is too large (at most %d)"
                            % (deg, MAX_HERMITE_DEGREE), key="expr")
        dphi = sp.expand(sp.diff(phi, Z))
        return Activation("activation", {"expr": text}, phi, dphi, "hermite", (), {
            "dual": lambda a, b, c: _hermite_dual(phi, a, b, c),
            "dual_diag": lambda a: _gaussian_moment_poly(sp.expand(phi**2), a),
            "dual_prime": lambda a, b, c: _hermite_dual(dphi, a, b, c),
            "dual_prime_diag": lambda a: _gaussian_moment_poly(sp.expand(dphi**2), a)},
            "polynomial: Hermite expansion")
    bps = expression_breakpoints(phi)
    dphi = _clean_derivative(sp.diff(_piecewise_form(phi), Z))
    return Activation("activation", {"expr": text}, phi, dphi, "quadrature", bps,
                      source="user expression")


# ------------------------------------------------------------------------------ registry

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
            raise SpecError("activation '%s' has no parameter '%s' (valid: %s)" % (kind, name, valid))
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
    p = dict(frozen)
    if kind == "relu":
        return _make_relu()
    if kind == "leaky_relu":
        return _make_leaky_relu(_check_number(kind, "slope", p["slope"]))
    if kind == "abs":
        return _make_abs()
    if kind == "erf":
        return _make_erf()
    if kind == "identity":
        return _make_identity()
    if kind == "step":
        return _make_step()
    if kind == "relu_power":
        k = p["k"]
        if isinstance(k, float) and k.is_integer():
            k = int(k)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 8:
            raise SpecError("relu_power: parameter 'k' must be an integer in 1..8, got %r" % (k,))
        return _make_relu_power(k)
    if kind == "sin":
        return _make_sin()
    if kind == "tanh":
        return _make_tanh()
    if kind == "huberized_relu":
        return _make_huberized_relu(_check_number(kind, "h", p["h"], positive=True))
    if kind == "swish":
        return _make_swish(_check_number(kind, "h", p["h"], positive=True))
    if kind == "activation":
        if not isinstance(p["expr"], str):
            raise SpecError("activation: parameter 'expr' must be a string, got %r" % (p["expr"],))
        return _make_expression(p["expr"])
    raise AssertionError(kind)


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
