"""Evaluate kernel programs on an NVIDIA GPU through ``numba.cuda``.

Called by :func:`ntksym.engine.dispatch.kernel` with ``device="gpu"``; two evaluators.

Vector (MLP) programs (:func:`gpu_kernel`, kernels of :mod:`ntksym.codegen.cuda`): the data go
to the device once; per-example diagonals are computed once (``diagonal_kernel``); then the
Gram matrix is computed in row tiles (``pair_kernel``, upper triangle only for K(X, X)), each
tile copied back into the host result, so device memory holds X, X2 and one tile whatever n
is.  The lower triangle is mirrored on the host block by block (no n^2 index arrays) and the
diagonal is the exact per-example rule.

Image (convolutional) programs (:func:`gpu_image_kernel`, kernels of
:mod:`ntksym.codegen.cuda_slices`): the images go to the device once, reshaped to
(n, H*W, C); ``diagonal_kernel`` computes each image's per-pixel diagonals and exact K(x, x)
once; then ``pair_kernel`` runs over chunks of pairs (lists I, J of about ``chunk`` pairs,
only j > i for K(X, X)), one thread block per pair at a time, every block looping over the
pairs of its grid stride.  Each chunk's outputs come back to the host and are scattered into
the result (and its mirror for K(X, X)); device memory holds the images, their diagonals and
one chunk, whatever n is.

Without a GPU this raises :class:`~ntksym.errors.DeviceError`, unless Numba's CUDA simulator is
on (``NUMBA_ENABLE_CUDASIM=1`` in the environment before numba is imported), where the same
kernels run as Python threads: slow, but exact enough to test the generated code.

>>> import os, numpy as np, ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [3] }\\n'
...     '[[layer]]\\nkind = "dense"\\nactivation = "relu"\\n[[layer]]\\nkind = "dense"\\n')
>>> try:
...     K = ntksym.kernel(arch, np.eye(3), device="gpu")
... except ntksym.errors.DeviceError:
...     K = ntksym.kernel(arch, np.eye(3))          # no GPU here: the CPU gives the same
>>> K.shape
(3, 3)

Image programs off the slice schedule are refused before CUDA is probed (the example needs no
GPU):

>>> arch = ntksym.loads_spec('name = "s"\\ninput = { shape = [4, 4, 1] }\\n'
...     '[[layer]]\\nkind = "conv"\\nstride = 2\\nactivation = "relu"\\n'
...     '[[layer]]\\nkind = "flatten"\\n[[layer]]\\nkind = "dense"\\n')
>>> try:
...     ntksym.kernel(arch, np.ones((2, 4, 4, 1)), device="gpu")
... except ntksym.errors.DeviceError as e:
...     print(str(e)[:40])
's' has layers that mix pixel offsets (s
"""

from __future__ import annotations

import sys

import numpy as np

from ntksym.engine.common import compiled, fill_diagonals, program
from ntksym.engine.image import fill_duplicates
from ntksym.errors import DeviceError

#: bytes of one output tile on the device (all requested outputs together), vector programs
TILE_BYTES = 1 << 28
#: pairs per pair_kernel launch of an image program (a row of K(X, X2) is never split)
CHUNK = 1 << 16
#: most thread blocks per launch; blocks loop over the pairs of their grid stride
MAX_BLOCKS = 4096
#: threads per block under the CUDA simulator (each one a Python thread): fewer threads than
#: pixels, so that the threads' pixel loops take several turns, as on a GPU with 32x32 images
SIM_THREADS = 4


def simulator_enabled():
    """True when Numba's CUDA simulator is on (NUMBA_ENABLE_CUDASIM=1)."""
    from numba.core import config
    return bool(config.ENABLE_CUDASIM)


def cuda_module():
    """``numba.cuda`` if a GPU (or the simulator) can run kernels; DeviceError otherwise."""
    try:
        from numba import cuda
    except Exception as e:  # numba without its CUDA target, or a broken numba-cuda install
        raise DeviceError(f"numba.cuda cannot be imported ({e}); install the GPU extra "
                          "(pip install 'ntksym[gpu]') or use --device cpu") from None
    if simulator_enabled():
        return cuda
    try:
        ok = cuda.is_available()
    except Exception:  # the driver probe itself failed: same answer for the user
        ok = False
    if not ok:
        raise DeviceError("no CUDA GPU is available (numba.cuda found no usable NVIDIA driver "
                          "and device); use --device cpu, or on a GPU machine install the "
                          "driver and `pip install 'ntksym[gpu]'` (tests run the GPU code "
                          "under NUMBA_ENABLE_CUDASIM=1)")
    return cuda


def _tile_rows(n_out, n2, itemsize, tile):
    """Rows per tile: TILE_BYTES of output, a multiple of the block side, at least one block."""
    rows = TILE_BYTES // max(n_out * n2 * itemsize, 1)
    return max(tile, rows // tile * tile)


def _on_device(X, X2, to_device, diagonal):
    """(device X, its per-example diagonals D and outputs O, n) for X and for X2, whose
    entries are X's own when X2 is None (the symmetric case computes them once)."""
    n1 = X.shape[0]
    dX1 = to_device(X)
    first = (dX1, *diagonal(dX1, n1), n1)
    if X2 is None:
        return first, first
    dX2 = to_device(X2)
    return first, (dX2, *diagonal(dX2, X2.shape[0]), X2.shape[0])


def gpu_kernel(arch, X, X2, names, dtype="float64", per_layer=False, tile_rows=None):
    """(len(names), n1, n2) array of ``dtype``: the requested outputs computed on the GPU.

    X, X2 are validated float64 arrays (:func:`ntksym.engine.common.check_data`); X2 = None means
    K(X, X) (upper triangle computed, mirrored, exact diagonal).  ``dtype`` is the device
    precision and the result's dtype.  ``tile_rows`` (a multiple of the block side) bounds the
    rows per launch; by default one tile holds about 256 MiB of output.
    """
    from ntksym.codegen.cuda import check_gpu_program
    prog = program(arch, per_layer)
    if prog.input_kind == "image":
        return gpu_image_kernel(arch, X, X2, names, dtype=dtype, per_layer=per_layer)
    check_gpu_program(prog)                    # refuse what no GPU could run first
    cuda = cuda_module()
    mod = compiled(arch, per_layer, "cuda", dtype=dtype)
    ftype = np.dtype(dtype)
    tile = mod.TILE
    select = np.array([mod.OUTPUTS.index(o) for o in names], dtype=np.int64)
    n_out = len(names)

    def diagonal(dX, n):
        D = cuda.device_array((n, mod.N_DIAG), dtype=ftype)
        O = cuda.device_array((n, len(mod.OUTPUTS)), dtype=ftype)
        threads = 128
        mod.diagonal_kernel[(n + threads - 1) // threads, threads](dX, D, O)
        return D, O

    symmetric = X2 is None
    (dX1, D1, O1, n1), (dX2, D2, _, n2) = _on_device(
        X, X2, lambda A: cuda.to_device(np.ascontiguousarray(A, dtype=ftype)), diagonal)
    dsel = cuda.to_device(select)
    out = np.empty((n_out, n1, n2), dtype=ftype)
    rows = tile_rows or _tile_rows(n_out, n2, ftype.itemsize, tile)
    if rows % tile:
        raise ValueError(f"tile_rows must be a multiple of {tile}")
    for r0 in range(0, n1, rows):
        r1 = min(r0 + rows, n1)
        c0 = r0 if symmetric else 0      # a multiple of the block side: blocks stay aligned
        if c0 >= n2:
            break
        dout = cuda.device_array((n_out, r1 - r0, n2 - c0), dtype=ftype)
        grid = ((n2 - c0 + tile - 1) // tile, (r1 - r0 + tile - 1) // tile)
        mod.pair_kernel[grid, (tile, tile)](dX1, dX2, r0, c0, D1, D2, dsel, dout, symmetric)
        out[:, r0:r1, c0:] = dout.copy_to_host()
    cuda.synchronize()
    if symmetric:
        _mirror_upper(out, rows)
        fill_diagonals(out, O1.copy_to_host(), select)
    return out


def _mirror_upper(out, block):
    """Copy the strict upper triangle of every out[q] into its lower triangle, block by block."""
    n = out.shape[1]
    for r0 in range(0, n, block):
        r1 = min(r0 + block, n)
        # rows r0:r1, columns < r0: the transposed upper block above them
        out[:, r0:r1, :r0] = out[:, :r0, r0:r1].transpose(0, 2, 1)
        il = np.tril_indices(r1 - r0, -1)
        for q in range(out.shape[0]):
            blk = out[q, r0:r1, r0:r1]
            blk[il] = blk.T[il]


# ------------------------------------------------------------------ image programs

def pair_chunks(n1, n2, symmetric, chunk=CHUNK):
    """Index arrays (I, J) of about ``chunk`` pairs each covering every pair (i, j), j > i
    when ``symmetric``, row by row.

    >>> [(I.tolist(), J.tolist()) for I, J in pair_chunks(3, 3, True, chunk=2)]
    [([0, 0], [1, 2]), ([1], [2])]
    """
    rows, count = [], 0
    for i in range(n1):
        j0 = i + 1 if symmetric else 0
        if j0 >= n2:
            continue
        rows.append(i)
        count += n2 - j0
        if count >= chunk:
            yield _expand(rows, n2, symmetric)
            rows, count = [], 0
    if rows:
        yield _expand(rows, n2, symmetric)


def _expand(rows, n2, symmetric):
    I = np.concatenate([np.full(n2 - (i + 1 if symmetric else 0), i, np.int64) for i in rows])
    J = np.concatenate([np.arange(i + 1 if symmetric else 0, n2, dtype=np.int64) for i in rows])
    return I, J


def gpu_image_kernel(arch, X, X2, names, dtype="float64", per_layer=False, chunk=CHUNK,
                     shared_bytes=None, threads=None):
    """(len(names), n1, n2) array of ``dtype``: the requested outputs computed on the GPU.

    X, X2 are validated float64 image arrays (n, H, W, C); X2 = None means K(X, X) (upper
    triangle computed, mirrored, exact diagonal).  ``chunk`` bounds the pairs per launch;
    ``shared_bytes`` overrides the generator's shared-memory budget (tests use 0 to exercise
    the global-scratch variant).  ``threads`` per block (at most the module's THREADS; by
    default THREADS on a GPU and SIM_THREADS under the simulator, where every thread is a
    Python thread).
    """
    from ntksym.codegen.cuda_slices import check_gpu_image_program
    check_gpu_image_program(program(arch, per_layer))   # refuse before probing CUDA
    cuda = cuda_module()
    if not simulator_enabled():
        return _run_image(cuda, arch, X, X2, names, dtype, per_layer, chunk, shared_bytes,
                          threads)
    # The simulator's block manager busy-waits holding the GIL while threads sit at a
    # barrier; they get it back only at the interpreter's switch interval (5 ms), so every
    # syncthreads costs milliseconds.  A short interval during the launches is ~6x faster.
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        return _run_image(cuda, arch, X, X2, names, dtype, per_layer, chunk, shared_bytes,
                          threads or SIM_THREADS)
    finally:
        sys.setswitchinterval(old)


def _run_image(cuda, arch, X, X2, names, dtype, per_layer, chunk, shared_bytes, threads):
    from ntksym.codegen.cuda_slices import SHARED_BYTES
    mod = compiled(arch, per_layer, "cuda-slices", dtype=dtype,
                   shared_bytes=SHARED_BYTES if shared_bytes is None else shared_bytes)
    ftype = np.dtype(dtype)
    select = np.array([mod.OUTPUTS.index(o) for o in names], dtype=np.int64)
    n_out = len(names)
    threads = min(threads or mod.THREADS, mod.THREADS)
    if threads < 1:
        raise ValueError(f"threads must be in [1, {mod.THREADS}]")

    def to_device(A):
        return cuda.to_device(np.ascontiguousarray(
            A.reshape(A.shape[0], A.shape[1] * A.shape[2], A.shape[3]), dtype=ftype))

    def scratch(blocks):
        if mod.SHARED:
            return cuda.device_array((1, 1, 1), dtype=ftype)
        return cuda.device_array((blocks, mod.NBUF, mod.PMAX), dtype=ftype)

    def diagonal(dX, n):
        D = cuda.device_array((n, mod.NSLOT, mod.PMAX), dtype=ftype)
        O = cuda.device_array((n, len(mod.OUTPUTS)), dtype=ftype)
        blocks = min(n, MAX_BLOCKS)
        mod.diagonal_kernel[blocks, threads](dX, D, O, scratch(blocks))
        return D, O

    symmetric = X2 is None
    (dX1, D1, O1, n1), (dX2, D2, _, n2) = _on_device(X, X2, to_device, diagonal)
    dsel = cuda.to_device(select)
    out = np.empty((n_out, n1, n2), dtype=ftype)
    work = None
    for I, J in pair_chunks(n1, n2, symmetric, chunk):
        blocks = min(len(I), MAX_BLOCKS)
        if work is None or work.shape[0] < blocks:
            work = scratch(blocks)
        dout = cuda.device_array((n_out, len(I)), dtype=ftype)
        mod.pair_kernel[blocks, threads](dX1, dX2, D1, D2, cuda.to_device(I),
                                              cuda.to_device(J), dsel, dout, work)
        res = dout.copy_to_host()
        out[:, I, J] = res
        if symmetric:
            out[:, J, I] = res
    cuda.synchronize()
    exact = O1.copy_to_host()
    if symmetric:
        fill_diagonals(out, exact, select)
    # byte-identical images get K(x, x) exactly, as on the CPU (ntksym.engine.image)
    fill_duplicates(out, X, X2, symmetric, exact[:, select])
    return out
