"""Vector (MLP) KernelProgram -> Numba source text (the CPU target of vector programs;
:mod:`ntksym.codegen.generate` dispatches on the input kind and the target).

The generated module is standalone (numpy + numba only) and has:

* ``diagonal(sq)``: per-example pass from sq[i] = |x_i|^2 / d to the diagonal state ``D``
  (the columns the pair recursion reads, then the per-example Hermite coefficient vectors of
  the activations with series duals, :mod:`ntksym.duals.hermite`) and the exact diagonal
  outputs ``O`` (K(x_i, x_i));
* ``pair(...)``: the whole recursion for one pair, every layer fused, one CSE'd block per layer;
* ``_row``: pair's lines written into a loop along one row of G (contiguous one-dimensional
  views, the column state from D2 transposed), the correlations from per-example roots
  (:mod:`ntksym.codegen.roots`: no square root or division for rho), with acos and asin as
  branch-free polynomials
  (:mod:`ntksym.codegen.fastmath`, relative error below 1e-15) and no ZeroDivisionError
  branch (``error_model="numpy"``): LLVM vectorizes the whole recursion (AVX2: 4 pairs per
  instruction, no libm call);
* ``cross_rows(G, D1, D2, select, out, r0, c0, symmetric)``: out[q, r0 + i, c0 + j] = output
  ``select[q]`` of the pairs of a row block in parallel (``prange``); G[i, j] =
  <x_i, x'_j> comes from BLAS unscaled (the loop divides by INPUT_SCALE: no separate pass
  over an n^2 array), and may be ``out[0]`` itself (each row is read before it is
  written).  ``symmetric`` (a block starting on the diagonal) computes only j > i;
* ``mirror(out, tiny, big)``: the lower triangles from the upper ones, tile by tile; whether
  every copied magnitude lies in [tiny, big] (the engine's finite check, fused);
* ``cross_tile(G, D1, D2, select, out, symmetric)``: both, on a whole matrix (the engine
  fills the diagonal from ``O``);
* ``kernel(X, X2=None, outputs=("ntk",))``: a convenience entry point using the above.

The printed formulas (``ntksym derive``) and this code come from the same sympy expressions.

>>> import ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [3] }\\n[[layer]]\\nkind = "dense"\\n')
>>> src = generate_vector_source(arch.derive())
>>> "def cross_tile" in src
True
"""

from __future__ import annotations

from ntksym.codegen.common import (
    clip1_source,
    corr_source,
    hoisted_widths,
    hyper_arg,
    hyper_check,
    hyper_constants,
    hyper_lines,
    module_header,
    quadrature_source,
    vector_driver_lines,
    vector_functions,
)
from ntksym.codegen.fastmath import acos_source, asin_source
from ntksym.codegen.printer import NumbaPrinter
from ntksym.codegen.roots import clip_scaled_source, with_example_roots
from ntksym.codegen.series_rows import series_row_drivers
from ntksym.ir.program import KernelProgram

CODEGEN_VERSION = "6"

_DIAGONAL_DRIVER = '''

@njit(cache=True, parallel=True)
def diagonal(sq{hp}):
    \"\"\"Per-example diagonal state D (read by pair) and exact diagonal outputs O.\"\"\"
    n = sq.shape[0]
    D = np.empty((n, {n_diag}))
    O = np.empty((n, {n_out}))
    for i in prange(n):
        t = diag_state(sq[i]{hp})
{diag_stores}
    return D, O
'''

_ROW_DRIVERS = '''

# one row of pairs: the loop runs along row i of G over contiguous columns, the column's
# scalars read from D2T (D2's scalar columns transposed), with no libm call (acos and asin are
# the polynomials above) and no branch (the clipping is a select, division by zero gives inf or
# NaN for the engine's check instead of an exception): LLVM vectorizes it
@njit(cache=True, error_model="numpy")
def _row(G, D1, D2, D2T, i, j0, buf{hp}):
    """buf[k, j] = output k of pair (i, j) for j0 <= j < G.shape[1]: pair's recursion written
    into the loop (one-dimensional views indexed from 0, so that the loads and stores are
    contiguous)."""
{row_body}


@njit(cache=True)
def _out_row(G, D1, D2, D2T, select, out, r0, c0, i, symmetric, buf{hp}):
    j0 = i + 1 if symmetric else 0
    _row(G, D1, D2, D2T, i, j0, buf{hp})
    for q in range(select.shape[0]):
        s = select[q]
        for j in range(j0, G.shape[1]):
            out[q, r0 + i, c0 + j] = buf[s, j]


@njit(cache=True, parallel=True)
def cross_rows(G, D1, D2, select, out, r0, c0, symmetric{hp}):
    \"\"\"out[q, r0 + i, c0 + j] = output select[q] of pair (i, j) of the block G (rows D1,
    columns D2; G[i, j] = <x_i, x'_j>, not yet divided by INPUT_SCALE); symmetric (a block
    that starts on the diagonal): only j > i.\"\"\"
    n1, n2 = G.shape
    D2T = np.ascontiguousarray(D2[:, :{n_scalars}].T)
    if symmetric:
        # rows r and n1-1-r together: every parallel task has about the same number of pairs
        for r in prange((n1 + 1) // 2):
            buf = np.empty(({n_out}, n2))
            _out_row(G, D1, D2, D2T, select, out, r0, c0, r, True, buf{hp})
            if n1 - 1 - r != r:
                _out_row(G, D1, D2, D2T, select, out, r0, c0, n1 - 1 - r, True, buf{hp})
    else:
        for r in prange(n1):
            buf = np.empty(({n_out}, n2))
            _out_row(G, D1, D2, D2T, select, out, r0, c0, r, False, buf{hp})
'''

_TAIL_DRIVERS = '''

_TILE = 64


@njit(cache=True)
def _mirror_tiles(out, t, tiny, big):
    """Mirror the tile row t; the number of copied entries whose magnitude is outside
    [tiny, big] (NaN counts: its comparisons are False)."""
    n = out.shape[1]
    i0 = t * _TILE
    i1 = min(n, i0 + _TILE)
    outside = 0
    for q in range(out.shape[0]):
        for j0 in range(0, i1, _TILE):
            for i in range(i0, i1):
                for j in range(j0, min(j0 + _TILE, i)):
                    v = out[q, j, i]
                    out[q, i, j] = v
                    a = abs(v)
                    outside += 0 if (a >= tiny) & (a <= big) else 1
    return outside


@njit(cache=True, parallel=True)
def mirror(out, tiny=0.0, big=np.inf):
    \"\"\"out[q, i, j] = out[q, j, i] for j < i (the lower triangles from the upper ones), by
    tiles of _TILE x _TILE so that the transposed reads stay in cache.  Returns whether every
    copied entry's magnitude lies in [tiny, big]: the engine's finite and underflow check of the
    off-diagonal entries, read while they are in cache (ntksym.engine.diagnose).\"\"\"
    nt = (out.shape[1] + _TILE - 1) // _TILE
    outside = 0
    for r in prange((nt + 1) // 2):
        outside += _mirror_tiles(out, r, tiny, big)
        if nt - 1 - r != r:
            outside += _mirror_tiles(out, nt - 1 - r, tiny, big)
    return outside == 0


def cross_tile(G, D1, D2, select, out, symmetric{hp}):
    \"\"\"out[q, i, j] = output select[q] of pair (i, j); symmetric: j > i, then mirrored.\"\"\"
    cross_rows(G, D1, D2, select, out, 0, 0, symmetric{hp})
    if symmetric:
        mirror(out)


def kernel(X, X2=None, outputs=("ntk",){hp_kw}):
    \"\"\"Kernel matrices of the spec on rows of X (and X2): {{name: (n1, n2) array}}.\"\"\"
    X = np.ascontiguousarray(X, dtype=np.float64)
    select = np.array([OUTPUTS.index(o) for o in outputs], dtype=np.int64)
    sq1 = np.einsum("ij,ij->i", X, X) / INPUT_SCALE
{hp_check}    D1, O1 = diagonal(sq1{hp})
    if X2 is None:
        G, D2, sym = X @ X.T, D1, True
    else:
        X2 = np.ascontiguousarray(X2, dtype=np.float64)
        D2, _ = diagonal(np.einsum("ij,ij->i", X2, X2) / INPUT_SCALE{hp})
        G, sym = X @ X2.T, False
    out = np.empty((len(select),) + G.shape)
    cross_tile(G, D1, D2, select, out, sym{hp})
    if sym:
        idx = np.arange(X.shape[0])
        for q, s in enumerate(select):
            out[q, idx, idx] = O1[:, s]
    return {{o: out[q] for q, o in enumerate(outputs)}}
'''


class VectorPrinter(NumbaPrinter):
    """The Numba printer with acos and asin as the branch-free polynomials ``_acos`` and
    ``_asin`` (:mod:`ntksym.codegen.fastmath`, relative error below 1e-15), so that the row
    loop over the pairs has no libm call and vectorizes."""

    def _print_acos(self, expr):
        return "_acos(%s)" % self._print(expr.args[0])

    def _print_asin(self, expr):
        return "_asin(%s)" % self._print(expr.args[0])

    def _print_ClipScaled(self, expr):
        return "_clip_scaled(%s)" % ", ".join(self._print(x) for x in expr.args)


#: the decorator of the generated diag_state and pair: no ZeroDivisionError branch
#: (x / 0 gives inf or NaN, which the engine's finite check reports with the pair and layer)
VECTOR_NJIT = 'njit(cache=True, error_model="numpy")'


def _row_body(inline, n_diag, n_out, hoisted, program):
    """The body of ``_row``: the x-side scalars of row i once, one-dimensional views of row i
    of G, of the y-side scalars (rows of D2T) and of buf from column j0 on, then the loop
    over them with pair's lines inside."""
    params = inline["params"]
    cross, xs, ys = params[0], params[1:1 + n_diag], params[1 + n_diag:1 + 2 * n_diag]
    lines = hyper_lines(program)
    lines += [f"{x} = D1[i, {k}]" for k, x in enumerate(xs)]
    lines += ["g = G[i, j0:]"] + [f"y{k} = D2T[{k}, j0:]" for k in range(n_diag)]
    lines += [f"b{k} = buf[{k}, j0:]" for k in range(n_out)]
    # G is unscaled: dividing here rounds as G / INPUT_SCALE did, without a pass over G
    loop = [f"{cross} = g[k] / INPUT_SCALE"] + [f"{y} = y{k}[k]" for k, y in enumerate(ys)]
    if hoisted:     # the per-example Hermite vectors: pair's Dx, ix, Dy, iy
        loop += ["Dx = D1", "ix = i", "Dy = D2", "iy = j0 + k"]
    loop += [ln for ln in inline["body"] if not ln.startswith("hp_")]
    loop += [f"b{q}[k] = {r}" for q, r in enumerate(inline["returns"])]
    return "\n".join(["    " + ln for ln in lines] + ["    for k in range(g.shape[0]):"] +
                      ["        " + ln for ln in loop])


def generate_vector_source(program: KernelProgram) -> str:
    """The standalone Numba module of a vector (MLP) KernelProgram."""
    # correlations and sqrt(a b) scales from per-example roots (ntksym.codegen.roots)
    program = with_example_roots(program)
    printer = VectorPrinter(hoist={})
    inline = {}
    fns, n_diag = vector_functions(program, printer, VECTOR_NJIT, lower=True, inline=inline)
    out_names = tuple(program.outputs)
    n_out = len(out_names)
    widths = hoisted_widths(printer)
    diag_stores, _ = vector_driver_lines(n_diag, n_out, widths)
    header = module_header(
        program, version=CODEGEN_VERSION, imports="from numba import njit, prange",
        notes="Do not edit: regenerate with `ntksym codegen SPEC -o FILE`.  Needs only numpy "
              "and numba.\nInputs are vectors: G[i, j] = <x_i, x'_j> / "
              f"{program.input_scale}, sq[i] = |x_i|^2 / {program.input_scale}.\n"
              f"Outputs: {', '.join(out_names)}.",
        constants=[f"INPUT_SCALE = {program.input_scale}", f"OUTPUTS = {out_names!r}"]
        + hyper_constants(program))
    header += (corr_source() + clip1_source(decorator=VECTOR_NJIT)
               + clip_scaled_source(VECTOR_NJIT) + acos_source(estrin=True) + asin_source())
    rows, extra = _ROW_DRIVERS, {}
    if widths:      # Hermite series: a chunk of a row's pairs at once
        rows, extra = series_row_drivers(program, printer, inline["params"], n_diag, n_out)
    drivers = (_DIAGONAL_DRIVER + rows + _TAIL_DRIVERS).format(
                              n_diag=max(n_diag + sum(widths), 1), n_out=n_out, **extra,
                              n_scalars=n_diag, row_body=_row_body(inline, n_diag, n_out,
                                                                   bool(widths), program),
                              diag_stores=diag_stores or "        pass",
                              hp=hyper_arg(program),
                              hp_kw=", hp=None" if program.hyperparameters else "",
                              hp_check=hyper_check(program))
    return (header + quadrature_source(printer) + fns + drivers).rstrip() + "\n"
