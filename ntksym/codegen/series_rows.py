"""The row loop of vector (MLP) programs whose duals are Hermite series with hoisted
per-example coefficients: the pair's recursion cut into stages around the series, so that
every stage and every series runs as a loop over the contiguous columns of a row
(:mod:`ntksym.codegen.vector` uses it for ``_row`` when the program hoists coefficients).

A row i is taken in chunks of columns (``_HR_C`` of :mod:`ntksym.duals.hermite_rows`,
aligned to its multiples, so that a chunk's worst-case tails come from one column of the
table ``HM``).  Per chunk, the lines of ``pair`` run as loops over the chunk's columns, cut
before each line that needs a series whose arguments the current stage computes:

    stage 0: for k: dense layer ... c_k, rho_k = clip(c_k / sqrt(a b_k))     (stored)
    series:  NAME_m0_row(c, a, b, rho, ...) -> s0, NAME_m1_row(...) -> s1   (all k at once)
    stage 1: for k: Sigma = s0[k], Theta = Theta_prev[k] * s1[k], next dense layer, ...

Values that cross a cut live in scratch rows of ``buf`` (after the outputs), one chunk long.
The series of one layer's members (phi and phi', and a tangent family's mixed members) share
their c and rho arrays.  The lines come from the same sympy expressions as ``pair`` (the
printer prints each hoisted series as a name, ``_s<N>``, and records the call).

>>> import ntksym
>>> from ntksym.codegen.vector import generate_vector_source
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [3] }\\n[[layer]]\\nkind = "dense"\\n'
...                          'activation = "tanh"\\n[[layer]]\\nkind = "dense"\\n')
>>> src = generate_vector_source(arch.derive())
>>> src.count("_m0_row(w"), src.count("_m1_row(w")
(1, 1)
"""

from __future__ import annotations

import ast

from ntksym.codegen.common import cse_block, hoisted_widths, hyper_lines
from ntksym.ir.symbols import identifier


class _SeriesNames:
    """Printer mixin: a hoisted pair series E(a, b, c) prints as a name ``_s<N>``, the call
    recorded in ``series`` {(helper, c, a, b, vector): name}."""

    series = None

    def _print_HermiteExpectationBase(self, expr):
        if len(expr.args) == 3:
            vec = self.hermite_vector(expr)
            if vec is not None:
                a, b, c = expr.args
                key = (self.hermite_name(type(expr)), self._print(c), self._print(a),
                       self._print(b), vec)
                return self.series.setdefault(key, "_s%d" % len(self.series))
        return super()._print_HermiteExpectationBase(expr)


def row_printer(printer):
    """A printer like ``printer`` (of its class, sharing its records of helpers and hoisted
    vectors) that prints hoisted pair series as names."""
    cls = type("SeriesRowPrinter", (_SeriesNames, type(printer)), {})
    rp = cls(hoist=printer.hoist, quadrature_names=printer.quadrature_names)
    rp.hermite_families = printer.hermite_families
    rp.series = {}
    return rp


def _names(text):
    """The identifiers an expression reads."""
    return {n.id for n in ast.walk(ast.parse(text, mode="eval")) if isinstance(n, ast.Name)}


def _stages(lines, calls):
    """Cut the pair's lines into stages: [(lines, calls evaluated after the stage)].

    ``lines``: (comments, target, expression); ``calls``: {name: the names its arguments read}.
    A line joins the current stage unless a series it reads has arguments that the current
    stage computes: then the series go after it and the line opens the next stage."""
    stages = [([], [])]
    where = {}                          # name -> the stage that defines it
    for line in lines:
        _, target, expr = line
        used = [s for s in sorted(_names(expr)) if s in calls and s not in where]
        need = max([where.get(n, -1) for s in used for n in calls[s]] + [-1])
        if used and (need == len(stages) - 1 or len(stages) == 1):
            stages.append(([], []))
        for s in used:                  # after the stage before the current one
            stages[-2][1].append(s)
            where[s] = len(stages) - 2
        stages[-1][0].append(line)
        where[target] = len(stages) - 1
    return stages


def series_row_body(program, printer, x_names, y_names, n_out):
    """(body lines of ``_row``, the number of scratch rows it uses in ``buf``) for a vector
    program with hoisted series; ``x_names``/``y_names``: the pair's per-example scalars
    (columns of D1 / rows of D2T), ``n_out``: outputs (the first rows of ``buf``)."""
    rp = row_printer(printer)
    cross = identifier(program.input_cross.name)
    lines, comments = [], []
    for k, step in enumerate(program.steps):
        comments.append(f"# {step.node}: {step.description}")
        for ln in cse_block(step.cross, rp, f"c{k}_", lower=True):
            target, expr = ln.split(" = ", 1)
            lines.append((comments, target, expr))
            comments = []
    returns = [rp.doprint(program.outputs[o]) for o in program.outputs]
    calls = {name: (c, a, b, helper, vec)
             for (helper, c, a, b, vec), name in rp.series.items()}
    args = {name: _names(c) | _names(a) | _names(b) for name, (c, a, b, _, _) in calls.items()}
    stages = _stages(lines, args)
    inputs = {cross: "g"} | {y: f"y{k}" for k, y in enumerate(y_names)}

    # the c and rho arrays of each distinct (c, a, b) of a stage's series
    rho_of = {}
    for _, after in stages:
        for s in after:
            c, a, b, _, _ = calls[s]
            rho_of.setdefault((c, a, b), len(rho_of))

    # names that cross a cut: defined in one stage, read in a later one (or by the c of a
    # later stage's series, or by the outputs)
    defined = {}
    for st, (ls, after) in enumerate(stages):
        for _, target, _ in ls:
            defined[target] = st
        for s in after:
            defined[s] = st + 0.5           # the series after stage st
    reads = []                               # per stage: the names it reads
    for st, (ls, after) in enumerate(stages):
        r = set()
        for _, _, expr in ls:
            r |= _names(expr)
        for s in after:                 # c, a, b of the series' rho
            r |= _names(calls[s][0]) | _names(calls[s][1]) | _names(calls[s][2])
        if st == len(stages) - 1:
            for e in returns:
                r |= _names(e)
        reads.append(r)
    carried = sorted({n for st, r in enumerate(reads) for n in r
                      if n in defined and defined[n] < st},
                     key=lambda n: (defined[n], n))
    row = {n: k for k, n in enumerate(carried)}
    base = len(row)
    scratch = len(row) + 2 * len(rho_of)

    body = hyper_lines(program) + [f"{x} = D1[i, {k}]" for k, x in enumerate(x_names)]
    body += ["m = je - jb", "g = G[i, jb:je]"]
    body += [f"y{k} = D2T[{k}, jb:je]" for k in range(len(y_names))]
    body += [f"b{q} = buf[{q}, :m]" for q in range(n_out)]
    body += [f"w{k} = buf[{n_out + k}, :m]  # {n}" for n, k in row.items()]
    for (c, a, b), r in rho_of.items():
        body += [f"wc{r} = buf[{n_out + base + 2 * r}, :m]  # {c}",
                 f"wr{r} = buf[{n_out + base + 2 * r + 1}, :m]  # rho of ({c}, {a}, {b})"]
    for st, (ls, after) in enumerate(stages):
        # G is unscaled (see vector.py): the cross input is divided as it is read
        loop = [f"{n} = {inputs[n]}[k]" + (" / INPUT_SCALE" if n == cross else "")
                for n in sorted(reads[st] & set(inputs))]
        loop += [f"{n} = w{row[n]}[k]" for n in carried
                 if n in reads[st] and defined[n] < st]
        for comm, target, expr in ls:
            loop += comm + [f"{target} = {expr}"]
        loop += [f"w{row[n]}[k] = {n}" for n in carried if defined[n] == st]
        done = set()
        for s in after:
            c, a, b, _, _ = calls[s]
            r = rho_of[(c, a, b)]
            if r not in done:
                done.add(r)
                loop += [f"wc{r}[k] = {c}", f"wr{r}[k] = _clip1(wc{r}[k], math.sqrt({a}*{b}))"]
        if st == len(stages) - 1:
            loop += [f"b{q}[k] = {e}" for q, e in enumerate(returns)]
        body += ["for k in range(m):"] + ["    " + ln for ln in loop]
        for s in after:
            c, a, b, helper, vec = calls[s]
            r = rho_of[(c, a, b)]
            if b not in inputs:
                raise ValueError(f"series {helper}: {b} is not a column of D2T")
            body.append(f"{helper}_row(wc{r}, {a}, {inputs[b]}, wr{r}, D1, i, D2, D2T, HM, "
                        f"jb, w{row[s]}, _{vec}_OFF)")
    return ["    " + ln for ln in body], scratch


#: rows of a parallel task: they pass over one chunk of columns after another, so that the
#: chunk's coefficient rows (D2T) are read from cache by all of them
ROW_BLOCK = 32

# The drivers of a program with hoisted series (in place of the closed-form row drivers of
# ntksym.codegen.vector; the same cross_rows contract).  Placeholders: {series_body}, {n_buf},
# {n_cols}, {hp}, {block}.
_SERIES_DRIVERS = '''

# one chunk of one row of pairs: the pair's recursion as loops over the chunk's contiguous
# columns, cut around the Hermite series, which take all the chunk's pairs at once
# (ntksym.codegen.series_rows, ntksym.duals.hermite_rows): LLVM vectorizes every loop
@njit(cache=True, error_model="numpy")
def _row(G, D1, D2, D2T, HM, i, jb, je, buf{hp}):
    """buf[k, j - jb] = output k of pair (i, j) for jb <= j < je (columns of one chunk: the
    same multiple of _HR_C); the rows of buf after the outputs are scratch."""
{series_body}


@njit(cache=True)
def _out_rows(G, D1, D2, D2T, HM, select, out, r0, c0, i0, i1, symmetric, buf{hp}):
    """Rows i0 <= i < i1 of the block, chunk by chunk of columns (the chunk's coefficient
    rows stay in cache while the rows pass); out[q, r0 + i, c0 + j] = output select[q]."""
    n2 = G.shape[1]
    lo = i0 + 1 if symmetric else 0
    for q in range(lo // _HR_C, (n2 + _HR_C - 1) // _HR_C):
        je = min(n2, (q + 1) * _HR_C)
        for i in range(i0, i1):
            jb = max(q * _HR_C, i + 1 if symmetric else 0)
            if jb < je:
                _row(G, D1, D2, D2T, HM, i, jb, je, buf{hp})
                for s in range(select.shape[0]):
                    o = select[s]
                    for j in range(jb, je):
                        out[s, r0 + i, c0 + j] = buf[o, j - jb]


_ROWS = {block}


@njit(cache=True, parallel=True)
def cross_rows(G, D1, D2, select, out, r0, c0, symmetric{hp}):
    \"\"\"out[q, r0 + i, c0 + j] = output select[q] of pair (i, j) of the block G (rows D1,
    columns D2); symmetric (a block that starts on the diagonal): only j > i.  G may be
    out[0]: each entry is read (by its own chunk) before it is written.\"\"\"
    n1, n2 = G.shape
    D2T = np.ascontiguousarray(D2[:, :{n_cols}].T)
    HM = _hr_maxima(D2T)
    # blocks of up to _ROWS rows, at least 128 blocks below 128 _ROWS rows (parallel tasks
    # for many threads; the thread count itself would keep Numba from caching this function)
    rb = max(1, min(_ROWS, n1 // 128))
    nb = (n1 + rb - 1) // rb
    if symmetric:
        # blocks t and nb-1-t together: every parallel task has about the same number of pairs
        for t in prange((nb + 1) // 2):
            buf = np.empty(({n_buf}, _HR_C))
            _out_rows(G, D1, D2, D2T, HM, select, out, r0, c0, t * rb, min(n1, (t + 1) * rb),
                      True, buf{hp})
            u = nb - 1 - t
            if u != t:
                _out_rows(G, D1, D2, D2T, HM, select, out, r0, c0, u * rb,
                          min(n1, (u + 1) * rb), True, buf{hp})
    else:
        for t in prange(nb):
            buf = np.empty(({n_buf}, _HR_C))
            _out_rows(G, D1, D2, D2T, HM, select, out, r0, c0, t * rb, min(n1, (t + 1) * rb),
                      False, buf{hp})
'''


def series_row_drivers(program, printer, params, n_diag, n_out):
    """(the row drivers' template, its values) of a vector program with hoisted series, for
    :func:`ntksym.codegen.vector.generate_vector_source`; ``params``: pair's parameters
    (the cross input, the x-side and the y-side scalars, ...)."""
    body, scratch = series_row_body(program, printer, params[1:1 + n_diag],
                                    params[1 + n_diag:1 + 2 * n_diag], n_out)
    return _SERIES_DRIVERS, {"series_body": "\n".join(body), "n_buf": n_out + scratch,
                             "n_cols": n_diag + sum(hoisted_widths(printer)),
                             "block": ROW_BLOCK}
