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

from ntksym.codegen.common import (
    clip1_source,
    corr_source,
    cse_block,
    function,
    module_header,
    pick_source,
)
from ntksym.codegen.cuda import DTYPES, CudaPrinter, refuse_quadrature
from ntksym.codegen.liveness import Slots, is_diag
from ntksym.codegen.printer import identifier
from ntksym.codegen.slice_walk import SliceWalker, diag_symbols, slice_plan
from ntksym.errors import DeviceError
from ntksym.ir.program import KernelProgram

CODEGEN_CUDA_IMAGE_VERSION = "1"
#: static shared memory a block may use (the CUDA limit without opt-in)
SHARED_BYTES = 48 * 1024
#: most threads per block; a block gets the pixel count rounded up to a warp, up to this
MAX_THREADS = 256


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
    return ["r0 = max(0, -di)",
            f"rh = max(0, min({H}, {H} - di) - r0)",
            "c0 = max(0, -dj)",
            f"rw = max(0, min({W}, {W} - dj) - c0)",
            "for k in range(tid, rh * rw, nt):",
            "    kr = k // rw",
            "    i = r0 + kr",
            "    j = c0 + k - kr * rw",
            f"    p = i * {W} + j",
            f"    q = p + di * {W} + dj"]


class CudaSlices(SliceWalker):
    """The CUDA target of the slice schedule: block-wide thread loops over the pixels of a
    slice in the shared-memory slots S, barriers around each patch sum and offset, device
    literals (``np.float32`` in fp32), the block's summed accumulators ``tot`` in the tail."""

    acc_name = "tot"
    self_diag = "Dx"
    lower_tail = True

    def __init__(self, program, dtype, plan):
        red = plan["reduce_step"]
        printer = CudaPrinter(dtype=dtype)
        super().__init__(program, plan, Slots(program, stop=red, free_unread=True), printer)
        self.literal = printer.literal
        for step in program.steps[red + 1:]:
            for s in Slots.reads(step):
                if s in self.slots.slot:
                    raise DeviceError(f"'{program.name}': a step after the readout reads the "
                                      f"pixel-level entry {s}; use --device cpu")

    def _src(self, a):
        """Shared-memory read of a structural input, or its literal for a constant entry."""
        if isinstance(a, sp.Symbol):
            return f"S[{self.slots.slot[a.name]}, s]"
        return self.literal(a)

    def keep(self, name, value, store):
        """The store of a per-pixel diagonal, in the pixel loop (offset_store only)."""
        if store and name in self.slots.diag_slot:
            return [f"    Dx[{self.slots.diag_slot[name]}, p] = {value}"]
        return []

    def prologue(self, store):
        L = ["tid = cuda.threadIdx.x", "nt = cuda.blockDim.x"]
        if store:
            L += ["Xb = Xa", "Dx = D", "Dy = D", "di = 0", "dj = 0"]
        return L

    def emit_input(self, store):
        p, lit = self.p, self.literal
        s0 = p.input_cross.name
        H0, W0 = p.shapes[s0]
        L = ["# the input products <x_p, x'_p+d> / scale"] + _pixel_loop(H0, W0, self.circ)
        L += [f"    g = {lit(0)}",
              "    for c in range(Xa.shape[1]):",
              "        g += Xa[p, c] * Xb[q, c]",
              f"    g = g / {lit(p.input_scale)}",
              f"    S[{self.slots.slot[s0]}, p] = g"]
        return L + self.keep(s0, "g", store)

    def emit_elementwise(self, k, step, store):
        sl = self.slots
        H, W = self.p.shapes[step.cross[0].target.name]
        L = _pixel_loop(H, W, self.circ)
        for d in diag_symbols(step):
            side, idx = ("Dx", "p") if d.endswith("_xx") else ("Dy", "q")
            L.append(f"    {identifier(d)} = {side}[{sl.diag_slot[d[:-3]]}, {idx}]")
        for r in sl.reads(step):
            L.append(f"    {identifier(r)} = S[{sl.slot[r]}, p]")
        L += ["    " + line for line in cse_block(step.cross, self.printer, f"c{k}_", lower=True)]
        for a in step.cross:
            L.append(f"    S[{sl.slot[a.target.name]}, p] = {identifier(a.target.name)}")
            L += self.keep(a.target.name, identifier(a.target.name), store)
        return L

    def _emit_PatchSum(self, step, store):
        (H, W), (Ho, Wo) = step.op.in_hw, step.op.out_hw
        (qh, qw), (ph, pw) = step.op.filter, step.op.pads
        pairs = [(a, b) for a, b in zip(step.inputs, step.outputs) if not is_diag(b.name)]
        L = ["cuda.syncthreads()          # the inputs are complete"]
        if not self.circ:
            L += ["ra = max(0, -di)", f"rb = min({H}, {H} - di)",
                  "ca = max(0, -dj)", f"cb = min({W}, {W} - dj)"]
        L += _pixel_loop(Ho, Wo, self.circ)
        L += [f"    a{n} = {self.literal(0)}" for n in range(len(pairs))]
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
            L += self.keep(b.name, f"a{n}", store)
        L.append("cuda.syncthreads()          # before any slot it read is reused")
        return L

    def emit_readout(self, store):
        Hf, Wf = self.plan["final_hw"]
        L = [f"part{n} = {self.literal(0)}" for n in range(len(self.reduced))]
        L += _pixel_loop(Hf, Wf, self.circ)
        L += ["    s = p"] + [f"    part{n} += {self._src(a)}"
                              for n, (a, _) in enumerate(self.reduced)]
        for n in range(len(self.reduced)):
            # compensated (Kahan) sum over the offsets: thousands of terms per thread in fp32
            L += [f"y = part{n} * w - comp[{n}]", f"t = acc[{n}] + y",
                  f"comp[{n}] = (t - acc[{n}]) - y", f"acc[{n}] = t"]
        L.append("cuda.syncthreads()          # the next offset overwrites the slots")
        return L

    def offset_loops(self, self_pair):
        """Kernel lines running every offset the readout needs (indented for the kernel)."""
        Hf, Wf = self.plan["final_hw"]
        one, two = self.literal(1), self.literal(2)
        if self_pair:
            call = "offset_pass(S, Xa, Xa, Dt, Dt, di, dj, acc, comp, {w})"
            L = ["offset_store(S, Xa, Dt, acc, comp)"]
            if self.trace_only:
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
        if self.trace_only:
            return ["di = 0", "dj = 0", call]
        lo_h, lo_w = (0, 0) if self.circ else (-(Hf - 1), -(Wf - 1))
        return [f"for di in range({lo_h}, {Hf}):", f"    for dj in range({lo_w}, {Wf}):",
                "        " + call]


_BLOCK_SUM = '''

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
    gen = CudaSlices(program, dtype, plan)
    lit = gen.literal
    pmax = max(h * w for h, w in program.shapes.values())
    threads = min(MAX_THREADS, -(-pmax // 32) * 32)
    itemsize = 8 if dtype == "float64" else 4
    shared = (gen.slots.nbuf * pmax + threads) * itemsize <= shared_bytes
    nacc = max(len(gen.reduced), 1)
    out_names = tuple(program.outputs)
    device = "cuda.jit(device=True)"

    def indent(lines, n):
        return "\n".join(" " * n + l for l in lines)

    fns = (
        function("\n\n@cuda.jit(device=True)\ndef offset_store(S, Xa, D, acc, comp):\n"
                 '    """Offset 0 of the pair (x, x), storing the per-pixel diagonals in D."""\n'
                 f"    w = {lit(1)}\n", gen.walk(store=True)) +
        function("\n\n@cuda.jit(device=True)\n"
                 "def offset_pass(S, Xa, Xb, Dx, Dy, di, dj, acc, comp, w):\n"
                 '    """The slices of offset (di, dj) through every layer; w times this '
                 'thread\'s share of the readout into acc."""\n', gen.walk(store=False)) +
        function("\n\n@cuda.jit(device=True)\ndef tail_self(tot, D):\n", gen.tail(store=True)) +
        function("\n\n@cuda.jit(device=True)\ndef tail_pair(tot, Dx, Dy):\n",
                 gen.tail(store=False)) +
        "\n\n" + pick_source(len(out_names), device, f"v[0] * {lit(0)}"))
    header = module_header(
        program, tool="codegen_cuda_image", dtype=dtype, version=CODEGEN_CUDA_IMAGE_VERSION,
        imports=f"from numba import cuda, {dtype} as NT",
        notes="Do not edit.  Needs numpy and numba (numba.cuda: a GPU, or "
              "NUMBA_ENABLE_CUDASIM=1).\nInputs are channels-last images reshaped to "
              f"(n, H*W, C); Sigma_0[p, p'] = <x_p, x'_p'> / {program.input_scale}.\n"
              f"Schedule: per-offset slices ({plan['op'].label} readout, "
              f"{'circular' if plan['circular'] else 'zero'} padding).  "
              f"Outputs: {', '.join(out_names)}.",
        constants=['SCHEDULE = "offset-slices"', f"INPUT_SCALE = {program.input_scale}",
                   f"OUTPUTS = {out_names!r}", f"DTYPE = {dtype!r}",
                   "# slots per block, floats per slot, diagonal slots, readout accumulators, "
                   "threads per block",
                   f"NBUF, PMAX, NSLOT, NACC, THREADS = {gen.slots.nbuf}, {pmax}, "
                   f"{max(len(gen.slots.diag_slot), 1)}, {nacc}, {threads}",
                   f"SHARED = {shared}   # slots in shared memory (else each block's region "
                   "of a global scratch)"])
    zero, one = lit(0), lit(1)
    header += (corr_source(device, zero, one) + clip1_source(device, zero, one) +
               _BLOCK_SUM.format(zero=zero))
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
