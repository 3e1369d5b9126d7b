"""Numerical checks: Qian & Klabjan Tables 2/3 (small real samples), CLB Theorem 3.1 monitor,
NTK margin primal = dual."""

import math

import numpy as np
import pytest

from ntksym.apps.reproduce import get, names
from ntksym.apps.reproduce import qian_klabjan as rq
from ntksym.bounds import chatterji_long_bartlett as clb
from ntksym.bounds.clb_check import (
    check_theorem_3_1,
    init_weights,
    make_separable_example,
    ntk_gram,
)
from ntksym.bounds.margin import ntk_margin, simplex_qp


def test_registry_has_tables():
    assert {"qian-klabjan-table2", "qian-klabjan-table3"} <= set(names())
    assert get("qian-klabjan-table2")[1] is rq.run_table2


def test_table2_rows_small_sample():
    # N = 300 per row, two rows: mean within 1.5%, 95% quantile within 2.5% of the paper
    rng = np.random.default_rng(5)
    for n1, n2, K, mean, std, c95, *_ in (rq.TABLE2[0], rq.TABLE2[12]):
        r = rq.table2_row(n1, n2, K, 300, rng)
        assert r["mean"] == pytest.approx(mean, rel=0.015)
        assert r["c0_0.95"] == pytest.approx(c95, rel=0.025)
        assert r["delta0_0.95"] == pytest.approx(math.log(40) / (4 * max(n1, n2)))


def test_table3_rows_small_sample():
    # U at d=32 and the with-replacement zeroing at d=32, alpha=0.1, N = 150: within 5%
    rng = np.random.default_rng(6)
    for d, dist, alpha, *paper in (rq.TABLE3[0], rq.TABLE3[19]):
        r = rq.table3_row(d, dist, alpha, 150, rng)
        for k, pv in zip(["row", "col", "fourth", "mean_norm", "C"], paper):
            assert r[k] == pytest.approx(pv, rel=0.05), (d, dist, alpha, k)
    # without replacement the pruned row would be about 0.558 instead of 0.714: the
    # reconstruction (with replacement) is what the test above confirms


def test_run_table2_quick_writes_csv(tmp_path, monkeypatch):
    monkeypatch.setattr(rq, "TABLE2", rq.TABLE2[:2])
    s = rq.run_table2(tmp_path, quick=True)
    text = (tmp_path / "qian_klabjan_table2.csv").read_text().splitlines()
    assert len(text) == 3 and text[0].startswith("n1,n2,K,N,mean,paper_mean")
    assert s["rows"] == 2 and s["max_rel_err"]["mean"] < 0.02


def test_theorem_3_1_applies_and_invariants_hold():
    V, X, y = make_separable_example(p=4, n=4, L=1, h=1e-3)
    r = check_theorem_3_1(V, X, y, h=1e-3, steps=40)
    assert r["applies"], r["reasons"]
    assert r["log_J1"] < r["log_threshold"] and r["h"] < r["h_max"]
    assert r["invariants_hold"], r["checks"]
    tr = r["trajectory"]
    assert np.all(tr["log_J"] <= tr["log_bound"] + 1e-9)
    # the log-domain quantities agree with the sympy bounds
    J1 = math.exp(r["log_J1"])
    assert r["h_max"] == pytest.approx(clb.theorem_3_1_h_max.evaluate(L=1, p=4, J_1=J1,
                                                                      N_1=r["N1"]), rel=1e-9)
    am = clb.theorem_3_1_alpha_max.evaluate(L=1, p=4, J_1=J1, N_1=r["N1"], h=1e-3)
    assert math.exp(r["log_alpha_max"]) == pytest.approx(am, rel=1e-9)
    qt = clb.theorem_3_1_Q_tilde.evaluate(L=1, alpha=am, J_1=J1, N_1=r["N1"])
    assert math.exp(r["log_Q_tilde"]) == pytest.approx(qt, rel=1e-9)


def test_theorem_3_1_deep_underflowing_threshold():
    # L=2: threshold 4^-49 ~ 3e-30 and J_1 far below float64's comfortable range of logs
    V, X, y = make_separable_example(p=4, n=4, L=2, h=1e-4, factor=1e-20)
    r = check_theorem_3_1(V, X, y, h=1e-4, steps=10)
    assert r["applies"] and r["invariants_hold"], (r["reasons"], r["checks"])


def test_theorem_3_1_does_not_apply():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5, 4))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    r = check_theorem_3_1(init_weights(4, 1, 0), X, np.array([1, -1, 1, 1, -1.0]), h=1e-3,
                          steps=3)
    assert not r["applies"] and any("J_1 >= n^-(1+24L)" in s for s in r["reasons"])
    # a step size above alpha_max is reported, and invariant I3 is then seen to fail
    V, X, y = make_separable_example()
    r = check_theorem_3_1(V, X, y, h=1e-3, steps=5, alpha=1e3)
    assert not r["applies"] and r["checks"]["I3"] == 5


def test_margin_primal_dual_agree():
    for seed in range(4):
        rng = np.random.default_rng(seed)
        Phi = rng.normal(size=(12, 30))
        y = rng.choice([-1.0, 1.0], 12)
        r = ntk_margin(Phi @ Phi.T, y, width=30)
        assert r["gamma"] > 0
        assert abs(r["gamma"] - r["gamma_primal"]) <= 1e-6 * r["gamma"]
        assert abs(r["gamma"] - r["gamma_witness"]) <= 1e-6 * r["gamma"]


def test_margin_by_hand_and_on_clb_gram():
    # two opposite-label points with K = [[1, c], [c, 1]]: Y K Y = [[1, -c], [-c, 1]],
    # min over the simplex at a = (1/2, 1/2): (1 - c)/2 -> gamma = sqrt((1 - c)/2)
    c = 0.3
    r = ntk_margin(np.array([[1, c], [c, 1.0]]), np.array([1, -1]))
    assert r["gamma"] == pytest.approx(math.sqrt((1 - c) / 2), rel=1e-12)
    a, v = simplex_qp(np.diag([1.0, 2.0, 4.0]))   # a proportional to 1/diag: v = 1/(1+1/2+1/4)
    assert v == pytest.approx(4 / 7) and a == pytest.approx(np.array([4, 2, 1]) / 7)
    # the empirical NTK Gram of the paper's network at init
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 16))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = rng.choice([-1.0, 1.0], 10)
    r = ntk_margin(ntk_gram(init_weights(16, 2, seed=3), X, 1e-4), y, width=16)
    assert 0.05 < r["gamma"] < 2 and abs(r["gamma"] - r["gamma_primal"]) <= 1e-6 * r["gamma"]


def test_ntk_gram_matches_backprop_and_finite_differences():
    from ntksym.bounds.clb_check import _backprop, forward
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3, 5))
    V = init_weights(5, 2, seed=1)
    h = 0.05
    xs, us, f = forward(V, X, h)
    grads = [_backprop(V, xs, us, h, np.eye(3)[s]) for s in range(3)]
    flat = np.array([np.concatenate([g.ravel() for g in gs]) for gs in grads])
    np.testing.assert_allclose(ntk_gram(V, X, h), flat @ flat.T, rtol=1e-12)
    # central differences on one hidden weight (the Huberized ReLU is C^1)
    e = 1e-6
    Vp = [W.copy() for W in V]
    Vm = [W.copy() for W in V]
    Vp[0][1, 2] += e
    Vm[0][1, 2] -= e
    fd = (forward(Vp, X, h)[2] - forward(Vm, X, h)[2]) / (2 * e)
    np.testing.assert_allclose(fd, [g[0][1, 2] for g in grads], rtol=1e-6, atol=1e-9)
