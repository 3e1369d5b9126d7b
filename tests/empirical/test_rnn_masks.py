"""Pruning masks on rnn layers (issue 5): spec validation, the kernel rule's factors, and the
finite masked RNN against the analytic kernel.

Monte Carlo checks: S independent networks of width m (masks drawn from each network's seed);
the analytic kernel must lie within 4 standard errors (std / sqrt(S)) of their mean at every
entry.  The widths are large enough that the O(1/m) finite-width bias stays well inside that
band.  Every analytic kernel compiles its own Numba module (a few seconds on a cold cache),
so each Monte Carlo case is one spec.
"""

import numpy as np
import pytest
import sympy as sp

import ntksym
from ntksym.errors import SpecError

SPEC = '''
name = "masked_rnn"
input = {{ shape = [4, 3] }}
[[layer]]
kind = "rnn"
weight_var = 1.5
input_var = 1.0
bias_var = {b}
readout = "{readout}"
{mask}
[[layer]]
kind = "dense"
{readout_mask}
'''


def arch(mask="", readout="last", b=0.1, readout_mask="", path=None):
    text = SPEC.format(mask=mask, readout=readout, b=b, readout_mask=readout_mask)
    return ntksym.loads_spec(text, path=path) if path else ntksym.loads_spec(text)


def sequences(n=3, T=4, d=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, T, d)) / np.sqrt(d)


# ------------------------------------------------------------------ the kernel rule

def test_graph_describe_and_derive_print_the_factors():
    a = arch('mask = { kind = "bernoulli", keep = 0.5 }')        # matrices = ["W"] by default
    assert a.graph.nodes["rnn_0"]["mask"] == {"kind": "bernoulli", "keep": 0.5,
                                              "rescale": False, "matrices": ["W"]}
    text = str(a.derive())
    assert "W: bernoulli mask keep=0.5, rescale=false: weight variance x 1/2" in text
    assert "A: bernoulli" not in text                 # A is not masked
    assert "Sigma_1(t-1, t'-1)*(1/2)" in text          # the factor stays visible in the formula
    assert "note: rnn_0 mask on W: m = Bernoulli(keep)" in text
    assert "fan_in" not in text.split("note: rnn_0 mask on W")[1]
    mag = str(arch('mask = { kind = "magnitude", keep = 0.5, matrices = ["A", "W"] }').derive())
    assert "W: magnitude mask keep=0.5 (scope layer): weight variance x 0.928674082256" in mag
    assert "note: rnn_0 mask on A: keep |W| > t, t = sqrt(2) erfinv(1 - keep)" in mag
    assert "note: rnn_0 mask on A: A's fan_in = 3 does not grow with the width" in mag
    # an rnn reading another rnn of open width: A's fan_in grows, no caveat
    stack = str(ntksym.loads_spec(STACK.format(
        mask='mask = { kind = "bernoulli", keep = 0.5, matrices = ["A"] }', readout="last"))
        .derive())
    assert "note: rnn_1 mask on A: m = Bernoulli(keep)" in stack and "does not grow" not in stack


def test_bernoulli_mask_is_scaled_variances_and_rescale_is_dense():
    """Unrescaled Bernoulli(k) on W and A: q = E[m^2] = k on both the variances and the
    gradient terms, i.e. exactly the unmasked RNN with weight_var and input_var times k
    (g_W = w, g_A = a in the NTK parameterization).  Rescaled: the unmasked RNN itself.
    Checked on the derived recurrences, in sympy (the Monte Carlo cases below run the
    generated code)."""
    masked = _recurrence(arch('mask = { kind = "bernoulli", keep = 0.5, matrices = ["W", "A"] }',
                              readout="mean"))
    scaled = _recurrence(ntksym.loads_spec(
        SPEC.format(mask="", readout="mean", b=0.1, readout_mask="")
        .replace("weight_var = 1.5\ninput_var = 1.0", "weight_var = 0.75\ninput_var = 0.5")))
    assert len(masked) == len(scaled) == 8 and masked != scaled   # factors shown unevaluated
    assert all(sp.simplify(x.doit() - y) == 0 for x, y in zip(masked, scaled))
    assert masked != _recurrence(arch(readout="mean"))
    resc = arch('mask = { kind = "bernoulli", keep = 0.3, rescale = true }')
    assert _recurrence(resc) == _recurrence(arch())


def _recurrence(a):
    """The cross assignments (pre-activation, post-activation) of the rnn layer's recurrence."""
    return [x.expr for s in a.derive().steps
            if getattr(getattr(s, "op", None), "label", None) == "time_recurrence"
            for x in s.op.cross + s.op.diag]


def test_count_mask_factor_per_matrix():
    """remove = N from each masked matrix: W is 6 x 6, A is 3 x 6 (kept 1 - N / P each)."""
    from ntksym.layers.rnn import Rnn
    a = arch('width = 6\nmask = { kind = "count", remove = 9, matrices = ["W", "A"] }')
    f = Rnn.mask_factors(a.graph.nodes["rnn_0"])
    assert f["W"].weight == sp.Rational(27, 36) and f["A"].weight == sp.Rational(9, 18)
    assert f["W"].grad == f["W"].weight


# ------------------------------------------------------------------ finite masked RNNs

def test_finite_masks_are_per_matrix_shared_over_time_and_seeded():
    from ntksym.empirical.network import FiniteNetwork
    a = arch('mask = { kind = "count", remove = 10, matrices = ["A"] }')
    g = a.finite_graph(8)
    net = FiniteNetwork(g, seed=3)
    w = net.weights["rnn_0"]
    assert "mask_W" not in w and (~w["mask_A"]).sum() == 10
    assert np.all(w["A"][~w["mask_A"]] == 0)
    # the unmasked draws are those of the unmasked network (masks are drawn after them)
    plain = FiniteNetwork(arch().finite_graph(8), seed=3).weights["rnn_0"]
    np.testing.assert_array_equal(w["W"], plain["W"])
    np.testing.assert_array_equal(w["A"][w["mask_A"]], plain["A"][w["mask_A"]])
    again = FiniteNetwork(g, seed=3).weights["rnn_0"]
    np.testing.assert_array_equal(again["mask_A"], w["mask_A"])


def test_masked_ntk_is_the_gradient_gram_of_the_masked_network():
    """The empirical NTK terms equal <df/dtheta(x), df/dtheta(x')> with df/dtheta by central
    differences of the finite network's output (W and A masked, masked dense readout)."""
    from ntksym.empirical.network import FiniteNetwork
    a = arch('mask = { kind = "bernoulli", keep = 0.5, rescale = true, matrices = ["W", "A"] }',
             readout="mean", readout_mask='mask = { kind = "magnitude", keep = 0.5 }')
    net = FiniteNetwork(a.finite_graph(5), seed=4)
    X = sequences(2, seed=2)
    L = np.array([4, 3])
    _, terms = net.ntk(X, per_layer=True, lengths=L)
    out = a.graph.graph["output"]

    def f(node, key, idx, eps):
        w = net.weights[node]
        old = w[key][idx]
        # the parameter is the unmasked entry: the stored matrix is W m s
        mk, s = (w.get("mask_" + key, w.get("mask")), w.get("mask_value", 1.0))
        scale = s * (1.0 if mk is None else float(mk[idx]))
        w[key][idx] = old + eps * scale
        v = net.forward(X, L)[0][out][:, 0, 0]
        w[key][idx] = old
        return v

    for node, key, group in (("rnn_0", "W", "rnn_0.W"), ("rnn_0", "A", "rnn_0.A"),
                             ("dense_1", "W", "dense_1.W")):
        shape = net.weights[node][key].shape
        J = np.zeros((2,) + shape)
        for idx in np.ndindex(shape):
            J[(slice(None),) + idx] = (f(node, key, idx, 1e-6) - f(node, key, idx, -1e-6)) / 2e-6
        J = J.reshape(2, -1)      # the forward pass applies c itself: J is df/dtheta
        np.testing.assert_allclose(terms[group], J @ J.T, rtol=1e-6, atol=1e-9)


# One spec per case: each analytic kernel compiles its own Numba module (about 30 s of CPU on a
# cold cache, about 1 s once cached), so the cases cover the masks and readouts with three
# specs; the true and fresh gradients share one.  A mask on A is tested where the rule is the
# limit: on a layer whose A has a fan_in that grows with the width (the second layer of a
# stack); with the input dimension d = 3 fixed, the masked input term is a Gaussian mixture.
STACK = """
name = "masked_stack"
input = {{ shape = [4, 3] }}
[[layer]]
kind = "rnn"
weight_var = 1.5
bias_var = 0.1
readout = "all"
[[layer]]
kind = "rnn"
weight_var = 1.2
bias_var = 0.1
readout = "{readout}"
{mask}
[[layer]]
kind = "dense"
"""
CASES = {
    "bernoulli-last": ('mask = { kind = "bernoulli", keep = 0.5 }', "last",
                       'mask = { kind = "bernoulli", keep = 0.5 }'),
    "bernoulli-rescaled-mean": ('mask = { kind = "bernoulli", keep = 0.5, rescale = true }',
                                "mean", ""),
    "magnitude-stack-mean-WA": ('mask = { kind = "magnitude", keep = 0.5, matrices = ["W", "A"] }',
                                "mean", None),
}
S, WIDTH = 16, 256


def case_arch(case):
    mask, readout, readout_mask = CASES[case]
    if readout_mask is None:
        return ntksym.loads_spec(STACK.format(mask=mask, readout=readout))
    return arch(mask, readout=readout, readout_mask=readout_mask)


@pytest.mark.parametrize("case, gradient", [("bernoulli-last", "true"),
                                            ("bernoulli-last", "fresh"),
                                            ("bernoulli-rescaled-mean", "true"),
                                            ("magnitude-stack-mean-WA", "true")])
def test_masked_rnn_empirical_matches_analytic(case, gradient):
    a = case_arch(case)
    X = sequences(3, seed=5)
    L = np.array([4, 2, 3])
    K = ntksym.kernel(a, X, kind="both", lengths=L)
    E = ntksym.empirical_kernel(a, X, width=WIDTH, samples=S, seed=13, kind="both",
                                gradient=gradient, lengths=L)
    for k in ("nngp", "ntk"):
        z = np.abs(E.mean[k] - K[k]) / E.stderr[k]
        assert z.max() < 4.0, (case, k, z.max(), K[k], E.mean[k])


# ------------------------------------------------------------------ bad masks

@pytest.mark.parametrize("mask, key, words", [
    ('{ kind = "bernoulli", keep = 1.5 }', "mask.keep", "(0, 1]"),
    ('{ kind = "magnitude", keep = 0 }', "mask.keep", "(0, 1]"),
    ('{ kind = "bernoulli", keep = 0.5, matrices = ["W", "B"] }', "mask.matrices", '"W"'),
    ('{ kind = "bernoulli", keep = 0.5, matrices = [] }', "mask.matrices", "non-empty"),
    ('{ kind = "bernoulli", keep = 0.5, matrices = "W" }', "mask.matrices", "a list"),
    ('{ kind = "filter", keep = 0.5 }', "mask.kind", "whole conv filters"),
    ('{ kind = "magnitude", keep = 0.5, scope = "global" }', "mask.scope", "dense layers only"),
    ('{ kind = "bernoulli", keep = 0.5, matrix = ["W"] }', "mask.matrix", "did you mean"),
    ('{ kind = "count", remove = 20 }\nwidth = 4', "mask.remove",
     "4 x 4 = 16 entries of the recurrent matrix W"),
    ('{ kind = "count", remove = 13, matrices = ["W", "A"] }\nwidth = 4', "mask.remove",
     "3 x 4 = 12 entries of the input matrix A"),
])
def test_bad_rnn_masks(mask, key, words):
    with pytest.raises(SpecError) as e:
        arch("mask = " + mask, path="bad.toml").graph
    msg = str(e.value)
    assert msg.startswith("bad.toml:") and f"key '{key}'" in msg and words in msg, msg


def test_count_too_large_for_the_finite_width_only():
    a = arch('mask = { kind = "count", remove = 30, matrices = ["W"] }')   # width open: no size yet
    a.graph
    with pytest.raises(SpecError, match="5 x 5 = 25 entries of the recurrent matrix W"):
        a.finite_graph(5)
    a.finite_graph(6)


@pytest.mark.parametrize("mask, words", [
    ('{ kind = "bernoulli", keep = 2 }', "key 'mask.keep'"),
    ('{ kind = "count", remove = 100 }\nwidth = 8', "exceeds"),
])
def test_cli_bad_rnn_mask_exits_2_with_one_line(tmp_path, capsys, mask, words):
    from cli import main
    p = tmp_path / "bad.toml"
    p.write_text(SPEC.format(mask="mask = " + mask, readout="last", b=0.1, readout_mask=""))
    with pytest.raises(SystemExit) as e:
        main(["check", str(p)])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert err.count("\n") == 1 and words in err and "Traceback" not in err, err
