"""Sequence KernelProgram -> standalone Numba module (the loop templates of the time
recurrence and of the readouts).

Data layout: X (n, T, d) float64, sequences left-aligned (x_1 at X[i, 0]); L (n,) int64 lengths.
The generated module has

* ``diag_series(Xi, Li)``: the per-example time series of every diagonal quantity of the grid
  phase, D (T, ND) (one exact diagonal recursion per example);
* ``pair(Xi, Li, Di, Xj, Lj, Dj, same, acc, grid)``: the whole grid phase for one pair.  The
  time shift couples (t, t') only to (t-1, t'-1), so the recursion walks each diagonal
  t - t' = const from its boundary, carrying each layer's previous state: the "last" readout
  walks only the diagonal through (T, T') (O(L min(T, T')) per pair), "mean" and "all" walk all
  T + T' - 1 diagonals (O(L T T')).  Inputs products <x_t, x'_t'> / d are formed in the walk.
  For the same example (``same = 1``) on t = t' the exact diagonal values are used and the
  initial-state term hidden_init_var 1{x = x'} enters.  With ``readout = "all"`` the readout
  moves no index: the layers after it (dense, activations, add, concat, layer_norm) act at
  every (t, t'), so their steps are grid steps (computed in the walk, their diagonal series in
  ``diag_series``) and ``pair`` writes the outputs of every (t, t') into ``grid``;
* ``self_readout`` / ``cross_tile``: all pairs in parallel (``prange``), the upper triangle only
  for symmetric Grams;
* ``kernel(X, L, X2=None, L2=None)``: a convenience entry point returning every output.

>>> import ntksym
>>> arch = ntksym.loads_spec('name = "r"\\ninput = { shape = [4, 2] }\\n'
...     '[[layer]]\\nkind = "rnn"\\n[[layer]]\\nkind = "dense"\\n')
>>> "def pair(" in generate_sequence_source(arch.derive())
True
"""

from __future__ import annotations

from ntksym.codegen.common import (
    corr_source,
    cse_block,
    hyper_arg,
    hyper_check,
    hyper_constants,
    hyper_lines,
    module_header,
    quadrature_source,
)
from ntksym.codegen.printer import NumbaPrinter, identifier
from ntksym.ir.ops import Readout
from ntksym.ir.program import Elementwise, KernelProgram, Structural

CODEGEN_VERSION = "seq-2"

_DOT = '''

@njit(cache=True)
def _dot(u, v):
    s = 0.0
    for k in range(u.shape[0]):
        s += u[k] * v[k]
    return s
'''


def _blocks(assigns, printer, prefix):
    """CSE'd lines for a list of assignments, cut into chunks so that no expression reads a
    target of its own chunk (sympy.cse hoists subexpressions above every assignment)."""
    lines, chunk, targets, k = [], [], set(), 0
    for a in assigns:
        if a.expr.free_symbols & targets:
            lines += cse_block(chunk, printer, f"{prefix}{k}_")
            chunk, targets, k = [], set(), k + 1
        chunk.append(a)
        targets.add(a.target)
    return lines + cse_block(chunk, printer, f"{prefix}{k}_")


def _ind(lines, n):
    return "".join(" " * n + l + "\n" for l in lines)


def split_phases(p: KernelProgram):
    """(grid steps, readout step, scalar steps)."""
    grid, readout, scalar = [], None, []
    for s in p.steps:
        if readout is None:
            if isinstance(s, Structural) and isinstance(s.op, Readout):
                readout = s
            else:
                grid.append(s)
        else:
            scalar.append(s)
    return grid, readout, scalar


_EQ_SETUP = """    T = X.shape[1]
    eq = T > 0 and X2.shape[1] == T
    X2t = np.empty((T if eq else 0, X2.shape[2], X2.shape[0]))
    if eq:
        for j in range(X2.shape[0]):
            for t in range(T):
                for k in range(X2.shape[2]):
                    X2t[t, k, j] = X2[j, t, k]
        for i in range(n1):
            if L[i] != T:
                eq = False
        for j in range(X2.shape[0]):
            if L2[j] != T:
                eq = False
"""

_EQ_SYM = """            if eq:
                _row_eq(X, D, R, X2t, D2, R2, out, r, r + 1, T{hp})
                if n1 - 1 - r != r:
                    _row_eq(X, D, R, X2t, D2, R2, out, n1 - 1 - r, n1 - r, T{hp})
                continue
"""

_EQ_NON = """            if eq:
                _row_eq(X, D, R, X2t, D2, R2, out, i, 0, T{hp})
            else:
                _row(X, L, D, R, X2, L2, D2, R2, out, i, 0{hp})
"""


def generate_sequence_source(p: KernelProgram) -> str:
    """The standalone Numba module of a sequence KernelProgram, as Python source text."""
    printer = NumbaPrinter()
    pr = printer.doprint
    hp = hyper_arg(p)                 # learnable constants: their values, an argument
    unpack = hyper_lines(p)
    grid, readout, scalar = split_phases(p)
    mode, frm = readout.op.mode, readout.op.start
    if mode == "all":
        # the "all" readout moves no index: the layers after it act at every time pair
        # (t, t'), so their steps join the grid phase -- cross values in the walk, exact
        # diagonal series in diag_series -- and the outputs are written from the walk.  An
        # empty step (a frozen dense of weight_var 1, no bias) adds nothing, not even a comment.
        if any(isinstance(s, Structural) for s in scalar):
            raise ValueError(f"internal: {p.name}: structural steps after readout 'all' "
                             f"({[s.node for s in scalar if isinstance(s, Structural)]}); "
                             "derive emits it only where no rnn follows")
        grid = grid + [s for s in scalar if s.cross or s.diag]
        scalar = []
    out_names = tuple(p.outputs)
    n_out = len(out_names)

    def parts(s):
        if isinstance(s, Elementwise):
            return s.cross, s.diag
        return s.op.cross, s.op.diag

    # ---- grid diagonal symbols: Sigma_0_xx and every diagonal target, in order
    gdiag = [p.input_diag.name]
    for s in grid:
        gdiag += [a.target.name for a in parts(s)[1]]
    col = {n: k for k, n in enumerate(gdiag)}

    # diag_series: one exact recursion over t per example
    body = unpack + ["D = np.zeros((max(Xi.shape[0], 1), %d))" % len(gdiag)]
    for s in grid:
        if isinstance(s, Structural):
            body += [f"{identifier(pv.name)} = {pr(init)}" for pv, _, init in s.op.carry_diag]
    body.append("for t in range(Li):")
    loop = [f"{identifier(p.input_diag.name)} = _dot(Xi[t], Xi[t]) / {float(p.input_scale)!r}"]
    for k, s in enumerate(grid):
        loop += [f"# {s.node}"] + _blocks(parts(s)[1], printer, f"d{k}_")
        if isinstance(s, Structural):
            loop += [f"{identifier(pv.name)} = {identifier(cur.name)}"
                     for pv, cur, _ in s.op.carry_diag]
    loop += [f"D[t, {col[n]}] = {identifier(n)}" for n in gdiag]
    body += ["    " + l for l in loop]
    body.append("return D")
    diag_fn = f"\n\n@njit(cache=True)\ndef diag_series(Xi, Li{hp}):\n" + _ind(body, 4)

    # ---- pair: walk diagonals
    cross_assigns = [a for s in grid for a in parts(s)[0]]
    used = set()
    for a in cross_assigns:
        used |= {x.name for x in a.expr.free_symbols}
    for e in p.outputs.values():
        used |= {x.name for x in e.free_symbols}
    loads = []
    for n in gdiag:
        if n in used:
            loads.append(f"{identifier(n)} = Di[t, {col[n]}]")
        yn = n[:-3] + "_yy"
        if yn in used:
            loads.append(f"{identifier(yn)} = Dj[tp, {col[n]}]")
    same_branch = [f"{identifier(p.input_cross.name)} = Di[t, {col[p.input_diag.name]}]"]
    for a in cross_assigns:
        twin = a.target.name + "_xx"
        same_branch.append(f"{identifier(a.target.name)} = " +
                           (f"Di[t, {col[twin]}]" if twin in col else pr(a.expr)))
    cross_branch = [f"{identifier(p.input_cross.name)} = _dot(Xi[t], Xj[tp]) / "
                    f"{float(p.input_scale)!r}"]
    for k, s in enumerate(grid):
        cross_branch += [f"# {s.node}"] + _blocks(parts(s)[0], printer, f"c{k}_")
    carries, inits = [], []
    for s in grid:
        if isinstance(s, Structural):
            for pv, cur, init in s.op.carry:
                carries.append(f"{identifier(pv.name)} = {identifier(cur.name)}")
                inits.append(f"{identifier(pv.name)} = ({pr(init)}) * same "
                             f"if (t == 0 and tp == 0) else 0.0")
    if mode == "all":
        reads = [f"grid[{q}, t - {frm - 1}, tp - {frm - 1}] = {pr(p.outputs[o])}"
                 for q, o in enumerate(out_names)]
        cond = f"t >= {frm - 1} and tp >= {frm - 1}"
        n_acc = 1
    else:
        srcs = [src for _, src in readout.op.map]
        n_acc = max(len(srcs), 1)
        if mode == "mean":
            reads = [f"acc[{q}] += {identifier(s.name)}" for q, s in enumerate(srcs)]
            cond = f"t >= {frm - 1} and tp >= {frm - 1}"
        else:
            reads = [f"acc[{q}] = {identifier(s.name)}" for q, s in enumerate(srcs)]
            cond = "t == Li - 1 and tp == Lj - 1"
    walk = (["if same == 1 and t == tp:"] + ["    " + l for l in same_branch] +
            ["else:"] + ["    " + l for l in cross_branch] + carries +
            [f"if {cond}:"] + ["    " + l for l in (reads or ["pass"])] +
            ["t += 1", "tp += 1"])
    if mode == "last":
        offsets = "lo = Li - Lj\n    hi = Li - Lj"
    else:
        offsets = "lo = -(Lj - 1)\n    hi = Li - 1"
    pair_src = f'''

@njit(cache=True)
def pair(Xi, Li, Di, Xj, Lj, Dj, same, acc, grid{hp}):
    """Grid phase of one pair: readout sums into acc (mean), the last values (last), or every
    output at every (t, t') into grid (all)."""
{_ind(unpack, 4)}    for q in range(acc.shape[0]):
        acc[q] = 0.0
    {offsets}
    for off in range(lo, hi + 1):
        t = off if off > 0 else 0
        tp = t - off
{_ind(inits, 8)}        while t < Li and tp < Lj:
{_ind(loads + walk, 12)}'''
    # ---- "last" with every length equal to T: the time loop outside, the pairs of a row
    # inside.  Each pair's recursion is one serial chain of dependent special functions
    # (corr -> acos -> next step), so walking pairs one after another is latency-bound;
    # with the pairs innermost their chains are independent and the CPU overlaps them.
    row_eq_src = ""
    if mode == "last":
        arr = [(identifier(pv.name), identifier(cur.name))
               for s in grid if isinstance(s, Structural) for pv, cur, _ in s.op.carry]
        srcs = [src for _, src in readout.op.map]
        dot_line = cross_branch[0]
        assert dot_line.startswith(identifier(p.input_cross.name) + " = _dot(")
        cross_rest = [f"{identifier(p.input_cross.name)} = P[jj] / {float(p.input_scale)!r}"] + \
            cross_branch[1:]
        inner = (["j = j0 + jj", "Dj = D2[j]"] +
                 [f"{pv} = {pv}_a[jj]" for pv, _ in arr] + loads + cross_rest +
                 [f"{pv}_a[jj] = {cur}" for pv, cur in arr] +
                 ["if t == T - 1:"] +
                 [f"    accs[jj, {q}] = {identifier(sv.name)}" for q, sv in enumerate(srcs)])
        row_eq_src = f'''


@njit(cache=True)
def _row_eq(X, D, R, X2t, D2, R2, out, i, j0, T{hp}):
    """Row i against j >= j0 when every sequence has length T (cross pairs only).

    X2t (T, d, n2): X2 with the examples last, so that the input products of step t for the
    whole row are one vectorizable sweep (k outer, j inner; same summation order as _dot)."""
    nj = X2t.shape[2] - j0
    if nj <= 0:
        return
{_ind(unpack, 4)}    Xi = X[i]
    Di = D[i]
    P = np.empty(nj)
{_ind([f"{pv}_a = np.zeros(nj)" for pv, _ in arr], 4)}    accs = np.zeros((nj, {n_acc}))
    for t in range(T):
        tp = t
        for jj in range(nj):
            P[jj] = 0.0
        for k in range(Xi.shape[1]):
            xk = Xi[t, k]
            for jj in range(nj):
                P[jj] += xk * X2t[t, k, j0 + jj]
        for jj in range(nj):
{_ind(inner, 12)}    v = np.empty({n_acc})
    res = np.empty({n_out})
    for jj in range(nj):
        _normalize(accs[jj], T, T, v)
        scalar_cross(v, R[i, :N_R], R2[j0 + jj, :N_R], res{hp})
        for q in range({n_out}):
            out[q, i, j0 + jj] = res[q]
'''
    # ---- scalar phase
    scalar_src = ""
    if mode != "all":
        norm = ("acc[q] / ((Li - %d) * (Lj - %d))" % (frm - 1, frm - 1)) if mode == "mean" \
            else "acc[q]"
        tg = [t for t, _ in readout.op.map]
        sdiag = [t.name + "_xx" for t in tg]
        for s in scalar:
            sdiag += [a.target.name for a in s.diag]
        scol = {n: k for k, n in enumerate(sdiag)}
        body = unpack + [f"{identifier(t.name)}_xx = v[{q}]" for q, t in enumerate(tg)]
        for k, s in enumerate(scalar):
            body += [f"# {s.node}"] + _blocks(s.diag, printer, f"sd{k}_")
        body += [f"R[{scol[n]}] = {identifier(n)}" for n in sdiag]
        body += [f"R[{len(sdiag) + q}] = {pr(p.diag_outputs[o])}" for q, o in enumerate(out_names)]
        sd_fn = (f"\n\n@njit(cache=True)\ndef scalar_diag(v, R{hp}):\n" + _ind(body, 4))
        used = set()
        for s in scalar:
            for a in s.cross:
                used |= {x.name for x in a.expr.free_symbols}
        for e in p.outputs.values():
            used |= {x.name for x in e.free_symbols}
        body = unpack + [f"{identifier(t.name)} = v[{q}]" for q, t in enumerate(tg)]
        for n in sdiag:
            if n in used:
                body.append(f"{identifier(n)} = Ri[{scol[n]}]")
            yn = n[:-3] + "_yy"
            if yn in used:
                body.append(f"{identifier(yn)} = Rj[{scol[n]}]")
        for k, s in enumerate(scalar):
            body += [f"# {s.node}"] + _blocks(s.cross, printer, f"sc{k}_")
        body += [f"res[{q}] = {pr(p.outputs[o])}" for q, o in enumerate(out_names)]
        sc_fn = (f"\n\n@njit(cache=True)\ndef scalar_cross(v, Ri, Rj, res{hp}):\n" +
                 _ind(body, 4))
        n_r = len(sdiag)
        # "last" with equal lengths: cross pairs through _row_eq (see there)
        if mode == "last":
            eq_setup = _EQ_SETUP
            eq_sym = _EQ_SYM.format(hp=hp)
            eq_non = _EQ_NON.format(hp=hp)
        else:
            eq_setup, eq_sym = "", ""
            eq_non = f"            _row(X, L, D, R, X2, L2, D2, R2, out, i, 0{hp})\n"
        scalar_src = sd_fn + sc_fn + f'''

N_R = {n_r}


@njit(cache=True)
def _normalize(acc, Li, Lj, v):
    for q in range(acc.shape[0]):
        v[q] = {norm}


@njit(cache=True, parallel=True)
def self_readout(X, L, D{hp}):
    """R[i]: the scalar-phase diagonal state and the exact diagonal outputs of example i."""
    n = X.shape[0]
    R = np.empty((n, N_R + {n_out}))
    for i in prange(n):
        acc = np.empty({n_acc})
        v = np.empty({n_acc})
        grid = np.empty((1, 1, 1))
        pair(X[i], L[i], D[i], X[i], L[i], D[i], 1, acc, grid{hp})
        _normalize(acc, L[i], L[i], v)
        scalar_diag(v, R[i]{hp})
    return R


@njit(cache=True)
def _row(X, L, D, R, X2, L2, D2, R2, out, i, j0{hp}):
    acc = np.empty({n_acc})
    v = np.empty({n_acc})
    res = np.empty({n_out})
    grid = np.empty((1, 1, 1))
    for j in range(j0, X2.shape[0]):
        pair(X[i], L[i], D[i], X2[j], L2[j], D2[j], 0, acc, grid{hp})
        _normalize(acc, L[i], L2[j], v)
        scalar_cross(v, R[i, :N_R], R2[j, :N_R], res{hp})
        for q in range({n_out}):
            out[q, i, j] = res[q]


@njit(cache=True, parallel=True)
def cross_tile(X, L, D, R, X2, L2, D2, R2, out, symmetric{hp}):
    """out[q, i, j]; symmetric: only j > i is computed, mirrored, the diagonal from R."""
    n1 = X.shape[0]
{eq_setup}    if symmetric:
        # rows r and n1-1-r together: every parallel task has the same number of pairs
        for r in prange((n1 + 1) // 2):
{eq_sym}            _row(X, L, D, R, X2, L2, D2, R2, out, r, r + 1{hp})
            if n1 - 1 - r != r:
                _row(X, L, D, R, X2, L2, D2, R2, out, n1 - 1 - r, n1 - r{hp})
        for i in prange(n1):
            for q in range({n_out}):
                out[q, i, i] = R[i, N_R + q]
                for j in range(i):
                    out[q, i, j] = out[q, j, i]
    else:
        for i in prange(n1):
{eq_non}'''
    else:
        scalar_src = '''

@njit(cache=True, parallel=True)
def grid_tile(X, L, D, X2, L2, D2, out, symmetric{hp}):
    """out[q, i, j, t, t'] for t, t' >= READOUT_FROM (0 past a sequence's length)."""
    n1, n2 = X.shape[0], X2.shape[0]
    for i in prange(n1):
        acc = np.empty(1)
        j0 = i if symmetric else 0
        for j in range(j0, n2):
            same = 1 if (symmetric and i == j) else 0
            pair(X[i], L[i], D[i], X2[j], L2[j], D2[j], same, acc, out[:, i, j]{hp})
    if symmetric:
        for i in prange(n1):
            for j in range(i):
                for q in range(out.shape[0]):
                    out[q, i, j] = out[q, j, i].T
'''.replace("{hp}", hp)
    hp_check = hyper_check(p)
    drivers = f'''

@njit(cache=True, parallel=True)
def diagonals(X, L{hp}):
    n, T = X.shape[0], X.shape[1]
    D = np.empty((n, max(T, 1), {len(gdiag)}))
    for i in prange(n):
        D[i] = diag_series(X[i], L[i]{hp})
    return D


def kernel(X, L=None, X2=None, L2=None{", hp=None" if hp else ""}):
    """Every output of the spec: {{name: array}}, (n1, n2) or (n1, n2, T1', T2') for 'all'."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    L = np.full(X.shape[0], X.shape[1], np.int64) if L is None else np.asarray(L, np.int64)
    sym = X2 is None
    if sym:
        X2, L2 = X, L
    X2 = np.ascontiguousarray(X2, dtype=np.float64)
    L2 = np.full(X2.shape[0], X2.shape[1], np.int64) if L2 is None else np.asarray(L2, np.int64)
{hp_check}    D = diagonals(X, L{hp})
    D2 = D if sym else diagonals(X2, L2{hp})
    if READOUT == "all":
        To1, To2 = X.shape[1] - READOUT_FROM + 1, X2.shape[1] - READOUT_FROM + 1
        out = np.zeros((len(OUTPUTS), X.shape[0], X2.shape[0], To1, To2))
        grid_tile(X, L, D, X2, L2, D2, out, sym{hp})
    else:
        R = self_readout(X, L, D{hp})
        R2 = R if sym else self_readout(X2, L2, D2{hp})
        out = np.empty((len(OUTPUTS), X.shape[0], X2.shape[0]))
        cross_tile(X, L, D, R, X2, L2, D2, R2, out, sym{hp})
    return {{o: out[q] for q, o in enumerate(OUTPUTS)}}
'''
    header = module_header(
        p, version=CODEGEN_VERSION, imports="from numba import njit, prange",
        notes="Do not edit: regenerate with `ntksym codegen SPEC -o FILE`.  Needs only numpy "
              "and numba.\nInputs are sequences: X (n, T, d) left-aligned, L (n,) lengths; "
              f"products <x_t, x'_t'> / {p.input_scale}.\nReadout: {mode} from step {frm}.  "
              f"Outputs: {', '.join(out_names)}.",
        constants=[f"INPUT_SCALE = {p.input_scale}", f"OUTPUTS = {out_names!r}",
                   f"READOUT = {mode!r}", f"READOUT_FROM = {frm}"] + hyper_constants(p))
    header += corr_source() + _DOT
    return (header + quadrature_source(printer) + diag_fn + pair_src + scalar_src + row_eq_src +
            drivers).rstrip() + "\n"
