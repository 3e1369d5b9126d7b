"""What every evaluator of the engine shares: the options, the data check, the compiled
programs (derived and compiled once per process and spec), and the finisher.

The modules of the engine import from here, never from each other's internals and never from
``ntksym.engine`` itself: :mod:`ntksym.engine.dispatch` -> {image, sequence, gpu} -> common.

>>> import numpy as np
>>> check_data([[1, 2, 3]], (3,)).dtype, check_data([[1, 2, 3]], (3,)).flags.c_contiguous
(dtype('float64'), True)
>>> out = np.zeros((1, 2, 2))
>>> finish(out, ["ntk"], "float32", diagonal=np.array([[5.0], [7.0]]), select=[0])
array([[5., 0.],
       [0., 7.]], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from ntksym.errors import DataError

KINDS = ("nngp", "ntk", "both")
DTYPES = ("float64", "float32")
DEVICES = ("cpu", "gpu")
ENGINES = ("auto", "numpy", "compiled")


def check_options(dtype, device="cpu", engine="auto", threads=None):
    """DataError naming the valid values when ``dtype``, ``device``, ``engine`` or
    ``threads`` is out of range (the kind is checked by :func:`output_names`).
    ``threads``: None (numba's default) or 1 .. the threads numba may use."""
    if dtype not in DTYPES:
        raise DataError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
    if device not in DEVICES:
        raise DataError(f"unknown device {device!r}; valid: {', '.join(DEVICES)}")
    if engine not in ENGINES:
        raise DataError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    if engine == "numpy" and device != "cpu":
        raise DataError("the NumPy tier runs on the CPU: use engine 'compiled' (or 'auto') "
                        "with device 'gpu'")
    if threads is not None:
        import os
        limit = int(os.environ.get("NUMBA_NUM_THREADS") or os.cpu_count() or 1)
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= limit:
            raise DataError(f"threads must be an integer from 1 to {limit} (the threads numba "
                            f"may use here), got {threads!r}")


def check_data(X, input_shape, name="X"):
    """A float64 C-contiguous array of examples of ``input_shape``; DataError otherwise.

    This is the one check of user data; the evaluators behind it take its result as is.
    """
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


# ------------------------------------------------------------------ programs, once per process

_PROGRAMS: dict = {}
_MODULES: dict = {}


def program(arch, per_layer=False, gradient=False):
    """The KernelProgram of ``arch``, derived once per process and spec structure (the hash
    covers the whole spec, input shape included, but not the values of learnable constants:
    the program keeps them as symbols and the generated code takes them at run time).
    ``gradient``: with the tangents dK/dtheta of every learnable constant
    (:func:`ntksym.ir.tangent.tangent_program`)."""
    key = (arch.spec.structure_hash, bool(per_layer), bool(gradient))
    if key not in _PROGRAMS:
        _PROGRAMS[key] = arch.derive(per_layer=bool(per_layer), gradient=bool(gradient))
    return _PROGRAMS[key]


_SOURCES: dict = {}


def cpu_source(arch, per_layer=False, gradient=False):
    """The generated CPU module source of ``arch`` (sympy's CSE and printing), once per
    process and spec structure."""
    key = (arch.spec.structure_hash, bool(per_layer), bool(gradient))
    if key not in _SOURCES:
        from ntksym.codegen.generate import generate_source
        _SOURCES[key] = generate_source(program(arch, per_layer, gradient))
    return _SOURCES[key]


def compiled_on_disk(arch, per_layer=False, gradient=False):
    """Whether the CPU module of ``arch`` is in Numba's disk cache (no JIT to pay), or already
    loaded in this process."""
    if (arch.spec.structure_hash, bool(per_layer), bool(gradient), "cpu", ()) in _MODULES:
        return True
    from ntksym.codegen.cache import is_compiled
    from ntksym.codegen.generate import module_stem
    return is_compiled(cpu_source(arch, per_layer, gradient),
                       module_stem(program(arch, per_layer, gradient)))


def announce_compile(arch, per_layer=False, progress=None, gradient=False):
    """On a terminal (or ``progress=True``), one line on stderr before a cold compilation:
    "ntksym: compiling SPEC (first use of this spec, cached afterwards)"; nothing when the
    module is on disk or loaded, when stderr is piped, or with ``progress=False``
    (:func:`ntksym.progress.enabled`: ``--quiet`` counts too); above a live progress line."""
    from ntksym import progress as bar
    if bar.enabled(progress) and not compiled_on_disk(arch, per_layer, gradient):
        bar.write(f"ntksym: compiling {arch.name} (first use of this spec, cached afterwards)")


def hyper_values(arch, prog):
    """The current values of the program's learnable constants, in its order (the ``hp``
    argument of the generated code), or None for a program without them.

    >>> import ntksym
    >>> a = ntksym.loads_spec('name = "m"\\ninput = { shape = [3] }\\n[[layer]]\\n'
    ...                       'kind = "dense"\\nweight_var = { value = 2.0, learn = true }\\n')
    >>> hyper_values(a.with_hyperparameters({"weight_var_dense_0": 3.0}), program(a))
    array([3.])
    """
    if not prog.hyperparameters:
        return None
    values = arch.spec.hyperparameters
    return np.array([values[h.name] for h in prog.hyperparameters], dtype=np.float64)


def _compile_cpu(prog, arch=None, per_layer=False, gradient=False):
    from ntksym.codegen.generate import compile_program  # every input kind
    return compile_program(prog, source=None if arch is None else
                           cpu_source(arch, per_layer, gradient))


def _compile_cuda(prog, dtype):
    from ntksym.codegen.cuda import compile_cuda_program
    return compile_cuda_program(prog, dtype)


def _compile_cuda_slices(prog, dtype, shared_bytes):
    from ntksym.codegen.cuda_slices import compile_cuda_image_program
    return compile_cuda_image_program(prog, dtype, shared_bytes)


#: target -> compile(program, **options) -> module
TARGETS = {"cpu": _compile_cpu, "cuda": _compile_cuda, "cuda-slices": _compile_cuda_slices}


def compiled(arch, per_layer=False, target="cpu", gradient=False, **options):
    """The generated module of ``arch`` for ``target`` ("cpu", "cuda" with ``dtype``,
    "cuda-slices" with ``dtype`` and ``shared_bytes``), memoized per process by (spec
    structure, per_layer, gradient, target, options): sympy's derivation and CSE run once
    however many calls, tiles or values of learnable constants follow; Numba then loads
    machine code from its disk cache."""
    key = (arch.spec.structure_hash, bool(per_layer), bool(gradient), target,
           tuple(sorted(options.items())))
    if key not in _MODULES:
        if target == "cpu":     # the source may be generated already (compiled_on_disk)
            _MODULES[key] = _compile_cpu(program(arch, per_layer, gradient), arch, per_layer,
                                         gradient)
        else:
            _MODULES[key] = TARGETS[target](program(arch, per_layer, gradient), **options)
    return _MODULES[key]


def output_names(arch, kind, per_layer=False, gradient=False):
    """The program outputs a request returns: ["ntk"], ["nngp", "ntk"], or per-layer terms;
    ``gradient``: then the derivative of each with respect to every learnable constant
    (``dntk/d[weight_var]`` ...), in the spec's order."""
    if kind not in KINDS:
        raise DataError(f"unknown kernel kind {kind!r}; valid: {', '.join(KINDS)}")
    names = ["nngp", "ntk"] if kind == "both" else [kind]
    if per_layer:
        names += [o for o in program(arch, True).outputs if o.startswith("ntk[")]
    if gradient:
        from ntksym.ir.hyper import tangent_output
        hypers = program(arch, per_layer, True).gradient
        names += [tangent_output(n, h) for n in names for h in hypers]
    return names


# ------------------------------------------------------------------ the finisher

def fill_diagonals(out, diagonal, select):
    """out[q, i, i] = diagonal[i, select[q]]: the exact per-example rule on K(X, X)."""
    idx = np.arange(out.shape[1])
    for q, s in enumerate(select):
        out[q, idx, idx] = diagonal[:, s]


def finish(out, names, dtype, diagonal=None, select=None, source=None,
           off_diagonal_checked=False):
    """The result of a request from a target's stacked outputs ``out`` (len(names), n1, n2, ...):
    fill the exact diagonals (when ``diagonal`` is given), check that everything is finite
    (DataError naming the pair and, with ``source``, the layer) and warn of underflow
    (:mod:`ntksym.engine.diagnose`), store in ``dtype``; one array for one name, else a dict
    name -> array.  ``off_diagonal_checked``: the caller found every entry off the diagonal
    normal and in range (the generated mirror's scan), so only the diagonals are scanned unless
    they fail."""
    from ntksym.engine.diagnose import check_result
    if diagonal is not None:
        fill_diagonals(out, diagonal, select)
    check_result(out, names, dtype, source, off_diagonal_checked)
    res = {n: (out[q] if out.dtype == np.dtype(dtype) else out[q].astype(dtype))
           for q, n in enumerate(names)}
    return res[names[0]] if len(names) == 1 else res
