"""Bad input: one clear message, exit status 2, nothing written (issue 2, item 5)."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ntksym
from ntksym.errors import SpecError
from ntksym.spec.parse import loads_spec

GOOD = 'name = "m"\ninput = { shape = [3] }\n[[layer]]\nkind = "dense"\nactivation = "relu"\n' \
       '[[layer]]\nkind = "dense"\n'


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cli", *map(str, args)], capture_output=True,
                          text=True)


def spec_error(text):
    with pytest.raises(SpecError) as e:
        ntksym.loads_spec(text, path="bad.toml")
    return str(e.value)


def test_malformed_toml():
    msg = spec_error('name = "m"\ninput = { shape = [3] \n')
    assert msg.startswith("bad.toml:2") and "malformed TOML" in msg


def test_unknown_kind_suggests():
    msg = spec_error(GOOD.replace('kind = "dense"\nactivation', 'kind = "dens"\nactivation'))
    assert "bad.toml:4" in msg and "key 'kind'" in msg and "did you mean 'dense'" in msg


def test_unknown_key_suggests():
    msg = spec_error(GOOD.replace('activation = "relu"', 'weight_vr = 2.0'))
    assert "bad.toml:5" in msg and "weight_vr" in msg and "did you mean 'weight_var'" in msg


def test_wrong_type():
    msg = spec_error(GOOD.replace('activation = "relu"', 'weight_var = "two"'))
    assert "bad.toml:5" in msg and "a finite number" in msg and "layer 1" in msg


def test_unknown_activation_in_shorthand():
    msg = spec_error(GOOD.replace('"relu"', '"rleu"'))
    assert "key 'activation'" in msg and "relu" in msg


def test_no_scalar_output():
    with pytest.raises(SpecError, match="must end in a readout"):
        ntksym.loads_spec('name = "m"\ninput = { shape = [3] }\n[[layer]]\nkind = "dense"\n'
                          'activation = "tanh"\n', path="bad.toml").graph
    # a readout of width k > 1 is accepted (tests/empirical/test_readout_width.py)
    assert ntksym.loads_spec(GOOD + "width = 10\n").graph.nodes["dense_2"]["shape"] == (10,)


def test_expression_never_evaluated():
    for expr in ["__import__('os').system('echo pwned')", "z.__class__", "().__class__",
                 "9**9**9**9", "[z for z in range(3)]"]:
        text = GOOD.replace('activation = "relu"\n', "") + \
            f'[[layer]]\nkind = "activation"\nexpr = "{expr}"\n[[layer]]\nkind = "dense"\n'
        with pytest.raises(SpecError):
            ntksym.loads_spec(text).graph


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_random_text_only_raises_spec_error(text):
    try:
        loads_spec(text)
    except SpecError:
        pass


_values = st.one_of(st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=8),
                    st.booleans(), st.lists(st.integers(-2, 4), max_size=3))
_keys = st.sampled_from(["kind", "width", "weight_var", "bias_var", "activation", "repeat",
                         "normalize", "parameterization", "trainable", "expr", "slope", "k",
                         "inputs", "id", "h", "nonsense"])
_kinds = st.sampled_from(["dense", "relu", "tanh", "activation", "leaky_relu", "relu_power",
                          "conv", "dens", "huberized_relu"])


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, float) and v != v:
        return "nan"
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, list):
        return "[" + ", ".join(map(str, v)) + "]"
    return repr(v)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_kinds, st.dictionaries(_keys, _values, max_size=4)), max_size=5),
       st.lists(st.integers(-1, 4), min_size=0, max_size=3))
def test_random_valid_looking_specs_only_raise_spec_error(layers, shape):
    text = f'name = "fuzz"\ninput = {{ shape = [{", ".join(map(str, shape))}] }}\n'
    for kind, kv in layers:
        text += f'[[layer]]\nkind = "{kind}"\n'
        for k, v in kv.items():
            if k != "kind":
                text += f"{k} = {_toml_value(v)}\n"
    try:
        arch = ntksym.loads_spec(text)
        arch.graph
        arch.derive()
    except SpecError:
        pass


@pytest.fixture
def files(tmp_path, spec_dir):
    X = np.random.default_rng(0).standard_normal((4, 64))
    np.save(tmp_path / "X.npy", X)
    bad = X.copy()
    bad[2, 5] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    np.save(tmp_path / "wrongdim.npy", X[:, :10])
    (tmp_path / "malformed.toml").write_text("name = \n")
    return tmp_path, spec_dir / "cntk_mlp_depth1.toml"


@pytest.mark.parametrize("case, needle", [
    ("malformed", "malformed TOML"),
    ("wrongdim", "feature dimension"),
    ("nan", "NaN or inf (first at index (2, 5))"),
    ("missing_x", "file not found"),
    ("missing_spec", "no such spec file"),
    ("exists", "exists; pass --force"),
])
def test_cli_bad_input_exit_2_nothing_written(files, case, needle):
    tmp, spec = files
    out = tmp / "K.npy"
    args = ["kernel", spec, "--x", tmp / "X.npy", "-o", out]
    if case == "malformed":
        args[1] = tmp / "malformed.toml"
    elif case == "wrongdim":
        args[3] = tmp / "wrongdim.npy"
    elif case == "nan":
        args[3] = tmp / "nan.npy"
    elif case == "missing_x":
        args[3] = tmp / "nothere.npy"
    elif case == "missing_spec":
        args[1] = tmp / "nothere.toml"
    elif case == "exists":
        out.write_bytes(b"precious")
    before = sorted(p.name for p in tmp.iterdir())
    r = run_cli(*args)
    assert r.returncode == 2, r.stderr
    assert needle.lower() in r.stderr.lower(), r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp.iterdir()) == before
    if case == "exists":
        assert out.read_bytes() == b"precious"


# ------------------------------------------- issue 15: option ranges, damaged data, huge specs

def _lying_npy(path):
    """An .npy whose header claims a (2**22, 2**22, 3) float64 array (384 TiB) in 192 bytes."""
    import io
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"shape": (2**22, 2**22, 3), "descr": "<f8",
                                               "fortran_order": False})
    path.write_bytes(buf.getvalue() + bytes(64))


CYCLE = 'name = "m"\ninput = { shape = [64] }\n[[layer]]\nkind = "dense"\nid = "a"\n' \
        'inputs = ["c"]\n[[layer]]\nkind = "relu"\nid = "b"\n[[layer]]\nkind = "dense"\nid = "c"\n'
HUGE_REPEAT = 'name = "m"\ninput = { shape = [64] }\n[[layer]]\nkind = "dense"\n' \
              'activation = "relu"\nrepeat = 1000000000\n[[layer]]\nkind = "dense"\n'


@pytest.mark.parametrize("extra, needle", [
    (["--threads", "-1"], "'--threads': -1 is not in the range x>=1"),
    (["--threads", "1000"], "'--threads': 1000 is more than the"),
    (["--threads", "0"], "'--threads': 0 is not in the range x>=1"),
    (["--tile", "0"], "'--tile': 0 is not in the range x>=1"),
    (["--workers", "0"], "'--workers': 0 is not in the range x>=1"),
    (["--max-memory", "nan"], "'--max-memory': cannot read memory size 'nan'"),
    (["--max-memory", "inf"], "'--max-memory': cannot read memory size 'inf'"),
    (["-o", ""], "'--output': empty path"),
    ("corrupt_npz", "x.npz: cannot read it (corrupt or not a numpy file"),
    ("lying_npy", "claims shape (4194304, 4194304, 3) of float64"),
    ("lying_npz", "array 'x': the header claims shape (4194304, 4194304, 3)"),
    ("cycle", "cycle.toml:3: layer 1, key 'inputs': inputs form a cycle: a -> b -> c -> a"),
    ("repeat", "repeat.toml:6: layer 1, key 'repeat': more than 10000 layers after repeat"),
])
def test_cli_issue15_user_errors_exit_2_nothing_written(files, extra, needle):
    tmp, spec = files
    out = tmp / "K.npy"
    x = tmp / "X.npy"
    if extra == "corrupt_npz":
        np.savez(tmp / "good.npz", x=np.ones((4, 64)))
        data = (tmp / "good.npz").read_bytes()
        x = tmp / "x.npz"
        x.write_bytes(data[:len(data) // 2])         # truncated: no central directory
    elif extra in ("lying_npy", "lying_npz"):
        x = tmp / "x.npy"
        _lying_npy(x)
        if extra == "lying_npz":
            import zipfile
            with zipfile.ZipFile(tmp / "x.npz", "w") as zf:
                zf.writestr("x.npy", x.read_bytes())
            x.unlink()
            x = tmp / "x.npz"
    elif extra in ("cycle", "repeat"):
        spec = tmp / f"{extra}.toml"
        spec.write_text(CYCLE if extra == "cycle" else HUGE_REPEAT)
    args = ["kernel", spec, "--x", x, "-o", out]
    if isinstance(extra, list):
        args = args[:-2] + extra if extra[0] == "-o" else args + extra
    before = sorted(p.name for p in tmp.iterdir())
    r = run_cli(*args)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert sorted(p.name for p in tmp.iterdir()) == before


def test_huge_repeat_refused_before_expanding():
    import time
    t0 = time.perf_counter()
    msg = spec_error(HUGE_REPEAT)
    assert time.perf_counter() - t0 < 2
    assert msg.startswith("bad.toml:6") and "at most 10000" in msg and "2000000000" in msg


def test_sequence_loader_refuses_corrupt_and_lying_files(tmp_path):
    from ntksym.engine.sequence import load_sequences
    from ntksym.errors import DataError
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"--x: .*junk\.npz: cannot read it \(corrupt"):
        load_sequences(tmp_path / "junk.npz")
    _lying_npy(tmp_path / "lie.npy")
    with pytest.raises(DataError, match=r"lie\.npy: the header claims .* the file has 192 bytes"):
        load_sequences(tmp_path / "lie.npy")
