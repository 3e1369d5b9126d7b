"""Pruning masks on conv: kernel-rule factors, derive output, and finite masked CNNs.

A Bernoulli (or whole-filter) mask with keep k multiplies the conv layer's weight-variance and
W-gradient terms by k (by 1 with rescale).  Exact checks compare generated modules (no JIT);
the Monte Carlo checks compare the mean of S finite networks with the analytic kernel.

Tolerance of the Monte Carlo checks, derived from the number of samples: the standard error
is estimated from the same S draws, so |mean - limit| / SE is a Student t variable with S - 1
degrees of freedom (for Gaussian-like draws); the threshold is its quantile for a family-wise
false-alarm probability ALPHA over the distinct entries compared (Bonferroni).  No width
allowance: the widths keep the O(1/width) bias well inside the band (at width 32 the VGG
network's NNGP is already about 2.5 SE low with 8 samples; at 64 it is within 0.6).

Every analytic kernel compiles its own Numba module (about 30 s of CPU on a cold cache), so
the masks whose kernels are equal share one module, shown equal by their generated sources.
"""

import numpy as np
import pytest
from scipy.stats import t as student_t

import ntksym
from ntksym.codegen.generate import generate_source
from ntksym.errors import SpecError
from testkit import SPEC_DIR, cntk_toml

ALPHA = 1e-3

BERNOULLI = {"kind": "bernoulli", "keep": 0.5}
FILTER = {"kind": "filter", "keep": 0.5}


def masked_cnn(mask=None):
    """The CNTK preset on 5x5x1 images (first layer of weight variance c_sigma = 2), its
    second conv masked by ``mask`` (a dict: the TOML inline table)."""
    return cntk_toml([5, 5, 1], [{"mask": mask}] if mask else [{}],
                     first={"weight_var": 2.0}, name="masked_cnn")


def z_threshold(samples, n):
    """The t_{S-1} quantile for a family-wise two-sided level ALPHA over the n (n + 1) / 2
    distinct entries of a symmetric n x n kernel."""
    entries = n * (n + 1) // 2
    return float(student_t.ppf(1 - ALPHA / (2 * entries), samples - 1))


def body(arch):
    """The generated module without its header (spec name and hash) and comments (layer
    descriptions): equal bodies compute equal kernels."""
    src = generate_source(arch.derive())
    src = src[src.index("CODEGEN_VERSION"):].replace(arch.derive().spec_hash, "")
    return "\n".join(l for l in src.splitlines() if not l.lstrip().startswith("#"))


def _X():
    return np.random.default_rng(0).standard_normal((3, 5, 5, 1))


def test_conv_mask_factors_in_derive_and_equal_kernels():
    arch = ntksym.loads_spec(masked_cnn({"kind": "filter", "keep": 0.25}))
    text = str(arch.derive())
    assert "filter mask keep=0.25: weight variance x 1/4, W-gradient term x 1/4" in text
    assert "note: conv_2 mask: whole q x q filters" in text
    bern = body(ntksym.loads_spec(masked_cnn(BERNOULLI)))
    dense = body(ntksym.loads_spec(masked_cnn()))
    # whole-filter and entrywise Bernoulli masks with the same keep: the same kernel
    assert body(ntksym.loads_spec(masked_cnn(FILTER))) == bern
    assert bern != dense                                   # the mask changes the kernel
    # rescaled: exactly the dense kernel
    resc = {"kind": "bernoulli", "keep": 0.3, "rescale": True}
    assert body(ntksym.loads_spec(masked_cnn(resc))) == dense


@pytest.mark.parametrize("mask, gradient", [(BERNOULLI, "true"), (FILTER, "true"),
                                            (BERNOULLI, "fresh")])
def test_masked_cnn_empirical_matches_analytic(mask, gradient):
    """The analytic kernel is the Bernoulli spec's module for all three (equal bodies above)."""
    X = _X()
    K = ntksym.kernel(ntksym.loads_spec(masked_cnn(BERNOULLI)), X, kind="both",
                      progress=False)
    S = 12
    E = ntksym.empirical_kernel(ntksym.loads_spec(masked_cnn(mask)), X, width=64,
                                samples=S, seed=2, kind="both", gradient=gradient)
    for k in ("nngp", "ntk"):
        z = np.abs(E.mean[k] - K[k]) / E.stderr[k]
        assert z.max() < z_threshold(S, len(X)), (k, z, z_threshold(S, len(X)))


def test_vgg_small_bernoulli_empirical_matches_analytic():
    """spec/vgg_small_bernoulli.toml: 4 convs (3 masked), 2 strided poolings (the full-tensor
    schedule), GAP, dense."""
    arch = ntksym.load_spec(SPEC_DIR / "vgg_small_bernoulli.toml")
    X = np.random.default_rng(1).standard_normal((3, 8, 8, 1))
    K = ntksym.kernel(arch, X, kind="both", progress=False)
    S = 12
    E = ntksym.empirical_kernel(arch, X, width=64, samples=S, seed=3, kind="both")
    for k in ("nngp", "ntk"):
        z = np.abs(E.mean[k] - K[k]) / E.stderr[k]
        assert z.max() < z_threshold(S, len(X)), (k, z, z_threshold(S, len(X)))


def test_fresh_backward_copy_in_conv():
    """--gradient fresh: conv nodes get W_back (masked by its own draw), used by backward."""
    from ntksym.empirical.network import FiniteNetwork
    g = ntksym.loads_spec(masked_cnn(BERNOULLI)).finite_graph(6)
    for n in g.nodes:
        g.nodes[n]["gradient"] = "fresh"
    w = FiniteNetwork(g, seed=1).weights["conv_2"]
    assert w["W_back"].shape == w["W"].shape
    assert 0 < (w["W_back"] == 0).mean() < 1 and not np.array_equal(w["W_back"] == 0, ~w["mask"])


@pytest.mark.parametrize("mask", [{"kind": "filter", "keep": 0},
                                  {"kind": "magnitude", "keep": 0.5, "scope": "global"}])
def test_bad_conv_masks(mask):
    with pytest.raises(SpecError):
        ntksym.loads_spec(masked_cnn(mask))


def test_filter_mask_on_dense_is_rejected():
    with pytest.raises(SpecError, match="filter"):
        ntksym.loads_spec('name = "d"\ninput = { shape = [3] }\n[[layer]]\nkind = "dense"\n'
                          'mask = { kind = "filter", keep = 0.5 }\n')
