"""Outputs for people (tables, formatted numbers, a verdict) and --json for machines."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli import app
from ntksym.report import Table, fmt_num, render, to_json
from testkit import ROOT

MLP1 = str(ROOT / "spec" / "cntk_mlp_depth1.toml")


def invoke(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


def test_numbers_for_reading():
    assert fmt_num(14579999.999999996, 6) == "1.458e7"
    assert fmt_num(0.6698957770004199) == "0.6699" and fmt_num(1e-300) == "1e-300"
    assert fmt_num(np.float64(2.5)) == "2.5" and fmt_num(np.int64(3)) == "3"
    assert fmt_num(np.bool_(True)) == "yes"


def test_wide_records_turn_on_their_side():
    records = [{f"column_number_{i}": i * 1.5 for i in range(12)} for _ in range(3)]
    text = render({"rows": records})
    assert max(map(len, text.splitlines())) <= 100
    assert text.splitlines()[2].split()[0] == "column_number_0"      # one row per column
    narrow = render({"rows": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]})
    assert narrow.splitlines()[1].split() == ["a", "b"]              # one row per record


def test_tables_are_records_in_json():
    s = {"t": Table(["x", "y"], [[1, 2.0], [3, 4.0]], title="T"), "n": np.int64(2)}
    assert json.loads(to_json(s)) == {"t": [{"x": 1, "y": 2.0}, {"x": 3, "y": 4.0}], "n": 2}
    assert render(s).splitlines()[:2] == ["T", "x  y"]


def test_simulator_reproduction_prints_a_table(tmp_path):
    out = invoke("reproduce", "qian-klabjan-simulator", "--quick", "--out", tmp_path)
    assert "{" not in out and "[" not in out                    # no Python reprs
    header = next(ln for ln in out.splitlines() if ln.startswith("alpha"))
    assert header.split() == ["alpha", "weights", "pruning", "seed", "pruned", "observed_gap",
                              "certificate", "theorem_1_bound", "theorem_1_applies", "seconds"]
    assert "certificate_holds: yes" in out
    # --json: the table as records with every CSV column (the text shows the main ones)
    from ntksym.apps.reproduce.qian_klabjan import run_simulator
    s = run_simulator(tmp_path / "again", quick=True)
    data = json.loads(to_json(s))
    assert len(data["rows"]) == 4 and len(data["rows"][0]) == 15
    assert data["rows"] == s["rows"].records() and data["certificate_holds"] is True


def test_forward_norms_reproduction_prints_tables(tmp_path):
    out = invoke("reproduce", "allen-zhu-forward-norms", "--quick", "--out", tmp_path)
    assert "{" not in out and "'" not in out
    lines = out.splitlines()
    regimes = lines.index("regimes:")
    assert lines[regimes + 1].split() == ["c=1", "c=2", "c=3"]
    assert any(ln.split()[:2] == ["median_over_kernel_at_L", "1.028"] for ln in lines)
    assert "upper_holds_every_network:" in out


def test_reproduce_list_json():
    listing = json.loads(invoke("reproduce", "--list", "--json"))
    assert "qian-klabjan-simulator" in listing and all(isinstance(v, str)
                                                       for v in listing.values())


def test_empirical_compare_gives_a_verdict_with_its_tolerance():
    args = ["empirical", MLP1, "--dataset", "digits:3", "--width", 64, "--samples", 8,
            "--compare"]
    out = invoke(*args)
    lines = dict(ln.split(":", 1) for ln in out.splitlines() if ":" in ln and "  " not in
                 ln.split(":", 1)[0])
    assert lines["verdict"].strip() == "pass"
    assert "standard errors (family-wise 1% over 6 entries, Student t, 7 d.o.f.)" in \
        lines["tolerance"]
    assert "max_dev_in_stderr" in out and "nngp" in out and "ntk" in out
    data = json.loads(invoke(*args, "--json"))
    assert data["verdict"] == "pass" and [r["kernel"] for r in data["compare"]] == ["nngp",
                                                                                    "ntk"]
    r = data["compare"][1]
    assert r["pass"] is True and r["max_dev_in_stderr"] <= r["tolerance"] == \
        pytest.approx(4.944, abs=1e-3)


def test_compare_fails_a_wrong_kernel_and_says_why():
    from ntksym.empirical.compare import compare_summary
    from ntksym.empirical.montecarlo import statistics
    rng = np.random.default_rng(0)
    K = np.array([[2.0, 1.0], [1.0, 2.0]])
    E = statistics({"ntk": [K + 0.1 * rng.standard_normal((2, 2)) for _ in range(16)]}, 8, 0)
    assert compare_summary(E, {"ntk": K})["verdict"] == "pass"
    s = compare_summary(E, {"ntk": K + 1.0})
    assert s["verdict"] == "fail" and s["note"].startswith("ntk outside")
    one = statistics({"ntk": [K]}, 8, 0)
    assert compare_summary(one, {"ntk": K})["verdict"] == "undetermined"


def test_converge_plot_tick_labels_do_not_overlap():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ntksym.apps.convergence import ConvergenceResult, convergence_figure
    widths = [100, 110, 120, 130, 150, 200, 300, 1000, 1100]
    rows = [{"width": w, "mean_abs_dev": 3.0 / np.sqrt(w), "mean_abs_dev_se": 0.1 / np.sqrt(w),
             "mc_mean_abs_dev": 1.0 / w, "max_abs_dev": 1.0, "seconds": 0.1} for w in widths]
    r = ConvergenceResult(spec="s", kind="ntk", n=3, samples=2, seed=0, rows=rows, slope=-0.5,
                          slope_se=0.01, intercept=np.log(3.0), analytic_mean_abs=1.0)
    fig = convergence_figure(r)
    try:
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[0]
        for axis, lo, hi in ((ax.xaxis, "x0", "x1"), (ax.yaxis, "y0", "y1")):
            labels = [t.label1 for t in axis.get_major_ticks()
                      if t.label1.get_visible() and t.label1.get_text()]
            boxes = sorted((t.get_window_extent(renderer) for t in labels),
                           key=lambda b: getattr(b, lo))
            assert len(boxes) >= 2
            for a, b in zip(boxes, boxes[1:]):
                assert getattr(b, lo) >= getattr(a, hi), "tick labels overlap"
        texts = [t.get_text() for t in ax.get_xticklabels() if t.get_visible()]
        assert "100" in texts and "1000" in texts and not any("times" in t for t in texts)
    finally:
        plt.close(fig)


def test_check_json_lists_layers_and_hash():
    data = json.loads(invoke("check", MLP1, "--json"))
    assert data["name"] == "cntk-mlp-depth1" and len(data["sha256"]) == 64
    assert [(l["id"], l["kind"]) for l in data["layers"]] == [
        ("dense_0", "dense"), ("relu_1", "relu"), ("dense_2", "dense")]
    assert data["layers"][0]["params"]["normalize"] is False and data["output"] == "dense_2"
