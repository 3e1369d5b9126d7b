"""What every activation of the registry is: :class:`Activation` (phi, phi' and the four dual
kernels), and the helpers that put phi and phi' in printable Piecewise form.

The kinds themselves are built in :mod:`ntksym.duals.closed` (closed-form duals) and
:mod:`ntksym.duals.expansions` (Hermite expansions and quadrature); the registry is
:mod:`ntksym.duals.activations`, and what it knows without sympy (parameters, method, source,
breakpoints, the text of phi) is :mod:`ntksym.duals.kinds`.

>>> step(Z)
Piecewise((1, z > 0), (0, True))
"""

from __future__ import annotations

import math

import sympy as sp

from ntksym.ir.functions import Z, hermite_family, quadrature_expectation

from .kinds import description_text, format_name, named_facts


def step(x):
    """1[x > 0] as a Piecewise (value 0 at 0, stated explicitly for every printer)."""
    return sp.Piecewise((sp.Integer(1), x > 0), (sp.Integer(0), True))


def relu(x):
    return sp.Piecewise((x, x > 0), (sp.Integer(0), True))


def sign(x):
    return sp.Piecewise((sp.Integer(1), x > 0), (sp.Integer(-1), x < 0), (sp.Integer(0), True))


def double_factorial_odd(n):
    """(2n-1)!! with (-1)!! = 1: E[z^(2n)] for z ~ N(0, 1)."""
    return sp.factorial2(2 * n - 1) if n > 0 else sp.Integer(1)


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


#: functions whose linear arguments mark a soft feature of a user expression
_SMOOTH = (sp.tanh, sp.erf, sp.exp, sp.log, sp.sin, sp.cos, sp.tan, sp.sinh, sp.cosh, sp.atan)


def expression_features(expr, limit=4):
    """Soft features (point, width) of a user expression, for the quadrature and coefficient
    rules (:mod:`ntksym.ir.gaussian`): always (0, 1), and for every smooth function of an
    argument alpha z + beta the point -beta/alpha on the scale 1/|alpha| (at most ``limit``,
    the finest per point).

    >>> expression_features(sp.tanh(4 * Z - 2))
    ((0.0, 1.0), (0.5, 0.25))
    """
    feats = {0.0: 1.0}
    for node in sp.preorder_traversal(expr):
        if not isinstance(node, _SMOOTH):
            continue
        arg = sp.expand(node.args[0])
        if not arg.has(Z) or not arg.is_polynomial(Z) or sp.degree(arg, Z) != 1:
            continue
        alpha, beta = arg.coeff(Z, 1), arg.coeff(Z, 0)
        if not (alpha.is_number and beta.is_number) or alpha == 0:
            continue
        p, w = float(-beta / alpha), float(1 / abs(alpha))
        if math.isfinite(p) and math.isfinite(w) and w > 0:
            feats[p] = min(w, feats.get(p, w))
    finest = sorted(feats.items(), key=lambda kv: kv[1])[:limit]
    return tuple(sorted(finest))


def piecewise_form(expr):
    """Rewrite Abs/Max/Min/Heaviside/sign as Piecewise so that diff gives no DiracDelta."""
    repl = {}
    for node in sp.postorder_traversal(expr):
        if isinstance(node, sp.Heaviside):
            repl[node] = step(node.args[0])
        elif isinstance(node, sp.sign):
            repl[node] = sign(node.args[0])
    expr = expr.xreplace(repl) if repl else expr
    return expr.rewrite(sp.Piecewise) if expr.has(sp.Abs, sp.Max, sp.Min) else expr


def clean_derivative(d):
    """phi' in printable form: Heaviside/sign/DiracDelta from diff become Piecewise / 0."""
    d = d.replace(sp.DiracDelta, lambda *args: sp.Integer(0))
    repl = {}
    for node in sp.postorder_traversal(d):
        if isinstance(node, sp.Heaviside):
            repl[node] = step(node.args[0])
        elif isinstance(node, sp.sign):
            repl[node] = sign(node.args[0])
    d = d.xreplace(repl) if repl else d
    return sp.piecewise_fold(d) if d.has(sp.Piecewise) else d


class Activation:
    """One activation function with fixed parameters, and its dual kernels.

    Attributes: ``name`` (canonical display, e.g. ``leaky_relu(slope=0.1)``), ``kind``,
    ``params``, ``phi`` and ``dphi`` (sympy expressions of ``ntksym.ir.functions.Z``), ``method``
    ("closed" | "hermite" | "mehler" | "quadrature"), ``breakpoints`` (kinks of phi / dphi),
    ``soft`` (soft features (point, width): where phi turns smoothly, on which scale).

    >>> from ntksym.duals.activations import get_activation
    >>> act = get_activation("erf")
    >>> act.method
    'closed'
    """

    def __init__(self, kind, params, phi, dphi, method, breakpoints=(), rules=None, source="",
                 soft=()):
        self.kind = kind
        self.params = dict(params)
        self.phi = phi
        self.dphi = dphi
        self.method = method
        self.breakpoints = tuple(float(p) for p in breakpoints)
        self.soft = tuple((float(p), float(w)) for p, w in soft)
        self.source = source
        self._rules = rules or {}
        self.name = format_name(kind, self.params)

    @classmethod
    def named(cls, kind, args, phi, dphi, rules=None):
        """The activation ``kind`` of the registry built from its constructor's arguments
        ``args``: parameters, method, breakpoints, soft features and source from the table of
        :mod:`ntksym.duals.kinds` (their one source), phi, phi' and the dual ``rules`` from the
        constructor.

        >>> import sympy as sp
        >>> Activation.named("erf", (), sp.erf(Z), 2 / sp.sqrt(sp.pi) * sp.exp(-Z**2)).source
        'Williams 1997'
        """
        return cls(kind, phi=phi, dphi=dphi, rules=rules, **named_facts(kind, args))

    def __repr__(self):
        return "Activation(%s, method=%s)" % (self.name, self.method)

    # The numerical expectations are memoized sympy Function classes (one per integrand).
    def _quad(self, which):
        f = self.phi if which == "phi" else self.dphi
        label = self.name if which == "phi" else self.name + "'"
        if self.method == "mehler":
            fam = hermite_family((self.name, self.name + "'"), (self.phi, self.dphi),
                                 self.breakpoints, self.soft)
            return fam[0] if which == "phi" else fam[1]
        return quadrature_expectation(label, f, f, self.breakpoints, self.soft)

    @property
    def numerical(self):
        """Whether the duals are numerical special functions (Mehler series or quadrature)."""
        return self.method in ("mehler", "quadrature")

    def dual(self, a, b, c):
        """E[phi(u) phi(v)], (u, v) ~ N(0, [[a, c], [c, b]])."""
        a, b, c = sp.sympify(a), sp.sympify(b), sp.sympify(c)
        if self.numerical:
            return self._quad("phi")(a, b, c)
        return self._rules["dual"](a, b, c)

    def dual_diag(self, a):
        """E[phi(u)^2], u ~ N(0, a), by its own exact rule."""
        a = sp.sympify(a)
        if self.numerical:
            return self._quad("phi")(a)
        return self._rules["dual_diag"](a)

    def dual_prime(self, a, b, c):
        """E[phi'(u) phi'(v)]."""
        a, b, c = sp.sympify(a), sp.sympify(b), sp.sympify(c)
        if self.numerical:
            return self._quad("dphi")(a, b, c)
        return self._rules["dual_prime"](a, b, c)

    def dual_prime_diag(self, a):
        """E[phi'(u)^2], u ~ N(0, a)."""
        a = sp.sympify(a)
        if self.numerical:
            return self._quad("dphi")(a)
        return self._rules["dual_prime_diag"](a)

    def description(self):
        """One line: the activation, its path and the formula's source (for a kind of
        :mod:`ntksym.duals.kinds` the same text as its ``describe_named``, without sympy)."""
        return description_text(self.name, sp.sstr(self.phi), self.method, self.breakpoints,
                                self.soft, self.source)
