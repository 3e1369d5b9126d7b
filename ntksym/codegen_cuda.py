"""Vector (MLP) KernelProgram -> ``numba.cuda`` source: the same recursion as device code.

The generated module (numpy + numba only; it runs on an NVIDIA GPU, or on Numba's CUDA
simulator when ``NUMBA_ENABLE_CUDASIM=1``) has

* ``diag_state(sq)`` and ``pair(...)``: device functions whose bodies are the CSE'd blocks of
  :mod:`ntksym.codegen` printed by the same :class:`~ntksym.printing.NumbaPrinter` (a subclass
  only makes every literal a ``np.float32`` for fp32, so the device stays in fp32);
* ``diagonal_kernel(X, D, O)``: one thread per example: sq = |x|^2 / d, then the diagonal
  state ``D`` (the columns ``pair`` reads) and the exact diagonal outputs ``O``, once per example;
* ``pair_kernel(X1, X2, r0, c0, D1, D2, select, out, symmetric)``: a 2-D grid of TILE x TILE
  thread blocks over a tile of the Gram matrix (rows r0.., columns c0..); each block forms its
  TILE x TILE inner products <x_i, x'_j> / d from TILE-wide slices of X1 and X2 staged in shared
  memory (a tiled matrix product), then each thread runs the whole recursion of its pair and
  writes out[q, i - r0, j - c0].  With ``symmetric`` only j > i is computed; blocks entirely on
  or below the diagonal return at once.

Conventions: X1, X2 are (n, d) arrays of the module's DTYPE on the device; ``select`` picks
outputs by their index in ``OUTPUTS``; the driver (:mod:`ntksym.engine_gpu`) mirrors the lower
triangle and fills the diagonal from ``O``.  In fp32 every operation, including the Gram
products, is float32 (unlike the CPU path, where ``dtype="float32"`` only stores float32).

Quadrature activations (tanh, swish, user expressions) are refused: their Numba quadrature
allocates arrays, which device code cannot; image and sequence programs are refused too.

>>> import ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [3] }\\n'
...     '[[layer]]\\nkind = "dense"\\nactivation = "relu"\\n[[layer]]\\nkind = "dense"\\n')
>>> src = generate_cuda_source(arch.derive(), "float32")
>>> "def pair_kernel" in src and "np.float32(0.5)" in src
True
"""

from __future__ import annotations

import sympy as sp

from ntksym.codegen import _cse_block
from ntksym.errors import DeviceError
from ntksym.ir import KernelProgram, y_side
from ntksym.printing import NumbaPrinter, identifier, is_quadrature

CODEGEN_CUDA_VERSION = "1"
DTYPES = ("float64", "float32")
#: threads per block side: a block computes a TILE x TILE tile of pairs
TILE = 16


class CudaPrinter(NumbaPrinter):
    """The Numba printer with literals typed for the device precision.

    In fp32 a bare Python float literal is a float64 in Numba and would promote the whole
    expression to double precision (and double-precision units are scarce on most GPUs), so
    every number is printed as ``np.float32(...)``.  In fp64 the output is the CPU printer's.

    >>> import sympy as sp
    >>> CudaPrinter(dtype="float32").doprint(sp.Rational(1, 2) * sp.Symbol("x"))
    '(np.float32(0.5))*x'
    """

    def __init__(self, settings=None, dtype="float64"):
        super().__init__(settings)
        self.dtype = dtype

    def literal(self, value):
        v = repr(float(value))
        return v if self.dtype == "float64" else f"np.float32({v})"

    def _print_Rational(self, expr):
        return self.literal(expr)

    _print_Half = _print_Rational
    _print_Integer = _print_Rational
    _print_Float = _print_Rational
    _print_NumberSymbol = _print_Rational
    _print_Pi = _print_Rational
    _print_Exp1 = _print_Rational

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        one = self.literal(1)
        if exp == -sp.S.Half:
            return f"({one}/math.sqrt({self._print(base)}))"
        if exp.is_Integer and int(exp) == -1:
            prec = sp.printing.precedence.PRECEDENCE["Pow"]
            return f"({one}/{self.parenthesize(base, prec)})"
        return super()._print_Pow(expr, rational=rational)

    def _print_sign(self, expr):
        x = self._print(expr.args[0])
        one, zero = self.literal(1), self.literal(0)
        return f"({one} if {x} > {zero} else (-{one} if {x} < {zero} else {zero}))"


def check_gpu_program(program: KernelProgram):
    """Raise DeviceError unless the GPU backend can run ``program`` (closed-form MLP only)."""
    if program.input_kind != "vector":
        raise DeviceError(
            f"the GPU backend runs MLP (vector-input) specs only; '{program.name}' has "
            f"{program.input_kind} inputs: use --device cpu (device='cpu')")
    for step in program.steps:
        for a in list(getattr(step, "cross", [])) + list(getattr(step, "diag", [])):
            if is_quadrature(a.expr):
                raise DeviceError(
                    f"layer {step.node} of '{program.name}' needs Gauss quadrature "
                    f"({step.description}), which the GPU backend does not generate; "
                    "use --device cpu (device='cpu') or a closed-form activation "
                    "(relu, leaky_relu, erf, identity, ...)")


def _helpers(lit, decorator):
    return f'''

@{decorator}
def _corr(c, a, b):
    # clip(c / sqrt(a b), -1, 1); a zero variance makes the pair uncorrelated
    d = math.sqrt(a * b)
    if d <= {lit(0)}:
        return {lit(0)}
    r = c / d
    return {lit(1)} if r > {lit(1)} else (-{lit(1)} if r < -{lit(1)} else r)


@{decorator}
def _clip1(r):
    # r = c / sqrt(a b); NaN only from 0/0 (a zero variance): the pair is uncorrelated
    if r != r:
        return {lit(0)}
    return {lit(1)} if r > {lit(1)} else (-{lit(1)} if r < -{lit(1)} else r)
'''


def device_functions_source(program: KernelProgram, dtype="float64",
                            decorator="cuda.jit(device=True)"):
    """Source of the helpers, ``diag_state`` and ``pair`` under ``decorator``.

    The full module uses ``cuda.jit(device=True)``; with ``decorator="njit"`` the same text
    compiles on the CPU, which lets tests check its types (fp32 in, fp32 out) without a GPU.
    Returns (source, n_diag): n_diag is the number of diagonal columns ``pair`` reads.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, not {dtype!r}")
    check_gpu_program(program)
    printer = CudaPrinter(dtype=dtype)
    diag_needed = program.diag_symbols_used_by_cross()
    out_names = tuple(program.outputs)

    body = [f"{identifier(program.input_diag.name)} = sq"]
    for k, step in enumerate(program.steps):
        body += [f"# {step.node}"] + _cse_block(step.diag, printer, f"d{k}_")
    ret = [identifier(s.name) for s in diag_needed]
    # "+ 0*sq" keeps a constant output (a network without weights on x) typed like sq
    ret += [printer.doprint(program.diag_outputs[o] + 0 * program.input_diag)
            if program.diag_outputs[o].is_Number else printer.doprint(program.diag_outputs[o])
            for o in out_names]
    diag_fn = (f"\n\n@{decorator}\ndef diag_state(sq):\n" +
               "".join(f"    {l}\n" for l in body) + f"    return ({', '.join(ret)},)\n")

    x_args = [identifier(s.name) for s in diag_needed]
    y_args = [identifier(y_side(s).name) for s in diag_needed]
    params = [identifier(program.input_cross.name)] + x_args + y_args
    body = []
    for k, step in enumerate(program.steps):
        body += [f"# {step.node}: {step.description}"] + _cse_block(step.cross, printer, f"c{k}_")
    ret = [printer.doprint(program.outputs[o]) for o in out_names]
    pair_fn = (f"\n\n@{decorator}\ndef pair(" + ", ".join(params) + "):\n" +
               "".join(f"    {l}\n" for l in body) + f"    return ({', '.join(ret)},)\n")
    n_out = len(out_names)
    pick = (f"\n\n@{decorator}\ndef _pick(v, s):\n" +
            "\n".join(f"    {'if' if k == 0 else 'elif'} s == {k}:\n        return v[{k}]"
                      for k in range(n_out)) + f"\n    return v[0] * {printer.literal(0)}\n")
    return _helpers(printer.literal, decorator) + diag_fn + pair_fn + pick, len(diag_needed)


_HEADER = '''"""Generated by ntksym codegen_cuda from spec '{name}' (sha256 {hash}), {dtype}.

Do not edit.  Needs numpy and numba (numba.cuda: a GPU, or NUMBA_ENABLE_CUDASIM=1).
Inputs are vectors: pairs use <x_i, x'_j> / {scale}, diagonals |x_i|^2 / {scale}.
Outputs: {outputs}.
"""

import math

import numpy as np
from numba import cuda, {dtype} as NT

SPEC_NAME = {name!r}
SPEC_HASH = {hash!r}
CODEGEN_VERSION = {version!r}
INPUT_KIND = "vector"
INPUT_SCALE = {scale}
OUTPUTS = {output_names!r}
DTYPE = {dtype!r}
TILE = {tile}
TILEP = {tile_padded}   # a constant: cuda.shared.array needs literal shapes, not TILE + 1
N_DIAG = {n_diag_cols}
'''

_KERNELS = '''

@cuda.jit
def diagonal_kernel(X, D, O):
    """One thread per example: diagonal state D[i] and exact diagonal outputs O[i]."""
    i = cuda.grid(1)
    if i < X.shape[0]:
        acc = {zero}
        for k in range(X.shape[1]):
            acc += X[i, k] * X[i, k]
        t = diag_state(acc / {scale})
{diag_stores}


@cuda.jit
def pair_kernel(X1, X2, r0, c0, D1, D2, select, out, symmetric):
    """out[q, i - r0, j - c0] = output select[q] of pair (i, j), for the tile of out's shape.

    Block (bx, by) owns rows r0 + by*TILE + [0, TILE) and columns c0 + bx*TILE + [0, TILE);
    threadIdx.x runs along columns, so neighbouring threads write neighbouring entries.
    """
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    row0 = r0 + cuda.blockIdx.y * TILE
    col0 = c0 + cuda.blockIdx.x * TILE
    if symmetric and col0 + TILE - 1 <= row0:
        return                        # the whole block is on or below the diagonal
    i = row0 + ty
    j = col0 + tx
    n1 = X1.shape[0]
    n2 = X2.shape[0]
    d = X1.shape[1]
    # +1 column of padding: B[tx, k] then reads TILE different banks
    A = cuda.shared.array((TILE, TILEP), NT)
    B = cuda.shared.array((TILE, TILEP), NT)
    acc = {zero}
    for k0 in range(0, d, TILE):
        k = k0 + tx
        ia = row0 + ty
        jb = col0 + ty
        A[ty, tx] = X1[ia, k] if (ia < n1 and k < d) else {zero}
        B[ty, tx] = X2[jb, k] if (jb < n2 and k < d) else {zero}
        cuda.syncthreads()
        for kk in range(TILE):
            acc += A[ty, kk] * B[tx, kk]
        cuda.syncthreads()
    li = i - r0
    lj = j - c0
    if i < n1 and j < n2 and li < out.shape[1] and lj < out.shape[2] and (j > i or not symmetric):
        v = pair(acc / {scale}, {pair_args})
        for q in range(select.shape[0]):
            out[q, li, lj] = _pick(v, select[q])
'''


def generate_cuda_source(program: KernelProgram, dtype="float64") -> str:
    """The standalone ``numba.cuda`` module of a vector KernelProgram, as Python source text.

    ``dtype``: "float64" or "float32" (all device arithmetic in that precision).  Raises
    DeviceError for programs the GPU backend cannot run (see :func:`check_gpu_program`).
    """
    fns, n_diag = device_functions_source(program, dtype)
    printer = CudaPrinter(dtype=dtype)
    out_names = tuple(program.outputs)
    n_out = len(out_names)
    diag_stores = "\n".join([f"        D[i, {k}] = t[{k}]" for k in range(n_diag)] +
                            [f"        O[i, {k}] = t[{n_diag + k}]" for k in range(n_out)])
    pair_args = ", ".join([f"D1[i, {k}]" for k in range(n_diag)] +
                          [f"D2[j, {k}]" for k in range(n_diag)])
    header = _HEADER.format(name=program.name, hash=program.spec_hash, dtype=dtype,
                            scale=program.input_scale, outputs=", ".join(out_names),
                            output_names=out_names, version=CODEGEN_CUDA_VERSION, tile=TILE,
                            tile_padded=TILE + 1,
                            n_diag_cols=max(n_diag, 1))
    kernels = _KERNELS.format(zero=printer.literal(0), scale=printer.literal(program.input_scale),
                              diag_stores=diag_stores, pair_args=pair_args)
    return (header + fns + kernels).rstrip() + "\n"


def compile_cuda_program(program: KernelProgram, dtype="float64"):
    """Generate, cache on disk (keyed by the source hash) and import the CUDA module.

    Device code compiles lazily, at the first launch (numba.cuda JIT; nothing is compiled
    under the simulator).
    """
    from ntksym.cache import load_module
    src = generate_cuda_source(program, dtype)
    return load_module(src, "cuda_" + program.name.replace("-", "_") + "_" + dtype)
