"""The graph specs of issue 14 and their two results: `ntksym reproduce residual-depth` and
`ntksym reproduce myrtle-digits` (--quick), the Myrtle layer lists, and the residual family's
depth-50 member against the shipped spec."""

import csv
import json
import math

import networkx as nx
import numpy as np
import pytest
from click.testing import CliRunner

import ntksym
from cli import app
from ntksym.apps.reproduce import residual_depth, shankar
from testkit import SPEC_DIR


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- Myrtle layer lists

def _nt_myrtle(depth, digits):
    """The layer kinds of neural-tangents' MyrtleNetwork (Shankar et al. 2020's code), with
    the 8x8 adaptation's pools for ``digits``."""
    f = {5: (2, 1, 1), 7: (2, 2, 2), 10: (3, 3, 3)}[depth]
    layers = ["conv", "relu"] * f[0] + ["avg_pool"] + ["conv", "relu"] * f[1] + ["avg_pool"]
    layers += ["conv", "relu"] * f[2] + ["avg_pool"] * (1 if digits else 3)
    return layers + ["flatten", "dense"]


@pytest.mark.parametrize("depth", [5, 7, 10])
@pytest.mark.parametrize("digits", [False, True])
def test_myrtle_specs_are_the_papers_layer_lists(depth, digits):
    stem = f"myrtle{depth}" + ("_digits" if digits else "")
    g = ntksym.load_spec(SPEC_DIR / f"{stem}.toml").graph
    order = [n for n in nx.topological_sort(g) if n != "input"]
    assert [g.nodes[n]["kind"] for n in order] == _nt_myrtle(depth, digits)
    assert sum(g.nodes[n]["kind"] in ("conv", "dense") for n in order) == depth
    for n in order:
        a = g.nodes[n]
        if a["kind"] in ("conv", "dense"):
            p = a["params"]
            assert (p["weight_var"], p["bias_var"], p["normalize"]) == (2.0, 0.0, True)
        if a["kind"] == "conv":
            assert (a["geometry"]["filter"], a["geometry"]["stride"]) == ((3, 3), (1, 1))
            assert a["geometry"]["padding"] == "same"
        if a["kind"] == "avg_pool":
            assert (a["geometry"]["filter"], a["geometry"]["stride"]) == ((2, 2), (2, 2))
    assert g.nodes[order[-2]]["in_shapes"][0][:2] == (1, 1)       # flatten sees 1x1 images


# --------------------------------------------------------------------------- residual depth

def _arccos(a, b, c):
    """ReLU duals of N(0, [[a, c], [c, b]]): (E[relu relu], E[relu' relu'])."""
    rho = np.clip(c / np.sqrt(a * b), -1.0, 1.0)
    t = np.arccos(rho)
    return (np.sqrt(a * b) * (np.sin(t) + (np.pi - t) * rho) / (2 * np.pi),
            (np.pi - t) / (2 * np.pi))


def _oracle(family, depth, x, y):
    """(rho_nngp, rho_ntk) of residual_depth's networks by the plain recursion."""
    d = len(x)
    S = np.array([x @ x, y @ y, x @ y]) / d          # (xx, yy, xy)
    S, T = 2 * S, 2 * S                               # stem dense, weight_var 2, no bias

    def relu_dense(S, T):
        E, Ed = _arccos(S[0], S[1], S[2])
        Sr = np.array([S[0] / 2, S[1] / 2, E])
        Tr = T * np.array([0.5, 0.5, Ed])
        return 2 * Sr, 2 * Tr + 2 * Sr

    s2 = residual_depth.branch_scale(family, depth) ** 2
    for _ in range(depth):
        Sb, Tb = relu_dense(S, T)
        S, T = (Sb, Tb) if family == "plain" else (S + s2 * Sb, T + s2 * Tb)
    S, T = relu_dense(S, T)
    return S[2] / math.sqrt(S[0] * S[1]), T[2] / math.sqrt(T[0] * T[1])


def test_residual_depth_quick(tmp_path):
    res = CliRunner().invoke(app, ["reproduce", "residual-depth", "--quick",
                                   "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)              # stdout is the JSON alone (no table before)
    assert [r["blocks"] for r in summary["rho"]] == list(residual_depth.QUICK_DEPTHS)
    rows = _rows(tmp_path / "residual_depth.csv")
    assert {(r["network"], int(r["blocks"])) for r in rows} == {
        (f, L) for f in residual_depth.FAMILIES for L in residual_depth.QUICK_DEPTHS}
    x, y = residual_depth.two_digits()
    for r in rows:
        nngp, ntk = _oracle(r["network"], int(r["blocks"]), x, y)
        assert float(r["rho_nngp"]) == pytest.approx(nngp, abs=1e-9)
        assert float(r["rho_ntk"]) == pytest.approx(ntk, abs=1e-9)
    assert (tmp_path / "residual_depth.png").stat().st_size > 1000


def test_residual_depth_oracle_shows_the_effect():
    # the recursion the test checks ntksym against: at depth 50 the plain network's NNGP
    # correlation is near 1 and its NTK correlation falls toward 1/4 (both forget the inputs),
    # while the 1/sqrt(L) residual ones stay near their depth-1 values
    x, y = residual_depth.two_digits()
    plain = _oracle("plain", 50, x, y)
    scaled, scaled_1 = _oracle("residual", 50, x, y), _oracle("residual", 1, x, y)
    assert plain[0] > 0.98 and plain[1] < 0.31
    assert abs(scaled[0] - scaled_1[0]) < 0.03 and abs(scaled[1] - scaled_1[1]) < 0.03


def test_depth_50_member_is_the_shipped_spec():
    shipped = ntksym.load_spec(SPEC_DIR / "residual_mlp_depth50.toml").graph
    built = ntksym.loads_spec(residual_depth.spec_text("residual", 50)).graph
    assert list(shipped.nodes) == list(built.nodes)
    assert set(shipped.edges) == set(built.edges)
    for n in shipped.nodes:
        a, b = shipped.nodes[n], built.nodes[n]
        assert (a["kind"], a.get("params"), a["shape"]) == (b["kind"], b.get("params"),
                                                            b["shape"])
    assert shipped.nodes["res_50_add_2"]["params"]["scales"] == [1.0, 1 / math.sqrt(50)]


# --------------------------------------------------------------------------- Myrtle on digits

def test_myrtle_digits_quick(tmp_path):
    res = CliRunner().invoke(app, ["reproduce", "myrtle-digits", "--quick",
                                   "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    rows = _rows(tmp_path / "myrtle_digits.csv")
    q = shankar.QUICK
    assert {(r["kernel"], r["kind"]) for r in rows} == {
        (k, kind) for k in q["kernels"] for kind in ("NTK", "NNGP")}
    for r in rows:
        assert (int(r["n_train"]), int(r["n_test"])) == q["split"]
        assert r["spec"] == shankar.KERNELS[r["kernel"]][0]
        assert 0.5 < float(r["accuracy"]) <= 1.0                   # chance is 0.1
        assert float(r["condition_number"]) >= 1.0
    assert (tmp_path / "myrtle_digits.png").stat().st_size > 1000
    assert "Myrtle-5" in res.output and "CNTK-GAP" in res.output


def test_myrtle_digits_splits_are_shared_and_seeded():
    a = shankar._digits(30, 20, 0)
    b = shankar._digits(30, 20, 0)
    c = shankar._digits(30, 20, 1)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (30, 64) and a[2].shape == (20, 64)
