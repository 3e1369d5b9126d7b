"""The NumPy tier: small problems evaluated without compiling.

The first kernel of a new spec spends 15-60 s in Numba's JIT before its first pair; a problem
of a few thousand pairs needs milliseconds of arithmetic.  Below a size where compiling costs
more than it saves, the engine evaluates the same KernelProgram, the same sympy expressions,
lowered to vectorized NumPy over arrays of pairs instead (:mod:`ntksym.engine.trace`, the
interpreter that also replays one pair to diagnose a NaN):

* vector (MLP) programs: the diagonal rules on the n examples, then the cross rules on chunks
  of pairs (only the upper triangle of K(X, X)), each elementwise step one lambdified NumPy
  call over the chunk;
* image programs: every state a stack of pixel-pair arrays (pairs, H, W, H, W); patch sums and
  pooling as sums of strided slices, global average and flatten as reductions; the per-pixel
  diagonals from the pairs (x, x), once per image.  A ``flatten`` readout after stride-1
  patch sums needs only the pixel diagonal (p, p) of every state (CNTK-V): those programs
  carry (pairs, H, W) alone (:class:`~ntksym.engine.trace.DiagonalSlice`).  Chunks of pairs
  are sized to stay within :data:`BATCH_BYTES`, each state dropped after its last reader.

Sequence (RNN) programs are not lowered: ``engine="auto"`` always compiles them and
``engine="numpy"`` refuses.  :func:`choose_engine` is the automatic choice, from the cost
model :func:`numpy_seconds` (operation counts times per-element costs measured on one core;
documented in docs/startup.md) and whether the compiled module is already on disk.

Agreement: the same float64 expressions in another order of evaluation; tests check 1e-12
of the largest entry against the compiled tier on every shipped vector and image spec.

>>> import numpy as np, ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [2] }\\n'
...                          '[[layer]]\\nkind = "dense"\\nactivation = "relu"\\n'
...                          '[[layer]]\\nkind = "dense"\\n')
>>> K = ntksym.kernel(arch, np.eye(2), engine="numpy")
>>> bool(np.allclose(K, ntksym.kernel(arch, np.eye(2), engine="compiled")))
True
"""

from __future__ import annotations

import time

import numpy as np

from ntksym.engine.common import ENGINES  # noqa: F401  (re-exported)
from ntksym.engine.trace import (
    DiagonalSlice,
    PixelPairs,
    assign,
    diagonal_reads,
    diagonal_slice_fits,
    function_namespace,
    image_outputs,
    image_steps,
    last_reads,
    value_of,
)
from ntksym.errors import DataError

#: pairs per chunk of a vector program (a few MB per state entry)
VECTOR_CHUNK = 1 << 16
#: memory of the states of one chunk of image pairs
BATCH_BYTES = 256 << 20


_SUPPORTED: dict = {}


def supported(prog):
    """None when the NumPy tier evaluates ``prog``, else why not (one phrase)."""
    if prog.input_kind not in ("vector", "image"):
        return f"{prog.input_kind} programs are not lowered to NumPy"
    key = (id(prog), prog.spec_hash, prog.per_layer)
    if key not in _SUPPORTED:
        why = None
        try:
            for a in prog.cross_assignments() + prog.diag_assignments():
                function_namespace(a.expr)
        except KeyError as e:
            why = f"the function {e.args[0]} has no NumPy implementation"
        _SUPPORTED[key] = why
    return _SUPPORTED[key]


def numpy_kernel(prog, X, X2, names):
    """(out, diagonal, select) for :func:`ntksym.engine.common.finish`, like the compiled
    evaluators: out is the stacked (len(names), n1, n2) float64 result with its diagonal still
    to fill (``diagonal`` is None for a cross block K(X, X2)).  X, X2: validated float64 arrays
    (:func:`ntksym.engine.common.check_data`)."""
    why = supported(prog)
    if why is not None:
        raise DataError(f"--engine numpy: {why}; use --engine compiled (engine='compiled')")
    if prog.input_kind == "vector":
        return _vector(prog, X, X2, names)
    return _image(prog, X, X2, names)


def _pairs(n1, n2, symmetric, chunk):
    """(rows, cols) index arrays of at most ``chunk`` pairs: j > i when symmetric."""
    if symmetric:
        I, J = np.triu_indices(n1, 1)
        for k in range(0, len(I), chunk):
            yield I[k:k + chunk], J[k:k + chunk]
        return
    rows = max(1, chunk // max(n2, 1))
    for r in range(0, n1, rows):
        I, J = np.indices((min(rows, n1 - r), n2))
        yield (I + r).ravel(), J.ravel()


def _stack_outputs(prog, env, n):
    """(n, len(outputs)) exact diagonal outputs K(x, x) from a diagonal environment."""
    return np.stack([np.broadcast_to(np.asarray(value_of(e, env), dtype=float), (n,))
                     for e in prog.diag_outputs.values()], axis=1)


# ------------------------------------------------------------------ vector programs

def _vector_diagonals(prog, sq):
    env = {prog.input_diag.name: sq}
    for s in prog.steps:
        assign(s.diag, env)
    return env


def _vector(prog, X, X2, names):
    outs = list(prog.outputs)
    select = np.array([outs.index(o) for o in names], dtype=np.int64)
    scale = float(prog.input_scale)
    n1 = X.shape[0]
    ex = _vector_diagonals(prog, np.einsum("ij,ij->i", X, X) / scale)
    O1 = _stack_outputs(prog, ex, n1)
    symmetric = X2 is None
    if symmetric:
        G, ey = X @ X.T, ex
    else:
        G, ey = X @ X2.T, _vector_diagonals(prog, np.einsum("ij,ij->i", X2, X2) / scale)
    G /= scale
    n2 = G.shape[1]
    reads = [s.name for s in prog.diag_symbols_used_by_cross()]
    dx = {r: np.broadcast_to(np.asarray(ex[r], dtype=float), (n1,)) for r in reads}
    dy = {r: np.broadcast_to(np.asarray(ey[r], dtype=float), (n2,)) for r in reads}
    out = np.empty((len(names), n1, n2))
    for i, j in _pairs(n1, n2, symmetric, VECTOR_CHUNK):
        env = {prog.input_cross.name: G[i, j]}
        for r in reads:
            env[r], env[r[:-3] + "_yy"] = dx[r][i], dy[r][j]
        for s in prog.steps:
            assign(s.cross, env)
        for q, o in enumerate(names):
            v = value_of(prog.outputs[o], env)
            out[q, i, j] = v
            if symmetric:
                out[q, j, i] = v
    return out, (O1 if symmetric else None), select


# ------------------------------------------------------------------ image programs

def peak_states(prog):
    """The most pixel-pair states alive at once when each is dropped after its last reader."""
    last = last_reads(prog)
    alive = {prog.input_cross.name}
    peak = 1
    for k, s in enumerate(prog.steps):
        targets = [o.name for o in s.outputs] if hasattr(s, "op") else \
            [a.target.name for a in s.cross]
        alive |= {t for t in targets if not t.endswith("_xx")}
        peak = max(peak, len(alive))
        alive = {n for n in alive if last.get(n, -1) > k}
    return peak


def layout_of(prog):
    """How the NumPy tier holds image states: :class:`~ntksym.engine.trace.DiagonalSlice`
    where it is exact (flatten readouts), else :class:`~ntksym.engine.trace.PixelPairs`."""
    return DiagonalSlice if diagonal_slice_fits(prog) else PixelPairs


def _batch(prog, input_shape):
    P = int(input_shape[0] * input_shape[1])
    grid = P if layout_of(prog) is DiagonalSlice else P * P
    per_pair = 8 * grid * (peak_states(prog) + 3)
    return max(1, min(VECTOR_CHUNK, int(BATCH_BYTES // per_pair)))


def _image_diagonals(prog, X, batch, layout):
    """(per-pixel diagonals {name: (n, H, W)}, exact outputs (n, len(outputs)))."""
    need = sorted(diagonal_reads(prog))
    parts, outs = {n: [] for n in need}, []
    for k in range(0, X.shape[0], batch):
        xb = X[k:k + batch]
        env, dx = {}, {}
        for _ in image_steps(prog, xb, xb, env, dx, drop=True, layout=layout):
            pass
        for n in need:
            parts[n].append(dx[n])
        outs.append(np.stack(image_outputs(prog, env, list(prog.outputs), layout), axis=1))
    return {n: np.concatenate(v) for n, v in parts.items()}, np.concatenate(outs)


def _image(prog, X, X2, names):
    from ntksym.engine.image import fill_duplicates
    outs = list(prog.outputs)
    select = np.array([outs.index(o) for o in names], dtype=np.int64)
    layout = layout_of(prog)
    batch = _batch(prog, X.shape[1:])
    D1, O1 = _image_diagonals(prog, X, batch, layout)
    symmetric = X2 is None
    Xb, D2 = (X, D1) if symmetric else (X2, _image_diagonals(prog, X2, batch, layout)[0])
    n1, n2 = X.shape[0], Xb.shape[0]
    out = np.zeros((len(names), n1, n2))
    for i, j in _pairs(n1, n2, symmetric, batch):
        env = {}
        for _ in image_steps(prog, X[i], Xb[j], env, {n: d[i] for n, d in D1.items()},
                             {n: d[j] for n, d in D2.items()}, drop=True, layout=layout):
            pass
        for q, v in enumerate(image_outputs(prog, env, names, layout)):
            out[q, i, j] = v
            if symmetric:
                out[q, j, i] = v
    fill_duplicates(out, X, Xb, symmetric, O1[:, select])
    return out, (O1 if symmetric else None), select


# ------------------------------------------------------------------ the choice

class Choice:
    """The engine a request runs on and why: ``engine`` ("numpy" or "compiled"), ``pairs``,
    ``numpy_seconds`` (the cost model's estimate, None where not lowered), ``cached``
    (compiled module on disk: True/False, None when not looked up), ``reason``."""

    def __init__(self, engine, pairs, numpy_seconds=None, cached=None, reason=""):
        self.engine, self.pairs = engine, pairs
        self.numpy_seconds, self.cached, self.reason = numpy_seconds, cached, reason

    def __repr__(self):
        return f"Choice({self.engine!r}, pairs={self.pairs}, reason={self.reason!r})"


def choose_engine(arch, prog, n1, n2, symmetric, engine="auto", device="cpu", per_layer=False):
    """Which engine evaluates a request: ``engine`` when forced, else NumPy when
    :func:`numpy_seconds` is below what compiling costs (:data:`COMPILED_OVERHEAD_SECONDS`
    when the compiled module is on disk, :data:`COLD_COMPILE_SECONDS` when it is not) and the
    NumPy calls of the same program in this process have not yet cost that much together
    (then it compiles: reason "repeated")."""
    pairs = n1 * (n1 + 1) // 2 if symmetric else n1 * n2
    if engine == "compiled" or device != "cpu":
        return Choice("compiled", pairs, reason="asked" if engine == "compiled" else device)
    why = supported(prog)
    if engine == "numpy":
        return Choice("numpy", pairs, reason="asked")
    if why is not None:
        return Choice("compiled", pairs, reason=why)
    est = numpy_seconds(prog, arch.input_shape, n1, n2, symmetric)
    if est <= COMPILED_OVERHEAD_SECONDS:
        return Choice("numpy", pairs, est, reason="small")
    from ntksym.engine.common import compiled_on_disk
    cached = compiled_on_disk(arch, per_layer)
    limit = COMPILED_OVERHEAD_SECONDS if cached else COLD_COMPILE_SECONDS
    # rent or buy: once this process has spent (by the estimate) as much on NumPy calls of the
    # program as compiling it costs, compile -- repeated calls then cost at most about twice
    # the best choice made knowing the future
    key = (prog.spec_hash, per_layer)
    if est <= limit and _NUMPY_SPENT.get(key, 0.0) + est > limit:
        return Choice("compiled", pairs, est, cached, reason="repeated")
    if est <= limit:
        _NUMPY_SPENT[key] = _NUMPY_SPENT.get(key, 0.0) + est
        return Choice("numpy", pairs, est, cached, reason="small")
    return Choice("compiled", pairs, est, cached, reason="large")


#: estimated seconds of NumPy-tier work per (program, per_layer) in this process
_NUMPY_SPENT: dict = {}


# ------------------------------------------------------------------ the cost model

#: what the compiled tier costs beyond its arithmetic when its module is on disk: importing
#: Numba and loading the machine code (about 1 s on one core)
COMPILED_OVERHEAD_SECONDS = 1.0
#: the least a cold compilation costs (15-60 s measured for the shipped specs)
COLD_COMPILE_SECONDS = 10.0
#: seconds per (pair x operation) of a vector program's cross expressions, per (pixel pair x
#: operation) of an image program's steps (window sums included), and per quadrature
#: expectation evaluated by the pure-NumPy rule; measured on the 2-core test machine under
#: load (benchmarks/bench_startup.py), so on the high side: a larger estimate only compiles
#: earlier
VECTOR_OP_SECONDS = 20e-9
IMAGE_OP_SECONDS = 8e-9
QUADRATURE_SECONDS = 40e-3
#: per elementwise assignment and chunk: a lambdified call's own cost
CALL_SECONDS = 20e-6

_COSTS: dict = {}


def program_costs(prog):
    """(element operations, quadrature evaluations, assignments) of one pair recursion: sympy's
    operation count of every cross expression times the pixel pairs of its grid (one for
    vectors), plus the additions of window sums and reductions; memoized per program."""
    key = (id(prog), prog.spec_hash, prog.per_layer)
    if key in _COSTS:
        return _COSTS[key]
    import sympy as sp

    from ntksym.ir.functions import QuadratureExpectationBase
    from ntksym.ir.ops import PatchSum, WindowOp
    ops = quad = calls = 0
    square = 1 if layout_of(prog) is DiagonalSlice else 2     # pixels, or pixel pairs
    for s in prog.steps:
        op = getattr(s, "op", None)
        if op is not None:
            cross = sum(1 for o in s.outputs if not o.name.endswith("_xx"))
            H, W = op.in_hw if hasattr(op, "in_hw") else (1, 1)
            if isinstance(op, WindowOp):
                Ho, Wo = op.out_hw
                k = op.filter[0] * op.filter[1]
                ops += cross * (Ho * Wo) ** square * (k if isinstance(op, PatchSum) else k * k)
            else:
                ops += cross * (H * W) ** square
            continue
        for a in s.cross:
            h, w = prog.shapes.get(a.target.name, (1, 1)) if prog.input_kind == "image" \
                else (1, 1)
            P2 = (h * w) ** square
            ops += P2 * int(sp.count_ops(a.expr))
            quad += P2 * sum(1 for f in a.expr.atoms(sp.Function)
                             if isinstance(f, QuadratureExpectationBase))
            calls += 1
    _COSTS[key] = ops, quad, calls
    return ops, quad, calls


def numpy_seconds(prog, input_shape, n1, n2, symmetric):
    """Estimated seconds of the NumPy tier on an n1 x n2 request: pair recursions (the pairs of
    the upper triangle, or all n1 n2, plus one per example for the diagonals) times the
    operation counts of :func:`program_costs` times the per-operation costs above.

    Accuracy: 1.1 to 4.6 times the measured time on the shipped specs (docs/startup.md): on the
    high side on purpose, and it only has to tell milliseconds from minutes."""
    ops, quad, calls = program_costs(prog)
    pairs = n1 * (n1 - 1) // 2 if symmetric else n1 * n2
    recursions = pairs + n1 + (0 if symmetric else n2)
    per_op = IMAGE_OP_SECONDS if prog.input_kind == "image" else VECTOR_OP_SECONDS
    chunks = 1 + recursions // VECTOR_CHUNK if prog.input_kind == "vector" else recursions
    return recursions * (ops * per_op + quad * QUADRATURE_SECONDS) + chunks * calls * CALL_SECONDS


def choice_line(choice):
    """The one line ``ntksym kernel`` prints about a :class:`Choice`, e.g. "4950 pairs:
    evaluated with NumPy (no compile, about 0.01 s); --engine compiled to compile"."""
    head = f"{choice.pairs} pairs: "
    if choice.engine == "numpy":
        about = "" if choice.numpy_seconds is None else \
            f", estimated {_seconds(choice.numpy_seconds)}"
        return head + f"evaluated with NumPy (no compile{about}); --engine compiled to compile"
    if choice.reason in ("asked", "gpu"):
        return head + "compiled program" + (" on the GPU" if choice.reason == "gpu" else "")
    if choice.numpy_seconds is None:
        return head + f"compiled program ({choice.reason})"
    if choice.reason == "repeated":
        return head + ("compiled program (earlier NumPy calls of this spec in this process "
                       "have cost about as much as compiling it); --engine numpy not to compile")
    state = "cached" if choice.cached else "compiling it once"
    return head + (f"compiled program ({state}; NumPy estimated "
                   f"{_seconds(choice.numpy_seconds)}); --engine numpy not to compile")


def _seconds(t):
    return f"{t:.2g} s" if t < 100 else f"{t / 60:.0f} min"


# ------------------------------------------------------------------ estimates without compiling

#: how many times faster the compiled program evaluates a pair than the NumPy tier, measured
#: on one thread by benchmarks/bench_startup.py ("speedups"): MLPs 2.8-5.6x, CNNs 3.6-19x (8x8
#: GAP 4x, 8x8 pool + flatten 12x, 32x32 flatten on the pixel diagonal 9-10x, 32x32 GAP 19x),
#: quadrature activations 13-50x; one factor per kind in the middle of its range, so an
#: estimate from it is within about 2.5x (docs/startup.md)
COMPILED_SPEEDUP = {"vector": 4.5, "image": 8.0, "quadrature": 25.0}
#: a cold compilation of a new spec, measured (benchmarks/bench_startup.py): about 15 s for
#: an MLP, 30-60 s for a CNN on the 2-core test machine
COMPILE_SECONDS = {"vector": 15.0, "image": 40.0, "sequence": 30.0}


def time_numpy(prog, X, X2, names, budget_s=0.5):
    """(seconds per pair of the NumPy tier, pairs timed): one block of rows x columns of the
    data, as large as the cost model says fits in ``budget_s`` (after a 1 x 1 call that
    lambdifies the expressions)."""
    cols_src = X if X2 is None else X2
    n = min(len(X), len(cols_src))
    b = 1
    while 2 * b <= n and numpy_seconds(prog, X.shape[1:], 2 * b, 2 * b, False) <= budget_s:
        b *= 2
    rows = X[:b]
    cols = cols_src[-b:] if X2 is None and len(X) >= 2 * b else cols_src[:b]
    numpy_kernel(prog, rows[:1], cols[:1], names)
    t = time.perf_counter()
    numpy_kernel(prog, rows, cols, names)
    return (time.perf_counter() - t) / (b * b), b * b


def compiled_estimate(prog, X, X2, names, budget_s=0.5):
    """(estimated seconds per pair of the compiled program, seconds to compile it, how): the
    NumPy tier timed on a sample (:func:`time_numpy`) divided by :data:`COMPILED_SPEEDUP`,
    and :data:`COMPILE_SECONDS`; nothing is compiled."""
    spp, timed = time_numpy(prog, X, X2, names, budget_s)
    _, quad, _ = program_costs(prog)
    kind = "quadrature" if quad else prog.input_kind
    how = (f"NumPy tier timed on {timed} pairs / {COMPILED_SPEEDUP[kind]:g} (the measured "
           f"speed-up of compiled {kind} programs; within about 2.5x), plus about "
           f"{COMPILE_SECONDS[prog.input_kind]:g} s to compile")
    return spp / COMPILED_SPEEDUP[kind], COMPILE_SECONDS[prog.input_kind], how
