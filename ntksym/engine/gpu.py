"""Evaluate kernel programs on an NVIDIA GPU through ``numba.cuda``.

Called by :func:`ntksym.engine.dispatch.kernel` with ``device="gpu"``.  Image (convolutional) programs
go to :mod:`ntksym.engine.gpu_slices`; the rest of this module runs vector (MLP) programs.  The
data go to the device once; per-example diagonals are computed once (``diagonal_kernel``); then
the Gram matrix is computed in row tiles (``pair_kernel``, upper triangle only for K(X, X)),
each tile copied back into the host result, so device memory holds X, X2 and one tile whatever
n is.  The lower triangle is mirrored on the host block by block (no n^2 index arrays) and the
diagonal is the exact per-example rule.

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
"""

from __future__ import annotations

import numpy as np

from ntksym.errors import DeviceError

DEVICES = ("cpu", "gpu")
#: bytes of one output tile on the device (all requested outputs together)
TILE_BYTES = 1 << 28


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


_MODULES: dict = {}


def _module(arch, per_layer, dtype):
    """The generated CUDA module of a spec, memoized per process by (hash, per_layer, dtype)."""
    from ntksym.codegen.cuda import compile_cuda_program
    key = (arch.hash, per_layer, dtype)
    if key not in _MODULES:
        _MODULES[key] = compile_cuda_program(arch.derive(per_layer=per_layer), dtype)
    return _MODULES[key]


def _tile_rows(n_out, n2, itemsize, tile):
    """Rows per tile: TILE_BYTES of output, a multiple of the block side, at least one block."""
    rows = TILE_BYTES // max(n_out * n2 * itemsize, 1)
    return max(tile, rows // tile * tile)


def gpu_kernel(arch, X, X2, names, dtype="float64", per_layer=False, tile_rows=None):
    """(len(names), n1, n2) array of ``dtype``: the requested outputs computed on the GPU.

    X, X2 are validated float64 arrays (see :func:`ntksym.engine.dispatch.check_data`); X2 = None means
    K(X, X) (upper triangle computed, mirrored, exact diagonal).  ``dtype`` is the device
    precision and the result's dtype.  ``tile_rows`` (a multiple of the block side) bounds the
    rows per launch; by default one tile holds about 256 MiB of output.
    """
    from ntksym.codegen.cuda import check_gpu_program
    program = arch.derive(per_layer=per_layer)
    if program.input_kind == "image":
        from ntksym.engine.gpu_slices import gpu_image_kernel
        return gpu_image_kernel(arch, X, X2, names, dtype=dtype, per_layer=per_layer)
    check_gpu_program(program)                 # refuse what no GPU could run first
    cuda = cuda_module()
    mod = _module(arch, per_layer, dtype)
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

    n1 = X.shape[0]
    dX1 = cuda.to_device(np.ascontiguousarray(X, dtype=ftype))
    D1, O1 = diagonal(dX1, n1)
    symmetric = X2 is None
    if symmetric:
        dX2, D2, n2 = dX1, D1, n1
    else:
        n2 = X2.shape[0]
        dX2 = cuda.to_device(np.ascontiguousarray(X2, dtype=ftype))
        D2, _ = diagonal(dX2, n2)
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
        diag = O1.copy_to_host()
        idx = np.arange(n1)
        for q, s in enumerate(select):
            out[q, idx, idx] = diag[:, s]
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
