"""Sequence (RNN) kernel programs: derivation over time pairs (t, t') and their printing.

A sequence program (``KernelProgram.input_kind == "sequence"``) has two phases.

* Grid phase: the state is indexed by a time pair (t, t'), t = 1..T of x, t' = 1..T' of x'.
  ``Structural(op="time_recurrence")`` steps (one per rnn layer) hold the layer's elementwise
  body (``params["cross"]``/``params["diag"]``: Assign lists, pre-activation then
  post-activation) and its carries: the symbols ``*p`` (the layer's own state at (t-1, t'-1),
  the time shift) with their boundary values.  Elementwise steps (a per-step dense after a
  ``readout = "all"`` rnn) act at every (t, t').  Per-example (diagonal) quantities are time
  series: ``Sigma_k_xx`` at time t of x, ``Sigma_k_yy`` at time t' of x'.
* ``Structural(op="readout")``: ``mode`` "last" (the pair (T, T'): aligned from the end),
  "mean" (the average over t, t' >= ``from`` of every state entry, all T x T' pairs) or "all"
  (the grid itself from step ``from`` on: the outputs are one kernel per pair of time steps).
  After a last/mean readout the state is per pair (x, x') and later steps are ordinary
  Elementwise steps; their diagonal inputs are the readout of the pair (x, x) itself.

The boundary: Sigma_k(0, 0) = hidden_init_var 1{x = x'} (the same example), Sigma_k = 0 when
one index is 0, Theta_k = 0 at every boundary.

>>> import ntksym
>>> arch = ntksym.loads_spec('name = "r"\\ninput = { shape = [4, 2] }\\n'
...     '[[layer]]\\nkind = "rnn"\\nweight_var = 2.0\\nreadout = "mean"\\n'
...     '[[layer]]\\nkind = "dense"\\n')
>>> p = arch.derive()
>>> p.input_kind, [s.op for s in p.steps if hasattr(s, "op")]
('sequence', ['time_recurrence', 'readout'])
"""

from __future__ import annotations

import networkx as nx
import sympy as sp

from ntksym.errors import SpecError
from ntksym.ir.program import Assign, ClippedCorrelation, Elementwise, KernelProgram, Structural, y_side
from ntksym.layers import LAYER_KINDS
from ntksym.layers.base import KernelState, sympy_number

TOTAL = "total"


def _sym(name):
    return sp.Symbol(name, real=True)


def _theta(head, group, per_layer):
    return head if not per_layer else f"{head}[{group}]"


def is_sequence_graph(graph):
    return len(graph.graph["input_shape"]) == 2


def _collapse(state, per_layer):
    if per_layer:
        return state
    return state.with_(ntk={TOTAL: sp.Add(*state.ntk.values())} if state.ntk else {})


def _assign(cross, diag, c, dg, k, suffix, per_layer):
    """Fresh SSA symbols Sigma_{k}{suffix} ... for the entries of c (cross) and dg (diagonal)."""

    def fresh(expr, name, target):
        if isinstance(expr, sp.Symbol) or expr.is_Number:
            return expr
        s = _sym(name)
        target.append(Assign(s, expr))
        return s

    sig, th = f"Sigma_{k}{suffix}", f"Theta_{k}{suffix}"
    nx_ = fresh(dg.nngp, sig + "_xx", diag)
    tx = {g: fresh(t, _theta(th, g, per_layer) + "_xx", diag) for g, t in dg.ntk.items()}
    nc = fresh(c.nngp, sig, cross)
    tc = {g: fresh(t, _theta(th, g, per_layer), cross) for g, t in c.ntk.items()}
    vy = y_side(nx_) if isinstance(nx_, sp.Symbol) else nx_
    return (KernelState(nc, tc, nx_, vy, False), KernelState(nx_, tx, nx_, nx_, True))


def derive_sequence(graph, per_layer=False) -> KernelProgram:
    """The KernelProgram of a graph whose input is a sequence (input shape [T, d])."""
    d = graph.graph["input_shape"][-1]
    s0, s0x = _sym("Sigma_0"), _sym("Sigma_0_xx")
    cross = {"input": KernelState(s0, {}, s0x, y_side(s0x), False)}
    diag = {"input": KernelState(s0x, {}, s0x, s0x, True)}
    steps, k, phase = [], 0, "grid"
    notes = []
    fname = graph.graph.get("name")
    for node in nx.topological_sort(graph):
        if node == "input":
            continue
        attrs = graph.nodes[node]
        cls = LAYER_KINDS[attrs["kind"]]
        if hasattr(cls, "notes"):          # how a mask's factors were derived
            notes.extend(cls.notes(attrs))
        preds = list(graph.predecessors(node))
        if attrs["kind"] == "rnn":
            (p,) = preds
            if p != "input" and graph.nodes[p]["kind"] == "rnn" and \
                    graph.nodes[p]["params"]["readout_from"] != 1:
                raise SpecError(f"rnn layer '{node}' reads '{p}', whose readout_from must be 1",
                                line=attrs["line"], key="readout_from")
            k += 1
            inp_c, inp_d = cross[p], diag[p]
            groups = set(inp_c.ntk) | set(cls.own_groups(attrs))
            if not per_layer:
                groups = {TOTAL} if groups else set()
            hp, tp = f"Sigma_{k}p", f"Theta_{k}p"
            prev_c = KernelState(_sym(hp), {g: _sym(_theta(tp, g, per_layer)) for g in groups},
                                 _sym(hp + "_xx"), _sym(hp + "_yy"), False)
            prev_d = KernelState(_sym(hp + "_xx"),
                                 {g: _sym(_theta(tp, g, per_layer) + "_xx") for g in groups},
                                 _sym(hp + "_xx"), _sym(hp + "_xx"), True)
            c_list, d_list = [], []
            pre_c = _collapse(cls.recurrence_rule(attrs, inp_c, prev_c), per_layer)
            pre_d = _collapse(cls.recurrence_rule(attrs, inp_d, prev_d), per_layer)
            g_c, g_d = _assign(c_list, d_list, pre_c, pre_d, k, "g", per_layer)
            post_c = cls.activation_rule(attrs, g_c)
            post_d = cls.activation_rule(attrs, g_d)
            h_c, h_d = _assign(c_list, d_list, post_c, post_d, k, "", per_layer)
            h0 = sympy_number(attrs["params"]["hidden_init_var"])
            carry = [(prev_c.nngp, h_c.nngp, h0)]
            carry += [(prev_c.ntk[g], h_c.ntk[g], sp.Integer(0)) for g in sorted(groups)]
            carry_d = [(prev_d.nngp, h_d.nngp, h0)]
            carry_d += [(prev_d.ntk[g], h_d.ntk[g], sp.Integer(0)) for g in sorted(groups)]
            steps.append(Structural(node, cls.describe(attrs), "time_recurrence", params={
                "cross": c_list, "diag": d_list, "carry": carry, "carry_diag": carry_d,
                "hidden_init_var": h0, "k": k},
                inputs=(inp_c.nngp,), outputs=(h_c.nngp,)))
            cross[node], diag[node] = h_c, h_d
            mode = attrs["params"]["readout"]
            succ = list(graph.successors(node))
            feeds_rnn = any(graph.nodes[s]["kind"] == "rnn" for s in succ)
            if mode == "all" and feeds_rnn:
                continue
            frm = attrs["params"]["readout_from"]
            if mode == "all":
                steps.append(Structural(node, f"readout: all steps t, t' >= {frm}", "readout",
                                        params={"mode": "all", "from": frm, "map": [],
                                                "map_diag": []}))
                continue
            k += 1
            r_c = KernelState(h_c.nngp, dict(h_c.ntk), h_c.var_x, h_c.var_y, False)
            r_d = KernelState(h_d.nngp, dict(h_d.ntk), h_d.nngp, h_d.nngp, True)
            rc_list, rd_list = [], []
            # a readout is linear in the state: every entry is read out the same way
            new_c, new_d = _assign(rc_list, rd_list, _as_new(r_c), _as_new(r_d), k, "",
                                   per_layer)
            what = ("last: the pair (T, T'), aligned from the end" if mode == "last" else
                    f"mean over all pairs t, t' >= {frm}")
            steps.append(Structural(node, f"readout {what}", "readout", params={
                "mode": mode, "from": frm,
                "map": [(a.target, a.expr.args[0]) for a in rc_list],
                "map_diag": [(a.target, a.expr.args[0]) for a in rd_list]}))
            cross[node], diag[node] = new_c, new_d
            phase = "scalar"
            continue
        if phase == "grid" and attrs["kind"] != "dense" and not LAYER_KINDS[attrs["kind"]] \
                .__name__.startswith("Activation_"):
            raise SpecError(f"layer kind '{attrs['kind']}' cannot act on a sequence",
                            file=fname, line=attrs["line"], key="kind")
        c = _collapse(cls.kernel_rule(attrs, [cross[q] for q in preds]), per_layer)
        dg = _collapse(cls.kernel_rule(attrs, [diag[q] for q in preds]), per_layer)
        k += 1
        step = Elementwise(node, cls.describe(attrs))
        cross[node], diag[node] = _assign(step.cross, step.diag, c, dg, k, "", per_layer)
        steps.append(step)
    out = graph.graph["output"]
    c, dg = cross[out], diag[out]
    outputs = {"nngp": c.nngp, "ntk": sp.Add(*c.ntk.values())}
    diag_outputs = {"nngp": dg.nngp, "ntk": sp.Add(*dg.ntk.values())}
    if per_layer:
        for g in c.ntk:
            outputs[f"ntk[{g}]"] = c.ntk[g]
            diag_outputs[f"ntk[{g}]"] = dg.ntk[g]
    return KernelProgram(
        name=graph.graph["name"], spec_hash=graph.graph["spec_hash"], input_kind="sequence",
        input_cross=s0, input_diag=s0x, input_scale=d, steps=steps, outputs=outputs,
        diag_outputs=diag_outputs, per_layer=per_layer,
        notes=["1{x = x'} is 1 for the same example of a Gram matrix K(X, X), else 0 "
               "(h_0 is drawn independently for every example)"] + notes)


class Readout(sp.Function):
    """Marks a readout of a grid quantity (printing only; the loop template computes it)."""

    nargs = 1


def _as_new(state):
    """Wrap every entry in Readout(.) so that _assign gives each one a fresh symbol."""
    return KernelState(Readout(state.nngp), {g: Readout(t) for g, t in state.ntk.items()},
                       state.var_x, state.var_y, state.diagonal)


def grid_symbols(p: KernelProgram):
    """Names of the symbols indexed by a time pair (assigned before a last/mean readout)."""
    names = {p.input_cross.name, p.input_diag.name}
    for s in p.steps:
        if isinstance(s, Structural) and s.op == "readout" and s.params["mode"] != "all":
            break
        if isinstance(s, Structural) and s.op == "time_recurrence":
            for a in s.params["cross"] + s.params["diag"]:
                names.add(a.target.name)
            for pv, _, _ in s.params["carry"] + s.params["carry_diag"]:
                names.add(pv.name)
        elif isinstance(s, Elementwise):
            for a in s.cross + s.diag:
                names.add(a.target.name)
    return names


# --------------------------------------------------------------------------- printing

def _display(name, grid, latex):
    """Sigma_1p -> Sigma_1(t-1, t'-1); Sigma_1g_xx -> Sigma_1g(x, x; t); Theta_2[rnn_0.W] ..."""
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


def _names(exprs, grid, latex):
    syms = set()
    for e in exprs:
        syms |= e.free_symbols
    return {s: sp.Symbol(_display(s.name, grid, latex)) for s in syms
            if not s.name.startswith("rho_")}


def _rho_lines(assigns, grid, text):
    rhos = {}
    for a in assigns:
        for e in sp.preorder_traversal(a.expr):
            if isinstance(e, ClippedCorrelation) and e not in rhos:
                rhos[e] = sp.Symbol(f"rho_{len(rhos) + 1}")
    lines = [f"  {r} = {text(e.xreplace(_names([e], grid, False)))}" for e, r in rhos.items()]
    return rhos, lines


def sequence_text(p: KernelProgram) -> str:
    """The recurrence over time pairs as plain text, every constant visible."""
    from ntksym.derive.walker import _text
    grid = grid_symbols(p)
    d = p.input_scale
    out = [f"kernel program of '{p.name}' (spec sha256 {p.spec_hash[:12]})",
           f"  sequences x = (x_1..x_T), x' = (x'_1..x'_T'); time pairs t = 1..T, t' = 1..T'",
           f"  Sigma_0(t, t') = <x_t, x'_t'> / {d},   Sigma_0(x, x; t) = |x_t|^2 / {d}"]

    def show(assigns):
        rhos, lines = _rho_lines(assigns, grid, _text)
        for a in assigns:
            expr = a.expr.xreplace(rhos)
            nm = _names([expr, a.target], grid, False)
            lines.append(f"  {nm[a.target]} = {_text(expr.xreplace(nm))}")
        return lines

    for step in p.steps:
        out.append(f"{step.node}: {step.description}")
        if isinstance(step, Elementwise):
            out += show(step.cross + step.diag)
        elif step.op == "time_recurrence":
            prm = step.params
            out.append("  recurrence for t = 1..T, t' = 1..T' (pre-activation g, then h):")
            out += show(prm["cross"])
            kk = prm["k"]
            out.append(f"  boundary: Sigma_{kk}(0, 0) = {prm['hidden_init_var']} * 1{{x = x'}}, "
                       f"Sigma_{kk}(t, 0) = Sigma_{kk}(0, t') = 0, Theta_{kk} = 0 at t = 0 or t' = 0")
            out.append("  per example, t = 1..T (exact diagonal rules):")
            out += show(prm["diag"])
            out.append(f"  boundary: Sigma_{kk}(x, x; 0) = {prm['hidden_init_var']}, "
                       f"Theta_{kk}(x, x; 0) = 0")
        elif step.op == "readout":
            prm = step.params
            if prm["mode"] == "all":
                out.append(f"  outputs: every pair (t, t') with t, t' >= {prm['from']}")
            for tgt, src in prm["map"]:
                nm = _names([tgt, src], grid, False)
                s = str(nm[src])
                if prm["mode"] == "last":
                    rhs = s.replace("(t, t')", "(T, T')")
                else:
                    f0 = prm["from"]
                    rhs = (f"1/((T-{f0 - 1})(T'-{f0 - 1})) * sum_{{t={f0}..T, t'={f0}..T'}} {s}"
                           if f0 > 1 else f"1/(T T') * sum_{{t=1..T, t'=1..T'}} {s}")
                out.append(f"  {nm[tgt]} = {rhs}")
            if prm["mode"] != "all":
                out.append("  (x, x) entries: the same readout of the pair (x, x)")
    for name, sym in p.outputs.items():
        nm = _names([sym], grid, False)
        out.append(f"output {name} = {_text(sym.xreplace(nm))}")
    out.extend(f"note: {n}" for n in p.notes)
    return "\n".join(out)


def sequence_latex(p: KernelProgram) -> str:
    """The recurrence as a LaTeX ``align*`` block."""
    grid = grid_symbols(p)
    rows = [r"\Sigma_{0}(t, t') &= \tfrac{1}{%d}\langle x_t, x'_{t'}\rangle" % p.input_scale]

    def tex(a):
        nm = {s: str(v) for s, v in _names([a.expr, a.target], grid, True).items()}
        return "%s &= %s" % (nm[a.target], sp.latex(a.expr, symbol_names=nm))

    for step in p.steps:
        label = step.node.replace("_", r"\_")
        if isinstance(step, Elementwise):
            rows += [tex(a) for a in step.cross + step.diag]
        elif step.op == "time_recurrence":
            rows.append(r"&\text{%s: recurrence over } (t, t')" % label)
            rows += [tex(a) for a in step.params["cross"] + step.params["diag"]]
            kk = step.params["k"]
            rows.append(r"\Sigma_{%d}(0, 0) &= %s\,\mathbf{1}\{x = x'\},\quad "
                        r"\Sigma_{%d}(t, 0) = \Sigma_{%d}(0, t') = 0,\quad \Theta_{%d} = 0"
                        r"\text{ at the boundary}"
                        % (kk, sp.latex(step.params["hidden_init_var"]), kk, kk, kk))
        else:
            prm = step.params
            for tgt, src in prm["map"]:
                nm = _names([tgt, src], grid, True)
                s = str(nm[src])
                if prm["mode"] == "last":
                    rhs = s.replace("(t, t')", "(T, T')")
                else:
                    f0 = prm["from"]
                    norm = (r"\frac{1}{T T'}" if f0 == 1 else
                            r"\frac{1}{(T-%d)(T'-%d)}" % (f0 - 1, f0 - 1))
                    rhs = r"%s\sum_{t=%d}^{T}\sum_{t'=%d}^{T'} %s" % (norm, f0, f0, s)
                rows.append("%s &= %s" % (nm[tgt], rhs))
            if prm["mode"] == "all":
                rows.append(r"&\text{%s: outputs at all } t, t' \ge %d" % (label, prm["from"]))
    for name, sym in p.outputs.items():
        nm = {s: str(v) for s, v in _names([sym], grid, True).items()}
        rows.append(r"\mathrm{%s} &= %s" % (name.replace("_", r"\_"),
                                             sp.latex(sym, symbol_names=nm)))
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


def sequence_python(p: KernelProgram) -> str:
    """The recurrence bodies as sympy source, one assignment per line (the loops and the
    boundary are in comments: see ``ntksym codegen`` for the executable form)."""
    from ntksym.codegen.printer import identifier
    out = [f"# kernel program of '{p.name}' (spec sha256 {p.spec_hash}), sequence input"]

    def src(e):
        return sp.sstr(e.xreplace({s: sp.Symbol(identifier(s.name)) for s in e.free_symbols}),
                       full_prec=True)

    for step in p.steps:
        out.append(f"# {step.node}: {step.description}")
        if isinstance(step, Elementwise):
            assigns = step.diag + step.cross
        elif step.op == "time_recurrence":
            out.append("# for t, t' (carried: " + ", ".join(
                f"{identifier(pv.name)} <- {identifier(cur.name)} (boundary {init})"
                for pv, cur, init in step.params["carry"]) + ")")
            assigns = step.params["diag"] + step.params["cross"]
        else:
            out.append(f"# readout {step.params['mode']} from {step.params['from']}: " + ", ".join(
                f"{identifier(t.name)} <- {identifier(s.name)}" for t, s in step.params["map"]))
            continue
        out += [f"{identifier(a.target.name)} = {src(a.expr)}" for a in assigns]
    for name, sym in p.outputs.items():
        out.append(f"{identifier('out_' + name)} = {src(sym)}")
    return "\n".join(out)
