"""The Hermite series of a chunk of a row of pairs at once (ntksym.duals.hermite_rows, the
vector target's row loop, ntksym.codegen.series_rows): against the 30-digit mpmath references
(tests/reference/duals_mpmath.json) for every activation of the reference, one pair per chunk
(the chunk's bound is then the pair's own) and all points in one chunk (the chunk's worst case
passes |rho| = 1 and large variances: the full degree, then the per-pair fix-up); the staged
row loop of MLPs against the program replayed pair by pair in Python."""

import json
import math

import numpy as np
import pytest
import sympy as sp

import ntksym
from ntksym.codegen.cache import load_module
from ntksym.codegen.common import quadrature_source
from ntksym.codegen.printer import NumbaPrinter
from ntksym.codegen.vector import generate_vector_source
from ntksym.duals.activations import get_activation
from ntksym.duals.hermite import hermite_width
from ntksym.duals.hermite_rows import ROW_CHUNK
from ntksym.ir.hermite import HERMITE_K, HERMITE_TOL
from testkit import ROOT

REFERENCE = json.loads((ROOT / "tests" / "reference" / "duals_mpmath.json").read_text())
ACTIVATIONS = {
    "tanh": ("tanh", {}),
    "swish(h=1.0)": ("swish", {"h": 1.0}),
    "huberized_relu(h=0.5)": ("huberized_relu", {"h": 0.5}),
    "activation(expr='z*(1+erf(z/sqrt(2)))/2')": ("activation",
                                                  {"expr": "z*(1+erf(z/sqrt(2)))/2"}),
    "activation(expr='log(1+exp(z))')": ("activation", {"expr": "log(1+exp(z))"}),
}
TOL = 1e-10


def _points(name):
    return np.array([p[:5] for p in REFERENCE[name]["points"] if max(p[5], p[6]) < 1e-12])


@pytest.fixture(scope="module")
def rows():
    """{reference name: (module, family prefix)}: one module with the row forms (and the
    per-pair forms, the coefficient rules) of every activation's family."""
    a, b, c = sp.symbols("Sigma_1_xx Sigma_1_yy Sigma_1", real=True)
    printer = NumbaPrinter(hoist={})
    fams = {}
    for name, (kind, params) in ACTIVATIONS.items():
        act = get_activation(kind, **params)
        for e in (act.dual(a, b, c), act.dual_prime(a, b, c)):
            printer.doprint(e)
        fams[name] = printer.hermite_families[type(act.dual(a, b, c)).family][0]
    src = "import math\n\nimport numpy as np\nfrom numba import njit\n" + quadrature_source(
        printer)
    assert "def _hr_chunk(" in src and src.count("_m1_row(") == len(ACTIVATIONS)
    mod = load_module(src, "test_hermite_rows")
    return {name: (mod, fam) for name, fam in fams.items()}


def _state(mod, fam, A, B):
    """D1 (rows: x examples), D2 (y examples), D2T, HM of the family at variances A, B."""
    w = 2 * hermite_width(HERMITE_K)
    D1, D2 = np.empty((len(A), w)), np.empty((len(B), w))
    for D, V in ((D1, A), (D2, B)):
        for i, v in enumerate(V):
            getattr(mod, f"{fam}_coef")(v, D[i])
    D2T, HM = mod._hr_tables(D2, w)
    assert np.array_equal(D2T, D2.T)
    return D1, D2, D2T, HM


def _row(mod, fam, member, i, a, B, R, D1, D2, D2T, HM, jb=0):
    C = R * np.sqrt(a * B)
    out = np.empty(len(B))
    rho = np.clip(C / np.sqrt(a * B), -1.0, 1.0)
    getattr(mod, f"{fam}_m{member}_row")(C, a, B, rho, D1, i, D2, D2T, HM, jb, out, 0)
    return out, C


# tanh and the GELU expression by default (one soft feature each); the others with -m slow
# (each compiles its own row module, 15-20 s cold; tests/duals/test_hermite.py checks every
# activation's series against mpmath pair by pair)
@pytest.mark.parametrize("name", [n if ("tanh" in n or "erf" in n)
                                  else pytest.param(n, marks=pytest.mark.slow)
                                  for n in ACTIVATIONS])
def test_row_series_against_mpmath(rows, name):
    mod, fam = rows[name]
    pts = _points(name)
    A, B, R = pts[:, 0], pts[:, 1], pts[:, 2]
    diag = {d[0]: (d[1], d[2]) for d in REFERENCE[name]["diag"]}
    assert len(pts) <= ROW_CHUNK
    D1, D2, D2T, HM = _state(mod, fam, A, B)
    for member in (0, 1):
        scale = np.sqrt([diag[x][member] * diag[y][member] for x, y in zip(A, B)])
        want = pts[:, 3 + member]
        # every point in one chunk, row p against all columns: the pair (p, p) is point p
        # (column j of row p is the triple (a_p, b_j, rho_j))
        full = np.array([_row(mod, fam, member, p, A[p], B, R, D1, D2, D2T, HM)[0][p]
                         for p in range(len(pts))])
        # one pair per chunk: the chunk's bound is the pair's own
        alone = np.empty(len(pts))
        for p in range(len(pts)):
            d1, d2, d2t, hm = _state(mod, fam, A[p:p + 1], B[p:p + 1])
            alone[p] = _row(mod, fam, member, 0, A[p], B[p:p + 1], R[p:p + 1],
                            d1, d2, d2t, hm)[0][0]
        for got in (full, alone):
            err = np.abs(got - want) / scale
            assert err.max() <= TOL, (name, member, pts[err.argmax()], err.max())
    # the all-points chunk ran to the full degree with per-pair fix-ups (its worst case fails)
    rho = np.clip(R, -1.0, 1.0)
    ng = (HERMITE_K + 1) // 4
    assert not mod._hr_chunk(rho, D1, 0, 0, D2T, 0, 0, HM, ng, np.empty(len(pts)))


@pytest.mark.parametrize("name", ["tanh", "huberized_relu(h=0.5)"])
def test_row_equals_per_pair_form_within_the_bound(rows, name):
    """A row of 300 random pairs (two chunks, a partial first one) against the per-pair form
    (its own truncation): both within HERMITE_TOL sqrt(E_a E_b) of the series' value."""
    mod, fam = rows[name]
    rng = np.random.default_rng(7)
    n = 300
    B = 10 ** rng.uniform(-2, 2, n)
    R = rng.uniform(-1, 1, n) ** 3
    R[::50] = 1.0                   # |rho| = 1 in some chunks: the full degree and fix-ups
    a = 2.0
    D1, D2, D2T, HM = _state(mod, fam, [a], B)
    E = {m: np.array([getattr(mod, f"{fam}_m{m}_diag")(x) for x in [a, *B]]) for m in (0, 1)}
    for member in (0, 1):
        got = np.empty(n)
        jb = 40
        got[:jb] = _row(mod, fam, member, 0, a, B[:jb], R[:jb], D1, D2, D2T, HM, 0)[0]
        while jb < n:                       # chunks aligned to multiples of ROW_CHUNK
            je = min(n, (jb // ROW_CHUNK + 1) * ROW_CHUNK)
            got[jb:je] = _row(mod, fam, member, 0, a, B[jb:je], R[jb:je], D1, D2, D2T, HM,
                              jb)[0]
            jb = je
        pair = getattr(mod, f"{fam}_m{member}")
        want = np.array([pair(r * math.sqrt(a * b), a, b, D1, 0, D2, j, 0)
                         for j, (b, r) in enumerate(zip(B, R))])
        scale = np.sqrt(E[member][0] * E[member][1:])
        assert np.max(np.abs(got - want) / scale) <= 2 * HERMITE_TOL + 1e-14


def _mlp(act, depth, d):
    return ntksym.loads_spec(
        f'name = "r"\ninput = {{ shape = [{d}] }}\n[defaults]\nbias_var = 0.1\n'
        + f'[[layer]]\nkind = "dense"\nactivation = "{act}"\n' * depth
        + '[[layer]]\nkind = "dense"\n')


def test_row_loop_code_is_staged_around_the_series():
    src = generate_vector_source(_mlp("tanh", 3, 4).derive())
    row = src[src.index("def _row("):src.index("def _out_rows(")]
    assert row.count("for k in range(m):") == 4          # 3 layers: 3 cuts
    assert row.count("_m0_row(") == 3 and row.count("_m1_row(") == 3
    assert "_herm_0_m0(" not in row and "_full(" not in row and "_quad" not in row
    diag = src[src.index("def diag_state"):src.index("def pair(")]
    assert "_diag(" not in diag and diag.count("_coef(") == 3      # E from the coefficients


def test_row_loop_kernel_against_pair_replay(monkeypatch):
    """A tanh MLP on 300 examples (two column chunks per row; duplicates give rho = 1, so some
    chunks run to the full degree with per-pair fix-ups), the symmetric and the cross form, one
    output (cross_rows) and two (the engine's blocks of rows against the columns' tables, in
    blocks of 40 rows), against the program replayed pair by pair in Python (the reference of
    ntksym.ir.hermite)."""
    import ntksym.engine.vector
    from ntksym.engine.trace import trace_pair
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 5)) * rng.uniform(0.2, 3.0, (300, 1))
    X[[17, 280]] = X[[5, 5]]
    arch = _mlp("tanh", 3, 5)
    prog = arch.derive()
    one = ntksym.kernel(arch, X, kind="ntk", engine="compiled")
    monkeypatch.setattr(ntksym.engine.vector, "BLOCK_ENTRIES", 40 * 300)
    K = ntksym.kernel(arch, X, kind="both", engine="compiled")
    # the same pairs, but the Gram entries come from BLAS products of other shapes (blocks of
    # rows), which may round differently in the last bit: entries near 0 differ by ~1e-16
    np.testing.assert_allclose(K["ntk"], one, rtol=1e-14, atol=1e-14 * np.abs(one).max())
    Kx = ntksym.kernel(arch, X[:40], X[250:], kind="ntk", engine="compiled")
    pairs = [(5, 17), (5, 280), (0, 1), (3, 299), (100, 290), (250, 251), (7, 260)]
    for i, j in pairs:
        last = list(trace_pair(prog, X[i], X[j]))[-1].values
        for kind, pre in (("nngp", "Sigma"), ("ntk", "Theta")):
            want = float(next(v for k, v in last.items() if k.startswith(pre)))
            assert abs(K[kind][i, j] - want) <= 1e-10 * abs(want), (kind, i, j)
            assert K[kind][j, i] == K[kind][i, j]
        if i < 40 and j >= 250:
            want = float(next(v for k, v in last.items() if k.startswith("Theta")))
            assert abs(Kx[i, j - 250] - want) <= 1e-10 * abs(want), (i, j)
