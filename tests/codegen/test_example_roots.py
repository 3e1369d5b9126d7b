"""Per-example roots in the vector pair loop (ntksym.codegen.roots): the correlations are read as
c (1/sqrt a)(1/sqrt b), the scales as sqrt(a) sqrt(b); checked against a plain NumPy arc-cosine
recursion written here, on equal examples (which must equal the diagonal) and on a zero
example (uncorrelated, no NaN)."""

import numpy as np
import pytest

import ntksym
from ntksym.codegen.roots import ClipScaled, with_example_roots
from ntksym.codegen.vector import generate_vector_source

RELU = ('name = "roots-relu"\ninput = { shape = [4] }\n'
        + '[[layer]]\nkind = "dense"\nactivation = "relu"\n' * 3 + '[[layer]]\nkind = "dense"\n')
ERF = ('name = "roots-erf"\ninput = { shape = [4] }\n[defaults]\nbias_var = 0.2\n'
       + '[[layer]]\nkind = "dense"\nactivation = "erf"\n' * 2 + '[[layer]]\nkind = "dense"\n')


def relu_ntk(X, Y, depth=3):
    """NTK of RELU (weight variance 1, no bias, NTK parameterization) in plain NumPy."""
    d = X.shape[1]
    S = X @ Y.T / d
    sx, sy = np.einsum("ij,ij->i", X, X) / d, np.einsum("ij,ij->i", Y, Y) / d
    T = S.copy()
    for _ in range(depth):
        scale = np.sqrt(np.outer(sx, sy))
        rho = np.clip(np.divide(S, scale, out=np.zeros_like(S), where=scale > 0), -1, 1)
        th = np.arccos(rho)
        S_next = scale * (rho * (np.pi - th) + np.sin(th)) / (2 * np.pi)
        T = S_next + T * (np.pi - th) / (2 * np.pi)      # the activation, then the dense layer
        S, sx, sy = S_next, sx / 2, sy / 2
    return T


def test_program_reads_roots_and_prints_unchanged():
    arch = ntksym.loads_spec(ERF)
    prog = arch.derive()
    rooted = with_example_roots(prog)
    scaled = [e for s in rooted.steps for a in getattr(s, "cross", ()) for e in
              a.expr.atoms(ClipScaled)]
    assert len(scaled) == 2                          # one correlation per erf layer
    diag = [a.target.name for s in rooted.steps for a in getattr(s, "diag", ())]
    assert "Var0_isqrt_xx" in diag and "Var1_sqrt_xx" in diag
    assert "ClipScaled" not in str(prog)             # the printed formulas are not rewritten
    src = generate_vector_source(prog)
    assert "_clip_scaled(" in src and "_clip1(2.0*Sigma_1, math.sqrt" not in src


@pytest.mark.parametrize("spec", [RELU, ERF], ids=["relu", "erf"])
def test_equal_examples_equal_the_diagonal(spec):
    """x' = x: the correlation is 1 in every layer, and the pair must equal the diagonal (exact
    rule) although c (1/sqrt a)(1/sqrt b) misses 1 by an ulp or two for most examples."""
    arch = ntksym.loads_spec(spec)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((20, 4)) * rng.uniform(0.3, 3.0, (20, 1))
    X = np.concatenate([A, A])
    K = ntksym.kernel(arch, X, engine="compiled")
    Kx = ntksym.kernel(arch, A, A[::-1], engine="compiled")
    d = np.diag(K)[:20]
    tol = 1e-14 * np.abs(K).max()
    assert np.abs(np.diag(K[:20, 20:]) - d).max() <= tol
    assert np.abs(np.diag(Kx[:, ::-1]) - d).max() <= tol


def test_relu_against_numpy_with_a_zero_example():
    arch = ntksym.loads_spec(RELU)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((7, 4))
    X[2] = 0.0
    K = ntksym.kernel(arch, X, engine="compiled")
    want = relu_ntk(X, X)
    off = ~np.eye(7, dtype=bool)
    assert np.all(np.isfinite(K))
    np.testing.assert_allclose(K[off], want[off], rtol=1e-12, atol=1e-14)
    assert np.all(K[2] == 0.0)
