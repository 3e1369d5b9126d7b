"""Evaluate image (convolutional) kernel programs on an NVIDIA GPU through ``numba.cuda``.

Called by :func:`ntksym.engine.gpu.gpu_kernel` for image specs.  The images go to the device
once, reshaped to (n, H*W, C); ``diagonal_kernel`` computes each image's per-pixel diagonals
and exact K(x, x) once; then ``pair_kernel`` runs over chunks of pairs (lists I, J of about
``chunk`` pairs, only j > i for K(X, X)), one thread block per pair at a time, every block
looping over the pairs of its grid stride.  Each chunk's outputs come back to the host and are
scattered into the result (and its mirror for K(X, X)); device memory holds the images, their
diagonals and one chunk, whatever n is.  See :mod:`ntksym.codegen.cuda_slices` for the kernels.

Programs off the slice schedule are refused before CUDA is probed (the example needs no GPU;
``ntksym.kernel(arch, X, device="gpu")`` is the call for one that fits):

>>> import numpy as np, ntksym
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

#: pairs per pair_kernel launch (a row of K(X, X2) is never split)
CHUNK = 1 << 16
#: most thread blocks per launch; blocks loop over the pairs of their grid stride
MAX_BLOCKS = 4096
#: threads per block under the CUDA simulator (each one a Python thread): fewer threads than
#: pixels, so that the threads' pixel loops take several turns, as on a GPU with 32x32 images
SIM_THREADS = 4

_MODULES: dict = {}


def _module(arch, per_layer, dtype, shared_bytes):
    from ntksym.codegen.cuda_slices import compile_cuda_image_program
    key = (arch.hash, per_layer, dtype, shared_bytes)
    if key not in _MODULES:
        _MODULES[key] = compile_cuda_image_program(arch.derive(per_layer=per_layer), dtype,
                                                   shared_bytes)
    return _MODULES[key]


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
    from ntksym.engine.gpu import cuda_module, simulator_enabled
    check_gpu_image_program(arch.derive(per_layer=per_layer))   # refuse before probing CUDA
    cuda = cuda_module()
    if not simulator_enabled():
        return _run(cuda, arch, X, X2, names, dtype, per_layer, chunk, shared_bytes, threads)
    # The simulator's block manager busy-waits holding the GIL while threads sit at a
    # barrier; they get it back only at the interpreter's switch interval (5 ms), so every
    # syncthreads costs milliseconds.  A short interval during the launches is ~6x faster.
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        return _run(cuda, arch, X, X2, names, dtype, per_layer, chunk, shared_bytes,
                    threads or SIM_THREADS)
    finally:
        sys.setswitchinterval(old)


def _run(cuda, arch, X, X2, names, dtype, per_layer, chunk, shared_bytes, threads):
    from ntksym.codegen.cuda_slices import SHARED_BYTES
    mod = _module(arch, per_layer, dtype, SHARED_BYTES if shared_bytes is None else shared_bytes)
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

    n1 = X.shape[0]
    dX1 = to_device(X)
    D1, O1 = diagonal(dX1, n1)
    symmetric = X2 is None
    if symmetric:
        dX2, D2, n2 = dX1, D1, n1
    else:
        n2 = X2.shape[0]
        dX2 = to_device(X2)
        D2, _ = diagonal(dX2, n2)
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
    if symmetric:
        diag = O1.copy_to_host()
        idx = np.arange(n1)
        for q, s in enumerate(select):
            out[q, idx, idx] = diag[:, s]
    return out
