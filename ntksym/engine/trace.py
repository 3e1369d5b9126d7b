"""Re-evaluate one pair of a kernel program step by step in NumPy float64, keeping every value.

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

def _corr(c, a, b):
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


_FUNCS: dict = {}


def _numeric(expr, symbols):
    """expr as a NumPy function of ``symbols`` (memoized by expression)."""
    key = (expr, tuple(symbols))
    fn = _FUNCS.get(key)
    if fn is None:
        ns = {"ClippedCorrelation": _corr}
        for f in expr.atoms(sp.Function):
            if isinstance(f, QuadratureExpectationBase):
                ns[type(f).__name__] = _quadrature(type(f))
        fn = _FUNCS[key] = sp.lambdify(symbols, expr, modules=[ns, "numpy"], cse=True)
    return fn


def _eval(assigns, env):
    """Evaluate assignments in order into (a copy of) env; returns the new values."""
    new = {}
    for a in assigns:
        syms = sorted(a.expr.free_symbols, key=lambda s: s.name)
        with np.errstate(all="ignore"):
            v = _numeric(a.expr, syms)(*[env[s.name] for s in syms])
        env[a.target.name] = new[a.target.name] = np.asarray(v, dtype=float)
    return new


# ------------------------------------------------------------------ vector programs

def _trace_vector(prog, x, y):
    scale = float(prog.input_scale)
    ex = {prog.input_diag.name: np.float64(x @ x / scale)}
    ey = {prog.input_diag.name: np.float64(y @ y / scale)}
    pair = {prog.input_cross.name: np.float64(x @ y / scale)}
    yield from (Step("input", "input", "x", dict(ex)), Step("input", "input", "y", dict(ey)),
                Step("input", "input", "pair", dict(pair)))
    for s in prog.steps:
        yield Step(s.node, s.description, "x", _eval(s.diag, ex))
        yield Step(s.node, s.description, "y", _eval(s.diag, ey))
        env = dict(pair)
        env.update({k: v for k, v in ex.items() if k.endswith("_xx")})
        env.update({k[:-3] + "_yy": v for k, v in ey.items() if k.endswith("_xx")})
        new = _eval(s.cross, env)
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
    as sums of strided slices of the input pixel pairs."""
    (H, W), (Ho, Wo) = op.in_hw, op.out_hw
    R = _pieces(H, Ho, op.filter[0], op.stride[0], op.pads[0], op.circular)
    C = _pieces(W, Wo, op.filter[1], op.stride[1], op.pads[1], op.circular)
    same = isinstance(op, PatchSum)
    out = np.zeros((Ho, Wo, Ho, Wo))
    offsets = [(a, a2, b, b2) for a in range(len(R)) for a2 in range(len(R))
               for b in range(len(C)) for b2 in range(len(C))
               if not same or (a == a2 and b == b2)]
    for a, a2, b, b2 in offsets:
        for oi, si in R[a]:
            for oj, sj in C[b]:
                for oi2, si2 in R[a2]:
                    for oj2, sj2 in C[b2]:
                        out[oi, oj, oi2, oj2] += A[si, sj, si2, sj2]
    if isinstance(op, AvgPool):
        out /= float(op.filter[0] * op.filter[1]) ** 2
    return out


def _structural(A, op):
    if isinstance(op, (PatchSum, AvgPool, SumPool)):
        return _window(A, op)
    if isinstance(op, GlobalAvg):
        return np.full((1, 1, 1, 1), A.mean())
    if isinstance(op, Flatten):
        H, W = A.shape[:2]
        return np.full((1, 1, 1, 1), np.einsum("ijij->", A) / (H * W))
    raise NotImplementedError(type(op).__name__)


def _pixel_diag(A):
    return np.einsum("ijij->ij", A)


def _run_image(prog, x, y, ex=None, ey=None, env=None):
    """Yield the steps of the cross recursion of the pair (x, y) on pixel-pair arrays, filling
    ``env``; the diagonals read by cross expressions come from the states ``ex`` / ``ey`` of
    (x, x) and (y, y), filled in lockstep by the caller (None: from ``env`` itself, i.e. the
    pair is (x, x))."""
    env[prog.input_cross.name] = np.einsum("hwc,klc->hwkl", x, y) / float(prog.input_scale)
    yield Step("input", "input", "pair", {prog.input_cross.name: env[prog.input_cross.name]})
    for s in prog.steps:
        if isinstance(s, Structural):
            new = {}
            with np.errstate(all="ignore"):
                for i, o in zip(s.inputs, s.outputs):
                    if not i.name.endswith("_xx") and i.name in env:
                        new[o.name] = env[o.name] = _structural(env[i.name], s.op)
        else:
            names = {sym.name for a in s.cross for sym in a.expr.free_symbols}
            local = dict(env)
            for n in names:
                if n.endswith(("_xx", "_yy")):
                    src = (ex if n.endswith("_xx") else ey) or env
                    d = _pixel_diag(src[n[:-3]])
                    local[n] = d[:, :, None, None] if n.endswith("_xx") else d[None, None]
            new = _eval(s.cross, local)
            env.update(new)
        yield Step(s.node, s.description, "pair", new)


def _trace_image(prog, x, y):
    ex, ey, exy = {}, {}, {}
    runs = (("x", _run_image(prog, x, x, env=ex)), ("y", _run_image(prog, y, y, env=ey)),
            ("pair", _run_image(prog, x, y, ex, ey, env=exy)))
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


def trace_pair(prog, x, y):
    """The steps of the recursion of one pair (x, y), in program order, with their values:
    a generator of :class:`Step` (sides "x", "y", "pair"), so a caller can stop at the first
    bad value; None where the program is not replayed (:func:`traceable`).  ``x``, ``y``:
    one example each, shaped as the spec's input."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if not traceable(prog, x.shape):
        return None
    return _trace_vector(prog, x, y) if prog.input_kind == "vector" else _trace_image(prog, x, y)
