"""The :class:`Bound` type shared by every paper module.

A bound is a relation ``lhs REL expr`` between one named quantity (a width, an error, a step
size) and a sympy expression in the other symbols, with everything a reader needs to trust it:
the meaning and domain of each symbol, the assumptions under which the paper proves it, where it
comes from, and a status flag:

``"explicit"``               every constant is given in the paper;
``"unspecified-constants"``  the paper hides constants (``Omega``, ``poly``, "c large enough");
                             they are kept as named symbols (default 1, so a value is the bound
                             *up to* that constant) and the note says which;
``"corrected"``              the paper misprints the statement; the note says what was changed
                             and why.

Numbers come back as Python floats; values outside the float64 range (thresholds such as
``n**-(1+24L)``) come back as ``sympy.Float`` at 30 significant digits instead of underflowing.

>>> import sympy as sp
>>> from ntksym.bounds.core import Bound, sym
>>> b = Bound("demo.square", sp.Symbol("x") ** 2, {"x": sym("a length", "positive")},
...           lhs=sym("area", "positive", name="A"), relation=">=", source="none")
>>> b.evaluate(x=3)
9.0
>>> round(b.solve("x", A=16), 12)
4.0
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from ntksym.errors import NtksymError

STATUSES = ("explicit", "unspecified-constants", "corrected")
RELATIONS = (">=", "<=", "=", ">", "<")
_DPS = 30  # digits used where float64 would under- or overflow

_DOMAINS = {
    "positive": sp.Interval.open(0, sp.oo),
    "nonnegative": sp.Interval(0, sp.oo),
    "real": sp.Reals,
    "unit": sp.Interval.open(0, 1),        # open unit interval, e.g. a probability delta
    "unit-closed-right": sp.Interval.Lopen(0, 1),
}


@dataclass(frozen=True)
class SymbolInfo:
    """Meaning and domain of one symbol of a bound.

    ``domain`` is a sympy set (or one of the names in ``_DOMAINS``); ``integer`` marks counts
    such as depths; ``default`` is set only for unspecified constants (value 1) and documented
    empirical constants, so that ``evaluate`` works without them.
    """

    name: str
    meaning: str
    domain: sp.Set
    integer: bool = False
    default: float | None = None

    def to_dict(self):
        return {"meaning": self.meaning, "domain": str(self.domain), "integer": self.integer,
                "default": self.default}


def sym(meaning, domain="positive", *, name=None, integer=False, default=None):
    """Build a :class:`SymbolInfo`; ``domain`` is a sympy set or a name from ``_DOMAINS``.

    >>> sym("depth", sp.Interval(1, sp.oo), integer=True).integer
    True
    """
    if isinstance(domain, str):
        domain = _DOMAINS[domain]
    return SymbolInfo(name or "", meaning, domain, integer, default)


@dataclass(frozen=True)
class Assumption:
    """One hypothesis of a theorem: its wording and, where possible, a sympy condition."""

    text: str
    condition: sp.Basic | None = None

    def check(self, values):
        """True/False if the condition can be decided at ``values``, else None."""
        if self.condition is None:
            return None
        c = _subs(self.condition, values)
        if c.free_symbols:
            return None
        c = sp.simplify(c) if not isinstance(c, (bool, sp.logic.boolalg.BooleanAtom)) else c
        if c in (sp.true, True):
            return True
        if c in (sp.false, False):
            return False
        return None


def _subs(expr, values):
    """Substitute by symbol *name* (the modules create symbols with assumptions attached)."""
    return expr.xreplace({s: sp.sympify(values[s.name]) for s in expr.free_symbols
                          if s.name in values})


def _float_or_precise(v):
    # maxn lets evalf raise its working precision through cancellations such as
    # exp(2 n^-(1+24L)) - 1, which at fixed 30 digits would silently return garbage.
    v = sp.N(v, _DPS, maxn=20000)
    if v.is_real is False or v.has(sp.zoo, sp.nan):
        raise NtksymError(f"the bound is not a real number at these values ({v})")
    if v in (sp.oo, -sp.oo):
        return float(v)
    f = float(v)
    if f == 0.0 and v != 0 or not math.isfinite(f):
        return v  # keep the arbitrary-precision value rather than 0.0 or inf
    return f


@dataclass
class Bound:
    """A paper's bound ``lhs relation expr`` with provenance; see the module docstring.

    ``symbols`` maps symbol name -> :class:`SymbolInfo` for every symbol of ``expr`` and of the
    assumptions; ``lhs`` is the bounded quantity (its ``name`` is the keyword used by
    :meth:`solve` and :meth:`holds`).
    """

    name: str
    expr: sp.Expr
    symbols: dict
    lhs: SymbolInfo
    relation: str = ">="
    assumptions: list = field(default_factory=list)
    source: str = ""
    status: str = "explicit"
    note: str = ""

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"{self.name}: status {self.status!r} not in {STATUSES}")
        if self.relation not in RELATIONS:
            raise ValueError(f"{self.name}: relation {self.relation!r} not in {RELATIONS}")
        self.symbols = {k: (v if v.name == k else SymbolInfo(k, v.meaning, v.domain, v.integer,
                                                              v.default))
                        for k, v in self.symbols.items()}
        self.assumptions = [a if isinstance(a, Assumption) else Assumption(*a) if
                            isinstance(a, tuple) else Assumption(a) for a in self.assumptions]
        missing = {str(s) for s in self.expr.free_symbols} - set(self.symbols)
        if missing:
            raise ValueError(f"{self.name}: symbols without meaning: {sorted(missing)}")
        if self.status == "unspecified-constants" and not self.note:
            raise ValueError(f"{self.name}: unspecified constants need a note")
        if self.status == "corrected" and not self.note:
            raise ValueError(f"{self.name}: a correction needs a note")

    # -- values -------------------------------------------------------------------------
    @property
    def args(self):
        """Names of the free symbols of ``expr``, sorted (the order of :meth:`as_function`)."""
        return sorted(str(s) for s in self.expr.free_symbols)

    def _values(self, values, *, need=(), allow_lhs=False):
        known = set(self.symbols) | ({self.lhs.name} if allow_lhs else set())
        for k in values:
            if k not in known:
                close = difflib.get_close_matches(k, sorted(known), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise NtksymError(f"{self.name}: unknown symbol '{k}' (symbols: "
                                  f"{', '.join(sorted(known))}){hint}")
        out = {k: v.default for k, v in self.symbols.items() if v.default is not None}
        out.update(values)
        for k, v in out.items():
            info = self.symbols.get(k, self.lhs if k == self.lhs.name else None)
            try:
                # floats are taken as the exact binary numbers they are (30 digits), so that
                # cancellations inside a bound are resolved by evalf instead of amplifying
                # the 15-digit rounding of a default sympy Float
                x = sp.Float(v, _DPS) if isinstance(v, (float, np.floating)) else sp.sympify(v)
            except (sp.SympifyError, TypeError) as e:
                raise NtksymError(f"{self.name}: {k}={v!r} is not a number") from e
            if not x.is_number or x.is_real is False:
                raise NtksymError(f"{self.name}: {k}={v!r} is not a real number")
            if x not in info.domain:
                raise NtksymError(f"{self.name}: {k}={v} is outside the domain of {k} "
                                  f"({info.meaning}): {info.domain}")
            if info.integer and not x.is_integer and float(x) != int(float(x)):
                raise NtksymError(f"{self.name}: {k}={v} must be an integer ({info.meaning})")
            out[k] = x
        lacking = [k for k in need if k not in out]
        if lacking:
            raise NtksymError(f"{self.name}: missing value(s) for {', '.join(lacking)}")
        return out

    def evaluate(self, **values):
        """The value of ``expr`` at ``values`` (symbols with a default may be omitted).

        >>> from ntksym.bounds import yang_wang
        >>> round(yang_wang.theorem_3_5_width.evaluate(alpha=0.5, L=3, eps=0.1))
        14580000
        """
        vals = self._values(values, need=self.args)
        try:
            return _float_or_precise(_subs(self.expr, vals))
        except (ValueError, TypeError) as e:   # e.g. Max() of a complex number
            raise NtksymError(f"{self.name}: the bound is not a real number at these values "
                              f"({e})") from e

    def holds(self, **values):
        """Whether ``lhs relation expr`` holds at ``values`` (``values`` include ``lhs``)."""
        vals = self._values(values, need=self.args + [self.lhs.name], allow_lhs=True)
        rhs = sp.N(_subs(self.expr, vals), _DPS, maxn=20000)
        lhs = vals[self.lhs.name]
        return bool({">=": lhs >= rhs, "<=": lhs <= rhs, ">": lhs > rhs, "<": lhs < rhs,
                     "=": sp.Eq(lhs, rhs)}[self.relation])

    def assumption_report(self, **values):
        """List of ``(text, True | False | None)``; None = not machine-checkable here."""
        vals = {k: sp.sympify(v) for k, v in values.items()}
        return [(a.text, a.check(vals)) for a in self.assumptions]

    def assumptions_hold(self, **values):
        """True iff no machine-checkable assumption fails at ``values`` and all values lie in
        their domains.  Assumptions stated only in words (distributions, independence) count
        as not contradicted; read them with :meth:`assumption_report`.

        >>> from ntksym.bounds import qian_klabjan
        >>> qian_klabjan.theorem_1_width.assumptions_hold(alpha=1.5)
        False
        """
        try:
            self._values(values, allow_lhs=True)
        except NtksymError:
            return False
        return all(ok is not False for _, ok in self.assumption_report(**values))

    def solve(self, var, **values):
        """The value of ``var`` at which ``lhs = expr`` holds, all other symbols given.

        ``values`` must include the bounded quantity (``self.lhs.name``) unless ``var`` is it.
        Raises :class:`NtksymError` if there is no root in the domain of ``var`` or more than
        one (use :meth:`solve_all` then).

        >>> from ntksym.bounds import yang_wang
        >>> round(yang_wang.theorem_3_5_width.solve("eps", d=14580000, alpha=0.5, L=3), 9)
        0.1
        """
        roots = self.solve_all(var, **values)
        if not roots:
            raise NtksymError(f"{self.name}: no value of {var} in {self._info(var).domain} "
                              f"gives {self.lhs.name} = expr at these values")
        if len(roots) > 1:
            raise NtksymError(f"{self.name}: several solutions for {var}: "
                              f"{', '.join(f'{r:.6g}' for r in roots)} (use solve_all)")
        return roots[0]

    def _info(self, var):
        if var == self.lhs.name:
            return self.lhs
        if var not in self.symbols:
            close = difflib.get_close_matches(var, sorted(self.symbols), n=1)
            raise NtksymError(f"{self.name}: unknown symbol '{var}'"
                              + (f"; did you mean '{close[0]}'?" if close else ""))
        return self.symbols[var]

    def solve_all(self, var, **values):
        """All roots of ``lhs = expr`` in ``var``'s domain, sorted (numeric, bracketed).

        The scan brackets sign changes of ``expr - lhs`` (compared on a log scale when both
        sides are positive, so that 1e-300 and 1e300 are resolved) on a grid over the domain,
        then refines each bracket with Brent's method.
        """
        info = self._info(var)
        if var == self.lhs.name:
            return [self.evaluate(**values)]
        if var in values:
            raise NtksymError(f"{self.name}: {var} is the unknown; do not give it a value")
        others = [a for a in self.args if a != var]
        vals = self._values(values, need=others + [self.lhs.name], allow_lhs=True)
        target = vals.pop(self.lhs.name)
        x = next((s for s in self.expr.free_symbols if s.name == var), None)
        if x is None:
            raise NtksymError(f"{self.name}: {var} does not appear in the expression")
        g = _subs(self.expr, {k: v for k, v in vals.items() if k != var})
        fn = sp.lambdify(x, g, modules="mpmath")
        import mpmath
        mpmath.mp.dps = _DPS

        def resid(t):
            try:
                y = fn(mpmath.mpf(t))
            except (ValueError, ZeroDivisionError, OverflowError, TypeError):
                return math.nan
            if not isinstance(y, (mpmath.mpf, int, float)) or not mpmath.isfinite(y):
                return math.nan
            if y > 0 and target > 0:
                return float(mpmath.log(y) - mpmath.log(mpmath.mpf(str(sp.N(target, _DPS)))))
            return float(y - mpmath.mpf(str(sp.N(target, _DPS))))

        grid = _grid(info.domain)
        r = [resid(t) for t in grid]
        roots = []
        from scipy.optimize import brentq
        for (a, ra), (b, rb) in zip(zip(grid, r), zip(grid[1:], r[1:])):
            if math.isnan(ra) or math.isnan(rb):
                continue
            if ra == 0.0:
                roots.append(a)
            elif ra * rb < 0:
                t = brentq(resid, a, b, xtol=1e-300, rtol=1e-15, maxiter=500)
                # a sign change across a pole or jump is not a root: keep verified ones only
                if abs(resid(t)) <= 1e-8:
                    roots.append(t)
        if r and r[-1] == 0.0:
            roots.append(grid[-1])
        def exact_ok(t):
            # re-check with sympy's adaptive-precision evalf: the fixed-precision scan can
            # "find" roots where a cancellation (e.g. (a + d^-7)^8 - a^8) loses all digits
            try:
                v = sp.N(g.xreplace({x: sp.Float(t, _DPS)}), _DPS, maxn=20000)
                tv = sp.N(target, _DPS)
                return v.is_real and abs(v - tv) <= 1e-9 * max(abs(tv), abs(v), 1e-300)
            except (TypeError, ValueError):
                return False

        roots = [t for t in roots if exact_ok(t)]
        out = []
        for t in sorted(roots):
            if not out or abs(t - out[-1]) > 1e-9 * max(1.0, abs(t)):
                out.append(float(t))
        return out

    # -- presentation -------------------------------------------------------------------
    def relation_expr(self):
        """The bound as a sympy relation ``lhs REL expr``."""
        lhs = sp.Symbol(self.lhs.name)
        op = {">=": sp.Ge, "<=": sp.Le, ">": sp.Gt, "<": sp.Lt, "=": sp.Eq}[self.relation]
        return op(lhs, self.expr, evaluate=False)

    def latex(self):
        """LaTeX of ``lhs REL expr``.

        >>> from ntksym.bounds import yang_wang
        >>> yang_wang.crossover_eps.latex()
        '\\\\epsilon^{*} = L^{2} \\\\sqrt{\\\\alpha}'
        """
        rel = self.relation_expr()
        names = {s: sp.Symbol(_tex_name(s.name)) for s in rel.free_symbols}
        return sp.latex(rel.xreplace(names))

    def as_function(self):
        """A numpy function of the keyword arguments :attr:`args` (defaults filled in).

        >>> from ntksym.bounds import yang_wang
        >>> f = yang_wang.crossover_eps.as_function()
        >>> float(f(alpha=0.25, L=2))
        2.0
        """
        keys = self.args
        by_name = {s.name: s for s in self.expr.free_symbols}
        fn = sp.lambdify([by_name[k] for k in keys], self.expr, modules="numpy")
        defaults = {k: self.symbols[k].default for k in keys
                    if self.symbols[k].default is not None}

        def f(**kw):
            unknown = set(kw) - set(keys)
            if unknown:
                raise NtksymError(f"{self.name}: unknown argument(s) {sorted(unknown)}")
            vals = {**defaults, **kw}
            lacking = [k for k in keys if k not in vals]
            if lacking:
                raise NtksymError(f"{self.name}: missing argument(s) {lacking}")
            return fn(*(np.asarray(vals[k], dtype=float) for k in keys))

        f.__name__ = self.name.replace(".", "_")
        f.__doc__ = f"{self.name}: {self.lhs.name} {self.relation} {self.expr}"
        f.args = keys
        return f

    def to_dict(self):
        """A JSON-ready description (the CLI's ``--json``)."""
        return {"name": self.name, "relation": f"{self.lhs.name} {self.relation} {self.expr}",
                "lhs": {self.lhs.name: self.lhs.to_dict()}, "expr": str(self.expr),
                "latex": self.latex(), "status": self.status, "source": self.source,
                "note": self.note,
                "symbols": {k: v.to_dict() for k, v in self.symbols.items()},
                "assumptions": [{"text": a.text, "condition": None if a.condition is None
                                 else str(a.condition)} for a in self.assumptions]}

    def describe(self):
        """Multi-line human-readable description (the CLI's ``show``)."""
        lines = [f"{self.name}  [{self.status}]",
                 f"  {self.lhs.name} {self.relation} {self.expr}",
                 f"  source: {self.source}"]
        if self.note:
            lines.append(f"  note: {self.note}")
        lines.append(f"  {self.lhs.name}: {self.lhs.meaning}")
        for k, v in self.symbols.items():
            extra = f", default {v.default}" if v.default is not None else ""
            integ = ", integer" if v.integer else ""
            lines.append(f"  {k}: {v.meaning}  (domain {v.domain}{integ}{extra})")
        if self.assumptions:
            lines.append("  assumptions:")
            for a in self.assumptions:
                cond = f"   [{a.condition}]" if a.condition is not None else ""
                lines.append(f"    - {a.text}{cond}")
        return "\n".join(lines)

    def __repr__(self):
        return f"<Bound {self.name}: {self.lhs.name} {self.relation} {self.expr} [{self.status}]>"


_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "eps", "eta", "rho", "varrho", "tau",
          "kappa", "lambda", "sigma", "mu", "theta"}


def _tex_name(k):
    base, _, sub = k.partition("_")
    if base == "eps":
        base = "epsilon"
    if base == "lam":
        base = "lambda"
    if base in _GREEK:
        base = "\\" + base
    if k.endswith("_star"):
        return base + "^{*}"
    return f"{base}_{{{sub}}}" if sub else base


def _grid(domain):
    """Scan points over a sympy interval: dense near finite ends, log-spaced to infinity."""
    if not isinstance(domain, sp.Interval):
        domain = sp.Interval(-sp.oo, sp.oo)
    lo, hi = domain.start, domain.end
    pts = []
    if lo.is_finite and hi.is_finite:
        a, b = float(lo), float(hi)
        w = b - a
        eps = np.logspace(-15, -1, 57)
        pts = np.concatenate([a + w * eps, np.linspace(a + 0.1 * w, b - 0.1 * w, 161),
                              b - w * eps[::-1]])
    elif lo.is_finite:
        a = float(lo)
        pts = a + np.logspace(-30, 60, 721)
    elif hi.is_finite:
        b = float(hi)
        pts = b - np.logspace(60, -30, 721)
    else:
        s = np.logspace(-30, 60, 361)
        pts = np.concatenate([-s[::-1], [0.0], s])
    return [float(p) for p in pts]


def make_registry(module_name, namespace):
    """Collect the :class:`Bound` objects of a paper module, keyed by their qualified name."""
    out = {}
    for value in namespace.values():
        if isinstance(value, Bound):
            if not value.name.startswith(module_name + "."):
                raise ValueError(f"{value.name} is defined in {module_name}")
            out[value.name] = value
    return dict(sorted(out.items()))
