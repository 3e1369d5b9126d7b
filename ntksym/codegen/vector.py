"""Vector (MLP) KernelProgram -> Numba source text (the CPU target of vector programs;
:mod:`ntksym.codegen.generate` dispatches on the input kind and the target).

The generated module is standalone (numpy + numba only) and has:

* ``diagonal(sq)``: per-example pass from sq[i] = |x_i|^2 / d to the diagonal state ``D``
  (the columns the pair recursion reads, then the per-example Hermite coefficient vectors of
  the activations with series duals, :mod:`ntksym.duals.hermite`) and the exact diagonal
  outputs ``O`` (K(x_i, x_i));
* ``pair(...)``: the whole recursion for one pair, every layer fused, one CSE'd block per layer;
* ``cross_tile(G, D1, D2, select, out, symmetric)``: out[q, i, j] = output ``select[q]`` for
  all pairs of a tile in parallel (``prange``); G[i, j] = <x_i, x'_j> / d comes from BLAS.
  ``symmetric`` computes only j > i and mirrors (the engine fills the diagonal from ``O``);
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
    NJIT,
    clip1_source,
    corr_source,
    hoisted_widths,
    hyper_arg,
    hyper_check,
    hyper_constants,
    module_header,
    pick_source,
    quadrature_source,
    vector_driver_lines,
    vector_functions,
)
from ntksym.codegen.printer import NumbaPrinter
from ntksym.ir.program import KernelProgram

CODEGEN_VERSION = "2"

_DRIVERS = '''

@njit(cache=True, parallel=True)
def diagonal(sq{hp}):
    """Per-example diagonal state D (read by pair) and exact diagonal outputs O."""
    n = sq.shape[0]
    D = np.empty((n, {n_diag}))
    O = np.empty((n, {n_out}))
    for i in prange(n):
        t = diag_state(sq[i]{hp})
{diag_stores}
    return D, O


{pick}

# rows are computed in blocks of _BLOCK: the inner loop runs over the rows of the block, so the
# diagonal state D2[j] of a column (per-example coefficient vectors included) is read from
# memory once per block, not once per pair
_BLOCK = 8


@njit(cache=True)
def _block(G, D1, D2, select, out, i0, i1, symmetric{hp}):
    for j in range(i0 + 1 if symmetric else 0, G.shape[1]):
        for i in range(i0, min(i1, j) if symmetric else i1):
            v = pair(G[i, j], {pair_args}{hp_pair})
            for q in range(select.shape[0]):
                out[q, i, j] = _pick(v, select[q])


@njit(cache=True, parallel=True)
def cross_tile(G, D1, D2, select, out, symmetric{hp}):
    """out[q, i, j] = output select[q] of pair (i, j); symmetric: only j > i, then mirrored."""
    n1 = G.shape[0]
    nb = (n1 + _BLOCK - 1) // _BLOCK
    if symmetric:
        # blocks r and nb-1-r together: every parallel task has about the same number of pairs
        for r in prange((nb + 1) // 2):
            _block(G, D1, D2, select, out, r * _BLOCK, min(n1, (r + 1) * _BLOCK), True{hp})
            s = nb - 1 - r
            if s != r:
                _block(G, D1, D2, select, out, s * _BLOCK, min(n1, (s + 1) * _BLOCK), True{hp})
        for i in prange(n1):
            for q in range(select.shape[0]):
                for j in range(i):
                    out[q, i, j] = out[q, j, i]
    else:
        for r in prange(nb):
            _block(G, D1, D2, select, out, r * _BLOCK, min(n1, (r + 1) * _BLOCK), False{hp})


def kernel(X, X2=None, outputs=("ntk",){hp_kw}):
    """Kernel matrices of the spec on rows of X (and X2): {{name: (n1, n2) array}}."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    select = np.array([OUTPUTS.index(o) for o in outputs], dtype=np.int64)
    sq1 = np.einsum("ij,ij->i", X, X) / INPUT_SCALE
{hp_check}    D1, O1 = diagonal(sq1{hp})
    if X2 is None:
        G, D2, sym = X @ X.T / INPUT_SCALE, D1, True
    else:
        X2 = np.ascontiguousarray(X2, dtype=np.float64)
        D2, _ = diagonal(np.einsum("ij,ij->i", X2, X2) / INPUT_SCALE{hp})
        G, sym = X @ X2.T / INPUT_SCALE, False
    out = np.empty((len(select),) + G.shape)
    cross_tile(G, D1, D2, select, out, sym{hp})
    if sym:
        idx = np.arange(X.shape[0])
        for q, s in enumerate(select):
            out[q, idx, idx] = O1[:, s]
    return {{o: out[q] for q, o in enumerate(outputs)}}
'''


def generate_vector_source(program: KernelProgram) -> str:
    """The standalone Numba module of a vector (MLP) KernelProgram."""
    printer = NumbaPrinter(hoist={})
    fns, n_diag = vector_functions(program, printer, NJIT, lower=True)
    out_names = tuple(program.outputs)
    n_out = len(out_names)
    widths = hoisted_widths(printer)
    diag_stores, pair_args = vector_driver_lines(n_diag, n_out, widths)
    header = module_header(
        program, version=CODEGEN_VERSION, imports="from numba import njit, prange",
        notes="Do not edit: regenerate with `ntksym codegen SPEC -o FILE`.  Needs only numpy "
              "and numba.\nInputs are vectors: G[i, j] = <x_i, x'_j> / "
              f"{program.input_scale}, sq[i] = |x_i|^2 / {program.input_scale}.\n"
              f"Outputs: {', '.join(out_names)}.",
        constants=[f"INPUT_SCALE = {program.input_scale}", f"OUTPUTS = {out_names!r}"]
        + hyper_constants(program))
    header += corr_source() + clip1_source()
    drivers = _DRIVERS.format(n_diag=max(n_diag + sum(widths), 1), n_out=n_out,
                              diag_stores=diag_stores or "        pass",
                              pick=pick_source(n_out, NJIT, "math.nan"), pair_args=pair_args,
                              hp=hyper_arg(program),
                              # no diagonal argument (a single dense layer): "pair(G, hp)"
                              hp_pair=(hyper_arg(program) if pair_args else
                                       hyper_arg(program)[2:]),
                              hp_kw=", hp=None" if program.hyperparameters else "",
                              hp_check=hyper_check(program))
    return (header + quadrature_source(printer) + fns + drivers).rstrip() + "\n"
