"""benchmarks/run_benchmarks.py, the issue-16 benchmark table: a smoke test at tiny sizes
(--quick) of the workers, the alternation, the JSON, the markdown table and --update-docs.

The neural-tangents part runs only when NTKSYM_NT_PYTHON names the Python of an environment
with neural-tangents 0.6.5 (e.g. NTKSYM_NT_PYTHON=path/to/ntenv/bin/python); otherwise it is
skipped and only ntksym's side is exercised."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testkit import ROOT

RUNNER = ROOT / "benchmarks" / "run_benchmarks.py"
NT_PYTHON = os.environ.get("NTKSYM_NT_PYTHON")


def _runner_module():
    spec = importlib.util.spec_from_file_location("run_benchmarks", RUNNER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(tmp_path, cases, nt_python=None, readme=None):
    """Run the quick table into tmp_path; the repository's README is never touched (another
    --docs than the default leaves it alone) unless ``readme`` names a file for the short
    table."""
    env = {k: v for k, v in os.environ.items() if k != "NTKSYM_NT_PYTHON"}
    if nt_python:
        env["NTKSYM_NT_PYTHON"] = nt_python
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nbefore\n\n<!-- benchmarks:begin -->\nold table\n"
                    "<!-- benchmarks:end -->\n\nafter\n")
    repo_readme = (ROOT / "README.md").read_bytes()
    r = subprocess.run([sys.executable, str(RUNNER), "--quick", "--cases", cases,
                        "--rounds", "2", "--out", str(tmp_path / "out"), "--update-docs",
                        "--docs", str(docs)] + (["--readme", str(readme)] if readme else []),
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (ROOT / "README.md").read_bytes() == repo_readme
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    table = (tmp_path / "out" / "table.md").read_text()
    text = docs.read_text()
    assert "old table" not in text and text.startswith("# Benchmarks\n\nbefore\n")
    assert text.endswith("<!-- benchmarks:end -->\n\nafter\n") and table in text
    return doc, table


def test_ntksym_side_json_table_and_docs(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## Speed\n\n<!-- benchmarks:begin -->\n<!-- benchmarks:end -->\n")
    doc, table = _run(tmp_path, "mlp-relu,cntk-digits", readme=readme)
    short = readme.read_text()
    assert "| case | ntksym | neural-tangents (jit) | ratio |" in short
    assert "[benchmarks.md](docs/benchmarks.md)" in short and "| BLAS Gram" not in short
    assert set(doc["results"]) == {"mlp-relu", "cntk-digits"}
    r = doc["results"]["mlp-relu"]
    assert set(r["wall"]) == {"ntksym:kernel", "ntksym:gram"}
    assert len(r["wall"]["ntksym:kernel"]["runs_s"]) == 2 and r["agreement_rel"] is None
    assert doc["machine"]["cores"] == os.cpu_count() and len(doc["load_before"]) == 3
    assert "| BLAS Gram" in table and "not run" in table
    assert "neural-tangents: not run" in table


@pytest.mark.skipif(not NT_PYTHON or not Path(NT_PYTHON).exists(),
                    reason="NTKSYM_NT_PYTHON (a neural-tangents 0.6.5 environment) not set")
def test_with_neural_tangents(tmp_path):
    doc, table = _run(tmp_path, "mlp-relu", NT_PYTHON)
    r = doc["results"]["mlp-relu"]
    assert "nt:kernel" in r["wall"] and r["agreement_rel"]["off_diagonal"] <= 1e-10
    assert doc["versions"]["nt"]["neural_tangents"] == "0.6.5"
    assert r["setup"]["nt"]["call"] == 'jax.jit(kernel_fn, static_argnames="get")'
    assert r["setup"]["nt"]["x64"] is True


def test_update_docs_creates_a_file_with_markers(tmp_path):
    mod = _runner_module()
    path = tmp_path / "benchmarks.md"
    mod.update_docs(path, "| a | b |\n")
    mod.update_docs(path, "| c | d |\n")
    text = path.read_text()
    assert text.count(mod.BEGIN) == 1 and "| c | d |" in text and "| a | b |" not in text


def test_update_docs_refuses_a_file_without_one_block(tmp_path):
    mod = _runner_module()
    path = tmp_path / "benchmarks.md"
    path.write_text("no markers\n")
    with pytest.raises(SystemExit):
        mod.update_docs(path, "x\n")
