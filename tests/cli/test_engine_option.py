"""``ntksym kernel --engine auto|numpy|compiled`` (issue 16, "no waiting to start").

* the first kernel of a new spec on 100 inputs, with empty ntksym and Numba caches, never
  imports Numba (the NumPy tier evaluates it) and says so in one line with --progress;
* ``--dry-run`` on a spec that was never compiled estimates without importing Numba;
* the compile progress line appears on a terminal (or with --progress) only when a
  compilation is coming, never when stderr is piped;
* the disk-cache lookup that decides it (:func:`ntksym.codegen.cache.is_compiled`).
"""

import json
import subprocess
import sys

import numpy as np
import pytest

import cli
import ntksym
from ntksym.codegen import cache
from ntksym.engine import common
from testkit import ROOT, SPEC_DIR

MLP1 = "spec/cntk_mlp_depth1.toml"


def run(capsys, *args):
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def new_spec(tmp_path, name):
    """The depth-5 MLP under a name no cache has seen (a new spec hash)."""
    text = (SPEC_DIR / "cntk_mlp_depth5.toml").read_text()
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace('name = "cntk-mlp-depth5"', f'name = "{name}"'))
    return path


_PROBE = """
import json, sys
import cli
try:
    cli.main(sys.argv[1:])
except SystemExit as e:
    assert e.code in (0, None), e.code
print("\\nIMPORTED " + json.dumps("numba" in sys.modules))
"""


def run_fresh(tmp_path, *args):
    """``ntksym ARGS`` in a fresh interpreter with empty ntksym and Numba caches:
    (stdout, stderr, whether Numba was imported)."""
    env = dict(__import__("os").environ, NTKSYM_CACHE_DIR=str(tmp_path / "ntksym-cache"),
               NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    r = subprocess.run([sys.executable, "-c", _PROBE, *map(str, args)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.splitlines() if l.startswith("IMPORTED ")][-1]
    return r.stdout, r.stderr, json.loads(line[len("IMPORTED "):])


def test_first_kernel_of_a_new_spec_needs_no_compiler(tmp_path):
    spec = new_spec(tmp_path, "fresh-mlp")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((100, 64)))
    out, err, numba = run_fresh(tmp_path, "kernel", spec, "--x", tmp_path / "x.npy",
                                "-o", tmp_path / "K.npy", "--json", "--progress")
    assert not numba
    assert json.loads(out[:out.index("\nIMPORTED")])["engine"] == "numpy"
    assert "ntksym: 5050 pairs: evaluated with NumPy (no compile" in err
    assert "--engine compiled to compile" in err and "compiling" not in err
    K = np.load(tmp_path / "K.npy")
    want = ntksym.kernel(ntksym.load_spec(spec), np.load(tmp_path / "x.npy"), engine="numpy")
    assert np.array_equal(K, want)
    assert not list((tmp_path / "ntksym-cache").glob("ntksym_gen_*"))   # nothing generated


def test_dry_run_compiles_nothing(tmp_path):
    spec = new_spec(tmp_path, "fresh-mlp-plan")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((300, 64)))
    out, _, numba = run_fresh(tmp_path, "kernel", spec, "--x", tmp_path / "x.npy",
                              "--tile", "100", "--dry-run", "--json")
    assert not numba
    plan = json.loads(out[:out.index("\nIMPORTED")])
    assert plan["pairs"] == 300 * 301 // 2 and plan["engine"] == "compiled"
    assert plan["seconds_per_pair"] > 0 and plan["estimated_seconds"] > 0
    assert "NumPy tier timed on" in plan["estimate"] and "to compile" in plan["estimate"]


def test_engine_option_and_choice_line(capsys, tmp_path):
    X = tmp_path / "x.npy"
    np.save(X, np.random.default_rng(1).standard_normal((5, 64)))
    outs = {}
    for engine in ("numpy", "compiled"):
        code, out, err = run(capsys, "kernel", MLP1, "--x", X, "--engine", engine, "--json",
                             "-o", tmp_path / f"{engine}.npy")
        assert code == 0 and json.loads(out)["engine"] == engine
        assert err == ""                          # piped: no choice line, no progress
        outs[engine] = np.load(tmp_path / f"{engine}.npy")
    np.testing.assert_allclose(outs["numpy"], outs["compiled"], rtol=1e-12, atol=0)
    code, out, err = run(capsys, "kernel", MLP1, "--x", X, "--progress")
    assert code == 0 and "\nengine:  numpy\n" in out          # keys aligned (ntksym.report)
    assert err.startswith("ntksym: 15 pairs: evaluated with NumPy (no compile")
    code, _, err = run(capsys, "kernel", MLP1, "--x", X, "--engine", "numpy", "--tile", "2",
                       "-o", tmp_path / "t.npy")
    assert code == 2 and "--engine numpy evaluates in memory" in err


def test_compile_line_only_before_a_compilation(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("NTKSYM_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    arch = ntksym.load_spec(SPEC_DIR / "cntk_mlp_depth2.toml")
    common.announce_compile(arch, progress=None)      # stderr is not a terminal here
    common.announce_compile(arch, progress=False)
    assert capsys.readouterr().err == ""
    common.announce_compile(arch, progress=True)
    assert capsys.readouterr().err == ("ntksym: compiling cntk-mlp-depth2 (first use of this "
                                       "spec, cached afterwards)\n")
    # once Numba's index of the module is on disk, nothing is said
    source = common.cpu_source(arch)
    path = cache.module_path(source, "cntk_mlp_depth2")
    path.write_text(source)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / f"{path.stem}.cross_tile-60.py311.nbi").write_bytes(b"")
    common.announce_compile(arch, progress=True)
    assert capsys.readouterr().err == ""


def test_is_compiled_follows_numba_cache_dir(monkeypatch, tmp_path):
    import hashlib
    monkeypatch.setenv("NTKSYM_CACHE_DIR", str(tmp_path / "src"))
    numba_dir = tmp_path / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(numba_dir))
    source = "def f():\n    return 1\n"
    path = cache.module_path(source, "probe")
    assert not cache.is_compiled(source, "probe")
    path.write_text(source)
    assert not cache.is_compiled(source, "probe")
    folder = path.parent.resolve()
    where = numba_dir / f"{folder.name}_{hashlib.sha1(str(folder).encode()).hexdigest()}"
    where.mkdir(parents=True)
    (where / f"{path.stem}.f-1.py311.nbi").write_bytes(b"")
    assert cache.is_compiled(source, "probe")
