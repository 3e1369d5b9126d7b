"""kernels/NAME.py is the generated module of spec/NAME.toml: regenerated and diffed, and
importable with numpy and numba alone."""

import json
import subprocess
import sys

import numpy as np
import pytest

import ntksym
from ntksym.codegen.generate import generate_source
from testkit import ROOT, SPEC_DIR

SPECS = sorted(SPEC_DIR.glob("*.toml"))


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_generated_module_is_up_to_date(spec):
    path = ROOT / "kernels" / f"{spec.stem}.py"
    assert path.exists(), f"missing {path}: run `ntksym codegen {spec} -o {path}`"
    fresh = generate_source(ntksym.load_spec(spec).derive())
    assert path.read_text() == fresh, (
        f"{path} differs from a fresh `ntksym codegen {spec}`; regenerate it")


_CHILD = r"""
import importlib, json, os, sys
import numpy as np
# a plain import from the kernels/ directory, as a user would do it (numba's disk cache
# needs a module that is importable by name)
sys.path.insert(0, os.path.dirname(sys.argv[1]))
mod = importlib.import_module(os.path.basename(sys.argv[1])[:-3])
X = np.load(sys.argv[2])
K = mod.kernel(X, outputs=("nngp", "ntk"))
np.save(sys.argv[3], np.stack([K["nngp"], K["ntk"]]))
heavy = ("sympy", "ntksym", "networkx", "click")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


@pytest.mark.parametrize("stem", ["cntk_mlp_depth3", "custom_expression"])
def test_module_runs_with_numpy_and_numba_only(stem, tmp_path):
    X = np.random.default_rng(1).standard_normal((4, 64)) * 0.4
    np.save(tmp_path / "X.npy", X)
    r = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT / "kernels" / f"{stem}.py"),
                        str(tmp_path / "X.npy"), str(tmp_path / "K.npy")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []
    K = np.load(tmp_path / "K.npy")
    ref = ntksym.kernel(ntksym.load_spec(SPEC_DIR / f"{stem}.toml"), X, kind="both")
    np.testing.assert_allclose(K[0], ref["nngp"], rtol=1e-13)
    np.testing.assert_allclose(K[1], ref["ntk"], rtol=1e-13)
