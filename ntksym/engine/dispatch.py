"""Evaluate compiled kernel programs on data: validation, BLAS Gram products, tiles, threads,
symmetry, dtype and output files.

>>> import numpy as np, ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [3] }\\n'
...                          '[[layer]]\\nkind = "dense"\\nactivation = "relu"\\n'
...                          '[[layer]]\\nkind = "dense"\\n')
>>> K = kernel(arch, np.eye(3), kind="nngp")
>>> K.shape
(3, 3)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ntksym.errors import DataError, OutputExistsError

KINDS = ("nngp", "ntk", "both")
DTYPES = ("float64", "float32")


def check_data(X, input_shape, name="X"):
    """A float64 C-contiguous array of examples of ``input_shape``; DataError otherwise."""
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{name} is not a numeric array: {e}") from None
    want = tuple(input_shape)
    if X.ndim != len(want) + 1 or any(w != -1 and w != s for w, s in zip(want, X.shape[1:])):
        shape = ", ".join(["n"] + [str(w) if w != -1 else "T" for w in want])
        raise DataError(f"{name} has shape {X.shape} but the spec's input needs ({shape}); "
                        "check the feature dimension or the spec's input.shape")
    if X.shape[0] == 0:
        raise DataError(f"{name} has no examples")
    bad = ~np.isfinite(X)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{name} contains NaN or inf (first at index {idx}); clean the data first")
    return np.ascontiguousarray(X)


_MODULES: dict = {}


def _program_module(arch, per_layer):
    """The compiled module of a spec, memoized per process by (spec hash, per_layer): sympy's
    derivation and CSE run once per spec, Numba loads machine code from its disk cache."""
    from ntksym.codegen.generate import compile_program
    key = (arch.hash, per_layer)
    if key not in _MODULES:
        _MODULES[key] = compile_program(arch.derive(per_layer=per_layer))
    return _MODULES[key]


def output_names(arch, kind, per_layer=False):
    """The program outputs a request returns: ["ntk"], ["nngp", "ntk"], or per-layer terms."""
    if kind not in KINDS:
        raise DataError(f"unknown kernel kind {kind!r}; valid: {', '.join(KINDS)}")
    names = ["nngp", "ntk"] if kind == "both" else [kind]
    if per_layer:
        names += [o for o in arch.derive(per_layer=True).outputs if o.startswith("ntk[")]
    return names


def kernel(arch, X, X2=None, kind="ntk", dtype="float64", per_layer=False, threads=None,
           progress=None, device="cpu", lengths=None, lengths2=None):
    """The infinite-width kernel matrix of ``arch`` between the rows of X and X2.

    Parameters
    ----------
    arch : an :class:`ntksym.Architecture` (``ntksym.load_spec``).
    X, X2 : arrays (n, *input_shape); X2 = None means K(X, X), of which only the upper
        triangle is computed (the diagonal by the exact per-example rule).
    kind : "ntk" | "nngp" | "both".
    dtype : "float64" (default) or "float32" (stored in float32; arithmetic stays float64).
    per_layer : also return the NTK contribution of every trainable parameter group,
        as "ntk[<node>.<param>]" entries (they sum to "ntk").
    threads : number of threads (default: numba's, i.e. all cores).
    progress : image programs draw a progress bar on a terminal (None: when stderr is a tty).
    device : "cpu" (default) or "gpu": closed-form MLP programs, and convolutional programs of
        stride-1 convolutions with a global_avg_pool / flatten readout, on an NVIDIA GPU
        through numba.cuda (:mod:`ntksym.engine.gpu`), where float32 means float32
        arithmetic; DeviceError without a GPU (unless NUMBA_ENABLE_CUDASIM=1 runs the
        simulator), and for sequence specs.
    lengths, lengths2 : sequence specs only: lengths of the sequences of a padded X (n, T, d)
        (X may also be a list of (T_i, d) arrays); see :mod:`ntksym.engine.sequence`.

    Returns an (n1, n2) array for a single kind, else a dict name -> array.

    Example: ``K = ntksym.kernel(arch, X, kind="ntk")``.
    """
    if dtype not in DTYPES:
        raise DataError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
    if device not in ("cpu", "gpu"):
        raise DataError(f"unknown device {device!r}; valid: cpu, gpu")
    if len(arch.input_shape) == 2:      # sequences (RNN specs): lengths, time-pair recursion
        if device != "cpu":
            from ntksym.errors import DeviceError
            raise DeviceError(f"the GPU backend runs MLP and convolutional specs only; "
                              f"'{arch.name}' has sequence inputs: use --device cpu")
        from ntksym.engine.sequence import sequence_kernel
        return sequence_kernel(arch, X, X2, kind=kind, dtype=dtype, per_layer=per_layer,
                               threads=threads, lengths=lengths, lengths2=lengths2)
    if lengths is not None or lengths2 is not None:
        raise DataError("lengths apply to sequence inputs only")
    names = output_names(arch, kind, per_layer)
    X = check_data(X, arch.input_shape, "X")
    if X2 is not None:
        X2 = check_data(X2, arch.input_shape, "X2")
    program = arch.derive(per_layer=per_layer)
    if device == "gpu":
        from ntksym.engine.gpu import gpu_kernel
        out = gpu_kernel(arch, X, X2, names, dtype=dtype, per_layer=per_layer)
        _check_finite_result(out, names)
        return out[0] if len(names) == 1 else {n: out[q] for q, n in enumerate(names)}
    if threads:
        import numba
        numba.set_num_threads(int(threads))
    if program.input_kind == "image":
        from ntksym.codegen.image import compile_image_program
        from ntksym.engine.image import image_kernel
        out = image_kernel(program, compile_image_program(program), X, X2, names,
                           progress=progress)
        _check_finite_result(out, names)
        res = {n: (out[q] if dtype == "float64" else out[q].astype(np.float32))
               for q, n in enumerate(names)}
        return res[names[0]] if len(names) == 1 else res
    if program.input_kind != "vector":
        raise DataError(f"no evaluator for input kind {program.input_kind!r}")
    mod = _program_module(arch, per_layer)
    select = np.array([mod.OUTPUTS.index(o) for o in names], dtype=np.int64)
    scale = float(mod.INPUT_SCALE)
    D1, O1 = mod.diagonal(np.einsum("ij,ij->i", X, X) / scale)
    if X2 is None:
        G, D2, symmetric = X @ X.T, D1, True
    else:
        D2, _ = mod.diagonal(np.einsum("ij,ij->i", X2, X2) / scale)
        G, symmetric = X @ X2.T, False
    G /= scale
    if len(names) == 1 and dtype == "float64":
        out = G.reshape((1,) + G.shape)      # in place: each entry is read before it is written
    else:
        out = np.empty((len(names),) + G.shape, dtype=np.float64)
    mod.cross_tile(G, D1, D2, select, out, symmetric)
    if symmetric:
        idx = np.arange(X.shape[0])
        for q, s in enumerate(select):
            out[q, idx, idx] = O1[:, s]
    _check_finite_result(out, names)
    res = {n: (out[q] if dtype == "float64" else out[q].astype(np.float32))
           for q, n in enumerate(names)}
    return res[names[0]] if len(names) == 1 else res


def _check_finite_result(out, names):
    for q, n in enumerate(names):
        if not np.isfinite(out[q]).all():
            i, j = np.argwhere(~np.isfinite(out[q]))[0]
            raise DataError(f"the {n} kernel is not finite at ({i}, {j}); the recursion "
                            "overflowed (check weight variances and input scale)")


# ------------------------------------------------------------------------------- output

def refuse_existing(path, force):
    """Raise OutputExistsError if ``path`` exists and ``force`` is false."""
    if path is not None and Path(path).exists() and not force:
        raise OutputExistsError(f"{path} exists; pass --force to overwrite it")


def save_arrays(path, arrays: dict, force=False, meta=None):
    """Write one array (.npy) or several (.npz) to a temporary name, then rename.

    A ``.npy`` path takes exactly one array.  Nothing is left behind on failure.
    """
    path = Path(path)
    refuse_existing(path, force)
    if path.suffix not in (".npy", ".npz"):
        raise DataError(f"{path}: output must end in .npy or .npz")
    if path.suffix == ".npy" and len(arrays) != 1:
        raise DataError(f"{path}: a .npy file holds one array, but {len(arrays)} were computed "
                        f"({', '.join(arrays)}); use an .npz output")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            if path.suffix == ".npy":
                np.save(fh, next(iter(arrays.values())))
            else:
                extra = {k: np.asarray(v) for k, v in (meta or {}).items()}
                np.savez(fh, **arrays, **extra)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
