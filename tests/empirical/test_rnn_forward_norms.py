"""`ntksym reproduce allen-zhu-forward-norms --quick`: Lemma B.3's bounds and the three regimes
of the recurrent variance, checked qualitatively against the theory (no stored numbers)."""

import csv

import numpy as np
import pytest

from ntksym.apps.reproduce import allen_zhu_li_song as az


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("az")
    return az.run(out, quick=True)


def test_lemma_b3_bounds(quick):
    b = quick["lemma_b3"]
    assert b["upper_holds_every_network"] and b["max_norm_over_upper"] < 1
    assert b["lower_holds_every_network_for_l_ge_2"]
    # l = 1 is a concentration statement: the fraction of draws below 1 - 1/(4L) must fall
    # as the width grows and the spread of |h_1| must shrink like m^(-1/2)
    sweep = b["l_1_vs_width"]
    widths = sorted(sweep, key=int)
    assert sweep[widths[-1]]["fraction_below_lower"] < sweep[widths[0]]["fraction_below_lower"]
    sd = [sweep[w]["std_norm_h1"] for w in widths]
    ratio = int(widths[-1]) / int(widths[0])
    assert sd[-1] < sd[0] / np.sqrt(ratio) * 2.5
    assert abs(b["std_norm_h1_predicted"] - np.sqrt(5 / quick["m"]) / 2) < 1e-4


def test_three_regimes(quick):
    L = quick["L"]
    r = quick["regimes"]
    growth = {c: r[c]["growth_second_half (|h_L| / |h_(L/2)|, median)"]
              for c in ("c=1", "c=2", "c=3")}
    assert growth["c=1"] < growth["c=2"] < growth["c=3"]
    # c < 2 saturates at the kernel's fixed point sqrt(2 / (2 - c)) = sqrt(2)
    assert abs(r["c=1"]["median_norm_at"][str(L)] / np.sqrt(2) - 1) < 0.25
    assert abs(r["c=1"]["kernel_at"][str(L)] - np.sqrt(2)) < 1e-3
    # the edge grows, but polynomially: the kernel says sqrt(l)
    assert abs(r["c=2"]["kernel_at"][str(L)] - np.sqrt(L)) < 1e-3
    assert 1 < growth["c=2"] < 2 * np.sqrt(2)
    # c > 2 explodes geometrically: at least half the kernel's exponent (3/2)^(l/2)
    assert np.log(growth["c=3"]) > 0.5 * (L - L // 2) * 0.5 * np.log(1.5)


def test_outputs_written(quick):
    with open(quick["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * quick["seeds"] * quick["n"] * quick["L"]
    assert {float(r["c"]) for r in rows} == {1.0, 2.0, 3.0}
    with open(quick["png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
