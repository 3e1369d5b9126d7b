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

Batches.  The walk carries BATCH pairs at once (:func:`pair_batch`): entry (p, k), pixel p of
pair k, is at flat index ``p BATCH + k`` of a slice, and so of the images and per-pixel
diagonals the drivers gather for the batch.  A run of pixels is then one run of flat indices
(BATCH times longer) and a partner pixel a flat shift (BATCH times larger), so every loop
keeps its shape and each pair its arithmetic (the same values as one pair at a time), but an
8x8 slice's runs of 1 to 8 pixels become runs of 16 to 128 entries that vectorize, and the
cost of each call of the walk is shared by the batch (CNTK-GAP depth 4 on 50 digits: 4.5x
less CPU time).

Strides, average pooling and a readout followed by further pixel steps mix offsets: such
programs use the full (H W)^2 schedule (:func:`slice_plan` returns None).

The walk over the layers is :class:`ntksym.codegen.slice_walk.SliceWalker`'s, shared with
the CUDA target; :class:`CpuSlices` says how the CPU writes each piece.
"""

from __future__ import annotations

import sympy as sp

from ntksym.codegen.common import function, hyper_arg
from ntksym.codegen.roots import ClipScaled, diag_sqrt_rewrite
from ntksym.codegen.slice_walk import SliceWalker, slice_plan
from ntksym.codegen.steps import StepFunctions, call_table
from ntksym.ir.program import Elementwise

__all__ = ["SLICE_DRIVERS", "SLICE_TEMPLATES", "ClipScaled", "CpuSlices", "pair_batch",
           "slice_plan"]

SLICE_TEMPLATES = '''

# ---- per-offset-slice templates (see ntksym/codegen/slices.py for why they are exact)
# nb = BATCH pairs at once: entry (p, k) of a slice, pixel p of pair k, is at flat index
# p nb + k, so a run of pixels is a run of p nb .. (p + n) nb (the loops stay contiguous,
# only longer; unsigned flat indices: no wraparound checks, the loops vectorize) and a
# partner pixel p + s is the flat shift s nb.  nb is read from a slice row's length
# (BUFLEN = PMAX BATCH), not from the constant BATCH: with a compile-time multiple of 16
# LLVM specializes every loop for it, which cost 20% more cold JIT (CNTK-GAP depth 4 on
# digits: 10.3 -> 12.4 CPU s) for the same run time.
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
    # channel-major images (C, H W nb) so that the loop over j (and k) is contiguous
    nb = outs.shape[1] // PMAX
    C = XaT.shape[0]
    out = outs[so]
    r0, r1 = _rect(H, di, circ)
    c0, c1 = _rect(W, dj, circ)
    for i in range(r0, r1):
        iy = i + di
        if iy >= H:
            iy -= H
        e0 = np.uint64((i * W + c0) * nb)
        e1 = np.uint64((i * W + c1) * nb)
        for e in range(e0, e1):
            out[e] = 0.0
        for c in range(C):
            xa = XaT[c]
            xb = XbT[c]
            if circ:
                for j in range(c0, c1):
                    jy = j + dj - W if j + dj >= W else j + dj
                    a0 = np.uint64((i * W + j) * nb)
                    a1 = np.uint64((i * W + j + 1) * nb)
                    s = ((iy * W + jy) - (i * W + j)) * nb
                    for e in range(a0, a1):
                        out[e] += xa[e] * xb[np.uint64(np.int64(e) + s)]
            else:
                s = ((iy - i) * W + dj) * nb
                for e in range(e0, e1):
                    out[e] += xa[e] * xb[np.uint64(np.int64(e) + s)]
        for e in range(e0, e1):
            out[e] /= scale


@njit(cache=True)
def _fill_slice(value, H, W, di, dj, circ, outs, so):
    nb = outs.shape[1] // PMAX
    out = outs[so]
    r0, r1 = _rect(H, di, circ)
    c0, c1 = _rect(W, dj, circ)
    for i in range(r0, r1):
        e0 = np.uint64((i * W + c0) * nb)
        e1 = np.uint64((i * W + c1) * nb)
        for e in range(e0, e1):
            out[e] = value


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _patch_slice(As, sa, H, W, Ho, Wo, qh, qw, ph, pw, di, dj, circ, outs, so, tmp):
    """Stride-1 patch sum of the offset-(di, dj) slice A (H x W grid) into out (Ho x Wo grid):
    out[i, j] = sum_{a, b} A[i + a - ph, j + b - pw] over source pixels inside A's rectangle
    (zero padding, and partners outside the image, contribute nothing).  Separable: rows into
    tmp (Ho x W), then columns; per window offset, the range of outputs whose source is
    inside is one contiguous run (unsigned indices: the runs vectorize)."""
    nb = As.shape[1] // PMAX
    A = As[sa]
    out = outs[so]
    ra, rb = _rect(H, di, circ)
    ca, cb = _rect(W, dj, circ)
    oa, ob = _rect(Ho, di, circ)
    oc, od = _rect(Wo, dj, circ)
    for i in range(oa, ob):
        t0 = i * W
        e0 = np.uint64((t0 + ca) * nb)
        e1 = np.uint64((t0 + cb) * nb)
        for e in range(e0, e1):
            tmp[e] = 0.0
        for a in range(qh):
            r = i + a - ph
            if circ:
                r %= H
            elif r < ra or r >= rb:
                continue
            s = (r * W - t0) * nb
            for e in range(e0, e1):
                tmp[e] += A[np.uint64(np.int64(e) + s)]
    for i in range(oa, ob):
        t0 = i * W
        o0 = i * Wo
        e0 = np.uint64((o0 + oc) * nb)
        e1 = np.uint64((o0 + od) * nb)
        for e in range(e0, e1):
            out[e] = 0.0
        for b in range(qw):
            if circ:
                for j in range(oc, od):
                    c = (j + b - pw) % W
                    f0 = np.uint64((o0 + j) * nb)
                    f1 = np.uint64((o0 + j + 1) * nb)
                    s = (t0 + c - o0 - j) * nb
                    for e in range(f0, f1):
                        out[e] += tmp[np.uint64(np.int64(e) + s)]
                continue
            # outputs j whose source column j + b - pw lies in [ca, cb)
            j0 = max(oc, ca - b + pw)
            j1 = min(od, cb - b + pw)
            s = (t0 + b - pw - o0) * nb
            f0 = np.uint64((o0 + j0) * nb)
            f1 = np.uint64((o0 + max(j0, j1)) * nb)
            for e in range(f0, f1):
                out[e] += tmp[np.uint64(np.int64(e) + s)]


@njit(cache=True)
def _store_diag(As, sa, n, outs, so):
    nb = As.shape[1] // PMAX
    A = As[sa]
    out = outs[so]
    for e in range(n * nb):
        out[e] = A[e]


@njit(cache=True, error_model="numpy")
def _store_roots(As, sa, n, sqs, ssq, isqs, sisq):
    # per-pixel sqrt and 1/sqrt of the diagonal: the slice loops' correlation tables (a blank
    # pixel's 1/0 = inf is meant: _clip_scaled maps the 0 * inf = NaN to an uncorrelated pair)
    nb = As.shape[1] // PMAX
    A = As[sa]
    sq = sqs[ssq]
    isq = isqs[sisq]
    for e in range(n * nb):
        sq[e] = math.sqrt(A[e])
        isq[e] = 1.0 / sq[e]


@njit(cache=True, error_model="numpy")
def _slice_sum(As, sa, H, W, di, dj, circ, w, accs, ra, ssum):
    # acc[k] += w * (the sum of pair k's slice), for every pair k of the batch
    nb = As.shape[1] // PMAX
    A = As[sa]
    r0, r1 = _rect(H, di, circ)
    c0, c1 = _rect(W, dj, circ)
    for k in range(nb):
        ssum[k] = 0.0
    for i in range(r0, r1):
        for j in range(c0, c1):
            e0 = (i * W + j) * nb
            for k in range(nb):
                ssum[k] += A[np.uint64(e0 + k)]
    acc = accs[ra]
    for k in range(nb):
        acc[k] += w * ssum[k]
'''


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
        self.rewritten = {k: diag_sqrt_rewrite(step.cross, self.tables)
                          for k, step in enumerate(program.steps[:self.red])
                          if isinstance(step, Elementwise) and step.cross}
        for name in sorted(self.tables):
            for kind in ("sqrt", "isqrt"):
                slots.diag_slot.setdefault(f"{name}_{kind}", len(slots.diag_slot))
        self.steps = StepFunctions(printer, self.circ, program.hyperparameters)
        #: the readout accumulators per pair
        self.nacc = max(len(self.reduced), 1)

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
            w = "w" if store else "1.0"
            L.append(f"_slice_sum({src}, {H}, {W}, di, dj, {self.circ}, {w}, acc[{n}], ssum)")
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
            _PASSES.format(self_h=self_offsets[0], self_w=self_offsets[1],
                           weight=weight, pair_h=offsets[0], pair_w=offsets[1],
                           self_loop=self_loop, pair_loop=pair_loop, hp=hp))


def pair_batch(pmax):
    """BATCH, the pairs one slice walk carries at once: the largest power of two with
    BATCH pmax <= 4096 slice entries, at most 16 (at least 1).  Short rows (8x8 digits: runs
    of 1 to 8 pixels) become runs of 16 to 128 entries that vectorize, and the walk's per-call
    cost is shared by the batch, while the live slices stay in cache (32x32: 4 pairs of 1024
    pixels).  Measured on CNTK-GAP depth 4, CPU s per call (2 AVX2 cores): 8x8x1, 50 digits,
    B = 1, 4, 8, 16, 32: 0.59, 0.16, 0.13, 0.13, 0.15; 16x16x3, 30 images, B = 4, 8, 16:
    0.71, 0.62, 0.58; 32x32x3, 10 images, B = 1, 2, 4, 8: 2.03, 1.51, 1.15, 1.28."""
    b = 1
    while 2 * b <= min(16, 4096 // max(pmax, 1)):
        b *= 2
    return b


_PASSES = '''

@njit(cache=True, error_model="numpy", fastmath={{"contract"}})
def image_pass(Xa, buf, tmp, D, acc, ssum{hp}):
    """K(x, x) of BATCH images at once (before the scalar tail): every offset the readout
    needs (the calls of SELF_OPS), offset 0 first, which stores the per-pixel diagonals in D
    (the other offsets read them).  Xa: the images channel-major, (C, H W BATCH); D, acc:
    (NSLOT, BUFLEN), (NACC, BATCH), pair k at column k."""
    cbuf = np.empty((1, BUFLEN))
    Xb = Xa
    Dx = D
    Dy = D
    acc[:] = 0.0
    for di in range({self_h}):
        for dj in range({self_w}):
            store = di == 0 and dj == 0
            w = {weight}
{self_loop}

@njit(cache=True, error_model="numpy", fastmath={{"contract"}})
def pair_pass(Xa, Xb, buf, tmp, Dx, Dy, acc, ssum{hp}):
    """K(x, x') of BATCH pairs at once (before the scalar tail): every offset slice the
    readout needs (the calls of PAIR_OPS), one at a time.  Layouts as in image_pass."""
    cbuf = np.empty((1, BUFLEN))
    acc[:] = 0.0
    for di in range({pair_h}):
        for dj in range({pair_w}):
{pair_loop}'''

SLICE_DRIVERS = '''

# The drivers are serial and release the GIL: callers run blocks of images or rows in threads
# (ntksym/engine/image.py).  A prange here would outline its body into a gufunc that links and
# re-optimizes every function below it twice more: about 10 s of extra cold JIT per driver.
# Images and pairs go through the passes BATCH at a time, gathered into the (pixel, pair)
# layout of the slices; a short last batch repeats its last member (computed, not stored).

@njit(cache=True)
def _gather_images(X, idx, m, out):
    # out[c, p BATCH + k] = X[idx[k], p, c]
    for k in range(BATCH):
        x = X[idx[min(k, m - 1)]]
        for p in range(x.shape[0]):
            for c in range(x.shape[1]):
                out[c, p * BATCH + k] = x[p, c]


@njit(cache=True)
def _gather_diag(D, idx, m, out):
    # out[s, p BATCH + k] = D[idx[k], s, p], as one flat loop per pair (nested loops of
    # constant trip counts would be unrolled, and Numba links a callee into every caller)
    src = D.reshape((D.shape[0], NSLOT * PMAX))
    dst = out.reshape(NSLOT * BUFLEN)
    for t in range(NSLOT * PMAX):
        for k in range(BATCH):
            dst[t * BATCH + k] = src[idx[min(k, m - 1)], t]


@njit(cache=True)
def _scatter_diag(G, k, D, i):
    # D[i, s, p] = G[s, p BATCH + k]: _gather_diag's inverse for one image
    src = G.reshape(NSLOT * BUFLEN)
    dst = D.reshape((D.shape[0], NSLOT * PMAX))[i]
    for t in range(NSLOT * PMAX):
        dst[t] = src[t * BATCH + k]


@njit(cache=True, nogil=True)
def diagonal(X{hp}):
    """Per-image diagonals D (n, NSLOT, PMAX) and exact K(x, x) outputs O (n, len(OUTPUTS))."""
    n = X.shape[0]
    D = np.zeros((n, NSLOT, PMAX))
    O = np.empty((n, {n_out}))
    buf = np.empty((NBUF, BUFLEN))
    tmp = np.empty(TMPSIZE)
    Xa = np.empty((X.shape[2], X.shape[1] * BATCH))
    G = np.zeros((NSLOT, BUFLEN))
    acc = np.empty((NACC, BATCH))
    ssum = np.empty(BATCH)
    a1 = np.empty(NACC)
    idx = np.empty(BATCH, dtype=np.int64)
    for i0 in range(0, n, BATCH):
        m = min(BATCH, n - i0)
        for k in range(m):
            idx[k] = i0 + k
        _gather_images(X, idx, m, Xa)
        image_pass(Xa, buf, tmp, G, acc, ssum{hp})
        for k in range(m):
            i = idx[k]
            _scatter_diag(G, k, D, i)
            for a in range(NACC):
                a1[a] = acc[a, k]
            v = tail_self(a1, D[i]{hp})
{store_diag}
    return D, O


{pick}

@njit(cache=True, nogil=True)
def cross_pairs(X1, X2, D1, D2, select, out, k0, k1, symmetric{hp}):
    """out[q, i, j] = output select[q] of the pairs k0 <= k < k1 of K(X1, X2), numbered
    row by row (of the upper triangle j > i when symmetric)."""
    if k1 <= k0:
        return
    i, j = _first_pair(k0, X2.shape[0], symmetric)
    buf = np.empty((NBUF, BUFLEN))
    tmp = np.empty(TMPSIZE)
    Xa = np.empty((X1.shape[2], X1.shape[1] * BATCH))
    Xb = np.empty((X2.shape[2], X2.shape[1] * BATCH))
    Dx = np.empty((NSLOT, BUFLEN))
    Dy = np.empty((NSLOT, BUFLEN))
    acc = np.empty((NACC, BATCH))
    ssum = np.empty(BATCH)
    a1 = np.empty(NACC)
    I = np.empty(BATCH, dtype=np.int64)
    J = np.empty(BATCH, dtype=np.int64)
    # one call site of pair_pass: Numba links and optimizes a callee again in every caller
    for b0 in range(k0, k1, BATCH):
        m = min(BATCH, k1 - b0)
        for k in range(m):
            I[k] = i
            J[k] = j
            j += 1
            if j == X2.shape[0]:
                i += 1
                j = i + 1 if symmetric else 0
        _gather_images(X1, I, m, Xa)
        _gather_images(X2, J, m, Xb)
        _gather_diag(D1, I, m, Dx)
        _gather_diag(D2, J, m, Dy)
        pair_pass(Xa, Xb, buf, tmp, Dx, Dy, acc, ssum{hp})
        for k in range(m):
            for a in range(NACC):
                a1[a] = acc[a, k]
            v = tail_pair(a1, D1[I[k]], D2[J[k]]{hp})
            for q in range(select.shape[0]):
                out[q, I[k], J[k]] = _pick(v, select[q])
'''
