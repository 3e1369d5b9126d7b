"""The Numba printer: sympy expressions of the KernelProgram -> Python source for ``@njit``.

A small subclass of sympy's ``PythonCodePrinter`` (one ``_print_X`` method per expression type,
like sympy's own code printers): numbers become float literals, symbols become identifiers,
``ClippedCorrelation`` and the quadrature expectations become calls of helpers that the generated
module defines.

A Hermite expectation of a pair, ``E(Sigma_k_xx, Sigma_k_yy, Sigma_k)``, needs the two examples'
coefficient vectors.  A printer made with ``hoist={}`` (the vector target) prints it as
``_herm_N_m<i>(Sigma_k, Sigma_k_xx, Sigma_k_yy, Dx, ix, Dy, iy, _H0_OFF)`` (member i of
family N, e.g. phi' of an activation) and records ``hoist[(family, "Sigma_k_xx")] = "H0"``: the
generator computes the family's vector once per example in its diagonal pass, stores it in
the columns ``_H0_OFF`` onwards of the diagonal state, and hands the pair function the state
arrays and rows of both examples (no per-pair slices).  Without ``hoist`` (and for arguments
that are not a diagonal symbol and its twin) it prints ``_herm_N_m<i>_full(a, b, c)``, which
computes both vectors itself.  A mixed member E[f_i(u) f_j(v)] (the tangent of a Hermite
dual, :meth:`~ntksym.ir.functions.HermiteExpectationBase.fdiff`) prints as ``_herm_N_m<i>_<j>``
with the same arguments.

>>> import sympy as sp
>>> from ntksym.ir.functions import ClippedCorrelation
>>> a, b, c = sp.symbols("Sigma_1_xx Sigma_1_yy Sigma_1")
>>> NumbaPrinter().doprint(sp.acos(ClippedCorrelation(c, a, b)) / sp.pi)
'math.acos(_corr(Sigma_1, Sigma_1_xx, Sigma_1_yy))/3.141592653589793'
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ntksym.ir.functions import contains_quadrature
from ntksym.ir.symbols import identifier, y_side

__all__ = ["NumbaPrinter", "identifier", "is_quadrature"]


class NumbaPrinter(PythonCodePrinter):
    """Prints sympy expressions as Numba-compilable Python using the ``math`` module."""

    printmethod = "_numbacode"

    def __init__(self, settings=None, quadrature_names=None, hoist=None):
        super().__init__(dict(settings or {}, fully_qualified_modules=True))
        # {QuadratureExpectationBase subclass: helper function name}, filled while printing
        self.quadrature_names = {} if quadrature_names is None else quadrature_names
        # {(Hermite family, diagonal symbol name): vector name}, or None
        self.hoist = hoist
        # {Hermite family key: (function name prefix, a member class)}, filled while printing
        self.hermite_families = {}
        # {(Hermite family, diagonal symbol name): vector name} of the hoisted vectors already
        # computed where a per-example (diagonal) expression is printed: E[f_i(u)^2] is then
        # read from the vector's E (``<vector>_E[i]``, the coefficient rule's own value)
        self.diag_vectors = {}

    def _print_Symbol(self, expr):
        return identifier(expr.name)

    def _print_HyperSymbol(self, expr):
        # a learnable constant: a local of the generated function, read from its ``hp``
        # argument (:func:`ntksym.codegen.common.hyper_lines`)
        return "hp_" + identifier(expr.name)

    def _print_RecipSqrt1m(self, expr):
        x = self._print(expr.args[0])
        return "(1.0/math.sqrt(1.0 - %s*%s) if abs(%s) < 1.0 else 0.0)" % (x, x, x)

    def _print_Rational(self, expr):
        return repr(float(expr))

    _print_Half = _print_Rational

    def _print_Integer(self, expr):
        return repr(float(expr))

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_NumberSymbol(self, expr):
        return repr(float(expr))

    _print_Pi = _print_NumberSymbol
    _print_Exp1 = _print_NumberSymbol

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp == sp.S.Half:
            return "math.sqrt(%s)" % self._print(base)
        if exp == -sp.S.Half:
            return "(1.0/math.sqrt(%s))" % self._print(base)
        if exp.is_Integer and 2 <= int(exp) <= 4:
            b = self.parenthesize(base, sp.printing.precedence.PRECEDENCE["Pow"])
            return "*".join([b] * int(exp)).join("()")
        if exp.is_Integer and int(exp) == -1:
            return "(1.0/%s)" % self.parenthesize(base, sp.printing.precedence.PRECEDENCE["Pow"])
        return super()._print_Pow(expr, rational=rational)

    def _print_ClippedCorrelation(self, expr):
        c, a, b = (self._print(x) for x in expr.args)
        return "_corr(%s, %s, %s)" % (c, a, b)

    def _print_Clip1(self, expr):
        return "_clip1(%s, %s)" % (self._print(expr.args[0]), self._print(expr.args[1]))

    def _print_QuadratureExpectationBase(self, expr):
        cls = type(expr)
        name = self.quadrature_names.setdefault(cls, "_quad_%d" % len(self.quadrature_names))
        args = [self._print(x) for x in expr.args]
        if len(args) == 1:
            name += "_diag"
        return "%s(%s)" % (name, ", ".join(args))

    def hermite_name(self, cls):
        """The helper name of a Hermite expectation class (member i of family N:
        ``_herm_N_m<i>``, a mixed member ``_herm_N_m<i>_<j>``), registered on first use."""
        fam, _ = self.hermite_families.setdefault(
            cls.family, ("_herm_%d" % len(self.hermite_families), cls))
        if cls.member_y is None:
            return self.quadrature_names.setdefault(cls, "%s_m%d" % (fam, cls.member))
        # a mixed member E[f_i(u) f_j(v)] (a tangent's)
        return self.quadrature_names.setdefault(
            cls, "%s_m%d_%d" % (fam, cls.member, cls.member_y))

    def hermite_vector(self, expr):
        """The name of the per-example vector ("H0", ...) that a pair's Hermite expectation
        E(a, b, c) reads when the coefficients are hoisted (recorded in ``hoist``), else None."""
        a, b, _ = expr.args
        if (self.hoist is not None and a.is_Symbol and a.name.endswith("_xx")
                and b == y_side(a)):
            return self.hoist.setdefault((type(expr).family, a.name), "H%d" % len(self.hoist))
        return None

    def _print_HermiteExpectationBase(self, expr):
        cls = type(expr)
        name = self.hermite_name(cls)
        if len(expr.args) == 1:
            (a,) = expr.args
            vec = self.diag_vectors.get((cls.family, a.name)) if a.is_Symbol else None
            if vec is not None and cls.member_y is None:
                return "%s_E[%d]" % (vec, cls.member)
            diag = "_diag" if cls.member_y is None else "_quad_diag"
            return "%s%s(%s)" % (name, diag, self._print(a))
        a, b, c = expr.args
        vec = self.hermite_vector(expr)
        if vec is not None:
            return "%s(%s, %s, %s, Dx, ix, Dy, iy, _%s_OFF)" % (
                name, self._print(c), self._print(a), self._print(b), vec)
        return "%s_full(%s, %s, %s)" % (name, self._print(a), self._print(b), self._print(c))

    def _print_sign(self, expr):
        x = self._print(expr.args[0])
        return "(1.0 if %s > 0 else (-1.0 if %s < 0 else 0.0))" % (x, x)


#: whether an expression needs the generated quadrature helpers
is_quadrature = contains_quadrature
