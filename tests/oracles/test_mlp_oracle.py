"""The CNTK paper's ReLU MLP kernel against closed forms and a plain numpy oracle.

The oracle below is written from Arora et al. 2019, Section 3 (eqs. (1)-(4)), independently of
ntksym's derivation and generated code:

    Sigma^(0)(x, x') = x^T x'
    Lambda^(h) = [[Sigma^(h-1)(x,x), Sigma^(h-1)(x,x')], [., Sigma^(h-1)(x',x')]]
    Sigma^(h)(x, x') = c_sigma E[relu(u) relu(v)],   Sigma-dot^(h) = c_sigma E[1(u>0) 1(v>0)]
    Theta^(L)(x, x') = sum_{h=1}^{L+1} Sigma^(h-1)(x, x') prod_{h'=h}^{L} Sigma-dot^(h')(x, x')

with c_sigma = 2 and E over (u, v) ~ N(0, Lambda^(h)).
"""

import subprocess
import sys

import numpy as np
import pytest

import ntksym

C_SIGMA = 2.0


def relu_expectations(a, b, c):
    """(E[relu relu], E[step step]) for covariance [[a, c], [c, b]] (arc-cosine formulas)."""
    rho = np.clip(c / np.sqrt(a * b), -1.0, 1.0)
    theta = np.arccos(rho)
    e = np.sqrt(a * b) * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
    de = (np.pi - theta) / (2 * np.pi)
    return e, de


def cntk_paper_ntk(X, X2, L):
    """Theta^(L)(x, x') of the paper, looping layer by layer over whole matrices."""
    sig = X @ X2.T
    dx, dy = np.sum(X * X, 1), np.sum(X2 * X2, 1)
    sigmas, dots = [sig], []
    for _ in range(L):
        a, b = dx[:, None], dy[None, :]
        e, de = relu_expectations(a, b, sig)
        sig = C_SIGMA * e
        dots.append(C_SIGMA * de)
        # diagonal: c_sigma E[relu(u)^2] = c_sigma a / 2 = a: the variances do not change
        sigmas.append(sig)
    theta = np.zeros_like(sig)
    for h in range(1, L + 2):
        term = sigmas[h - 1].copy()
        for hp in range(h, L + 1):
            term *= dots[hp - 1]
        theta += term
    return theta, sigmas[L]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((9, 64))
    X[3] *= 4.0
    X[5] = X[4] + 1e-3 * X[5]            # nearly parallel: correlation 1 - 5e-7
    X2 = rng.standard_normal((5, 64)) * 0.3
    return X, X2


@pytest.mark.parametrize("L", [1, 2, 3, 5])
def test_diagonal_is_L_plus_1_times_norm(data, spec_dir, L):
    X, _ = data
    arch = ntksym.load_spec(spec_dir / f"cntk_mlp_depth{L}.toml")
    K = ntksym.kernel(arch, X)
    np.testing.assert_allclose(np.diag(K), (L + 1) * np.sum(X * X, 1), rtol=1e-13, atol=0)


@pytest.mark.parametrize("L", [1, 2, 3, 5])
def test_matches_numpy_oracle(data, spec_dir, L):
    X, X2 = data
    arch = ntksym.load_spec(spec_dir / f"cntk_mlp_depth{L}.toml")
    both = ntksym.kernel(arch, X, kind="both")
    ref_ntk, ref_nngp = cntk_paper_ntk(X, X, L)
    off = ~np.eye(len(X), dtype=bool)
    np.testing.assert_allclose(both["ntk"][off], ref_ntk[off], rtol=1e-12)
    # the readout f^(L+1) = W^(L+1) g^(L) has covariance Sigma^(L)
    dx = np.sum(X * X, 1)
    np.testing.assert_allclose(both["nngp"][off], ref_nngp[off], rtol=1e-12)
    np.testing.assert_allclose(np.diag(both["nngp"]), dx, rtol=1e-13)
    cross = ntksym.kernel(arch, X, X2)
    ref_cross, _ = cntk_paper_ntk(X, X2, L)
    np.testing.assert_allclose(cross, ref_cross, rtol=1e-12)
    assert np.array_equal(both["ntk"], both["ntk"].T)


def test_exact_duplicates_are_conditioned_by_arccos(spec_dir):
    """At correlation exactly +-1, d(arccos)/d(rho) is infinite: a round-off of 1e-16 in rho
    moves arccos by 1e-8.  No implementation does better from Gram entries alone, so the pair
    of duplicates agrees with the diagonal (and the oracle) to ~1e-7, not 1e-12."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3, 64))
    X[1], X[2] = X[0], -X[0]
    arch = ntksym.load_spec(spec_dir / "cntk_mlp_depth3.toml")
    K = ntksym.kernel(arch, X)
    ref, _ = cntk_paper_ntk(X, X, 3)
    np.testing.assert_allclose(K[0, 1], K[0, 0], rtol=1e-7)
    np.testing.assert_allclose(K, ref, rtol=1e-7, atol=1e-6 * K[0, 0])


def test_cli_kernel_writes_the_matrix(tmp_path, data, spec_dir):
    X, _ = data
    np.save(tmp_path / "X.npy", X)
    out = tmp_path / "K.npy"
    r = subprocess.run([sys.executable, "-m", "cli", "kernel",
                        str(spec_dir / "cntk_mlp_depth3.toml"),
                        "--x", str(tmp_path / "X.npy"), "-o", str(out)],
                       capture_output=True, text=True, cwd=spec_dir.parent)
    assert r.returncode == 0, r.stderr
    K = np.load(out)
    np.testing.assert_allclose(np.diag(K), 4 * np.sum(X * X, 1), rtol=1e-13)
    ref, _ = cntk_paper_ntk(X, X, 3)
    off = ~np.eye(len(X), dtype=bool)     # the oracle's own diagonal carries arccos(1 - eps)
    np.testing.assert_allclose(K[off], ref[off], rtol=1e-12)


def test_per_layer_terms_sum_to_ntk(data, spec_dir):
    X, _ = data
    arch = ntksym.load_spec(spec_dir / "cntk_mlp_depth3.toml")
    parts = ntksym.kernel(arch, X, kind="ntk", per_layer=True)
    terms = [v for k, v in parts.items() if k.startswith("ntk[")]
    assert len(terms) == 4                # W of the 3 hidden layers and of the readout
    np.testing.assert_allclose(sum(terms), parts["ntk"], rtol=1e-13)
    # the first layer's term is Sigma^(0) times the product of all Sigma-dots: on the
    # diagonal each Sigma-dot is 1, so it equals |x|^2
    first = parts["ntk[dense_0.W]"]
    np.testing.assert_allclose(np.diag(first), np.sum(X * X, 1), rtol=1e-13)


def test_float32_output(data, spec_dir):
    X, _ = data
    arch = ntksym.load_spec(spec_dir / "cntk_mlp_depth2.toml")
    K64 = ntksym.kernel(arch, X)
    K32 = ntksym.kernel(arch, X, dtype="float32")
    assert K32.dtype == np.float32
    np.testing.assert_allclose(K32, K64, rtol=1e-6)


def test_zero_inputs_are_uncorrelated(spec_dir):
    """An all-zero example has zero variance at every layer: its kernel row is zero and no
    division by zero happens (digits have all-zero border pixels)."""
    X = np.random.default_rng(5).standard_normal((4, 64))
    X[2] = 0.0
    for name in ("cntk_mlp_depth3.toml", "erf_mlp_bias.toml"):
        arch = ntksym.load_spec(spec_dir / name)
        K = ntksym.kernel(arch, X, kind="both")
        assert np.isfinite(K["ntk"]).all() and np.isfinite(K["nngp"]).all()
    K = ntksym.kernel(ntksym.load_spec(spec_dir / "cntk_mlp_depth3.toml"), X)
    assert np.all(K[2] == 0.0)


def test_api_takes_a_spec_path(data, spec_dir):
    # ntksym.kernel / empirical_kernel accept a path (str or Path) as well as an Architecture
    path = spec_dir / "cntk_mlp_depth2.toml"
    arch = ntksym.load_spec(path)
    X = data[0][:5]
    np.testing.assert_array_equal(ntksym.kernel(str(path), X), ntksym.kernel(arch, X))
    np.testing.assert_array_equal(ntksym.kernel(path, X), ntksym.kernel(arch, X))
    e = ntksym.empirical_kernel(str(path), X, width=16, samples=2)
    assert e.mean["ntk"].shape == (5, 5)
    with pytest.raises(TypeError, match="spec file path"):
        ntksym.kernel(3, X)
