"""Qian & Klabjan pruning simulator: the certificate is an upper bound, the ascent a lower one."""

import math

import numpy as np
import pytest

from ntksym.apps.pruning_sim import (
    certificate,
    gap_gradient,
    gaps,
    observed_gap,
    prune,
    simulate,
    target_network,
)
from ntksym.errors import NtksymError

SEARCH = dict(n_random=128, n_ascent=8, steps=40)


@pytest.mark.parametrize("weights,pruning,l,alpha", [
    ("uniform", "magnitude", 3, 0.5), ("uniform", "magnitude", 3, 0.15),
    ("uniform", "random", 3, 0.3), ("gaussian", "magnitude", 4, 0.2),
    ("gaussian", "random", 5, 0.2)])
def test_certificate_dominates_observed_gap_over_seeds(weights, pruning, l, alpha):
    for seed in range(4):
        r = simulate(d=24, l=l, alpha=alpha, weights=weights, pruning=pruning, seed=seed,
                     **SEARCH)
        assert 0 < r["observed_gap"] <= r["certificate"], (seed, r)
        # the ascent only ever adds evaluated points, so it cannot lose to random search
        assert r["observed_gap"] >= r["observed_gap_random_only"]


def test_certificate_recursion_by_hand_and_zero_when_unpruned():
    rng = np.random.default_rng(3)
    Ws = target_network(8, 3, rng)
    assert certificate(Ws, Ws)[0] == 0.0
    Wf = [Ws[0], prune(Ws[1], 5, "magnitude", rng), Ws[2]]
    bound, N, eta = certificate(Wf, Ws)
    # l = 3: e_2 = eta_2 B_1, B_1 = N_1, gap <= N_3 e_2
    assert bound == pytest.approx(N[2] * eta[1] * N[0], rel=1e-14)
    assert eta[1] == pytest.approx(np.linalg.norm(Wf[1] - Ws[1], 2))


def test_magnitude_pruning_removes_the_smallest_entries():
    rng = np.random.default_rng(0)
    W = rng.uniform(-1, 1, size=(10, 12))
    P = prune(W, 17, "magnitude", rng)
    removed = np.abs(W[P == 0])
    assert removed.size == 17 and removed.max() <= np.abs(W[P != 0]).min()
    R = prune(W, 17, "random", rng)       # with replacement: at most 17 distinct zeros
    assert 1 <= np.sum(R == 0) <= 17


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    Ws = target_network(10, 4, rng, "gaussian", d_out=3)
    Wf = [Ws[0]] + [prune(W, 30, "random", rng) for W in Ws[1:3]] + [Ws[3]]
    x = rng.standard_normal((1, 10))
    val, g = gap_gradient(Wf, Ws, x)
    assert val[0] == pytest.approx(0.5 * gaps(Wf, Ws, x)[0] ** 2)
    h = 1e-6
    for i in range(10):
        e = np.zeros_like(x)
        e[0, i] = h
        fd = (gap_gradient(Wf, Ws, x + e)[0][0] - gap_gradient(Wf, Ws, x - e)[0][0]) / (2 * h)
        assert fd == pytest.approx(g[0, i], rel=1e-5, abs=1e-10)


def test_ascent_improves_on_random_search():
    rng = np.random.default_rng(0)
    Ws = target_network(32, 3, rng)
    Wf = [Ws[0], prune(Ws[1], 200, "magnitude", rng), Ws[2]]
    best, random_best = observed_gap(Wf, Ws, np.random.default_rng(1), 64, 8, 50)
    assert best > 1.2 * random_best


def test_theorem_1_bound_value_and_pruned_count():
    r = simulate(d=16, l=3, alpha=0.5, seed=0, n_random=8, n_ascent=2, steps=2)
    assert r["pruned_per_layer"] == [math.floor((16 * 16) ** 0.5)]
    assert r["theorem_1_bound"] == pytest.approx(16 ** -0.5 * 1.174 ** 2)


@pytest.mark.parametrize("kw", [dict(l=2), dict(alpha=1.0), dict(weights="cauchy"),
                                dict(pruning="global"), dict(d_in=64)])
def test_bad_arguments_are_user_errors(kw):
    with pytest.raises(NtksymError):
        simulate(**dict(dict(d=16, n_random=4, n_ascent=1, steps=1), **kw))


def test_cli_prune_sim_and_reproduction_quick(tmp_path):
    from click.testing import CliRunner

    import cli
    res = CliRunner().invoke(cli.app, ["prune-sim", "--width", "16", "--quick", "--json"])
    assert res.exit_code == 0, res.output
    with pytest.raises(SystemExit) as e:      # main() maps user errors to exit status 2
        cli.main(["prune-sim", "--depth", "2"])
    assert e.value.code == 2
    from ntksym.apps.reproduce import get
    s = get("qian-klabjan-simulator")[1](tmp_path, quick=True)
    assert s["certificate_holds"] and (tmp_path / "qian_klabjan_simulator.csv").exists()
