"""Per-layer elementwise steps of the slice schedule as shared, deduplicated Numba functions.

Why.  Numba's compile time grows faster than linearly with the size of a function (typing,
IR-level inlining of ``_acos``, then LLVM's O3 on one huge body, repeated for every caller
that links it).  When every layer's pixel loop was unrolled into the pass functions, cold JIT
grew with depth (55 s for CNTK-GAP depth 6 on digits).  But the layers of a deep network
repeat: after the first one or two, every ReLU step is the same loop with other buffers and
other diagonal rows.  So each elementwise step is printed *canonically* -- its symbols renamed
by role (``Sigma_in0``, ``Theta_out1``, ...), its buffers and diagonal rows turned into
parameters, the common-subexpression names fixed -- and steps with the same canonical text
share one ``@njit`` function.  The calls of one offset slice are rows of a constant table
(:func:`call_table`), one row per call, which the pass functions loop over.  The compiled
code then depends on the kinds of layers, not on their count, and so does the compile time.

Each step function is ``inline="always"`` (at the Numba IR level): the pass functions call
it from a single site (the dispatch of :func:`call_table`), so inlining does not multiply
code, it saves a call per layer and offset (on 8x8 slices a call costs about as much as the
work) and the loop compiles under the pass's error model and fastmath flags.

Buffers are parameters per *slot*, not per symbol: a step that writes in place (a target in
the slot of a dying read) reads and writes through one (array, row) parameter, so LLVM sees
a load and a store of the same address and still vectorizes (two parameters for one row
would make its runtime overlap check fail and fall back to scalar code).

>>> import sympy as sp
>>> from ntksym.ir.program import Assign
>>> a, b = sp.symbols("Sigma_4 Sigma_5")
>>> from ntksym.codegen.image import ImagePrinter
>>> fns = StepFunctions(ImagePrinter(), circular=False)
>>> fns.call([Assign(b, 2 * a)], ["Sigma_4"], {"Sigma_4": 0, "Sigma_5": 0}, {}, (8, 8))
'_step0(buf[0], 8, 8, di, dj)'
>>> a, b = sp.symbols("Sigma_7 Sigma_8")
>>> fns.call([Assign(b, 2 * a)], ["Sigma_7"], {"Sigma_7": 3, "Sigma_8": 3}, {}, (8, 8))
'_step0(buf[3], 8, 8, di, dj)'
"""

from __future__ import annotations

import re
import textwrap

import sympy as sp

from ntksym.codegen.common import cse_block
from ntksym.codegen.printer import identifier
from ntksym.ir.symbols import HyperSymbol

# the per-pixel-pair loops: no ZeroDivisionError branch (0/0 -> NaN, which the clipped
# correlation maps to an uncorrelated pair) and fused multiply-adds, so that they vectorize;
# the pass functions they are inlined into carry the same flags
JIT = '@njit(cache=True, inline="always", error_model="numpy", fastmath={"contract"})'

_DIAG = ("_xx", "_yy")

#: the most positional arguments of a call that CPython compiles as a plain call
MAX_POSITIONAL = 30


def _natural(name):
    """Sort key 'Sigma_9' < 'Sigma_10': the same order for every layer of a deep network."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _stem(name):
    m = re.match(r"[A-Za-z]+", name)
    return m.group(0) if m else "s"


def canonical(cross, reads):
    """(assignments, renaming): ``cross`` with every symbol renamed by its role in the step.

    Reads become ``<stem>_in<k>``, targets ``<stem>_out<k>``, a diagonal ``X_xx`` / ``X_yy``
    (or a per-pixel table ``X_sqrt_xx``, ``X_isqrt_yy``) follows the name of X; ``renaming``
    maps original names (diagonal bases included, without ``_xx``) to the new ones."""
    from ntksym.ir.program import Assign
    ren = {}
    for k, r in enumerate(sorted(reads, key=_natural)):
        ren[r] = f"{_stem(r)}_in{k}"
    for k, a in enumerate(cross):
        ren.setdefault(a.target.name, f"{_stem(a.target.name)}_out{k}")
    syms = {s for a in cross for s in a.expr.free_symbols}
    bases = sorted({s.name[:-3] for s in syms if s.name.endswith(_DIAG)}, key=_natural)
    for k, base in enumerate(bases):
        if base in ren:
            continue
        root, _, kind = base.rpartition("_")
        if kind in ("sqrt", "isqrt") and root in ren:
            ren[base] = f"{ren[root]}_{kind}"
        else:
            ren[base] = f"{_stem(base)}_d{k}"

    def new(s):
        name = ren[s.name[:-3]] + s.name[-3:] if s.name.endswith(_DIAG) else ren[s.name]
        return sp.Symbol(name, **s.assumptions0)

    sub = {s: new(s) for s in syms if not isinstance(s, HyperSymbol)}   # hp: not renamed
    out = [Assign(new(a.target), a.expr.xreplace(sub)) for a in cross]
    return out, ren


class StepFunctions:
    """Registry of the distinct step functions of one module; ``call`` returns a call line."""

    def __init__(self, printer, circular, hypers=()):
        self.printer = printer
        self.circular = circular
        #: the program's learnable constants, in the order of the ``hp`` argument
        self.hypers = list(hypers)
        self.by_text = {}            # canonical source (name left out) -> function name
        self.users = {}              # function name -> layers (node names) that call it
        self.sources = []

    def call(self, cross, reads, slot, diag_slot, hw, node=None, buf="buf", Dx="Dx", Dy="Dy"):
        """A call of the step function that computes ``cross`` on one offset slice.

        ``reads``: the state names it loads (from ``buf[slot[name]]``); ``diag_slot``: the
        rows of Dx / Dy holding each diagonal base; ``hw``: the pixel grid of the step."""
        assigns, ren = canonical(cross, reads)
        back = {v: k for k, v in ren.items()}
        # one array parameter per buffer slot, in order of first use
        # (array, row) parameter pairs: see call_table
        params, args = [], []
        arr = {}
        for name in sorted(reads, key=_natural) + [a.target.name for a in cross]:
            s = slot[name]
            if s not in arr:
                arr[s] = f"a{len(arr)}, s{len(arr)}"
                params.append(arr[s])
                args.append(f"{buf}[{s}]")
        dsyms = sorted({s.name for a in assigns for s in a.expr.free_symbols
                        if s.name.endswith(_DIAG)}, key=_natural)
        for d in dsyms:
            side = "Dx" if d.endswith("_xx") else "Dy"
            params.append(f"{side}_{identifier(d[:-3])}, {side.lower()}_{identifier(d[:-3])}")
            args.append(f"{Dx if side == 'Dx' else Dy}[{diag_slot[back[d[:-3]]]}]")
        used = [h for h in self.hypers if any(h in a.expr.free_symbols for a in assigns)]
        hp = ", hp" if used else ""
        H, W = hw
        # CPython compiles a call of more than 30 positional arguments as a star-args call
        # (CALL_FUNCTION_EX), which Numba cannot inline ("Calling a closure with *args");
        # a step with many operands (per-layer NTK terms of a deep network) takes them as one
        # tuple instead, unpacked at the top of the function
        packed = 2 * len(params) + 4 + len(hp) // 4 > MAX_POSITIONAL
        if packed:
            L = [f"def NAME(ops{hp}, H, W, di, dj):"]
            names = ", ".join(params)
            L.append(f"    {names} = ops")
        else:
            L = [f"def NAME({', '.join(params)}{hp}, H, W, di, dj):"]
        # the pairs of the batch, from a slice row's length (see SLICE_TEMPLATES)
        L.append("    nb = a0.shape[1] // PMAX")
        L += [f"    hp_{identifier(h.name)} = hp[{self.hypers.index(h)}]" for h in used]
        circ = self.circular
        L.append(f"    r0, r1 = _rect(H, di, {circ})")
        L.append(f"    c0, c1 = _rect(W, dj, {circ})")
        # unsigned flat indices: no negative-index wraparound in the loop, so LLVM vectorizes
        # it; p indexes entry (pixel, pair) of this image, q its partner's (SLICE_TEMPLATES:
        # the nb pairs of a pixel are contiguous, a pixel shift is a flat shift)
        partner = any(d.endswith("_yy") for d in dsyms)
        if circ:
            L.append("    for i in range(r0, r1):")
            if partner:
                L.append("        iy = i + di - H if i + di >= H else i + di")
            L.append("        for j in range(c0, c1):")
            L.append("            e0 = np.uint64((i * W + j) * nb)")
            L.append("            e1 = np.uint64((i * W + j + 1) * nb)")
            if partner:
                L.append("            s = ((iy * W + (j + dj - W if j + dj >= W else j + dj))"
                         " - (i * W + j)) * nb")
            L.append("            for p in range(e0, e1):")
            if partner:
                L.append("                q = np.uint64(np.int64(p) + s)")
            ind = " " * 16
        else:
            if partner:
                L.append("    shift = (di * W + dj) * nb")
            L.append("    for i in range(r0, r1):")
            L.append("        e0 = np.uint64((i * W + c0) * nb)")
            L.append("        e1 = np.uint64((i * W + c1) * nb)")
            L.append("        for p in range(e0, e1):")
            if partner:
                L.append("            q = np.uint64(np.int64(p) + shift)")
            ind = " " * 12
        for d in dsyms:
            side = "Dx" if d.endswith("_xx") else "Dy"
            b = identifier(d[:-3])
            L.append(f"{ind}{identifier(d)} = {side}_{b}"
                     f"[{side.lower()}_{b}, {'p' if side == 'Dx' else 'q'}]")
        for r in sorted(reads, key=_natural):
            a, row = arr[slot[r]].split(", ")
            L.append(f"{ind}{identifier(ren[r])} = {a}[{row}, p]")
        for line in cse_block(assigns, self.printer, "cse", lower=True):
            L.append(ind + line)
        for x, orig in zip(assigns, cross):
            a, row = arr[slot[orig.target.name]].split(", ")
            L.append(f"{ind}{a}[{row}, p] = {identifier(x.target.name)}")
        text = "\n".join(L) + "\n"
        name = self.by_text.get(text)
        if name is None:
            name = f"_step{len(self.by_text)}"
            self.by_text[text] = name
            self.users[name] = []
            self.sources.append((name, text))
        if node is not None and node not in self.users[name]:
            self.users[name].append(node)
        operands = f"({', '.join(args)},)" if packed else ", ".join(args)
        return f"{name}({operands}{hp}, {H}, {W}, di, dj)"

    def source(self):
        """The definitions of every registered step function, with the layers using each."""
        out = []
        for name, text in self.sources:
            users = textwrap.fill(f"{name}: {', '.join(self.users[name]) or '-'}", 95,
                                  initial_indent="# ", subsequent_indent="#   ")
            out.append(f"\n\n{users}\n{JIT}\n{text.replace('NAME', name, 1)}")
        return "".join(out)


_OPERAND = re.compile(r"\b(buf|cbuf|Dx|Dy|D|acc)\[(\d+)\]")


def call_table(name, lines, indent):
    """(table source, dispatch source): ``lines`` (calls, one per item, items may span lines;
    ``# node: ...`` comments name the layer of the calls after them) as a constant table.

    Why.  Even as calls only, a pass unrolled over the layers grows with depth, and Numba's
    typing and LLVM's O3 of every function that links it (the drivers) grow with it: about
    1 s of cold JIT per layer.  So the buffer, diagonal-row and accumulator indices of every
    call become operands in row r of ``name`` (an int64 array, a compile-time constant), and
    the pass loops over the rows, dispatching on the row's op code to one call site per
    distinct call (literal arguments such as the grid size stay literal there, so Numba
    still specializes the callee on them).  Each row's comment shows its call in full; the
    call itself passes a row ``buf[k]`` as ``buf, k`` (no view: see SLICE_TEMPLATES).

    >>> table, loop = call_table("OPS", ["# relu_1: relu", "_step0(buf[1], Dx[0], 8, di, dj)",
    ...                                  "# relu_3: relu", "_step0(buf[2], Dx[1], 8, di, dj)"],
    ...                          "")
    >>> print(table.splitlines()[2])
        [0, 2, 1],  # relu_3: _step0(buf[2], Dx[1], 8, di, dj)
    >>> loop.splitlines()[-1].strip()
    '_step0(buf, o1, Dx, o2, 8, di, dj)'
    """
    ops, rows, node = {}, [], ""
    for text in lines:
        if text.startswith("#"):
            node = text[1:].split(":")[0].strip()
            continue
        operands = []

        def operand(m):
            # rows of 2-D arrays are passed as (array, row), not as views: see SLICE_TEMPLATES
            operands.append(int(m.group(2)))
            return f"{m.group(1)}, o{len(operands)}"

        code = ops.setdefault(_OPERAND.sub(operand, text), len(ops))
        rows.append((code, operands, node, text))
    width = max(len(r[1]) for r in rows)
    table = [f"{name} = np.array(["]
    for code, operands, node, text in rows:
        cells = ", ".join(str(v) for v in [code] + operands + [0] * (width - len(operands)))
        shown = " / ".join(t.strip() for t in text.splitlines())
        table.append(f"    [{cells}],  # {node}: {shown}" if node else f"    [{cells}],  # {shown}")
    table.append("], dtype=np.int64)")
    loop = [f"for r in range({name}.shape[0]):", f"    op = {name}[r, 0]"]
    loop += [f"    o{k} = {name}[r, {k}]" for k in range(1, width + 1)]
    for tmpl, code in ops.items():
        loop.append(f"    {'if' if code == 0 else 'elif'} op == {code}:")
        loop += [f"        {t}" for t in tmpl.splitlines()]
    return "\n".join(table) + "\n", "".join(f"{indent}{l}\n" for l in loop)
