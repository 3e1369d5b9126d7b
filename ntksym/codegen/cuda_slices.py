"""Image KernelProgram -> ``numba.cuda`` source on the per-offset-slice schedule.

The schedule is the CPU's (:mod:`ntksym.codegen.slices`, whose :func:`slice_plan` decides
whether a program fits it): for a fixed pixel offset d = p' - p the entries
``S_d[p] = Sigma_k[p, p + d]`` of every state entry pass through each stride-1 patch sum and
each elementwise step on their own, reading only the per-image diagonals ``D_x[p]`` and
``D_y[p + d]``.  On the GPU one thread block owns one image pair and carries each offset's
slices through all layers in shared memory (a slot of PMAX = max H W floats per live state
entry), the block's threads splitting the pixels of the slice:

* ``offset_pass(S, Xa, Xb, Dx, Dy, di, dj, acc, comp, w)``: a device function run by the whole
  block: the input products of offset (di, dj), every layer up to the readout, then each thread
  adds w times its pixels' share of the readout to its own accumulators (compensated sums);
* ``offset_store``: the same at offset 0 of the pair (x, x), storing the per-pixel diagonals
  ``D[slot, p] = Sigma_k(x, x)[p, p]`` that cross expressions read;
* ``tail_pair`` / ``tail_self``: the per-pair scalar steps after the readout (thread 0);
* ``diagonal_kernel(X, D, O, scratch)``: one block per image: offset_store, then every other
  offset of (x, x) (for a zero-padded ``global_avg`` only half of them, twice: K(x, x) is
  symmetric), then the scalar diagonals ``D[slot, 0]`` and the exact outputs ``O[i]``;
* ``pair_kernel(X1, X2, D1, D2, I, J, select, out, scratch)``: block b takes the pairs
  t = b, b + gridDim, ... of the lists I, J (the driver passes only j > i for K(X, X)), runs
  every offset the readout needs (all 2-D offsets for ``global_avg``, offset 0 for
  ``flatten``), sums the threads' accumulators and writes ``out[q, t]``.

Only the pixels whose partner exists are computed (zero padding: the rectangle of p with p + d
inside the grid, as ``_rect`` on the CPU; circular padding: every pixel, partners wrap).  The
threads of a block synchronise around each patch sum (it reads neighbouring pixels) and after
each offset; consecutive elementwise steps touch only their own pixels and need no barrier.
When NBUF x PMAX slots do not fit in ``shared_bytes`` of shared memory (large images in
fp64, per-layer outputs), each block uses its own region of a global ``scratch`` array instead
(``SHARED = False``); the code is otherwise the same.

Expressions are the program's cross expressions, CSE'd and printed by the MLP backend's
:class:`~ntksym.codegen.cuda.CudaPrinter` (in fp32 every literal is a float32), with
ClippedCorrelation lowered to ``_clip1(c, sqrt(a b))`` so that one square root serves the
correlation and the prefactor.  On the pixel diagonal of a self pair c = a = b exactly, so the
correlation is exactly 1 there, as on the CPU.

Refused (DeviceError): programs without a slice plan (strides, average pooling) and
quadrature activations.

>>> import ntksym
>>> arch = ntksym.loads_spec('name = "c"\\ninput = { shape = [3, 3, 1] }\\n'
...     '[[layer]]\\nkind = "conv"\\nactivation = "relu"\\n'
...     '[[layer]]\\nkind = "global_avg_pool"\\n[[layer]]\\nkind = "dense"\\n')
>>> src = generate_cuda_image_source(arch.derive(), "float32")
>>> "def pair_kernel" in src and "SHARED = True" in src
True
"""

from __future__ import annotations

import sympy as sp

from ntksym.codegen.vector import _cse_block
from ntksym.codegen.cuda import DTYPES, CudaPrinter, refuse_quadrature
from ntksym.codegen.slices import slice_plan
from ntksym.errors import DeviceError
from ntksym.ir.ops import Flatten, GlobalAvg
from ntksym.ir.program import Elementwise, KernelProgram, Structural
from ntksym.codegen.printer import identifier

CODEGEN_CUDA_IMAGE_VERSION = "1"
#: static shared memory a block may use (the CUDA limit without opt-in)
SHARED_BYTES = 48 * 1024
#: most threads per block; a block gets the pixel count rounded up to a warp, up to this
MAX_THREADS = 256


def _is_diag(name):
    return name.endswith(("_xx", "_yy"))


def check_gpu_image_program(program: KernelProgram):
    """The slice plan of ``program``; DeviceError when the GPU backend cannot run it."""
    plan = slice_plan(program)
    if plan is None:
        raise DeviceError(
            f"'{program.name}' has layers that mix pixel offsets (strided convolutions, "
            "average pooling, or pixel layers after the readout); the GPU backend runs "
            "convolutional specs of stride-1 convolutions and elementwise layers with a "
            "global_avg_pool or flatten readout only: use --device cpu (device='cpu')")
    refuse_quadrature(program)
    return plan


class _Slots:
    """Shared-memory slots of the pixel-level state entries (by liveness) and the diagonal
    slots of D that cross expressions read (``*_xx`` / ``*_yy``).

    Elementwise steps may write in place (each thread loads its pixel's inputs before it
    stores); a patch sum reads neighbouring pixels, so its outputs take fresh slots and its
    dying inputs are freed after it.
    """

    def __init__(self, program, red):
        steps = program.steps[:red + 1]
        self.diag_slot = {}
        for step in program.steps:
            if isinstance(step, Elementwise):
                for a in step.cross:
                    for s in sorted(a.expr.free_symbols, key=lambda s: s.name):
                        if _is_diag(s.name):
                            self.diag_slot.setdefault(s.name[:-3], len(self.diag_slot))
        last = {}
        for k, step in enumerate(steps):
            for s in self.reads(step):
                last[s] = k
        self.slot, free, self.nbuf = {}, [], 0

        def take():
            if free:
                return free.pop()
            self.nbuf += 1
            return self.nbuf - 1

        self.slot[program.input_cross.name] = take()
        for k, step in enumerate(steps[:-1]):
            dying = [s for s in self.reads(step) if last.get(s) == k]
            if isinstance(step, Elementwise):
                free.extend(self.slot[s] for s in dying)
                targets = [a.target.name for a in step.cross]
            else:
                targets = [s.name for s in step.outputs if not _is_diag(s.name)]
            for t in targets:
                self.slot[t] = take()
            if not isinstance(step, Elementwise):
                free.extend(self.slot[s] for s in dying)
            # a value nothing reads (still computed for its diagonal) frees its slot at once
            free.extend(self.slot[t] for t in targets if t not in last)
        self.nbuf = max(self.nbuf, 1)

    @staticmethod
    def reads(step):
        if isinstance(step, Elementwise):
            return sorted({s.name for a in step.cross for s in a.expr.free_symbols
                           if not _is_diag(s.name)})
        return [s.name for s in step.inputs if isinstance(s, sp.Symbol) and not _is_diag(s.name)]


def _pixel_loop(H, W, circ):
    """Lines opening a loop of the block's threads over the pixels p = i W + j of an H x W
    grid whose partner q = p + d exists (the rectangle of offset (di, dj); all of them, with
    wrapped partners, when circular).  The body is indented by 4."""
    if circ:
        return [f"for p in range(tid, {H * W}, nt):",
                f"    i = p // {W}",
                f"    j = p - i * {W}",
                "    iy = i + di",
                f"    if iy >= {H}:",
                f"        iy -= {H}",
                "    jy = j + dj",
                f"    if jy >= {W}:",
                f"        jy -= {W}",
                f"    q = iy * {W} + jy"]
    return [f"r0 = max(0, -di)",
            f"rh = max(0, min({H}, {H} - di) - r0)",
            f"c0 = max(0, -dj)",
            f"rw = max(0, min({W}, {W} - dj) - c0)",
            "for k in range(tid, rh * rw, nt):",
            "    kr = k // rw",
            "    i = r0 + kr",
            "    j = c0 + k - kr * rw",
            f"    p = i * {W} + j",
            f"    q = p + di * {W} + dj"]


class _Generator:
    def __init__(self, program, dtype, plan):
        self.p = program
        self.plan = plan
        self.red = plan["reduce_step"]
        self.circ = plan["circular"]
        self.pr = CudaPrinter(dtype=dtype)
        self.lit = self.pr.literal
        self.slots = _Slots(program, self.red)
        rstep = program.steps[self.red]
        self.reduced = [(a, b) for a, b in zip(rstep.inputs, rstep.outputs)
                        if not _is_diag(b.name)]
        for step in program.steps[self.red + 1:]:
            for s in _Slots.reads(step):
                if s in self.slots.slot:
                    raise DeviceError(f"'{program.name}': a step after the readout reads the "
                                      f"pixel-level entry {s}; use --device cpu")

    def _src(self, a):
        """Shared-memory read of a structural input, or its literal for a constant entry."""
        if isinstance(a, sp.Symbol):
            return f"S[{self.slots.slot[a.name]}, s]"
        return self.lit(a)

    def pass_lines(self, store):
        """Body of offset_store (``store``: offset 0 of (x, x), stores D) or offset_pass."""
        p, sl, lit = self.p, self.slots, self.lit
        L = ["tid = cuda.threadIdx.x", "nt = cuda.blockDim.x"]
        if store:
            L += ["Xb = Xa", "Dx = D", "Dy = D", "di = 0", "dj = 0"]

        def keep(name, value):
            """The store of a per-pixel diagonal, in the pixel loop (offset_store only)."""
            if store and name in sl.diag_slot:
                return [f"    Dx[{sl.diag_slot[name]}, p] = {value}"]
            return []

        s0 = p.input_cross.name
        H0, W0 = p.shapes[s0]
        L.append("# the input products <x_p, x'_p+d> / scale")
        L += _pixel_loop(H0, W0, self.circ)
        L += [f"    g = {lit(0)}",
              "    for c in range(Xa.shape[1]):",
              "        g += Xa[p, c] * Xb[q, c]",
              f"    g = g / {lit(p.input_scale)}",
              f"    S[{sl.slot[s0]}, p] = g"]
        L += keep(s0, "g")
        for k, step in enumerate(p.steps[:self.red]):
            L.append(f"# {step.node}: {step.description}")
            if isinstance(step, Structural):
                L += self._patch_lines(step, keep)
                continue
            if not step.cross:
                continue
            H, W = p.shapes[step.cross[0].target.name]
            dsyms = sorted({s.name for a in step.cross for s in a.expr.free_symbols
                            if _is_diag(s.name)})
            L += _pixel_loop(H, W, self.circ)
            for d in dsyms:
                side, idx = ("Dx", "p") if d.endswith("_xx") else ("Dy", "q")
                L.append(f"    {identifier(d)} = {side}[{sl.diag_slot[d[:-3]]}, {idx}]")
            for r in sl.reads(step):
                L.append(f"    {identifier(r)} = S[{sl.slot[r]}, p]")
            L += ["    " + line for line in _cse_block(step.cross, self.pr, f"c{k}_", lower=True)]
            for a in step.cross:
                L.append(f"    S[{sl.slot[a.target.name]}, p] = {identifier(a.target.name)}")
                L += keep(a.target.name, identifier(a.target.name))
        L += self._readout_lines()
        return L

    def _patch_lines(self, step, keep):
        (H, W), (Ho, Wo) = step.op.in_hw, step.op.out_hw
        (qh, qw), (ph, pw) = step.op.filter, step.op.pads
        pairs = [(a, b) for a, b in zip(step.inputs, step.outputs) if not _is_diag(b.name)]
        L = ["cuda.syncthreads()          # the inputs are complete"]
        if not self.circ:
            L += [f"ra = max(0, -di)", f"rb = min({H}, {H} - di)",
                  f"ca = max(0, -dj)", f"cb = min({W}, {W} - dj)"]
        L += _pixel_loop(Ho, Wo, self.circ)
        L += [f"    a{n} = {self.lit(0)}" for n in range(len(pairs))]
        L += [f"    for u in range({qh}):", f"        r = i + u - {ph}"]
        L += ([f"        r = r % {H}"] if self.circ else
              ["        if r < ra or r >= rb:", "            continue"])
        L += [f"        for v in range({qw}):", f"            cc = j + v - {pw}"]
        L += ([f"            cc = cc % {W}"] if self.circ else
              ["            if cc < ca or cc >= cb:", "                continue"])
        L.append(f"            s = r * {W} + cc")
        L += [f"            a{n} += {self._src(a)}" for n, (a, _) in enumerate(pairs)]
        for n, (_, b) in enumerate(pairs):
            L.append(f"    S[{self.slots.slot[b.name]}, p] = a{n}")
            L += keep(b.name, f"a{n}")
        L.append("cuda.syncthreads()          # before any slot it read is reused")
        return L

    def _readout_lines(self):
        Hf, Wf = self.plan["final_hw"]
        rstep = self.p.steps[self.red]
        L = [f"# {rstep.node}: {rstep.description} (this offset's share)"]
        L += [f"part{n} = {self.lit(0)}" for n in range(len(self.reduced))]
        L += _pixel_loop(Hf, Wf, self.circ)
        L += ["    s = p"] + [f"    part{n} += {self._src(a)}"
                              for n, (a, _) in enumerate(self.reduced)]
        for n in range(len(self.reduced)):
            # compensated (Kahan) sum over the offsets: thousands of terms per thread in fp32
            L += [f"y = part{n} * w - comp[{n}]", f"t = acc[{n}] + y",
                  f"comp[{n}] = (t - acc[{n}]) - y", f"acc[{n}] = t"]
        L.append("cuda.syncthreads()          # the next offset overwrites the slots")
        return L

    def tail_lines(self, store):
        """The per-pair scalar steps after the readout, for thread 0; ``store`` keeps the
        diagonals of (x, x) in D[slot, 0]."""
        p, sl = self.p, self.slots
        Hf, Wf = self.plan["final_hw"]
        Pf = Hf * Wf
        norm = (sp.Rational(1, Pf * Pf) if isinstance(self.plan["op"], GlobalAvg)
                else sp.Rational(1, Pf))
        L = ["Dx = D", "Dy = D"] if store else []

        def keep(name):
            if store and name in sl.diag_slot:
                L.append(f"Dx[{sl.diag_slot[name]}, 0] = {identifier(name)}")

        for n, (_, b) in enumerate(self.reduced):
            L.append(f"{identifier(b.name)} = tot[{n}] * {self.lit(norm)}")
            keep(b.name)
        for k, step in enumerate(p.steps[self.red + 1:], start=self.red + 1):
            L.append(f"# {step.node}: {step.description}")
            if not step.cross:
                continue
            for d in sorted({s.name for a in step.cross for s in a.expr.free_symbols
                             if _is_diag(s.name)}):
                side = "Dx" if d.endswith("_xx") else "Dy"
                L.append(f"{identifier(d)} = {side}[{sl.diag_slot[d[:-3]]}, 0]")
            L += _cse_block(step.cross, self.pr, f"c{k}_", lower=True)
            for a in step.cross:
                keep(a.target.name)
        outs = [self.pr.doprint(e + sp.Float(0.0)) if e.is_Number else self.pr.doprint(e)
                for e in p.outputs.values()]
        L.append(f"return ({', '.join(outs)},)")
        return L

    def offset_loops(self, self_pair):
        """Kernel lines running every offset the readout needs (indented for the kernel)."""
        Hf, Wf = self.plan["final_hw"]
        one, two = self.lit(1), self.lit(2)
        if self_pair:
            call = "offset_pass(S, Xa, Xa, Dt, Dt, di, dj, acc, comp, {w})"
            L = ["offset_store(S, Xa, Dt, acc, comp)"]
            if isinstance(self.plan["op"], Flatten):
                return L
            if self.circ:
                return L + [f"for di in range({Hf}):", f"    for dj in range({Wf}):",
                            "        if di != 0 or dj != 0:",
                            "            " + call.format(w=one)]
            # K(x, x) is symmetric at every layer: the slice of -d mirrors that of d
            return L + [f"for di in range({Hf}):",
                        f"    for dj in range({-(Wf - 1)} if di > 0 else 1, {Wf}):",
                        "        " + call.format(w=two)]
        call = f"offset_pass(S, Xa, Xb, Dx, Dy, di, dj, acc, comp, {one})"
        if isinstance(self.plan["op"], Flatten):
            return [f"di = 0", "dj = 0", call]
        lo_h, lo_w = (0, 0) if self.circ else (-(Hf - 1), -(Wf - 1))
        return [f"for di in range({lo_h}, {Hf}):", f"    for dj in range({lo_w}, {Wf}):",
                "        " + call]


_HEADER = '''"""Generated by ntksym codegen_cuda_image from spec '{name}' (sha256 {hash}), {dtype}.

Do not edit.  Needs numpy and numba (numba.cuda: a GPU, or NUMBA_ENABLE_CUDASIM=1).
Inputs are channels-last images reshaped to (n, H*W, C); Sigma_0[p, p'] = <x_p, x'_p'> / {scale}.
Schedule: per-offset slices ({op} readout, {padding} padding).  Outputs: {outputs}.
"""

import math

import numpy as np
from numba import cuda, {dtype} as NT

SPEC_NAME = {name!r}
SPEC_HASH = {hash!r}
CODEGEN_VERSION = {version!r}
INPUT_KIND = "image"
SCHEDULE = "offset-slices"
INPUT_SCALE = {scale}
OUTPUTS = {output_names!r}
DTYPE = {dtype!r}
# slots per block, floats per slot, diagonal slots, readout accumulators, threads per block
NBUF, PMAX, NSLOT, NACC, THREADS = {nbuf}, {pmax}, {nslot}, {nacc}, {threads}
SHARED = {shared}   # slots in shared memory (else each block's region of a global scratch)


@cuda.jit(device=True)
def _corr(c, a, b):
    # clip(c / sqrt(a b), -1, 1); a zero variance makes the pair uncorrelated
    d = math.sqrt(a * b)
    if d <= {zero}:
        return {zero}
    r = c / d
    return {one} if r > {one} else (-{one} if r < -{one} else r)


@cuda.jit(device=True)
def _clip1(c, d):
    # c / d clipped to [-1, 1], d = sqrt(a b); a zero variance makes the pair uncorrelated
    if d <= {zero}:
        return {zero}
    r = c / d
    return {one} if r > {one} else (-{one} if r < -{one} else r)


@cuda.jit(device=True)
def _block_sum(acc, comp, red, tot):
    # tot[k] = the block's sum of its threads' acc[k] - comp[k], in thread order (deterministic)
    tid = cuda.threadIdx.x
    for k in range(NACC):
        red[tid] = acc[k] - comp[k]
        cuda.syncthreads()
        if tid == 0:
            s = {zero}
            for u in range(cuda.blockDim.x):
                s += red[u]
            tot[k] = s
        cuda.syncthreads()
'''

_KERNELS = '''

@cuda.jit
def diagonal_kernel(X, D, O, scratch):
    """Block b: images b, b + gridDim, ...: per-pixel diagonals D[i] and exact outputs O[i]."""
    S = {slots}
    red = cuda.shared.array(THREADS, NT)
    acc = cuda.local.array(NACC, NT)
    comp = cuda.local.array(NACC, NT)
    tot = cuda.local.array(NACC, NT)
    for t in range(cuda.blockIdx.x, X.shape[0], cuda.gridDim.x):
        Xa = X[t]
        Dt = D[t]
        for k in range(NACC):
            acc[k] = {zero}
            comp[k] = {zero}
{self_offsets}
        _block_sum(acc, comp, red, tot)
        if cuda.threadIdx.x == 0:
            v = tail_self(tot, Dt)
{store_outputs}


@cuda.jit
def pair_kernel(X1, X2, D1, D2, I, J, select, out, scratch):
    """Block b: pairs t = b, b + gridDim, ...: out[q, t] = output select[q] of (I[t], J[t])."""
    S = {slots}
    red = cuda.shared.array(THREADS, NT)
    acc = cuda.local.array(NACC, NT)
    comp = cuda.local.array(NACC, NT)
    tot = cuda.local.array(NACC, NT)
    for t in range(cuda.blockIdx.x, I.shape[0], cuda.gridDim.x):
        Xa = X1[I[t]]
        Xb = X2[J[t]]
        Dx = D1[I[t]]
        Dy = D2[J[t]]
        for k in range(NACC):
            acc[k] = {zero}
            comp[k] = {zero}
{pair_offsets}
        _block_sum(acc, comp, red, tot)
        if cuda.threadIdx.x == 0:
            v = tail_pair(tot, Dx, Dy)
            for q in range(select.shape[0]):
                out[q, t] = _pick(v, select[q])
'''


def generate_cuda_image_source(program: KernelProgram, dtype="float64",
                               shared_bytes=SHARED_BYTES) -> str:
    """The standalone ``numba.cuda`` module of an image KernelProgram, as Python source text.

    ``dtype``: "float64" or "float32" (all device arithmetic in that precision).
    ``shared_bytes``: the shared memory a block may use; slots that do not fit go to a global
    scratch array.  Raises DeviceError for programs the GPU backend cannot run.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, not {dtype!r}")
    if program.input_kind != "image":
        raise ValueError("generate_cuda_image_source needs an image program")
    plan = check_gpu_image_program(program)
    gen = _Generator(program, dtype, plan)
    lit = gen.lit
    pmax = max(h * w for h, w in program.shapes.values())
    threads = min(MAX_THREADS, -(-pmax // 32) * 32)
    itemsize = 8 if dtype == "float64" else 4
    shared = (gen.slots.nbuf * pmax + threads) * itemsize <= shared_bytes
    nacc = max(len(gen.reduced), 1)
    out_names = tuple(program.outputs)

    def fn(header, lines):
        return header + "".join(f"    {l}\n" for l in lines)

    def indent(lines, n):
        return "\n".join(" " * n + l for l in lines)

    pick = ("\n\n@cuda.jit(device=True)\ndef _pick(v, s):\n" +
            "\n".join(f"    {'if' if k == 0 else 'elif'} s == {k}:\n        return v[{k}]"
                      for k in range(len(out_names))) + f"\n    return v[0] * {lit(0)}\n")
    fns = (
        fn("\n\n@cuda.jit(device=True)\ndef offset_store(S, Xa, D, acc, comp):\n"
           '    """Offset 0 of the pair (x, x), storing the per-pixel diagonals in D."""\n'
           f"    w = {lit(1)}\n", gen.pass_lines(store=True)) +
        fn("\n\n@cuda.jit(device=True)\n"
           "def offset_pass(S, Xa, Xb, Dx, Dy, di, dj, acc, comp, w):\n"
           '    """The slices of offset (di, dj) through every layer; w times this thread\'s '
           'share of the readout into acc."""\n', gen.pass_lines(store=False)) +
        fn("\n\n@cuda.jit(device=True)\ndef tail_self(tot, D):\n", gen.tail_lines(store=True)) +
        fn("\n\n@cuda.jit(device=True)\ndef tail_pair(tot, Dx, Dy):\n",
           gen.tail_lines(store=False)) + pick)
    header = _HEADER.format(
        name=program.name, hash=program.spec_hash, dtype=dtype, scale=program.input_scale,
        op=plan["op"].label, padding="circular" if plan["circular"] else "zero",
        outputs=", ".join(out_names), output_names=out_names,
        version=CODEGEN_CUDA_IMAGE_VERSION, nbuf=gen.slots.nbuf, pmax=pmax,
        nslot=max(len(gen.slots.diag_slot), 1), nacc=nacc, threads=threads, shared=shared,
        zero=lit(0), one=lit(1))
    slots = ("cuda.shared.array((NBUF, PMAX), NT)" if shared else
             "scratch[cuda.blockIdx.x]")
    store = "\n".join(f"            O[t, {k}] = v[{k}]" for k in range(len(out_names)))
    kernels = _KERNELS.format(slots=slots, zero=lit(0), store_outputs=store,
                              self_offsets=indent(gen.offset_loops(True), 8),
                              pair_offsets=indent(gen.offset_loops(False), 8))
    return (header + fns + kernels).rstrip() + "\n"


def compile_cuda_image_program(program: KernelProgram, dtype="float64",
                               shared_bytes=SHARED_BYTES):
    """Generate, cache on disk (keyed by the source hash) and import the CUDA module."""
    from ntksym.codegen.cache import load_module
    src = generate_cuda_image_source(program, dtype, shared_bytes)
    return load_module(src, "cuda_image_" + program.name.replace("-", "_") + "_" + dtype)
