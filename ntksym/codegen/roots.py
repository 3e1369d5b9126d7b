"""Per-example square roots: the pair loops' correlations without a square root or a division.

A dual kernel reads the clipped correlation rho = c / sqrt(a b) of the pair's covariance
[[a, c], [c, b]] and often the scale sqrt(a b) itself (ReLU: sqrt(a b) J(rho) / 2 pi).  a
depends on x alone and b on x' alone, so sqrt(a) and 1/sqrt(a) can be computed once per
example (per pixel for images) and the pair loop multiplies:

    Clip1(c, sqrt(a b))  ->  ClipScaled(c, 1/sqrt(a), 1/sqrt(b)) = clip(c (1/sqrt a)(1/sqrt b))
    sqrt(a b)            ->  sqrt(a) sqrt(b)

(one square root and one division fewer per pair and layer; the values move by a few ulps of
rho).  A zero variance gives 1/sqrt(0) = inf and c = 0: ``_clip_scaled`` maps 0 * inf = NaN
to an uncorrelated pair, as ``_clip1`` does for d = 0.

* :func:`diag_sqrt_rewrite`: the assignments of one step, for the image slice schedule
  (:mod:`ntksym.codegen.slices`; a and b are diagonal symbols, the tables per pixel);
* :func:`with_example_roots`: a whole vector (MLP) program (:mod:`ntksym.codegen.vector`),
  where a and b may also be expressions of one example's diagonal (erf: 1 + 2 Sigma_xx); the
  roots become diagonal symbols ``<name>_sqrt_xx`` / ``<name>_isqrt_xx`` computed by the
  per-example pass, which the pair then reads like any other column of the diagonal state.

The printed formulas (``ntksym derive``) are not rewritten: this is how the code evaluates
them.

>>> import ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [2] }\\n[[layer]]\\n'
...                          'kind = "dense"\\nactivation = "relu"\\n[[layer]]\\nkind = "dense"\\n')
>>> prog = with_example_roots(arch.derive())
>>> [a.target.name for a in prog.steps[1].diag][-2:]
['Sigma_0_sqrt_xx', 'Sigma_0_isqrt_xx']
>>> print(prog.steps[1].cross[1].expr.atoms(ClipScaled))
{ClipScaled(Sigma_0, Sigma_0_isqrt_xx, Sigma_0_isqrt_yy)}
"""

from __future__ import annotations

import dataclasses

import sympy as sp

from ntksym.codegen.common import Clip1, lower_clipped
from ntksym.ir.program import Assign, Elementwise


class ClipScaled(sp.Function):
    """clip(c ia ib, -1, 1), ia = 1/sqrt(a), ib = 1/sqrt(b) from per-example or per-pixel
    tables; 0 when a variance is 0 (then c = 0 and 0 * inf is NaN): the pair loops' clipped
    correlation."""

    nargs = 3


def clip_scaled_source(decorator):
    """``_clip_scaled(c, ia, ib)`` under ``decorator`` (:class:`ClipScaled`), for the vector
    target: a correlation within 8 ulps of +-1 is +-1.  c (1/sqrt a)(1/sqrt b) misses 1 by an
    ulp or two where c / sqrt(a b) is exactly 1 (a pair of equal examples), and arccos turns
    that into ~2e-8; the snap keeps such a pair equal to the diagonal.  (A correlation that
    close to 1 is not resolved by the inputs' own rounding: the snap moves it by no more than
    the rounding of c / sqrt(a b) did.)"""
    return f'''

@{decorator}
def _clip_scaled(c, ia, ib):
    # c (1/sqrt a) (1/sqrt b) clipped to [-1, 1] and snapped to +-1 within 8 ulps; a zero
    # variance gives 0 * inf = NaN (its covariance is 0 too): the pair is uncorrelated
    r = c * ia * ib
    if r != r:
        return 0.0
    return 1.0 if r > 0.9999999999999982 else (-1.0 if r < -0.9999999999999982 else r)
'''


def _is_sqrt(e):
    return e.is_Pow and e.exp == sp.S.Half


class _Roots:
    """The rewrite shared by both targets: {x-side variance: table name}, filled as the
    correlations are met.  A factor of sqrt(A B) is a diagonal symbol, or (``expressions``) an
    expression of one example's diagonal that a correlation registered."""

    def __init__(self, expressions):
        self.names = {}
        self.expressions = expressions

    def table(self, e):
        e = _to_x(e)
        if e not in self.names:
            self.names[e] = (e.name[:-3] if isinstance(e, sp.Symbol) else
                             f"Var{sum(not isinstance(k, sp.Symbol) for k in self.names)}")
        return self.names[e]

    def split(self, base, registered):
        """(x factor, y factor) of a product of one x-side and one y-side variance, or None."""
        if not base.is_Mul:
            return None
        x = sp.Mul(*[f for f in base.args if _side(f) == "x"])
        y = sp.Mul(*[f for f in base.args if _side(f) == "y"])
        if x == 1 or y == 1 or x * y != base:
            return None
        for f in (x, y):
            if not isinstance(f, sp.Symbol) and not (
                    self.expressions and (not registered or _to_x(f) in self.names)):
                return None
        return x, y

    def root(self, e, kind, side):
        return sp.Symbol(f"{self.table(e)}_{kind}_{side}{side}", real=True)

    def rewrite(self, expr):
        """expr with its correlations and sqrt(A B) scales read from roots."""
        def scaled(e):
            if isinstance(e, Clip1) and _is_sqrt(e.args[1]):
                xy = self.split(e.args[1].base, registered=False)
                if xy is not None:
                    return ClipScaled(e.args[0], self.root(xy[0], "isqrt", "x"),
                                      self.root(xy[1], "isqrt", "y"))
            return None

        def scale(e):
            if _is_sqrt(e):
                xy = self.split(e.base, registered=True)
                if xy is not None:
                    return self.root(xy[0], "sqrt", "x") * self.root(xy[1], "sqrt", "y")
            return None

        e = lower_clipped(expr)
        e = e.replace(lambda x: scaled(x) is not None, scaled)
        return e.replace(lambda x: scale(x) is not None, scale)


def diag_sqrt_rewrite(assignments, tables):
    """Clip1(c, sqrt(A_xx B_yy)) -> ClipScaled(c, 1/sqrt(A_xx), 1/sqrt(B_yy)) and the remaining
    sqrt(A_xx B_yy) -> sqrt(A_xx) sqrt(B_yy), read from per-pixel tables that ``image_pass``
    fills once per image: a pixel-pair loop then needs no square root and no division for the
    correlation.  ``tables`` collects the diagonal names that need them."""
    roots = _Roots(expressions=False)
    out = [Assign(a.target, roots.rewrite(a.expr)) for a in assignments]
    tables.update(roots.names.values())
    return out


def _side(e):
    """"x" or "y" when every symbol of e is a diagonal of that example (at least one), else
    None."""
    names = {s.name for s in e.free_symbols}
    for side in ("x", "y"):
        if names and all(n.endswith(f"_{side}{side}") for n in names):
            return side
    return None


def _to_x(e):
    return e.xreplace({s: sp.Symbol(s.name[:-3] + "_xx", real=True) for s in e.free_symbols})


def with_example_roots(program):
    """The vector program with its correlations and sqrt(a b) scales read from per-example
    roots (module docstring): each Clip1(c, sqrt(A B)), A an expression of x's diagonal and B
    of x''s, becomes ClipScaled(c, <A>_isqrt_xx, <B>_isqrt_yy), and every sqrt(A B) of such
    an A and B the product <A>_sqrt_xx <B>_sqrt_yy.  The step that first reads them computes
    both roots after its diagonal assignments.  A table is named after its variance (Sigma_3 for
    Sigma_3_xx) or numbered (Var0, Var1, ...) when the variance is an expression."""
    rewriter = _Roots(expressions=True)
    names = rewriter.names
    done, steps = set(), []
    for step in program.steps:
        if isinstance(step, Elementwise) and step.cross:
            cross = [Assign(a.target, rewriter.rewrite(a.expr)) for a in step.cross]
            roots = []
            for var, name in names.items():
                if name not in done:
                    done.add(name)
                    roots += [Assign(sp.Symbol(f"{name}_sqrt_xx", real=True), sp.sqrt(var)),
                              Assign(sp.Symbol(f"{name}_isqrt_xx", real=True),
                                     1 / sp.sqrt(var))]
            step = dataclasses.replace(step, cross=cross, diag=list(step.diag) + roots)
        steps.append(step)
    return dataclasses.replace(program, steps=steps)
