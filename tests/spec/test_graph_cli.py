"""`ntksym check` and `ntksym graph` (text, DOT, PNG)."""

import subprocess
import sys

import networkx as nx

import ntksym


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "cli", *map(str, args)], capture_output=True,
                          text=True)


def test_graph_attributes(spec_dir):
    g = ntksym.load_spec(spec_dir / "cntk_mlp_depth2.toml").graph
    assert list(nx.topological_sort(g)) == ["input", "dense_0", "relu_1", "dense_2", "relu_3",
                                            "dense_4"]
    assert g.nodes["dense_0"]["fan_in"] == 64 and g.nodes["dense_4"]["shape"] == (1,)
    assert g.nodes["relu_1"]["kind"] == "relu" and g.graph["output"] == "dense_4"


def test_check_and_graph_formats(spec_dir, tmp_path):
    spec = spec_dir / "cntk_mlp_depth2.toml"
    r = run_cli("check", spec)
    assert r.returncode == 0 and "not normalized (fan_in=64)" in r.stdout
    r = run_cli("graph", spec, "--format", "dot")
    assert r.returncode == 0 and '"dense_0" -> "relu_1";' in r.stdout
    png = tmp_path / "g.png"
    r = run_cli("graph", spec, "--format", "png", "-o", png)
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = run_cli("graph", spec, "--format", "png", "-o", png)
    assert r.returncode == 2 and "--force" in r.stderr
