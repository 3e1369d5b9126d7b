"""Pruning masks (issue 5): spec validation, the sympy factors, Yang & Wang's Thm. 3.1 / Cor. 3.3,
finite pruned networks against the analytic kernel, and the Fig. 1/2 reproductions (quick).

Statistical checks compare a Monte Carlo mean with the analytic limit in units of its standard
error: |mean - limit| <= 4 * std / sqrt(samples).  Seeds are fixed, so the tests are
deterministic; the 4-SE band also has to absorb the O(1/width) finite-width bias, which is why
the widths are a few hundred times larger than 1/alpha.
"""

import math

import mpmath
import numpy as np
import pytest
import sympy as sp

import ntksym
from ntksym.apps.reproduce import yang_wang as yw
from ntksym.errors import SpecError
from ntksym.layers import mask as masks

DENSE = "spec/cntk_mlp_depth3.toml"
PRUNED = "spec/yang_wang_mlp.toml"
RESCALED = "spec/yang_wang_mlp_rescaled.toml"

MLP = """name = "m"
input = {{ shape = [5] }}
[defaults]
weight_var = 2.0
[[layer]]
kind = "dense"
activation = "relu"
{extra0}
[[layer]]
kind = "{kind1}"
{extra1}
[[layer]]
kind = "dense"
"""


def spec(extra1="", kind1="dense", extra0=""):
    return MLP.format(extra1=extra1, kind1=kind1, extra0=extra0)


# ----------------------------------------------------------------------- validation

@pytest.mark.parametrize("mask, key, words", [
    ('{ kind = "bernoulli", keep = 1.5 }', "mask.keep", "(0, 1]"),
    ('{ kind = "bernoulli", keep = 0.0 }', "mask.keep", "(0, 1]"),
    ('{ kind = "magnitude", keep = -0.1 }', "mask.keep", "(0, 1]"),
    ('{ kind = "bernouli", keep = 0.5 }', "mask.kind", "did you mean 'bernoulli'"),
    ('{ kind = "bernoulli" }', "mask.keep", "needs 'keep'"),
    ('{ kind = "bernoulli", keep = 0.5, rescal = true }', "mask.rescal", "did you mean 'rescale'"),
    ('{ kind = "magnitude", keep = 0.5, scope = "world" }', "mask.scope", "'layer', 'global'"),
    ('{ kind = "count", remove = -1 }', "mask.remove", ">= 0"),
    ('0.5', "mask", "a table"),
])
def test_bad_masks_name_file_line_key(mask, key, words):
    text = spec(f"activation = \"relu\"\nmask = {mask}")
    with pytest.raises(SpecError) as e:
        ntksym.loads_spec(text, path="bad.toml")
    msg = str(e.value)
    assert msg.startswith("bad.toml:12: ") and f"key '{key}'" in msg and words in msg, msg


def test_mask_on_activation_is_an_unknown_key():
    with pytest.raises(SpecError, match="unknown key for a 'relu' layer") as e:
        ntksym.loads_spec(spec('mask = { kind = "bernoulli", keep = 0.5 }', kind1="relu"))
    assert e.value.key == "mask"


def test_count_removing_more_entries_than_exist():
    text = spec('width = 4\nactivation = "relu"\nmask = { kind = "count", remove = 40 }')
    arch = ntksym.loads_spec(text, path="c.toml")      # first layer width open: fan_in unknown
    with pytest.raises(SpecError, match=r"mask.remove = 40 exceeds the 3 x 4 = 12 entries"):
        arch.finite_graph(3)
    arch.finite_graph(10)                                 # 10 x 4 = 40 entries: fine
    with pytest.raises(SpecError, match="exceeds"):       # both sizes known: the analytic graph
        ntksym.loads_spec(spec('width = 4\nmask = { kind = "count", remove = 50 }',
                               extra0="width = 10")).graph
    ok = spec('width = 4\nmask = { kind = "count", remove = 50, replacement = true }',
              extra0="width = 10")
    ntksym.loads_spec(ok).graph                           # with replacement: 50 draws allowed


def test_cli_bad_mask_exits_2_with_one_line(tmp_path, capsys):
    from cli import main
    p = tmp_path / "bad.toml"
    p.write_text(spec('mask = { kind = "bernoulli", keep = 2 }'))
    with pytest.raises(SystemExit) as e:
        main(["check", str(p)])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert err.count("\n") == 1 and "key 'mask.keep'" in err and "Traceback" not in err
    p.write_text(spec('width = 4\nmask = { kind = "count", remove = 1000 }'))
    with pytest.raises(SystemExit) as e:
        main(["empirical", str(p), "--x", str(_npy(tmp_path)), "--width", "8", "--samples", "2"])
    assert e.value.code == 2 and "exceeds" in capsys.readouterr().err


def _npy(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).standard_normal((3, 5)))
    return path


# ------------------------------------------------------------------- sympy factors

def test_graph_carries_mask_and_derive_prints_factors():
    arch = ntksym.load_spec(PRUNED)
    assert arch.graph.nodes["dense_2"]["mask"] == {"kind": "bernoulli", "keep": 0.5,
                                                   "rescale": False}
    assert "mask" not in arch.graph.nodes["dense_0"]
    text = str(arch.derive())
    assert "bernoulli mask keep=0.5, rescale=false: weight variance x 1/2" in text
    assert "Sigma_2(x, x')*(1/2)" in text                 # the factor stays visible
    assert "note: dense_6 mask: m = Bernoulli(keep)" in text


def test_thm_3_1_and_cor_3_3_symbolically_and_numerically():
    dense = ntksym.load_spec(DENSE)
    pruned, rescaled = ntksym.load_spec(PRUNED), ntksym.load_spec(RESCALED)
    # L = 3 pruned layers (2, 3 and the readout): alpha^L = 1/8, in exact arithmetic
    assert masks.symbolic_ratio(pruned.derive(), dense.derive()) == sp.Rational(1, 8)
    assert masks.symbolic_ratio(rescaled.derive(), dense.derive()) == 1
    X = np.random.default_rng(1).standard_normal((6, 64)) / 8
    Kd = ntksym.kernel(dense, X)
    np.testing.assert_allclose(masks.evaluate_inline(dense.derive(), X), Kd, rtol=1e-12)
    np.testing.assert_allclose(ntksym.kernel(pruned, X), Kd / 8, rtol=1e-12, atol=0)
    np.testing.assert_allclose(ntksym.kernel(rescaled, X), Kd, rtol=1e-12, atol=0)


def test_magnitude_moment_is_the_truncated_gaussian_moment():
    for keep in (0.1, 0.5, 0.9):
        f = masks.mask_factors({"kind": "magnitude", "keep": keep, "scope": "layer"})
        t = float(mpmath.sqrt(2) * mpmath.erfinv(1 - keep))
        assert float(mpmath.erfc(t / mpmath.sqrt(2))) == pytest.approx(keep, rel=1e-12)
        moment = 2 * mpmath.quad(lambda w: w ** 2 * mpmath.npdf(w), [t, mpmath.inf])
        assert float(f.weight) == pytest.approx(float(moment), rel=1e-12)
        assert f.grad == sp.Rational(repr(keep))
    # and the finite-width mask: keep the largest |W|, second moment near the factor
    W = np.random.default_rng(2).standard_normal((400, 500))
    kept = masks.magnitude_keep(np.abs(W), 0.5)
    assert kept.mean() == 0.5
    x = (W * kept) ** 2
    f = masks.mask_factors({"kind": "magnitude", "keep": 0.5, "scope": "layer"})
    assert abs(x.mean() - float(f.weight)) < 4 * x.std() / math.sqrt(x.size)


def test_count_and_global_masks_in_the_finite_network():
    text = spec('width = 6\nactivation = "relu"\nmask = { kind = "count", remove = 7 }',
                extra0="width = 5")
    arch = ntksym.loads_spec(text)
    f = masks.mask_factors(arch.graph.nodes["dense_2"]["mask"], 5, 6)
    assert f.weight == sp.Rational(23, 30)                 # 1 - 7 / 30
    from ntksym.empirical.network import FiniteNetwork
    net = FiniteNetwork(arch.finite_graph(5), seed=3)
    w = net.weights["dense_2"]
    assert (~w["mask"]).sum() == 7 and np.all(w["W"][~w["mask"]] == 0)
    g = spec('activation = "relu"\nmask = { kind = "magnitude", keep = 0.25, scope = "global" }',
             extra0='mask = { kind = "magnitude", keep = 0.25, scope = "global" }')
    net = FiniteNetwork(ntksym.loads_spec(g).finite_graph(40), seed=4)
    k0, k2 = net.weights["dense_0"]["mask"], net.weights["dense_2"]["mask"]
    assert k0.sum() + k2.sum() == round(0.25 * (k0.size + k2.size))
    thr = min(np.abs(net.weights[n]["W"][net.weights[n]["mask"]]).min()
              for n in ("dense_0", "dense_2"))
    for n in ("dense_0", "dense_2"):                       # one threshold across both layers
        assert np.all(np.abs(net.weights[n]["W"][net.weights[n]["mask"]]) >= thr)


# ---------------------------------------------------------- finite pruned networks

@pytest.mark.parametrize("gradient", ["true", "fresh"])
def test_fast_path_equals_finite_network(gradient):
    """The reproduction's structured NTK (Eq. 10) equals the generic FiniteNetwork's."""
    from ntksym.empirical.network import FiniteNetwork
    arch = ntksym.load_spec(PRUNED)
    graph = arch.finite_graph(48)
    for n in graph.nodes:
        graph.nodes[n]["gradient"] = gradient
    net = FiniteNetwork(graph, seed=5)
    X = yw.two_inputs(1)
    order = ["dense_0", "dense_2", "dense_4", "dense_6"]
    fwd = [net.weights[n]["W"] for n in order]
    mk = [None] + [(net.weights[n]["mask"], net.weights[n]["mask_value"]) for n in order[1:]]
    back = [net.weights[n]["W_back"] for n in order] if gradient == "fresh" else None
    np.testing.assert_allclose(yw.masked_mlp_ntk(X, fwd, mk, back), net.ntk(X),
                               rtol=1e-11, atol=1e-13)


def test_conditioned_dense_sampler_matches_direct_sampling():
    """dense_ntk_conditioned (O(width) draws) has the distribution of the direct network."""
    X = yw.two_inputs(5)
    S = 200
    for gradient in ("true", "fresh"):
        a = np.array([yw.dense_ntk_conditioned(X, 24, np.random.default_rng((9, i)),
                                               gradient=gradient) for i in range(S)])
        b = np.array([yw.sample_pair(X, 24, 1.0, seed=(10, i), gradient=gradient,
                                     full=False)["pruned"] for i in range(S)])
        se = np.sqrt((a.var(0, ddof=1) + b.var(0, ddof=1)) / S)
        assert (np.abs(a.mean(0) - b.mean(0)) < 4 * se).all()
        # standard deviations: the SE of a sample std is about std / sqrt(2 S) (Gaussian case);
        # 5 of them covers the heavier-tailed NTK draws
        sa, sb = a.std(0, ddof=1), b.std(0, ddof=1)
        assert (np.abs(sa - sb) < 5 * np.sqrt((sa ** 2 + sb ** 2) / (2 * S))).all()


def test_rescaling_is_exactly_alpha_to_the_minus_L_at_finite_width():
    """Cor. 3.3's proof: same W and m, Theta_rescaled = alpha^-L Theta, at any width."""
    X = yw.two_inputs(2)
    a = yw.sample_pair(X, 64, 0.2, seed=7, rescale=False)["pruned"]
    b = yw.sample_pair(X, 64, 0.2, seed=7, rescale=True)["pruned"]
    np.testing.assert_allclose(b, a / 0.2 ** 3, rtol=1e-12)


_LIMITS = {}


def _pruned_limit(keep, rescale, X):
    """The analytic NTK of the pruned spec, by the inlined sympy expression (no compilation);
    memoized across the parametrized tests."""
    key = (keep, rescale)
    if key not in _LIMITS:
        text = open(RESCALED).read().replace("keep = 0.5, rescale = true",
                                             f"keep = {keep}, rescale = {str(rescale).lower()}")
        _LIMITS[key] = ntksym.loads_spec(text).derive()
    return masks.evaluate_inline(_LIMITS[key], X)


@pytest.mark.parametrize("keep", [0.5, 0.2])
@pytest.mark.parametrize("rescale", [True, False])
@pytest.mark.parametrize("gradient", ["true", "fresh"])
def test_bernoulli_empirical_matches_analytic(keep, rescale, gradient):
    X = np.vstack([yw.two_inputs(3), yw.two_inputs(4)[:1]])
    lim = _pruned_limit(keep, rescale, X)
    S, width = 20, 384
    seed = (11, int(keep * 10), int(rescale), gradient == "fresh")
    draws = np.array([yw.sample_pair(X, width, keep, seed=(*seed, s), rescale=rescale,
                                     gradient=gradient, full=False)["pruned"]
                      for s in range(S)])
    z = np.abs(draws.mean(0) - lim) / (draws.std(0, ddof=1) / math.sqrt(S))
    assert z.max() < 4, (z, draws.mean(0), lim)


def test_magnitude_pruned_empirical_matches_analytic():
    text = """name = "mag"
input = { shape = [5] }
[defaults]
weight_var = 2.0
[[layer]]
kind = "dense"
activation = "relu"
[[layer]]
kind = "dense"
activation = "relu"
mask = { kind = "magnitude", keep = 0.5 }
[[layer]]
kind = "dense"
mask = { kind = "magnitude", keep = 0.5 }
"""
    arch = ntksym.loads_spec(text)
    X = np.random.default_rng(6).standard_normal((3, 5))
    lim = {k: masks.evaluate_inline(arch.derive(), X, k) for k in ("ntk", "nngp")}
    E = ntksym.empirical_kernel(arch, X, width=256, samples=12, seed=8, gradient="true")
    for k in ("ntk", "nngp"):
        z = np.abs(E.mean[k] - lim[k]) / E.stderr[k]
        assert z.max() < 4, (k, z)


# ----------------------------------------------------------------- reproductions

def test_reproduce_quick_writes_csv_and_png(tmp_path):
    from ntksym.apps.reproduce import get, names
    assert {"yang-wang-fig1", "yang-wang-fig2"} <= set(names())
    s1 = get("yang-wang-fig1")[1](tmp_path, quick=True)
    s2 = get("yang-wang-fig2")[1](tmp_path, quick=True)
    for s in (s1, s2):
        png = open(s["png"], "rb").read(8)
        assert png.startswith(b"\x89PNG")
    import csv
    rows = list(csv.DictReader(open(s1["csv"])))
    assert {r["network"] for r in rows} == {"full", "pruned"} and len(rows) == 8
    lim = float(rows[0]["limit_xy"])
    # the full and the pruned estimate at the largest quick width: within 4 SE of the limit
    # plus the O(1/width) bias bound 2 * limit / width (generous)
    for r in rows[-2:]:
        assert abs(float(r["ntk_xy_mean"]) - lim) < 4 * float(r["ntk_xy_stderr"]) + 2 * lim / 256
    rows2 = list(csv.DictReader(open(s2["csv"])))
    assert {r["scaling"] for r in rows2} == {"linear", "quadratic"}
