"""The engine's entry: validate the data once, pick the compiled program and its target, run,
finish (diagonals, finite check, dtype).

>>> import numpy as np, ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [3] }\\n'
...                          '[[layer]]\\nkind = "dense"\\nactivation = "relu"\\n'
...                          '[[layer]]\\nkind = "dense"\\n')
>>> K = kernel(arch, np.eye(3), kind="nngp")
>>> K.shape
(3, 3)
"""

from __future__ import annotations

from ntksym.engine.common import (
    DEVICES,
    DTYPES,
    KINDS,
    announce_compile,
    check_data,
    check_options,
    compiled,
    finish,
    hyper_values,
    output_names,
    program,
)
from ntksym.engine.diagnose import Source
from ntksym.errors import DataError, DeviceError

__all__ = ["kernel", "evaluate", "check_data", "output_names", "KINDS", "DTYPES", "DEVICES"]


def kernel(arch, X, X2=None, kind="ntk", dtype="float64", per_layer=False, threads=None,
           progress=None, device="cpu", lengths=None, lengths2=None, engine="auto",
           gradient=False):
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
    engine : "auto" (default): small problems are evaluated without compiling, by the same
        program lowered to NumPy, larger ones by the compiled program
        (:func:`ntksym.engine.numpy_tier.choose_engine`); "numpy" or "compiled" force one.
        Specs with learnable constants are always compiled.
    gradient : also the derivatives of every returned kernel with respect to each learnable
        constant of the spec (docs/hyperparameters.md), as "d<name>/d[<constant>]" entries
        (e.g. "dnngp/d[weight_var]"), computed in the same fused pass as the kernel.

    Returns an (n1, n2) array for a single kind, else (or with ``gradient``) a dict
    name -> array.

    Example: ``K = ntksym.kernel(arch, X, kind="ntk")``.
    """
    check_options(dtype, device, engine, threads)
    if len(arch.input_shape) == 2:      # sequences (RNN specs): lengths, time-pair recursion
        if device != "cpu":
            raise DeviceError(f"the GPU backend runs MLP and convolutional specs only; "
                              f"'{arch.name}' has sequence inputs: use --device cpu")
        from ntksym.engine.sequence import check_sequences
        names = output_names(arch, kind, per_layer, gradient)
        prog = program(arch, per_layer)
        X, lengths = check_sequences(prog, X, arch.input_shape, lengths, "X")
        if X2 is not None:
            X2, lengths2 = check_sequences(prog, X2, arch.input_shape, lengths2, "X2")
        else:
            lengths2 = None
    else:
        if lengths is not None or lengths2 is not None:
            raise DataError("lengths apply to sequence inputs only")
        names = output_names(arch, kind, per_layer, gradient)
        X = check_data(X, arch.input_shape, "X")
        if X2 is not None:
            X2 = check_data(X2, arch.input_shape, "X2")
    out = evaluate(arch, X, X2, names, dtype=dtype, per_layer=per_layer, threads=threads,
                   progress=progress, device=device, lengths=lengths, lengths2=lengths2,
                   engine=engine, gradient=gradient)
    return out if isinstance(out, dict) or not gradient else {names[0]: out}


def evaluate(arch, X, X2, names, dtype="float64", per_layer=False, threads=None,
             progress=None, device="cpu", lengths=None, lengths2=None, offset=(0, 0),
             engine="auto", gradient=False):
    """:func:`kernel` on data already checked: X, X2 float64 C-contiguous arrays from
    :func:`~ntksym.engine.common.check_data` (or, for sequences,
    :func:`~ntksym.engine.sequence.check_sequences` with their lengths; lengths None means full
    length), ``names`` from :func:`~ntksym.engine.common.output_names`, options valid.  The
    unit of work of tiled runs, which check the whole data once (:mod:`ntksym.scale.tiles`);
    ``offset`` = (first row, first column) of the tile in the whole matrix, so that an error
    names the pair by its indices there.  ``engine``: "auto", "numpy" or "compiled" (see
    :func:`kernel`).  ``gradient``: evaluate the program with tangents (``names`` may then
    hold derivatives).
    """
    gradient = gradient or any(n.startswith("d") for n in names)
    prog = program(arch, per_layer, gradient)
    hp = hyper_values(arch, prog)
    source = Source(prog, X, X2, tuple(offset), hp)   # to name the layer of a NaN, inf ...
    if hp is not None:
        if engine == "numpy":
            raise DataError("the NumPy tier does not take learnable constants: use engine "
                            "'compiled' (or 'auto')")
        engine = "compiled"
    if device == "gpu" and engine != "numpy":
        if hp is not None:
            raise DeviceError("learnable constants (and their gradients) are evaluated on the "
                              "CPU only: use device='cpu' (--device cpu)")
        from ntksym.engine.gpu import gpu_kernel
        return finish(gpu_kernel(arch, X, X2, names, dtype=dtype, per_layer=per_layer),
                      names, dtype, source=source)
    try:
        if engine != "compiled":
            from ntksym.engine.numpy_tier import choose_engine, numpy_kernel
            n2 = len(X if X2 is None else X2)
            if choose_engine(arch, prog, len(X), n2, X2 is None, engine, device,
                             per_layer=per_layer).engine == "numpy":
                out, diagonal, select = numpy_kernel(prog, X, X2, names)
                return finish(out, names, dtype, diagonal, select, source=source)
        if threads:
            import numba
            numba.set_num_threads(int(threads))
        announce_compile(arch, per_layer, progress, gradient)
        mod = compiled(arch, per_layer, "cpu", gradient)
        checked = False           # the vector mirror checks the off-diagonal entries itself
        if prog.input_kind == "vector":
            from ntksym.engine.vector import vector_kernel
            out, diagonal, select, checked = vector_kernel(mod, X, X2, names, dtype, hp)
        elif prog.input_kind == "image":
            from ntksym.engine.image import image_kernel
            out, diagonal, select = image_kernel(mod, X, X2, names, progress=progress, hp=hp)
        elif prog.input_kind == "sequence":
            from ntksym.engine.sequence import sequence_kernel
            out = sequence_kernel(prog, mod, X, lengths, X2, lengths2, names, hp)
            diagonal = select = None          # the generated sequence module fills its own
        else:
            raise DataError(f"no evaluator for input kind {prog.input_kind!r}")
        return finish(out, names, dtype, diagonal, select, source=source,
                      off_diagonal_checked=checked)
    except MemoryError:
        n1, n2 = len(X), len(X if X2 is None else X2)
        raise DataError(f"not enough memory for the {n1} x {n2} kernel matrix "
                        f"({len(names)} kernel(s)); compute it in tiles on disk: "
                        "--tile 4096 -o OUT.npy (or --max-memory SIZE -o OUT.npy)") from None
