"""The per-offset-slice schedule of image KernelPrograms (used by :mod:`ntksym.codegen.image`).

Why it works.  A stride-1 patch sum moves both pixels of a pair by the same window offset a:
``P[p, p'] = sum_a In[p + a - pad, p' + a - pad]``, so it keeps the pixel offset
``d = p' - p`` fixed; an elementwise step keeps it fixed trivially and reads only the per-image
diagonals ``D_x[p]`` and ``D_y[p + d]``.  Hence the entries with one offset d, the *slice*
``S_d[p] = Sigma[p, p + d]`` (a 2-D array over p), pass through every stride-1 conv and
elementwise layer on their own.  The generated ``pair_pass`` carries one slice of every live
state entry through all layers up to the readout while it sits in cache (a slice has at most
H W entries), and adds its contribution to the readout:

* ``global_avg``: ``P^-2 sum_{p, p'} In[p, p']`` = ``P^-2 sum_d sum_p S_d[p]``, all offsets;
* ``flatten``:    ``P^-1 sum_p In[p, p]`` = ``P^-1 sum_p S_0[p]``, the offset-0 slice only,
  so CNTK-V costs O(L P q^2) per pair instead of O(L P^2 q^2).

Borders.  With zero padding (``same``, ``valid``) the pair (p, p + d) exists only for the p in
the rectangle ``_rect`` (rows i with 0 <= i + d_i < H, likewise columns); entries outside it
are zeros of the full tensor, so the patch sum reads only inside the rectangle and elementwise
steps compute only inside it (an activation of a zero entry would not be zero).  With
``circular`` padding offsets are taken mod (H, W), every slice is full and partners wrap.

Each layer's elementwise loop is a call of a step function shared by every layer with the
same canonical loop body, and the calls of one slice are rows of a constant table that the
pass functions loop over (:mod:`ntksym.codegen.steps`): the compiled code, and so the cold
JIT, does not grow with depth.

Slices are stored on the full pixel grid of their node (row stride W), so ``D_x[p]`` and the
partner ``D_y[p + d_i W + d_j]`` index the per-image diagonals directly.

Strides, average pooling and a readout followed by further pixel steps mix offsets: such
programs use the full (H W)^2 schedule (:func:`slice_plan` returns None).

The walk over the layers is :class:`ntksym.codegen.slice_walk.SliceWalker`'s, shared with
the CUDA target; :class:`CpuSlices` says how the CPU writes each piece.
"""

from __future__ import annotations

import sympy as sp

from ntksym.codegen.common import Clip1, function, hyper_arg, lower_clipped
from ntksym.codegen.slice_walk import SliceWalker, slice_plan
from ntksym.codegen.steps import StepFunctions, call_table
from ntksym.ir.program import Assign, Elementwise

__all__ = ["SLICE_TEMPLATES", "ClipScaled", "CpuSlices", "slice_plan"]

SLICE_TEMPLATES = '''

# ---- per-offset-slice templates (see ntksym/codegen/slices.py for why they are exact)
# Array operands come as (2-D array, row): a view made by the caller and passed to a call
# costs two atomic reference-count updates, which on 8x8 slices cost as much as the work.

@njit(cache=True, inline="always")
def _rect(n, d, circ):
    # the indices i of an n-grid whose partner i + d is inside it (all of them when circular)
    if circ:
        return 0, n
    return max(0, -d), min(n, n - d)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _gram_slice(XaT, XbT, H, W, di, dj, circ, scale, outs, so):
    # out[i W + j] = <x_(i, j), x'_(i + di, j + dj)> / scale inside the slice's rectangle;
    # channel-major images (C, H W) so that the loop over j is contiguous
    C = XaT.shape[0]
    out = outs[so]
    r0, r1 = _rect(H, di, circ)
    c0, c1 = _rect(W, dj, circ)
    for i in range(r0, r1):
        iy = i + di
        if iy >= H:
            iy -= H
        for j in range(c0, c1):
            out[np.uint64(i * W + j)] = 0.0
        for c in range(C):
            xa = XaT[c]
            xb = XbT[c]
            if circ:
                for j in range(c0, c1):
                    jy = j + dj - W if j + dj >= W else j + dj
                    out[np.uint64(i * W + j)] += xa[np.uint64(i * W + j)] * xb[np.uint64(iy * W + jy)]
            else:
                shift = iy * W + dj
                for p in range(np.uint64(i * W + c0), np.uint64(i * W + c1)):
                    out[p] += xa[p] * xb[np.uint64(np.int64(p) - i * W + shift)]
        for p in range(np.uint64(i * W + c0), np.uint64(i * W + c1)):
            out[p] /= scale


@njit(cache=True)
def _fill_slice(value, H, W, di, dj, circ, outs, so):
    out = outs[so]
    r0, r1 = _rect(H, di, circ)
    c0, c1 = _rect(W, dj, circ)
    for i in range(r0, r1):
        for j in range(c0, c1):
            out[i * W + j] = value


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _patch_slice(As, sa, H, W, Ho, Wo, qh, qw, ph, pw, di, dj, circ, outs, so, tmp):
    """Stride-1 patch sum of the offset-(di, dj) slice A (H x W grid) into out (Ho x Wo grid):
    out[i, j] = sum_{a, b} A[i + a - ph, j + b - pw] over source pixels inside A's rectangle
    (zero padding, and partners outside the image, contribute nothing).  Separable: rows into
    tmp (Ho x W), then columns; per window offset, the range of outputs whose source is
    inside is one contiguous run (unsigned indices: the runs vectorize)."""
    A = As[sa]
    out = outs[so]
    ra, rb = _rect(H, di, circ)
    ca, cb = _rect(W, dj, circ)
    oa, ob = _rect(Ho, di, circ)
    oc, od = _rect(Wo, dj, circ)
    for i in range(oa, ob):
        t0 = i * W
        for p in range(np.uint64(t0 + ca), np.uint64(t0 + cb)):
            tmp[p] = 0.0
        for a in range(qh):
            r = i + a - ph
            if circ:
                r %= H
            elif r < ra or r >= rb:
                continue
            s = r * W - t0
            for p in range(np.uint64(t0 + ca), np.uint64(t0 + cb)):
                tmp[p] += A[np.uint64(np.int64(p) + s)]
    for i in range(oa, ob):
        t0 = i * W
        o0 = i * Wo
        for p in range(np.uint64(o0 + oc), np.uint64(o0 + od)):
            out[p] = 0.0
        for b in range(qw):
            if circ:
                for j in range(oc, od):
                    c = (j + b - pw) % W
                    out[np.uint64(o0 + j)] += tmp[np.uint64(t0 + c)]
                continue
            # outputs j whose source column j + b - pw lies in [ca, cb)
            j0 = max(oc, ca - b + pw)
            j1 = min(od, cb - b + pw)
            s = t0 + b - pw - o0
            for p in range(np.uint64(o0 + j0), np.uint64(o0 + max(j0, j1))):
                out[p] += tmp[np.uint64(np.int64(p) + s)]


@njit(cache=True)
def _store_diag(As, sa, n, outs, so):
    A = As[sa]
    out = outs[so]
    for p in range(n):
        out[p] = A[p]


@njit(cache=True, error_model="numpy")
def _store_roots(As, sa, n, sqs, ssq, isqs, sisq):
    # per-pixel sqrt and 1/sqrt of the diagonal: the slice loops' correlation tables (a blank
    # pixel's 1/0 = inf is meant: _clip_scaled maps the 0 * inf = NaN to an uncorrelated pair)
    A = As[sa]
    sq = sqs[ssq]
    isq = isqs[sisq]
    for p in range(n):
        sq[p] = math.sqrt(A[p])
        isq[p] = 1.0 / sq[p]


@njit(cache=True)
def _slice_sum(As, sa, H, W, di, dj, circ):
    A = As[sa]
    r0, r1 = _rect(H, di, circ)
    c0, c1 = _rect(W, dj, circ)
    acc = 0.0
    for i in range(r0, r1):
        for j in range(c0, c1):
            acc += A[i * W + j]
    return acc
'''


class ClipScaled(sp.Function):
    """clip(c ia ib, -1, 1), ia = 1/sqrt(a), ib = 1/sqrt(b) from per-pixel tables; 0 when
    a variance is 0 (then c = 0 and 0 * inf is NaN): the slice loops' clipped correlation."""

    nargs = 3


def _diag_sqrt_rewrite(assignments, tables):
    """Clip1(c, sqrt(A_xx B_yy)) -> ClipScaled(c, 1/sqrt(A_xx), 1/sqrt(B_yy)) and the remaining
    sqrt(A_xx B_yy) -> sqrt(A_xx) sqrt(B_yy), read from per-pixel tables that ``image_pass``
    fills once per image: a pixel-pair loop then needs no square root and no division for the
    correlation.  ``tables`` collects the diagonal names that need them."""
    def is_diag_product(e):
        return (e.is_Pow and e.exp == sp.S.Half and e.base.is_Mul and len(e.base.args) == 2
                and all(isinstance(f, sp.Symbol) and f.name.endswith(("_xx", "_yy"))
                        for f in e.base.args))

    def root(f, kind):
        tables.add(f.name[:-3])
        return sp.Symbol(f"{f.name[:-3]}_{kind}{f.name[-3:]}", real=True)

    def scaled(e):
        if isinstance(e, Clip1) and is_diag_product(e.args[1]):
            return ClipScaled(e.args[0], *[root(f, "isqrt") for f in e.args[1].base.args])
        return None

    out = []
    for a in assignments:
        e = lower_clipped(a.expr)
        e = e.replace(lambda x: scaled(x) is not None, scaled)
        e = e.replace(is_diag_product,
                      lambda pw: sp.Mul(*[root(f, "sqrt") for f in pw.base.args]))
        out.append(Assign(a.target, e))
    return out


def _pixels(program, name):
    h, w = program.shapes[name]
    return h * w


class CpuSlices(SliceWalker):
    """The CPU target of the slice schedule: every line is a call of a Numba template
    (SLICE_TEMPLATES) or of a shared step function (:mod:`ntksym.codegen.steps`), so that the
    pass functions stay cheap to compile at any depth.

    ``walk(store=False)``: the pair (x, x'), correlations from the per-pixel sqrt tables;
    ``walk(store=True)``: the pair (x, x), weight w per offset, and at offset 0 (``store``
    at run time) the per-pixel diagonals are stored in D as soon as each layer has them
    (later layers of the same offset read them).  The self pair keeps the correlation
    c / sqrt(a b) as printed: on the pixel diagonal of a self pair that is exactly 1
    (sqrt(a a) = a), so K(x, x) carries no arccos round-off; with the tables,
    c (1/sqrt a)(1/sqrt b) can miss 1 by an ulp, which acos turns into ~1e-8."""

    def __init__(self, program, slots, printer, plan):
        super().__init__(program, plan, slots, printer)
        # pixel-loop assignments with per-pixel square-root tables, and those tables' D slots
        self.tables = set()
        self.rewritten = {k: _diag_sqrt_rewrite(step.cross, self.tables)
                          for k, step in enumerate(program.steps[:self.red])
                          if isinstance(step, Elementwise) and step.cross}
        for name in sorted(self.tables):
            for kind in ("sqrt", "isqrt"):
                slots.diag_slot.setdefault(f"{name}_{kind}", len(slots.diag_slot))
        self.steps = StepFunctions(printer, self.circ, program.hyperparameters)

    def _buf(self, name):
        return f"buf[{self.slots.slot[name]}]"

    def _operand(self, a, hw, L):
        """The slice of a structural input; a constant entry is filled into cbuf first."""
        if isinstance(a, sp.Symbol):
            return self._buf(a.name)
        H, W = hw
        L.append(f"_fill_slice({float(a)!r}, {H}, {W}, di, dj, {self.circ}, cbuf[0])")
        return "cbuf[0]"

    def store_diag(self, name, store):
        sl = self.slots
        if not store or name not in sl.diag_slot:
            return []
        src, n = self._buf(name), _pixels(self.p, name)
        text = f"if store:\n    _store_diag({src}, {n}, D[{sl.diag_slot[name]}])"
        if name in self.tables:
            text += (f"\n    _store_roots({src}, {n}, "
                     f"D[{sl.diag_slot[name + '_sqrt']}], "
                     f"D[{sl.diag_slot[name + '_isqrt']}])")
        return [text]

    def emit_input(self, store):
        s0 = self.p.input_cross.name
        H0, W0 = self.p.shapes[s0]
        return ([f"_gram_slice(Xa, Xb, {H0}, {W0}, di, dj, {self.circ}, "
                 f"{float(self.p.input_scale)!r}, {self._buf(s0)})"] + self.store_diag(s0, store))

    def _emit_PatchSum(self, step, store):
        op = step.op
        (H, W), (Ho, Wo) = op.in_hw, op.out_hw
        (qh, qw), (ph, pw) = op.filter, op.pads
        L = []
        for a, b in zip(step.inputs, step.outputs):
            if b.name.endswith("_xx"):
                continue
            src = self._operand(a, (H, W), L)       # a constant: a frozen layer's zero NTK
            L.append(f"_patch_slice({src}, {H}, {W}, {Ho}, {Wo}, {qh}, {qw}, {ph}, "
                     f"{pw}, di, dj, {self.circ}, {self._buf(b.name)}, tmp)")
            L += self.store_diag(b.name, store)
        return L

    def emit_elementwise(self, k, step, store):
        hw = self.p.shapes[step.cross[0].target.name]
        cross = step.cross if store else self.rewritten[k]
        L = [self.steps.call(cross, self.slots.reads(step), self.slots.slot,
                             self.slots.diag_slot, hw, node=step.node)]
        for a in step.cross:
            L += self.store_diag(a.target.name, store)
        return L

    def emit_readout(self, store):
        H, W = self.rstep.op.in_hw
        L = []
        for n, (a, b) in enumerate(self.reduced):
            src = self._operand(a, (H, W), L)
            w = "w * " if store else ""
            L.append(f"acc[{n}] += {w}_slice_sum({src}, {H}, {W}, di, dj, {self.circ})")
        return L

    def source(self):
        """Source of the shared step functions and call tables, ``tail_self``,
        ``tail_pair``, ``image_pass`` and ``pair_pass``."""
        Hf, Wf = self.plan["final_hw"]
        circ = self.circ
        if self.trace_only:                 # the trace: the offset-0 slice only
            offsets = ("0, 1", "0, 1")
        elif circ:
            offsets = (f"{Hf}", f"{Wf}")
        else:
            offsets = (f"{-(Hf - 1)}, {Hf}", f"{-(Wf - 1)}, {Wf}")
        if not self.trace_only and not circ:
            # K(x, x) is symmetric at every layer, so the slice of offset -d is the mirror
            # image of the slice of d and has the same sum: run d = 0 and half of the
            # others, twice
            self_offsets = (f"0, {Hf}", f"{-(Wf - 1)} if di > 0 else 0, {Wf}")
            weight = "1.0 if store else 2.0"
        else:
            self_offsets, weight = offsets, "1.0"
        nacc = max(len(self.reduced), 1)
        hp = hyper_arg(self.p)
        # the pair's walk first: it names the step functions
        pair_table, pair_loop = call_table("PAIR_OPS", self.walk(False), " " * 12)
        self_table, self_loop = call_table("SELF_OPS", self.walk(True), " " * 12)
        return (
            "\n\n# ---- the distinct per-layer elementwise steps (ntksym/codegen/steps.py)" +
            self.steps.source() +
            "\n\n# ---- the calls of one offset slice, one row per call (ntksym/codegen/steps.py: "
            "call_table);\n# row = op code, then the buf / D / acc indices of the call\n" +
            pair_table + "\n" + self_table +
            function(f"\n\n@njit(cache=True)\ndef tail_self(acc, D{hp}):\n", self.tail(True)) +
            function(f"\n\n@njit(cache=True)\ndef tail_pair(acc, Dx, Dy{hp}):\n",
                     self.tail(False)) +
            _PASSES.format(nacc=nacc, self_h=self_offsets[0], self_w=self_offsets[1],
                           weight=weight, pair_h=offsets[0], pair_w=offsets[1],
                           self_loop=self_loop, pair_loop=pair_loop, hp=hp))


_PASSES = '''

@njit(cache=True, error_model="numpy", fastmath={{"contract"}})
def image_pass(Xa, buf, tmp, D{hp}):
    """K(x, x): every offset the readout needs (the calls of SELF_OPS), offset 0 first, which
    stores the per-pixel diagonals in D (the other offsets read them)."""
    cbuf = np.empty((1, BUFLEN))
    Xa = np.ascontiguousarray(Xa.T)          # channel-major (C, H W) for _gram_slice
    Xb = Xa
    Dx = D
    Dy = D
    acc = np.zeros({nacc})
    for di in range({self_h}):
        for dj in range({self_w}):
            store = di == 0 and dj == 0
            w = {weight}
{self_loop}    return tail_self(acc, D{hp})


@njit(cache=True, error_model="numpy", fastmath={{"contract"}})
def pair_pass(Xa, Xb, buf, tmp, Dx, Dy{hp}):
    """K(x, x'): every offset slice the readout needs (the calls of PAIR_OPS), one at a time,
    then the scalar tail."""
    cbuf = np.empty((1, BUFLEN))
    Xa = np.ascontiguousarray(Xa.T)          # channel-major (C, H W) for _gram_slice
    Xb = np.ascontiguousarray(Xb.T)
    acc = np.zeros({nacc})
    for di in range({pair_h}):
        for dj in range({pair_w}):
{pair_loop}    return tail_pair(acc, Dx, Dy{hp})
'''
