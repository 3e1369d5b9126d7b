"""A kernel program in NumPy float64: one pair replayed step by step, and the same rules on
arrays of pairs (the NumPy tier, :mod:`ntksym.engine.numpy_tier`).

The compiled kernels give only the final matrix; when an entry is NaN, inf or underflowed,
this module replays that one pair with the program's own sympy expressions (lambdified to
NumPy, the same float64 arithmetic) and reports the first step (node id) whose value went
wrong.  The cost is one pair: negligible beside the matrix.

* vector (MLP) programs: the diagonal rules per example, then the cross rules of the pair;
* image (CNN) programs: every state entry is a pixel-pair array (H, W, H, W); the structural
  steps (patch sums, pooling, global average, flatten) are dense NumPy contractions, and the
  per-pixel diagonals that cross expressions read (``*_xx``, ``*_yy``) come from the pair
  (x, x) evaluated the same way.  Programs whose pixel grid is large and whose activations need
  quadrature are not replayed (too slow per pixel pair in Python): :func:`trace_pair` returns
  None, as it does for sequence programs.

Every rule works on arrays of pairs as well as on one pair (a leading batch axis broadcasts
through the lambdified expressions and the structural contractions): :func:`assign`,
:func:`structural`, :func:`pixel_diagonal`, :func:`image_steps` are what the NumPy tier
evaluates small problems with, so the diagnosis and the uncompiled kernels share one
interpreter.

>>> import numpy as np, ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [2] }\\n'
...                          '[[layer]]\\nkind = "dense"\\nactivation = "relu"\\n'
...                          '[[layer]]\\nkind = "dense"\\n')
>>> steps = list(trace_pair(arch.derive(), np.array([1.0, 0.0]), np.array([0.0, 1.0])))
>>> [(s.node, s.side) for s in steps][:3]
[('input', 'x'), ('input', 'y'), ('input', 'pair')]
>>> K = ntksym.kernel(arch, np.eye(2))
>>> bool(np.isclose(steps[-1].values["Theta_3"], K[0, 1]))    # the last step is the ntk
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from ntksym.ir.functions import QuadratureExpectationBase
from ntksym.ir.ops import AvgPool, Flatten, GlobalAvg, PatchSum, SumPool
from ntksym.ir.program import Structural

#: image programs with quadrature activations are replayed only up to this many pixel pairs
MAX_QUADRATURE_PAIRS = 64


@dataclass
class Step:
    """The values a step assigned: ``side`` is "x" / "y" (the diagonal rule of one example),
    or "pair" (the cross rule); ``values`` maps symbol names to float64 arrays."""

    node: str
    description: str
    side: str
    values: dict


# ------------------------------------------------------------------ expressions -> numpy

def clipped_correlation(c, a, b):
    """The clipped correlation as the generated code computes it (0 for a zero variance)."""
    with np.errstate(all="ignore"):
        d = np.sqrt(np.multiply(a, b, dtype=float))
        r = np.divide(c, d, out=np.zeros(np.broadcast(c, d).shape), where=d > 0)
    return np.clip(r, -1.0, 1.0, out=r)


def _quadrature(cls):
    """The expectation class as a vectorized NumPy function, by the method of the generated
    code (``cls.numeric``: quadrature, or the Hermite series with its quadrature fallback)."""
    def one(a, b=None, c=None):
        try:
            with np.errstate(all="ignore"):
                return cls.numeric(float(a), None if b is None else float(b),
                                   None if c is None else float(c))
        except (ArithmeticError, ValueError):
            return np.nan
    return np.vectorize(one, otypes=[float])


def function_namespace(expr):
    """{name: NumPy implementation} of the IR functions inside ``expr`` (sympy's own functions
    lambdify by themselves); KeyError naming a function that has none.

    An IR function class gives its NumPy implementation as a ``numpy`` attribute (a callable
    over arrays); ``ClippedCorrelation`` and the quadrature expectations are known here."""
    ns = {"ClippedCorrelation": clipped_correlation}
    for f in expr.atoms(sp.Function):
        cls = type(f)
        if isinstance(f, QuadratureExpectationBase):
            ns[cls.__name__] = _quadrature(cls)
        elif getattr(cls, "numpy", None) is not None:
            ns[cls.__name__] = cls.numpy
        elif cls.__name__ not in ns and not cls.__module__.startswith("sympy."):
            raise KeyError(cls.__name__)
    return ns


_FUNCS: dict = {}


def numeric(expr, symbols):
    """expr as a NumPy function of ``symbols`` over arrays (memoized by expression)."""
    key = (expr, tuple(symbols))
    fn = _FUNCS.get(key)
    if fn is None:
        fn = _FUNCS[key] = sp.lambdify(symbols, expr, modules=[function_namespace(expr),
                                                               "numpy"], cse=True)
    return fn


def value_of(expr, env):
    """expr evaluated on the arrays of ``env`` (symbol name -> array)."""
    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    with np.errstate(all="ignore"):
        return numeric(expr, syms)(*[env[s.name] for s in syms])


def hyper_env(prog, hp=None):
    """{name: value} of the program's learnable constants for the replay: ``hp``, the array
    the generated code received (in ``prog.hyperparameters`` order; the spec's current values,
    :func:`ntksym.engine.common.hyper_values`), so that the replay evaluates the numbers the
    kernel did; None: the values the program was derived with.

    >>> import ntksym
    >>> a = ntksym.loads_spec('name = "m"\\ninput = { shape = [2] }\\n[[layer]]\\n'
    ...                       'kind = "dense"\\nweight_var = { value = 2.0, learn = true }\\n')
    >>> hyper_env(a.derive()), hyper_env(a.derive(), np.array([3.0]))
    ({'weight_var_dense_0': 2.0}, {'weight_var_dense_0': 3.0})
    """
    hs = prog.hyperparameters
    values = list(hs.values()) if hp is None else list(np.asarray(hp, dtype=float))
    if len(values) != len(hs):
        raise ValueError(f"{len(values)} hyperparameter values for {len(hs)} constants")
    return {h.name: float(v) for h, v in zip(hs, values)}


def assign(assigns, env):
    """Evaluate assignments in order into env; returns the new values (arrays)."""
    new = {}
    for a in assigns:
        env[a.target.name] = new[a.target.name] = np.asarray(value_of(a.expr, env), dtype=float)
    return new


# ------------------------------------------------------------------ vector programs

def _trace_vector(prog, x, y, hyper):
    scale = float(prog.input_scale)
    ex = {prog.input_diag.name: np.float64(x @ x / scale)}
    ey = {prog.input_diag.name: np.float64(y @ y / scale)}
    pair = {prog.input_cross.name: np.float64(x @ y / scale)}
    yield from (Step("input", "input", "x", dict(ex)), Step("input", "input", "y", dict(ey)),
                Step("input", "input", "pair", dict(pair)))
    for env in (ex, ey, pair):          # read by the rules, never reported as a step's value
        env.update(hyper)
    for s in prog.steps:
        yield Step(s.node, s.description, "x", assign(s.diag, ex))
        yield Step(s.node, s.description, "y", assign(s.diag, ey))
        env = dict(pair)
        env.update({k: v for k, v in ex.items() if k.endswith("_xx")})
        env.update({k[:-3] + "_yy": v for k, v in ey.items() if k.endswith("_xx")})
        new = assign(s.cross, env)
        pair.update(new)
        yield Step(s.node, s.description, "pair", new)


# ------------------------------------------------------------------ image programs

def _pieces(n_in, n_out, q, s, pad, circular):
    """Per window offset a, the output index i reads input s*i + a - pad (mod n_in when
    circular; nothing outside): a list of (output slice, input slice) runs per offset."""
    per_offset = []
    for a in range(q):
        r = s * np.arange(n_out) + a - pad
        if circular:
            r = r % n_in
        runs, start = [], None
        for i in range(n_out + 1):
            ok = i < n_out and 0 <= r[i] < n_in
            if start is not None and (not ok or r[i] != r[i - 1] + s):
                runs.append((slice(start, i), slice(r[start], r[i - 1] + 1, s)))
                start = None
            if ok and start is None:
                start = i
        per_offset.append(runs)
    return per_offset


def _window(A, op):
    """A patch sum (one offset moves both pixels) or a pooling window (independent offsets),
    as sums of strided slices of the input pixel pairs (the last four axes of A)."""
    (H, W), (Ho, Wo) = op.in_hw, op.out_hw
    R = _pieces(H, Ho, op.filter[0], op.stride[0], op.pads[0], op.circular)
    C = _pieces(W, Wo, op.filter[1], op.stride[1], op.pads[1], op.circular)
    same = isinstance(op, PatchSum)
    out = np.zeros(A.shape[:-4] + (Ho, Wo, Ho, Wo))
    offsets = [(a, a2, b, b2) for a in range(len(R)) for a2 in range(len(R))
               for b in range(len(C)) for b2 in range(len(C))
               if not same or (a == a2 and b == b2)]
    for a, a2, b, b2 in offsets:
        for oi, si in R[a]:
            for oj, sj in C[b]:
                for oi2, si2 in R[a2]:
                    for oj2, sj2 in C[b2]:
                        out[..., oi, oj, oi2, oj2] += A[..., si, sj, si2, sj2]
    if isinstance(op, AvgPool):
        out /= float(op.filter[0] * op.filter[1]) ** 2
    return out


def structural(A, op):
    """An image structural op on pixel-pair arrays A (..., H, W, H, W)."""
    if isinstance(op, (PatchSum, AvgPool, SumPool)):
        return _window(A, op)
    lead = A.shape[:-4]
    if isinstance(op, GlobalAvg):
        return A.mean(axis=(-4, -3, -2, -1)).reshape(lead + (1, 1, 1, 1))
    if isinstance(op, Flatten):
        H, W = A.shape[-4:-2]
        return (np.einsum("...ijij->...", A) / (H * W)).reshape(lead + (1, 1, 1, 1))
    raise NotImplementedError(type(op).__name__)


def pixel_diagonal(A):
    """The per-pixel diagonal A[..., p, p] of pixel-pair arrays A (..., H, W, H, W)."""
    return np.einsum("...ijij->...ij", A)


class PixelPairs:
    """Image states as pixel-pair arrays (..., H, W, H, W): every program."""

    axes = 4

    @staticmethod
    def gram(x, y, scale):
        return np.einsum("...hwc,...klc->...hwkl", x, y) / scale

    structural = staticmethod(structural)
    pixel_diagonal = staticmethod(pixel_diagonal)

    @staticmethod
    def grid(H, W):
        return (H, W, H, W)

    @staticmethod
    def side_x(d):
        return d[..., :, :, None, None]

    @staticmethod
    def side_y(d):
        return d[..., None, None, :, :]


class DiagonalSlice:
    """Image states as their pixel diagonals (..., H, W), the entries (p, p) alone: exact for
    the programs whose readout is ``flatten`` after stride-1 patch sums only (a patch sum
    moves both pixels of a pair by one offset, so entries (p, p) are computed from entries
    (p, p) alone, and flatten reads nothing else; :func:`diagonal_slice_fits`).  A pair then
    costs O(L P q^2) instead of O(L P^2 q^2), as on the compiled slice schedule."""

    axes = 2

    @staticmethod
    def gram(x, y, scale):
        return np.einsum("...hwc,...hwc->...hw", x, y) / scale

    @staticmethod
    def structural(A, op):
        if isinstance(op, PatchSum):
            (H, W), (Ho, Wo) = op.in_hw, op.out_hw
            R = _pieces(H, Ho, op.filter[0], 1, op.pads[0], op.circular)
            C = _pieces(W, Wo, op.filter[1], 1, op.pads[1], op.circular)
            out = np.zeros(A.shape[:-2] + (Ho, Wo))
            for rows in R:
                for cols in C:
                    for oi, si in rows:
                        for oj, sj in cols:
                            out[..., oi, oj] += A[..., si, sj]
            return out
        if isinstance(op, Flatten):
            return A.mean(axis=(-2, -1)).reshape(A.shape[:-2] + (1, 1))
        raise NotImplementedError(type(op).__name__)

    @staticmethod
    def pixel_diagonal(A):
        return A

    @staticmethod
    def grid(H, W):
        return (H, W)

    @staticmethod
    def side_x(d):
        return d

    side_y = side_x


def diagonal_slice_fits(prog):
    """Whether :class:`DiagonalSlice` evaluates ``prog``: an image program whose structural
    steps are stride-1 patch sums, then a ``flatten`` readout, then per-pair scalars."""
    if prog.input_kind != "image":
        return False
    steps = [s for s in prog.steps if isinstance(s, Structural)]
    if not steps or not isinstance(steps[-1].op, Flatten):
        return False
    if not all(isinstance(s.op, PatchSum) and s.op.is_stride_one for s in steps[:-1]):
        return False
    after = prog.steps[prog.steps.index(steps[-1]) + 1:]
    return all(prog.shapes.get(a.target.name, (1, 1)) == (1, 1)
               for s in after if not isinstance(s, Structural) for a in s.cross)


def diagonal_reads(prog):
    """Names of the states whose per-pixel diagonals cross expressions read (``*_xx``, ``*_yy``)."""
    return {s.name[:-3] for a in prog.cross_assignments() for s in a.expr.free_symbols
            if s.name.endswith(("_xx", "_yy"))}


def last_reads(prog):
    """{state name: index of the last step reading it} (len(steps) for the outputs' states)."""
    last = {}
    for k, s in enumerate(prog.steps):
        if isinstance(s, Structural):
            reads = [i for i in s.inputs if isinstance(i, sp.Symbol)]
        else:
            reads = [sym for a in s.cross for sym in a.expr.free_symbols]
        for sym in reads:
            last[sym.name] = k
    for e in prog.outputs.values():
        for sym in e.free_symbols:
            last[sym.name] = len(prog.steps)
    return last


def image_steps(prog, x, y, env, dx=None, dy=None, drop=False, layout=PixelPairs,
                hyper=None):
    """Yield the steps of the cross recursion of the pairs (x, y) on pixel-pair arrays, filling
    ``env`` (name -> (..., H, W, H, W), or (..., H, W) with ``layout=DiagonalSlice``); x, y:
    images (..., H, W, C), leading axes broadcast (one pair, or a batch of pairs).

    ``dx``, ``dy``: {state name: per-pixel diagonal (..., H, W)} of the states of (x, x) and
    (y, y) that cross expressions read (``*_xx``, ``*_yy``).  With ``dx`` a dict and ``dy``
    None, the pairs are (x, x): those diagonals are taken from the states as they are computed
    and stored into ``dx`` (a caller may read it in lockstep, as the trace does).
    ``drop``: forget each state after its last reader (the memory of a batch of pairs).
    ``hyper``: {name: value} of the learnable constants (:func:`hyper_env`).
    """
    own = dy is None
    if own:
        dx = {} if dx is None else dx
        dy = dx
        need = diagonal_reads(prog)
    last = last_reads(prog) if drop else {}

    def record(names):
        if own:
            for n in names:
                if n in need:
                    dx[n] = layout.pixel_diagonal(env[n])

    s0 = prog.input_cross.name
    env[s0] = layout.gram(x, y, float(prog.input_scale))
    record([s0])
    yield Step("input", "input", "pair", {s0: env[s0]})
    for k, s in enumerate(prog.steps):
        if isinstance(s, Structural):
            new = {}
            with np.errstate(all="ignore"):
                for i, o in zip(s.inputs, s.outputs):
                    if o.name.endswith("_xx") or getattr(i, "name", "").endswith("_xx"):
                        continue            # diagonals come from the pairs (x, x)
                    if isinstance(i, sp.Symbol):
                        if i.name not in env:
                            continue
                        A = env[i.name]
                    else:                       # a constant entry: materialize it
                        lead = np.broadcast(x[..., 0, 0, 0], y[..., 0, 0, 0]).shape
                        A = np.full(lead + layout.grid(*s.op.in_hw), float(i))
                    new[o.name] = env[o.name] = layout.structural(A, s.op)
        else:
            local = dict(env)
            local.update(hyper or {})
            for a in s.cross:
                for sym in a.expr.free_symbols:
                    n = sym.name
                    if n.endswith("_xx"):
                        local[n] = layout.side_x(dx[n[:-3]])
                    elif n.endswith("_yy"):
                        local[n] = layout.side_y(dy[n[:-3]])
            new = assign(s.cross, local)
            env.update(new)
        record(new)
        yield Step(s.node, s.description, "pair", new)
        if drop:
            for n in [n for n in env if last.get(n, -1) <= k]:
                del env[n]


def image_outputs(prog, env, names, layout=PixelPairs):
    """The outputs ``names`` of the pairs whose final states are in ``env``: arrays over the
    leading (batch) axes, read at the single pixel pair of each final state."""
    first = (0,) * layout.axes
    point = {n: v[(..., *first)] for n, v in env.items()}
    lead = next(iter(env.values())).shape[:-layout.axes] if env else ()
    out = []
    for n in names:
        v = np.asarray(value_of(prog.outputs[n], point), dtype=float)
        out.append(np.broadcast_to(v, lead) if v.shape != lead else v)
    return out


def _trace_image(prog, x, y, hyper):
    dx, dy, ex, ey, exy = {}, {}, {}, {}, {}
    runs = (("x", image_steps(prog, x, x, ex, dx, hyper=hyper)),
            ("y", image_steps(prog, y, y, ey, dy, hyper=hyper)),
            ("pair", image_steps(prog, x, y, exy, dx, dy, hyper=hyper)))
    for steps in zip(*(r for _, r in runs)):
        for (side, _), st in zip(runs, steps):
            yield Step(st.node, st.description, side, st.values)


def traceable(prog, input_shape):
    """Whether :func:`trace_pair` replays ``prog`` on inputs of ``input_shape``: vector
    programs, and image programs unless a large pixel grid meets quadrature activations."""
    if prog.input_kind == "vector":
        return True
    if prog.input_kind != "image":
        return False
    P = int(np.prod(input_shape[:2]))
    return P * P <= MAX_QUADRATURE_PAIRS or not any(
        isinstance(f, QuadratureExpectationBase)
        for a in prog.cross_assignments() for f in a.expr.atoms(sp.Function))


def trace_pair(prog, x, y, hp=None):
    """The steps of the recursion of one pair (x, y), in program order, with their values:
    a generator of :class:`Step` (sides "x", "y", "pair"), so a caller can stop at the first
    bad value; None where the program is not replayed (:func:`traceable`).  ``x``, ``y``:
    one example each, shaped as the spec's input; ``hp``: the values of the learnable
    constants the kernel was evaluated with (:func:`hyper_env`)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if not traceable(prog, x.shape):
        return None
    run = _trace_vector if prog.input_kind == "vector" else _trace_image
    return run(prog, x, y, hyper_env(prog, hp))
