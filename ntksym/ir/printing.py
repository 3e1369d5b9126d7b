"""The printers of a KernelProgram: plain text, LaTeX and sympy (Python) source, for every input
kind (vectors, images, sequences).

One family, built like sympy's printers: :class:`ProgramPrinter` walks the steps and prints each
step, and each structural operation inside a ``Structural`` step, with the ``_print_<Class>``
method of its class or of its nearest base class (``_print_Elementwise``, ``_print_PatchSum`` or
``_print_ImageOp``, ``_print_TimeRecurrence`` ...).  A new structural operation adds one method
per printer.  Symbols are shown as functions of the pair: ``Sigma_3`` -> ``Sigma_3(x, x')``,
``Sigma_3_xx`` -> ``Sigma_3(x, x)``, and in a sequence program's time-pair grid ``Sigma_1`` ->
``Sigma_1(t, t')``, ``Sigma_1p`` -> ``Sigma_1(t-1, t'-1)``.

>>> import sympy as sp
>>> from ntksym.ir.functions import ClippedCorrelation
>>> a, b, c = sp.symbols("a b c")
>>> text(sp.acos(ClippedCorrelation(c, a, b)))
'acos(rho(c; a, b))'
>>> display("Theta_2[dense_0.W]")
"Theta_2[dense_0.W](x, x')"
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.str import StrPrinter

from .functions import (
    QUAD_ORDER,
    TANGENT_K,
    ClippedCorrelation,
    QuadratureExpectationBase,
    contains_hermite,
)
from .hyper import split_tangent
from .symbols import HyperSymbol, identifier, y_side

# ------------------------------------------------------------------------ expressions


class TextPrinter(StrPrinter):
    """sympy's str printer with readable names for the IR's special functions."""

    def _print_ClippedCorrelation(self, expr):
        c, a, b = (self._print(x) for x in expr.args)
        return "rho(%s; %s, %s)" % (c, a, b)

    def _print_QuadratureExpectationBase(self, expr):
        args = ", ".join(self._print(x) for x in expr.args)
        return "E_GL%d[%s](%s)" % (QUAD_ORDER, expr.label, args)

    def _print_HermiteExpectationBase(self, expr):
        args = ", ".join(self._print(x) for x in expr.args)
        return "E_H%d[%s](%s)" % (expr.hermite_k, expr.label, args)

    def _print_RecipSqrt1m(self, expr):
        return "(1/sqrt(1 - %s**2))" % self.parenthesize(expr.args[0], 60)


def text(expr):
    """An expression as plain text (sympy's str with the IR's functions named)."""
    return TextPrinter().doprint(expr)


def source(expr):
    """An expression as sympy source over identifiers (``Theta_3[g]`` -> ``Theta_3__g``)."""
    return sp.sstr(expr.xreplace({s: sp.Symbol(identifier(s.name)) for s in expr.free_symbols}),
                   full_prec=True)


def display(name, grid=frozenset(), latex=False):
    """A symbol name as a function of its pair, text or LaTeX; ``grid``: the names indexed by a
    time pair (t, t') (:meth:`KernelProgram.grid_symbols`).

    >>> display("Sigma_1p", {"Sigma_1p"}), display("Sigma_1g_xx", {"Sigma_1g_xx"})
    ("Sigma_1(t-1, t'-1)", 'Sigma_1g(x, x; t)')
    >>> display("dSigma_2/d[weight_var]_xx")
    '(dSigma_2(x, x)/dweight_var)'
    """
    tangent = split_tangent(name)
    if tangent is not None:             # d(entry)/d(hyperparameter)
        entry, hp = tangent
        inner = display(entry, grid if name not in grid else set(grid) | {entry}, latex)
        if latex:
            return r"\partial_{\mathrm{%s}}%s" % (hp.replace("_", r"\_"), inner)
        return f"(d{inner}/d{hp})"          # in parentheses: it is one factor of a product
    side = "c"
    base = name
    if name.endswith("_xx"):
        side, base = "x", name[:-3]
    elif name.endswith("_yy"):
        side, base = "y", name[:-3]
    group = ""
    if "[" in base:
        base, _, group = base.partition("[")
        group = group.rstrip("]")
    root, _, idx = base.partition("_")
    prev = idx.endswith("p")
    if prev:
        idx = idx[:-1]
    t, tp = ("t-1", "t'-1") if prev else ("t", "t'")
    is_grid = name in grid or base + ("_xx" if side == "x" else "") in grid
    if is_grid:
        args = {"c": f"({t}, {tp})", "x": f"(x, x; {t})", "y": f"(x', x'; {tp})"}[side]
    else:
        args = {"c": "(x, x')", "x": "(x, x)", "y": "(x', x')"}[side]
    if not latex:
        return f"{root}_{idx}{'[' + group + ']' if group else ''}{args}"
    grp = r"^{\mathrm{%s}}" % group.replace("_", r"\_") if group else ""
    sub = idx.replace("g", r"\mathrm{g}") if idx.endswith("g") else idx
    return r"\%s_{%s}%s%s" % (root, sub, grp, args)


# --------------------------------------------------------------------------- programs

class ProgramPrinter:
    """Base of the program printers: a header per input kind, one block per step, the outputs.

    Steps and structural operations are dispatched along their class's MRO to
    ``_print_<Class>(obj, *context)`` methods returning lists of lines.
    """

    def __init__(self, program):
        self.p = program
        self.grid = program.grid_symbols()
        self.sequence = program.input_kind == "sequence"

    def doprint(self):
        lines = list(getattr(self, "_header_" + self.p.input_kind)())
        for step in self.p.steps:
            lines += self._print(step)
        lines += self._outputs()
        return self._join(lines)

    def _print(self, obj, *context):
        for cls in type(obj).__mro__:
            method = getattr(self, "_print_" + cls.__name__, None)
            if method is not None:
                return method(obj, *context)
        raise TypeError(f"{type(self).__name__} has no method for {type(obj).__name__}")

    def _print_Structural(self, step):
        return self._print(step.op, step)

    def names(self, exprs, latex=False):
        """{symbol: displayed name} of the free symbols of exprs."""
        syms = set()
        for e in exprs:
            syms |= e.free_symbols
        out = {s: display(s.name, self.grid, latex) for s in syms
               if not s.name.startswith("rho_") and not isinstance(s, HyperSymbol)}
        if latex:                       # learnable constants: upright names
            out.update({s: r"\mathrm{%s}" % s.name.replace("_", r"\_") for s in syms
                        if isinstance(s, HyperSymbol)})
        return out

    def _join(self, lines):
        return "\n".join(lines)


class ProgramTextPrinter(ProgramPrinter):
    """The recursion as plain text, one block per layer, every constant visible."""

    def _hyper(self):
        """The learnable constants and, with a gradient, what the tangents are."""
        p = self.p
        if not p.hyperparameters:
            return []
        out = ["  learnable constants (values when derived; the kernel takes them at run time): "
               + ", ".join(f"{h.name} = {v!r}" for h, v in p.hyperparameters.items())]
        if p.gradient:
            out.append("  tangents dS/dw: each assignment S = f(...) gives dS/dw = df/dw + "
                       "sum_j df/dS_j dS_j/dw (forward mode); 1/sqrt(1 - rho**2) is 0 at "
                       "rho = +-1, where the tangent of rho is 0")
            if any(contains_hermite(a.expr) for st in p.steps
                   for a in list(getattr(st, "cross", ())) + list(getattr(st, "diag", ()))):
                out.append(f"  Hermite duals and their tangents: Price's theorem d/dc E[f g] = "
                           f"E[f' g'], d/da = E[f'' g]/2, d/db = E[f g'']/2, each a (mixed) "
                           f"series E_H{TANGENT_K}[f''|g] of the family extended by the "
                           f"second and third derivatives (k <= K <= {TANGENT_K}, the same "
                           f"tail bound with each side's coefficients, else the quadrature); "
                           f"the duals come from that family too")
        return out

    def _header_vector(self):
        p = self.p
        return [f"kernel program of '{p.name}' (spec sha256 {p.spec_hash[:12]})",
                f"  Sigma_0(x, x') = <x, x'> / {p.input_scale},   "
                f"Sigma_0(x, x) = |x|^2 / {p.input_scale}"] + self._hyper()

    def _header_image(self):
        p = self.p
        return [f"kernel program of '{p.name}' (spec sha256 {p.spec_hash[:12]})",
                "  Sigma_0(x, x')[p, p'] = <x_p, x'_p'> / %d  (pixels p, p'; channels-last "
                "images; per-pixel diagonals Sigma_k(x, x)[p, p] come from the same recursion "
                "on (x, x))" % p.input_scale] + self._hyper()

    def _header_sequence(self):
        p, d = self.p, self.p.input_scale
        return [f"kernel program of '{p.name}' (spec sha256 {p.spec_hash[:12]})",
                "  sequences x = (x_1..x_T), x' = (x'_1..x'_T'); time pairs t = 1..T, t' = 1..T'",
                f"  Sigma_0(t, t') = <x_t, x'_t'> / {d},   Sigma_0(x, x; t) = |x_t|^2 / {d}"
                ] + self._hyper()

    def _sym(self, expr):
        """expr with its symbols renamed to their displayed names."""
        return expr.xreplace({s: sp.Symbol(n) for s, n in self.names([expr]).items()})

    def assignments(self, assigns):
        """Lines of assignments; each correlation rho(c; a, b) is named first (rho_1 ...)."""
        rhos = {}
        for a in assigns:
            for e in sp.preorder_traversal(a.expr):
                if isinstance(e, ClippedCorrelation) and e not in rhos:
                    rhos[e] = sp.Symbol(f"rho_{len(rhos) + 1}")
        lines = [f"  {r} = {text(self._sym(e))}" for e, r in rhos.items()]
        for a in assigns:
            names = self.names([a.expr, a.target])
            expr = a.expr.xreplace(rhos).xreplace({s: sp.Symbol(n) for s, n in names.items()})
            lines.append(f"  {names[a.target]} = {text(expr)}")
        return lines

    def _title(self, step):
        return [f"{step.node}: {step.description}"]

    def _print_Elementwise(self, step):
        return self._title(step) + self.assignments(step.cross + step.diag)

    def _print_Structural(self, step):
        return self._title(step) + self._print(step.op, step)

    def _print_ImageOp(self, op, step):
        params = op.parameters()
        out = [f"  [{op.label}] {op.formula}  "
               f"{params if params else ''} {op.in_hw} -> "
               f"{op.out_hw or '(scalar)'}".rstrip()]
        for a, b in zip(step.inputs, step.outputs):
            if not b.name.endswith("_xx"):
                src = display(a.name) if isinstance(a, sp.Symbol) else text(a)
                out.append(f"  {display(b.name)} = {op.label}[{src}]")
        return out

    def _print_TimeRecurrence(self, op, step):
        kk, h0 = op.k, op.hidden_init_var
        return (["  recurrence for t = 1..T, t' = 1..T' (pre-activation g, then h):"]
                + self.assignments(op.cross)
                + [f"  boundary: Sigma_{kk}(0, 0) = {h0} * 1{{x = x'}}, "
                   f"Sigma_{kk}(t, 0) = Sigma_{kk}(0, t') = 0, Theta_{kk} = 0 at t = 0 or t' = 0",
                   "  per example, t = 1..T (exact diagonal rules):"]
                + self.assignments(op.diag)
                + [f"  boundary: Sigma_{kk}(x, x; 0) = {h0}, Theta_{kk}(x, x; 0) = 0"])

    def _print_Readout(self, op, step):
        out = []
        if op.mode == "all":
            out.append(f"  outputs: every pair (t, t') with t, t' >= {op.start}")
        f0 = op.start
        for tgt, src in op.map:
            names = self.names([tgt, src])
            s = names[src]
            if op.mode == "last":
                rhs = s.replace("(t, t')", "(T, T')")
            elif f0 > 1:
                rhs = f"1/((T-{f0 - 1})(T'-{f0 - 1})) * sum_{{t={f0}..T, t'={f0}..T'}} {s}"
            else:
                rhs = f"1/(T T') * sum_{{t=1..T, t'=1..T'}} {s}"
            out.append(f"  {names[tgt]} = {rhs}")
        if op.mode != "all":
            out.append("  (x, x) entries: the same readout of the pair (x, x)")
        return out

    def _outputs(self):
        pair = "" if self.sequence else "(x, x')"
        out = [f"output {name}{pair} = {text(self._sym(sym))}"
               for name, sym in self.p.outputs.items()]
        return out + [f"note: {n}" for n in self.p.notes]


class ProgramLatexPrinter(ProgramPrinter):
    """The recursion as a LaTeX ``align*`` block."""

    def _header_vector(self):
        return [r"\Sigma_{0}(x, x') &= \tfrac{1}{%d}\langle x, x'\rangle" % self.p.input_scale]

    _header_image = _header_vector

    def _header_sequence(self):
        return [r"\Sigma_{0}(t, t') &= \tfrac{1}{%d}\langle x_t, x'_{t'}\rangle"
                % self.p.input_scale]

    def row(self, target, expr):
        names = self.names([expr, target], latex=True)
        return "%s &= %s" % (names[target], sp.latex(expr, symbol_names=names))

    def _print_Elementwise(self, step):
        rows = [self.row(a.target, a.expr) for a in step.cross + step.diag]
        if step.joins:     # name the branches of a join: the symbols alone do not
            rows.insert(0, r"&\text{%s: %s of %s}" % (
                _tex_escape(step.node), step.description.split(":")[0],
                ", ".join(_tex_escape(j) for j in step.joins)))
        return rows

    def _print_ImageOp(self, op, step):
        return [r"&\text{%s: %s}" % (_tex_escape(step.node), op.label)]

    def _print_TimeRecurrence(self, op, step):
        kk = op.k
        return ([r"&\text{%s: recurrence over } (t, t')" % _tex_escape(step.node)]
                + [self.row(a.target, a.expr) for a in op.cross + op.diag]
                + [r"\Sigma_{%d}(0, 0) &= %s\,\mathbf{1}\{x = x'\},\quad "
                   r"\Sigma_{%d}(t, 0) = \Sigma_{%d}(0, t') = 0,\quad \Theta_{%d} = 0"
                   r"\text{ at the boundary}"
                   % (kk, sp.latex(op.hidden_init_var), kk, kk, kk)])

    def _print_Readout(self, op, step):
        rows = []
        f0 = op.start
        for tgt, src in op.map:
            names = self.names([tgt, src], latex=True)
            s = names[src]
            if op.mode == "last":
                rhs = s.replace("(t, t')", "(T, T')")
            else:
                norm = (r"\frac{1}{T T'}" if f0 == 1 else
                        r"\frac{1}{(T-%d)(T'-%d)}" % (f0 - 1, f0 - 1))
                rhs = r"%s\sum_{t=%d}^{T}\sum_{t'=%d}^{T'} %s" % (norm, f0, f0, s)
            rows.append("%s &= %s" % (names[tgt], rhs))
        if op.mode == "all":
            rows.append(r"&\text{%s: outputs at all } t, t' \ge %d" % (_tex_escape(step.node),
                                                                        f0))
        return rows

    def _outputs(self):
        pair = "" if self.sequence else "(x, x')"
        rows = []
        for name, sym in self.p.outputs.items():
            names = self.names([sym], latex=True)
            rows.append(r"\mathrm{%s}%s &= %s" % (_tex_escape(name), pair,
                                                  sp.latex(sym, symbol_names=names)))
        return rows

    def _join(self, rows):
        return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


def _tex_escape(s):
    return s.replace("_", r"\_")


class ProgramPythonPrinter(ProgramPrinter):
    """The recursion as sympy source: one ``name = expression`` line per assignment.

    Evaluating the lines in order, in :func:`python_namespace`, reproduces every quantity.
    Structural steps (loops over pixels or time pairs) are comments: ``ntksym codegen`` emits
    their executable form.
    """

    def _header_vector(self):
        p, d = self.p, self.p.input_scale
        return [f"# kernel program of '{p.name}' (spec sha256 {p.spec_hash})",
                f"# inputs: Sigma_0 = <x, x'>/{d}, Sigma_0_xx = |x|^2/{d}, "
                f"Sigma_0_yy = |x'|^2/{d}"]

    def _header_image(self):
        p, d = self.p, self.p.input_scale
        return [f"# kernel program of '{p.name}' (spec sha256 {p.spec_hash}), image input",
                f"# inputs, per pixel pair (p, p'): Sigma_0 = <x_p, x'_p'>/{d}, "
                f"Sigma_0_xx = |x_p|^2/{d}, Sigma_0_yy = |x'_p'|^2/{d}"]

    def _header_sequence(self):
        p = self.p
        return [f"# kernel program of '{p.name}' (spec sha256 {p.spec_hash}), sequence input"]

    @staticmethod
    def lines(assigns):
        return [f"{identifier(a.target.name)} = {source(a.expr)}" for a in assigns]

    def _title(self, step):
        return [f"# {step.node}: {step.description}"]

    def _print_Elementwise(self, step):
        if self.sequence:           # diagonals are time series: the x' side is not spelled out
            return self._title(step) + self.lines(step.diag + step.cross)
        out = self._title(step)
        for a in step.diag:
            out += self.lines([a])
            twin = a.expr.xreplace({s: y_side(s) for s in a.expr.free_symbols
                                    if s.name.endswith("_xx")})
            out.append(f"{identifier(y_side(a.target).name)} = {source(twin)}")
        return out + self.lines(step.cross)

    def _print_Structural(self, step):
        return self._title(step) + self._print(step.op, step)

    def _print_ImageOp(self, op, step):
        params = op.parameters()
        moves = ", ".join(f"{identifier(b.name)} <- {identifier(a.name)}"
                          for a, b in zip(step.inputs, step.outputs))
        return [f"# {op.label} {op.formula}  {params if params else ''} {op.in_hw} -> "
                f"{op.out_hw or '(scalar)'}: {moves}"]

    def _print_TimeRecurrence(self, op, step):
        carried = ", ".join(f"{identifier(prev.name)} <- {identifier(cur.name)} (boundary {init})"
                            for prev, cur, init in op.carry)
        return [f"# for t, t' (carried: {carried})"] + self.lines(op.diag + op.cross)

    def _print_Readout(self, op, step):
        return [f"# readout {op.mode} from {op.start}: " + ", ".join(
            f"{identifier(t.name)} <- {identifier(s.name)}" for t, s in op.map)]

    def _outputs(self):
        return [f"{identifier('out_' + name)} = {source(sym)}"
                for name, sym in self.p.outputs.items()]


def program_text(p) -> str:
    """The recursion as plain text, one block per layer, every constant visible."""
    return ProgramTextPrinter(p).doprint()


def program_latex(p) -> str:
    """The recursion as a LaTeX ``align*`` block."""
    return ProgramLatexPrinter(p).doprint()


def program_python(p) -> str:
    """The recursion as sympy source (see :class:`ProgramPythonPrinter`)."""
    return ProgramPythonPrinter(p).doprint()


def python_namespace(p) -> dict:
    """The names that :func:`program_python`'s source needs: sympy, ClippedCorrelation, and the
    quadrature classes of this program."""
    ns = {k: getattr(sp, k) for k in dir(sp) if not k.startswith("_")}
    ns["ClippedCorrelation"] = ClippedCorrelation
    for a in p.cross_assignments() + p.diag_assignments():
        for e in sp.preorder_traversal(a.expr):
            if isinstance(e, QuadratureExpectationBase):
                ns[type(e).__name__] = type(e)
    return ns
