"""Graph + layer kernel rules -> KernelProgram, and its printing as text, LaTeX and Python.

:func:`derive` walks the graph in topological order.  Each layer's ``kernel_rule`` is applied
twice: to the cross state of a pair (x, x') and to the diagonal state (x, x), where layers use
their exact diagonal forms.  Every new quantity gets an SSA symbol (``Sigma_k``, ``Theta_k``,
``Sigma_k_xx`` ...), so the program is a readable straight-line recursion, one step per layer.

With ``per_layer=True`` the NTK is kept as one sum term per trainable parameter group
(``Theta_k[dense_0.W]``): the per-layer contributions, whose sum is the NTK.

>>> from ntksym import loads_spec
>>> arch = loads_spec('name = "m"\\ninput = { shape = [3] }\\n'
...                   '[[layer]]\\nkind = "dense"\\nweight_var = 2.0\\n')
>>> print(arch.derive())  # doctest: +NORMALIZE_WHITESPACE
kernel program of 'm' ...
"""

from __future__ import annotations

import networkx as nx
import sympy as sp

from ntksym.ir.program import ClippedCorrelation, Assign, Elementwise, KernelProgram, Structural, y_side
from ntksym.layers import LAYER_KINDS
from ntksym.layers.base import KernelState

TOTAL = "total"


class TextPrinter(sp.printing.str.StrPrinter):
    """sympy's str printer with readable names for ntksym's special functions."""

    def _print_ClippedCorrelation(self, expr):
        c, a, b = (self._print(x) for x in expr.args)
        return "rho(%s; %s, %s)" % (c, a, b)

    def _print_Function(self, expr):
        # sympy's dispatch skips renamed Function subclasses (the Equad_k classes)
        from ntksym.ir.program import QuadratureExpectation
        if isinstance(expr, QuadratureExpectation):
            return self._print_QuadratureExpectation(expr)
        return super()._print_Function(expr)

    def _print_QuadratureExpectation(self, expr):
        from ntksym.ir.program import QUAD_ORDER
        args = ", ".join(self._print(x) for x in expr.args)
        return "E_GL%d[%s](%s)" % (QUAD_ORDER, expr.label, args)


def _text(expr):
    return TextPrinter().doprint(expr)


def _sym(name):
    return sp.Symbol(name, real=True)


def _theta_name(k, group, per_layer):
    return f"Theta_{k}" if not per_layer else f"Theta_{k}[{group}]"


def derive(graph, per_layer: bool = False) -> KernelProgram:
    """The KernelProgram of a graph built by :func:`ntksym.spec.graph.build_graph`."""
    if len(graph.graph["input_shape"]) == 2:      # sequences: recurrences over time pairs
        from ntksym.derive.sequence import derive_sequence
        return derive_sequence(graph, per_layer=per_layer)
    d = graph.graph["input_shape"][-1]
    s0, s0x = _sym("Sigma_0"), _sym("Sigma_0_xx")
    cross = {"input": KernelState(s0, {}, s0x, y_side(s0x), False)}
    diag = {"input": KernelState(s0x, {}, s0x, s0x, True)}
    steps = []
    notes = []
    k = 0
    image = len(graph.graph["input_shape"]) == 3
    shapes = {s0.name: _spatial(graph.graph["input_shape"][:2] if image else None),
              s0x.name: _spatial(graph.graph["input_shape"][:2] if image else None)}
    for node in nx.topological_sort(graph):
        if node == "input":
            continue
        attrs = graph.nodes[node]
        cls = LAYER_KINDS[attrs["kind"]]
        if hasattr(cls, "notes"):          # e.g. how a mask's factors were derived
            notes.extend(cls.notes(attrs))
        preds = list(graph.predecessors(node))
        ins_c, ins_d = [cross[p] for p in preds], [diag[p] for p in preds]
        structure = getattr(cls, "structural_step", None)
        if structure is not None:
            # an index-moving operation (patch sum, pooling ...) feeds the layer's rule
            k += 1
            sstep = Structural(node, cls.describe(attrs), structure(attrs))
            moved_c, moved_d = _structural(sstep, k, ins_c[0], ins_d[0])
            ins_c, ins_d = [moved_c], [moved_d]
            steps.append(sstep)
            _record_shapes(shapes, sstep.outputs, _spatial(sstep.op.out_hw))
        c = cls.kernel_rule(attrs, ins_c)
        dg = cls.kernel_rule(attrs, ins_d)
        if not per_layer:
            c = c.with_(ntk={TOTAL: sp.Add(*c.ntk.values())} if c.ntk else {})
            dg = dg.with_(ntk={TOTAL: sp.Add(*dg.ntk.values())} if dg.ntk else {})
        k += 1
        step = Elementwise(node, cls.describe(attrs))
        new_c, new_d = _assign(step, k, c, dg, per_layer)
        if step.cross or step.diag or structure is None:
            steps.append(step)
        _record_shapes(shapes, [a.target for a in step.cross + step.diag],
                       _spatial(attrs["shape"][:2] if len(attrs["shape"]) == 3 else None))
        cross[node], diag[node] = new_c, new_d
    out = graph.graph["output"]
    c, dg = cross[out], diag[out]
    outputs = {"nngp": c.nngp, "ntk": sp.Add(*c.ntk.values())}
    diag_outputs = {"nngp": dg.nngp, "ntk": sp.Add(*dg.ntk.values())}
    if per_layer:
        for g in c.ntk:
            outputs[f"ntk[{g}]"] = c.ntk[g]
            diag_outputs[f"ntk[{g}]"] = dg.ntk[g]
    return KernelProgram(
        name=graph.graph["name"], spec_hash=graph.graph["spec_hash"],
        input_kind="image" if image else "vector",
        input_cross=s0, input_diag=s0x, input_scale=d, steps=steps, outputs=outputs,
        diag_outputs=diag_outputs, per_layer=per_layer, shapes=shapes, notes=notes)


def _spatial(hw):
    """The pixel grid (H, W) of a state entry; (1, 1) for vector (per-pair scalar) entries."""
    return (1, 1) if hw is None else (int(hw[0]), int(hw[1]))


def _record_shapes(shapes, symbols, hw):
    for s in symbols:
        shapes.setdefault(s.name, hw)


def _structural(step, k, c, dg):
    """Fresh symbols for the outputs of a structural step applied to every state entry."""
    def moved(state, suffix):
        names = {"nngp": f"Sigma_{k}{suffix}"}
        for g in state.ntk:
            names[g] = (f"Theta_{k}" if g == TOTAL else f"Theta_{k}[{g}]") + suffix
        new = {key: _sym(name) for key, name in names.items()}
        olds = [state.nngp] + [state.ntk[g] for g in state.ntk]
        step.inputs += tuple(olds)
        step.outputs += tuple(new.values())
        return new

    nc, nd = moved(c, ""), moved(dg, "_xx")
    cross = KernelState(nc["nngp"], {g: nc[g] for g in c.ntk}, nd["nngp"],
                        y_side(nd["nngp"]), False)
    diag = KernelState(nd["nngp"], {g: nd[g] for g in dg.ntk}, nd["nngp"], nd["nngp"], True)
    return cross, diag


def _assign(step, k, c, dg, per_layer):
    """Give new SSA symbols to the state entries that changed; record the assignments."""

    def fresh(expr, name, target_list):
        if isinstance(expr, sp.Symbol) or expr.is_Number:
            return expr
        s = _sym(name)
        target_list.append(Assign(s, expr))
        return s

    nngp_x = fresh(dg.nngp, f"Sigma_{k}_xx", step.diag)
    ntk_x = {g: fresh(t, _theta_name(k, g, per_layer) + "_xx", step.diag)
             for g, t in dg.ntk.items()}
    nngp = fresh(c.nngp, f"Sigma_{k}", step.cross)
    ntk = {g: fresh(t, _theta_name(k, g, per_layer), step.cross) for g, t in c.ntk.items()}
    var_y = y_side(nngp_x) if isinstance(nngp_x, sp.Symbol) else nngp_x
    return (KernelState(nngp, ntk, nngp_x, var_y, False),
            KernelState(nngp_x, ntk_x, nngp_x, nngp_x, True))


def restrict_to_nngp(p: KernelProgram) -> KernelProgram:
    """The same program without the NTK lines (for ``ntksym derive --kernel nngp``)."""
    from dataclasses import replace

    def keep(a):
        return not a.target.name.startswith("Theta_")

    steps = [replace(s, cross=[a for a in s.cross if keep(a)], diag=[a for a in s.diag if keep(a)])
             if isinstance(s, Elementwise) else s for s in p.steps]
    return replace(p, steps=steps, outputs={"nngp": p.outputs["nngp"]},
                   diag_outputs={"nngp": p.diag_outputs["nngp"]})


# ------------------------------------------------------------------------------ printing

def _greek(name, latex=False):
    """Sigma_3_xx -> Sigma_3(x, x); Theta_2[dense_0.W] -> Theta_2^{dense_0.W}(x, x')."""
    base, _, rest = name.partition("_")
    group = ""
    if "[" in rest:
        rest, _, group = rest.partition("[")
        group = group.rstrip("]")
    args = "(x, x')"
    if rest.endswith("_xx"):
        rest, args = rest[:-3], "(x, x)"
    elif rest.endswith("_yy"):
        rest, args = rest[:-3], "(x', x')"
    if not latex:
        return f"{base}_{rest}{'[' + group + ']' if group else ''}{args}"
    grp = r"^{\mathrm{%s}}" % group.replace("_", r"\_") if group else ""
    return r"\%s_{%s}%s%s" % (base, rest, grp, args)


def _names(exprs, latex):
    syms = set()
    for e in exprs:
        syms |= e.free_symbols
    return {s: _greek(s.name, latex) for s in syms}


def structural_text(step):
    """Lines describing one structural step: its formula, constants and symbol pairs."""
    op = step.op
    params = op.parameters()
    out = [f"  [{op.label}] {op.formula}  "
           f"{params if params else ''} {op.in_hw} -> "
           f"{op.out_hw or '(scalar)'}".rstrip()]
    for a, b in zip(step.inputs, step.outputs):
        if not b.name.endswith("_xx"):
            out.append(f"  {_greek(b.name)} = {op.label}[{_text(a) if not isinstance(a, sp.Symbol) else _greek(a.name)}]")
    return out


def _input_line(p):
    if p.input_kind == "image":
        return ("Sigma_0(x, x')[p, p'] = <x_p, x'_p'> / %d  (pixels p, p'; channels-last images; "
                "per-pixel diagonals Sigma_k(x, x)[p, p] come from the same recursion on (x, x))"
                % p.input_scale)
    return (f"Sigma_0(x, x') = <x, x'> / {p.input_scale},   "
            f"Sigma_0(x, x) = |x|^2 / {p.input_scale}")


def program_text(p: KernelProgram) -> str:
    """The recursion as plain text, one block per layer, every constant visible."""
    if p.input_kind == "sequence":
        from ntksym.derive.sequence import sequence_text
        return sequence_text(p)
    out = [f"kernel program of '{p.name}' (spec sha256 {p.spec_hash[:12]})",
           "  " + _input_line(p)]
    for step in p.steps:
        out.append(f"{step.node}: {step.description}")
        if isinstance(step, Structural):
            out.extend(structural_text(step))
            continue
        rhos = {}
        for a in step.cross + step.diag:
            for e in sp.preorder_traversal(a.expr):
                if isinstance(e, ClippedCorrelation) and e not in rhos:
                    rhos[e] = sp.Symbol(f"rho_{len(rhos) + 1}")
        for e, r in rhos.items():
            names = _names([e], False)
            out.append(f"  {r} = {_text(e.xreplace({s: sp.Symbol(n) for s, n in names.items()}))}")
        for a in step.cross + step.diag:
            names = _names([a.expr, a.target], False)
            expr = a.expr.xreplace(rhos)
            rhs = _text(expr.xreplace({s: sp.Symbol(n) for s, n in names.items()}))
            out.append(f"  {names[a.target]} = {rhs}")
    for name, sym in p.outputs.items():
        names = _names([sym], False)
        out.append(f"output {name}(x, x') = "
                   f"{_text(sym.xreplace({s: sp.Symbol(n) for s, n in names.items()}))}")
    out.extend(f"note: {n}" for n in p.notes)
    return "\n".join(out)


def program_latex(p: KernelProgram) -> str:
    """The recursion as a LaTeX ``align*`` block."""
    if p.input_kind == "sequence":
        from ntksym.derive.sequence import sequence_latex
        return sequence_latex(p)
    rows = [r"\Sigma_{0}(x, x') &= \tfrac{1}{%d}\langle x, x'\rangle" % p.input_scale]
    for step in p.steps:
        if isinstance(step, Structural):
            rows.append(r"&\text{%s: %s}" % (step.node.replace("_", r"\_"), step.op.label))
            continue
        for a in step.cross + step.diag:
            names = _names([a.expr, a.target], True)
            rows.append("%s &= %s" % (names[a.target], sp.latex(a.expr, symbol_names=names)))
    for name, sym in p.outputs.items():
        names = _names([sym], True)
        label = name.replace("_", r"\_")
        rows.append(r"\mathrm{%s}(x, x') &= %s" % (label, sp.latex(sym, symbol_names=names)))
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


def program_python(p: KernelProgram) -> str:
    """The recursion as sympy source: one ``name = expression`` line per assignment.

    Evaluating the lines in order, in a namespace holding sympy's functions and
    ``ClippedCorrelation`` / the quadrature classes, reproduces every quantity.
    """
    if p.input_kind == "sequence":
        from ntksym.derive.sequence import sequence_python
        return sequence_python(p)
    from ntksym.codegen.printer import identifier
    out = [f"# kernel program of '{p.name}' (spec sha256 {p.spec_hash})",
           f"# inputs: Sigma_0 = <x, x'>/{p.input_scale}, Sigma_0_xx = |x|^2/{p.input_scale}, "
           f"Sigma_0_yy = |x'|^2/{p.input_scale}"]

    def src(e):
        return sp.sstr(e.xreplace({s: sp.Symbol(identifier(s.name)) for s in e.free_symbols}),
                       full_prec=True)

    for step in p.steps:
        out.append(f"# {step.node}: {step.description}")
        for a in step.diag:
            out.append(f"{identifier(a.target.name)} = {src(a.expr)}")
            ya = y_side(a.target)
            yexpr = a.expr.xreplace({s: y_side(s) for s in a.expr.free_symbols
                                     if s.name.endswith("_xx")})
            out.append(f"{identifier(ya.name)} = {src(yexpr)}")
        for a in step.cross:
            out.append(f"{identifier(a.target.name)} = {src(a.expr)}")
    for name, sym in p.outputs.items():
        out.append(f"{identifier('out_' + name)} = {src(sym)}")
    return "\n".join(out)


def python_namespace(p: KernelProgram) -> dict:
    """The names that :func:`program_python`'s source needs: sympy, ClippedCorrelation, and the
    quadrature classes of this program."""
    from ntksym.ir.program import ClippedCorrelation, QuadratureExpectation
    ns = {k: getattr(sp, k) for k in dir(sp) if not k.startswith("_")}
    ns["ClippedCorrelation"] = ClippedCorrelation
    for a in p.cross_assignments() + p.diag_assignments():
        for e in sp.preorder_traversal(a.expr):
            if isinstance(e, QuadratureExpectation):
                ns[type(e).__name__] = type(e)
    return ns
