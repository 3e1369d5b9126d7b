"""Image KernelProgram -> standalone Numba source that streams image pairs.

Every state entry of an image program is a pixel-pair matrix (P_k x P_k, P_k = H_k W_k of its
node; 1 x 1 after ``flatten`` / ``global_avg_pool``).  The generated module has

* ``image_pass(X_i, buf, tmp, D)``: the recursion on the pair (x, x); it stores, in D, the
  per-pixel diagonals that cross expressions read (``Sigma_k(x, x)[p, p]``), once per image;
* ``pair_pass(X_i, X_j, buf, tmp, Dx, Dy)``: the recursion on (x, x'), every layer in turn,
  reading the diagonals of both images from D;
* ``diagonal(X)`` and ``cross_pairs(X1, X2, D1, D2, select, out, k0, k1, symmetric)``: the
  drivers, serial and ``nogil`` (callers run blocks in threads, as ntksym/engine/image.py
  does; a ``prange`` would cost more cold JIT than the whole rest of the module);
  ``cross_pairs`` computes the pairs k0 <= k < k1, numbered row by row (j >= i+1 when
  ``symmetric``).

With the per-offset-slice schedule (:mod:`ntksym.codegen.slices`) each layer's pixel-pair loop
is a call of a step function shared by the layers with the same loop body, listed in a
constant call table (:mod:`ntksym.codegen.steps`): the compiled code does not grow with depth;
and the passes carry BATCH pairs (or images) at once (:func:`ntksym.codegen.slices.pair_batch`),
so that the short pixel runs of small images vectorize.

Memory: each thread owns ``buf`` (NBUF x PMAX^2 floats) and ``tmp``; the entries of the state
share buffers by liveness (an elementwise step may write in place), so a pair needs a few
P^2 arrays whatever the depth, and nothing of size n^2 P^2 exists.  Patch sums are separable
(rows, then columns).  Elementwise steps print the same sympy expressions as ``ntksym derive``.

>>> import ntksym
>>> arch = ntksym.loads_spec('name = "c"\\ninput = { shape = [3, 3, 1] }\\n'
...     '[[layer]]\\nkind = "conv"\\nactivation = "relu"\\n'
...     '[[layer]]\\nkind = "global_avg_pool"\\n[[layer]]\\nkind = "dense"\\n')
>>> "def pair_pass" in generate_image_source(arch.derive())
True
"""

from __future__ import annotations

import sympy as sp

from ntksym.codegen.common import (
    NJIT,
    clip1_source,
    corr_source,
    cse_block,
    emitter_of,
    function,
    hyper_arg,
    hyper_constants,
    hyper_lines,
    module_header,
    pick_source,
    quadrature_source,
)
from ntksym.codegen.fastmath import acos_source
from ntksym.codegen.liveness import Slots
from ntksym.codegen.printer import NumbaPrinter, identifier
from ntksym.codegen.slice_walk import diag_symbols, slice_plan
from ntksym.codegen.slices import SLICE_DRIVERS, SLICE_TEMPLATES, CpuSlices, pair_batch
from ntksym.ir.program import KernelProgram, Structural

CODEGEN_IMAGE_VERSION = "4"

_HELPERS = '''

@njit(cache=True, inline="always")
def _clip_scaled(c, ia, ib):
    # c (1/sqrt a) (1/sqrt b) clipped to [-1, 1]; a zero variance gives 0 * inf = NaN (its
    # covariance is 0 too): the pair is uncorrelated
    r = c * ia * ib
    if r != r:
        return 0.0
    return 1.0 if r > 1.0 else (-1.0 if r < -1.0 else r)


@njit(cache=True)
def _src(i, a, s, pad, n, circ):
    # input index of output index i at window offset a; -1 for zero padding
    r = s * i + a - pad
    if circ:
        return r % n
    return r if 0 <= r < n else -1


@njit(cache=True)
def _window_pairs(A, H, W, Ho, Wo, qh, qw, sh, sw, ph, pw, circ, same_offset, scale, out, tmp):
    """out[(i,j),(i2,j2)] = scale * sum A[(r,c),(r2,c2)] over window offsets: the patch sum
    (same_offset: one offset moves both pixels) or average pooling (independent offsets).
    Separable: rows into tmp (Ho, W, Ho, W), then columns into out (Ho, Wo, Ho, Wo)."""
    A4 = A[:H * W * H * W].reshape((H, W, H, W))
    T = tmp[:Ho * W * Ho * W].reshape((Ho, W, Ho, W))
    O = out[:Ho * Wo * Ho * Wo].reshape((Ho, Wo, Ho, Wo))
    T[:] = 0.0
    for i in range(Ho):
        for i2 in range(Ho):
            for a in range(qh):
                r = _src(i, a, sh, ph, H, circ)
                if r < 0:
                    continue
                for a2 in range(qh):
                    if same_offset and a2 != a:
                        continue
                    r2 = _src(i2, a2, sh, ph, H, circ)
                    if r2 < 0:
                        continue
                    for j in range(W):
                        for j2 in range(W):
                            T[i, j, i2, j2] += A4[r, j, r2, j2]
    for i in range(Ho):
        for j in range(Wo):
            for i2 in range(Ho):
                for j2 in range(Wo):
                    acc = 0.0
                    for b in range(qw):
                        c = _src(j, b, sw, pw, W, circ)
                        if c < 0:
                            continue
                        for b2 in range(qw):
                            if same_offset and b2 != b:
                                continue
                            c2 = _src(j2, b2, sw, pw, W, circ)
                            if c2 >= 0:
                                acc += T[i, c, i2, c2]
                    O[i, j, i2, j2] = scale * acc


@njit(cache=True)
def _first_pair(k, n2, symmetric):
    # (i, j) of pair k, numbered row by row over j in [0, n2) (j > i when symmetric)
    i = 0
    row = n2 - 1 if symmetric else n2
    while k >= row > 0:
        k -= row
        i += 1
        row = n2 - i - 1 if symmetric else n2
    return i, (i + 1 if symmetric else 0) + k


@njit(cache=True)
def _global_avg(A, P, out):
    acc = 0.0
    for k in range(P * P):
        acc += A[k]
    out[0] = acc / (P * P)


@njit(cache=True)
def _flatten(A, P, out):
    acc = 0.0
    for p in range(P):
        acc += A[p * P + p]
    out[0] = acc / P


@njit(cache=True)
def _gram(X1, X2, scale, out):
    # Sigma_0[p, p'] = <x_p, x'_p'> / C
    P, C = X1.shape
    for p in range(P):
        for q in range(P):
            acc = 0.0
            for c in range(C):
                acc += X1[p, c] * X2[q, c]
            out[p * P + q] = acc / scale
'''

_DRIVERS = '''

# The drivers are serial and release the GIL: callers run blocks of images or rows in threads
# (ntksym/engine/image.py).  A prange here would outline its body into a gufunc that links and
# re-optimizes every function below it twice more: about 10 s of extra cold JIT per driver.

@njit(cache=True, nogil=True)
def diagonal(X{hp}):
    """Per-image diagonals D (n, NSLOT, PMAX) and exact K(x, x) outputs O (n, len(OUTPUTS))."""
    n = X.shape[0]
    D = np.zeros((n, NSLOT, PMAX))
    O = np.empty((n, {n_out}))
    for i in range(n):
        buf = np.empty((NBUF, BUFLEN))
        tmp = np.empty(TMPSIZE)
        v = image_pass(X[i], buf, tmp, D[i]{hp})
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
    for k in range(k0, k1):
        v = pair_pass(X1[i], X2[j], buf, tmp, D1[i], D2[j]{hp})
        for q in range(select.shape[0]):
            out[q, i, j] = _pick(v, select[q])
        j += 1
        if j == X2.shape[0]:
            i += 1
            j = i + 1 if symmetric else 0
'''


class ImagePrinter(NumbaPrinter):
    """The Numba printer with acos as the branch-free polynomial ``_acos``
    (:mod:`ntksym.codegen.fastmath`), so that per-pixel-pair loops vectorize, and the slice
    schedule's table-scaled correlation (:class:`ntksym.codegen.slices.ClipScaled`)."""

    def _print_acos(self, expr):
        return "_acos(%s)" % self._print(expr.args[0])

    def _print_ClipScaled(self, expr):
        return "_clip_scaled(%s)" % ", ".join(self._print(x) for x in expr.args)


def _pixels(program, name):
    h, w = program.shapes[name]
    return h * w


class FullSchedule:
    """The CPU's full (H W)^2 schedule: ``lines(store)`` is the body of image_pass (``store``:
    the pair (x, x), keeping its per-pixel diagonals in D) or of pair_pass.  A structural op
    is written by ``_emit_<OpClass>`` (along the op's MRO)."""

    def __init__(self, program, slots, printer):
        self.p, self.slots, self.printer = program, slots, printer

    def store_diag(self, name, store):
        sl = self.slots
        if not store or name not in sl.diag_slot:
            return []
        P = _pixels(self.p, name)
        return [f"for p in range({P}):",
                f"    D[{sl.diag_slot[name]}, p] = buf[{sl.slot[name]}, p * {P} + p]"]

    @staticmethod
    def _window_pairs(op, src, dst, same, scale):
        """``_window_pairs``: out[p, p'] = scale * sum over window offsets of In; ``same``:
        one offset moves both pixels (a patch sum), else every pair (a, a') of offsets."""
        (H, W), (Ho, Wo) = op.in_hw, op.out_hw
        (qh, qw), (sh, sw), (ph, pw) = op.filter, op.stride, op.pads
        return [f"_window_pairs({src}, {H}, {W}, {Ho}, {Wo}, {qh}, {qw}, {sh}, "
                f"{sw}, {ph}, {pw}, {op.circular}, {same}, {scale!r}, {dst}, tmp)"]

    def _emit_PatchSum(self, op, src, dst):
        return self._window_pairs(op, src, dst, same=True, scale=1.0)

    def _emit_AvgPool(self, op, src, dst):
        qh, qw = op.filter
        return self._window_pairs(op, src, dst, same=False, scale=1.0 / (qh * qw) ** 2)

    def _emit_SumPool(self, op, src, dst):
        return self._window_pairs(op, src, dst, same=False, scale=1.0)

    def _emit_GlobalAvg(self, op, src, dst):
        return [f"_global_avg({src}, {op.in_hw[0] * op.in_hw[1]}, {dst})"]

    def _emit_Flatten(self, op, src, dst):
        return [f"_flatten({src}, {op.in_hw[0] * op.in_hw[1]}, {dst})"]

    def _structural(self, step, store):
        L = []
        op = step.op
        Pin = op.in_hw[0] * op.in_hw[1]
        for a, b in zip(step.inputs, step.outputs):
            if b.name.endswith("_xx"):
                continue
            if isinstance(a, sp.Symbol):
                src = f"buf[{self.slots.slot[a.name]}]"
            else:                                     # a constant entry: materialize it
                src = "tmp2"
                L.append(f"tmp2 = np.full({Pin * Pin}, {float(a)!r})")
            L += emitter_of(self, op)(op, src, f"buf[{self.slots.slot[b.name]}]")
            L += self.store_diag(b.name, store)
        return L

    def _elementwise(self, k, step, store):
        sl, P = self.slots, _pixels(self.p, step.cross[0].target.name)
        dsyms = diag_symbols(step)
        L = [f"for p in range({P}):"]
        L += [f"    {identifier(d)} = Dx[{sl.diag_slot[d[:-3]]}, p]"
              for d in dsyms if d.endswith("_xx")]
        L.append(f"    for q in range({P}):")
        L += [f"        {identifier(d)} = Dy[{sl.diag_slot[d[:-3]]}, q]"
              for d in dsyms if d.endswith("_yy")]
        L += [f"        {identifier(r)} = buf[{sl.slot[r]}, p * {P} + q]" for r in sl.reads(step)]
        L += ["        " + line for line in cse_block(step.cross, self.printer, f"c{k}_")]
        L += [f"        buf[{sl.slot[a.target.name]}, p * {P} + q] = {identifier(a.target.name)}"
              for a in step.cross]
        for a in step.cross:
            L += self.store_diag(a.target.name, store)
        return L

    def lines(self, store):
        p, sl = self.p, self.slots
        s0 = p.input_cross.name
        L = (["Dx = D", "Dy = D"] if store else []) + hyper_lines(p)
        L.append(f"_gram(Xa, Xb, {float(p.input_scale)!r}, buf[{sl.slot[s0]}])")
        L += self.store_diag(s0, store)
        for k, step in enumerate(p.steps):
            L.append(f"# {step.node}: {step.description}")
            if isinstance(step, Structural):
                L += self._structural(step, store)
            elif step.cross:
                L += self._elementwise(k, step, store)
        outs = []
        for e in p.outputs.values():
            for s in sorted(e.free_symbols, key=lambda s: s.name):
                L.append(f"{identifier(s.name)} = buf[{sl.slot[s.name]}, 0]")
            outs.append(self.printer.doprint(e + sp.Float(0.0)) if e.is_Number
                        else self.printer.doprint(e))
        L.append(f"return ({', '.join(outs)},)")
        return L


def generate_image_source(program: KernelProgram) -> str:
    """The standalone Numba module of an image KernelProgram, as Python source text."""
    if program.input_kind != "image":
        raise ValueError("generate_image_source needs an image program")
    printer = ImagePrinter()
    slots = Slots(program)
    out_names = tuple(program.outputs)
    pmax = max(h * w for h, w in program.shapes.values())
    plan = slice_plan(program)
    n_out = len(out_names)
    store = "\n".join(f"        O[i, {k}] = v[{k}]" for k in range(n_out))
    hp = hyper_arg(program)
    pick = pick_source(n_out, NJIT, "math.nan")
    if plan is not None:
        batch = pair_batch(pmax)
        schedule, buflen = "offset-slices", pmax * batch
        gen = CpuSlices(program, slots, printer, plan)
        fns = gen.source()
        templates = SLICE_TEMPLATES
        extra = [f"NACC, BATCH = {gen.nacc}, {batch}"]
        drivers = SLICE_DRIVERS.format(n_out=n_out, pick=pick, hp=hp,
                                       store_diag="\n".join("    " + l for l in store.split("\n")))
    else:
        schedule, buflen = "full", pmax * pmax
        full = FullSchedule(program, slots, printer)
        fns = (function(f"\n\n@njit(cache=True)\ndef image_pass(Xa, buf, tmp, D{hp}):\n"
                        "    Xb = Xa\n", full.lines(store=True)) +
               function(f"\n\n@njit(cache=True)\ndef pair_pass(Xa, Xb, buf, tmp, Dx, Dy{hp}):\n",
                        full.lines(store=False)))
        templates = ""
        extra = ["NACC, BATCH = 1, 1"]
        drivers = _DRIVERS.format(n_out=n_out, pick=pick, store_diag=store, hp=hp)
    header = module_header(
        program, version=CODEGEN_IMAGE_VERSION, imports="from numba import njit",
        notes="Do not edit: regenerate with `ntksym codegen SPEC -o FILE`.  Needs only numpy "
              "and numba.\nInputs are channels-last images reshaped to (n, H*W, C); "
              f"Sigma_0[p, p'] = <x_p, x'_p'> / {program.input_scale}.\n"
              f"Outputs: {', '.join(out_names)}.",
        constants=[f"INPUT_SCALE = {program.input_scale}", f"OUTPUTS = {out_names!r}",
                   f"SCHEDULE = {schedule!r}",
                   f"NBUF, PMAX, BUFLEN, TMPSIZE, NSLOT = {slots.nbuf}, {pmax}, {buflen}, "
                   f"{buflen}, {max(len(slots.diag_slot), 1)}"] + extra
        + hyper_constants(program))
    header += corr_source() + clip1_source('njit(cache=True, inline="always")') + _HELPERS
    return (header + acos_source() + templates + quadrature_source(printer) + fns +
            drivers).rstrip() + "\n"


def compile_image_program(program: KernelProgram):
    """Generate, cache on disk (keyed by the source hash) and import the module."""
    from ntksym.codegen.cache import load_module
    return load_module(generate_image_source(program), program.name.replace("-", "_"))
