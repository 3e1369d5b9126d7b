"""Numerical failures say where they arose (issue 15): a NaN or inf names the pair and the
layer, an underflow warns naming the layer, a complex activation is refused when the spec is
read, and exact duplicate images get exactly the diagonal value."""

import warnings

import numpy as np
import pytest

import cli
import ntksym
from ntksym.engine.common import program
from ntksym.engine.diagnose import Source, check_result, locate_nonfinite
from ntksym.engine.trace import trace_pair
from ntksym.errors import DataError, NumericalWarning, SpecError
from testkit import cntk_toml


def mlp(body, defaults="", shape=3):
    return ntksym.loads_spec(f'name = "t"\ninput = {{ shape = [{shape}] }}\n{defaults}\n' + body)


DENSE_RELU = '[[layer]]\nkind = "dense"\nactivation = "relu"\nrepeat = {r}\n' \
             '[[layer]]\nkind = "dense"\n'
MLP1 = "spec/cntk_mlp_depth1.toml"              # shipped specs: compiled for other tests too
CNN = "spec/cntk_gap_digits_depth4.toml"


def run(capsys, *args):
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_overflow_names_the_layer_and_pair(capsys, tmp_path):
    X = np.full((3, 64), 1.5e153)
    X[1] *= 0.5
    np.save(tmp_path / "x.npy", X)
    code, _, err = run(capsys, "kernel", MLP1, "--x", tmp_path / "x.npy", "-o",
                       tmp_path / "K.npy")
    line = err.strip()
    assert code == 2 and len(line.splitlines()) == 1, err
    assert line.startswith("ntksym: error: the ntk kernel is not finite at (0, 0) (inf)")
    assert "overflowed" in line and "at layer dense_2 in Theta_3_xx of K(x_0, x_0)" in line
    assert not (tmp_path / "K.npy").exists()


def test_huge_weight_variance_names_the_dense_layer():
    # derivation only (no compilation): the replay of one pair finds the layer
    arch = mlp(DENSE_RELU.format(r=3), "[defaults]\nweight_var = 1e200\n")
    X = np.random.default_rng(0).standard_normal((4, 3))
    where = locate_nonfinite(Source(program(arch), X), 0, 0, diagonal_only=True)
    assert "at layer dense_2" in where and "weight_var=1e+200" in where


def test_activation_growth_names_the_activation_and_the_example():
    # E[exp(2u^2)] is infinite for Var u >= 1/4: only the example with the largest norm
    arch = mlp('[[layer]]\nkind = "dense"\n[[layer]]\nkind = "activation"\n'
               'expr = "exp(z**2)"\n[[layer]]\nkind = "dense"\n')
    X = np.array([[0.3, 0, 0], [0.2, 0.1, 0], [9.0, 0, 0]])
    where = locate_nonfinite(Source(program(arch), X), 0, 2)
    assert "at layer activation_1" in where and "K(x_2, x_2) = inf" in where


def test_cnn_overflow_names_the_layer():
    arch = ntksym.load_spec(CNN)
    X = np.random.default_rng(1).standard_normal((3, 8, 8, 1)) * 1e152
    with pytest.raises(DataError, match=r"not finite at \(0, 0\) .* at layer relu_1 in Sigma"):
        ntksym.kernel(arch, X)


def test_deep_small_variance_underflow_names_the_layer():
    # derivation only: a zero result of this program warns, naming where the diagonal went
    arch = mlp(DENSE_RELU.format(r=3), "[defaults]\nweight_var = 1e-120\n")
    X = np.random.default_rng(0).standard_normal((3, 3))
    with pytest.warns(NumericalWarning, match=r"every entry is zero; the diagonal K\(x_0, x_0\) "
                                              r"first underflows at layer dense_4"):
        check_result(np.zeros((1, 3, 3)), ["nngp"], "float64", Source(program(arch), X))
    # a zero kernel that is not an underflow (an all-zero input, no bias) does not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_result(np.zeros((1, 3, 3)), ["nngp"], "float64",
                     Source(program(arch), np.zeros((3, 3))))


def test_tiny_inputs_underflow_names_the_input(capsys, tmp_path):
    np.save(tmp_path / "x.npy", 1e-170 * np.ones((3, 64)))
    code, out, err = run(capsys, "kernel", MLP1, "--x", tmp_path / "x.npy")
    assert code == 0
    lines = err.strip().splitlines()
    assert lines and all(ln.startswith("ntksym: warning: ") for ln in lines), err
    assert "the input itself underflows" in lines[0] and "rescale the inputs" in lines[0]


def test_no_warning_for_ordinary_kernels(recwarn):
    ntksym.kernel(ntksym.load_spec(MLP1), np.eye(64)[:5], kind="both")
    assert not [w for w in recwarn if issubclass(w.category, NumericalWarning)]


def test_float32_overflow_and_denormals():
    out = np.array([[[1.0, 1e39], [1e39, 1.0]]])
    with pytest.raises(DataError, match="too large for float32"):
        check_result(out.copy(), ["ntk"], "float32")
    check_result(out.copy(), ["ntk"], "float64")
    with pytest.warns(NumericalWarning, match="denormal in float32"):
        check_result(np.array([[[1.0, 1e-40], [1e-40, 1.0]]]), ["ntk"], "float32")


@pytest.mark.parametrize("text", ["sqrt(z)", "z**0.5", "log(z)"])
def test_check_refuses_complex_activation_with_file_line_key(capsys, tmp_path, text):
    spec = tmp_path / "s.toml"
    spec.write_text(f'name = "s"\ninput = {{ shape = [3] }}\n[[layer]]\nkind = "dense"\n'
                    f'[[layer]]\nkind = "activation"\nexpr = "{text}"\n')
    code, _, err = run(capsys, "check", spec)
    line = err.strip()
    assert code == 2 and len(line.splitlines()) == 1
    assert f"{spec}:7:" in line and "key 'expr'" in line and "not real" in line
    with pytest.raises(SpecError):
        ntksym.load_spec(spec)


def test_trace_replays_the_compiled_cnn():
    # circular padding, then a stride-2 conv, then flatten: the structural steps of the replay
    text = cntk_toml([5, 5, 2], [{"padding": "circular"}, {"stride": 2}], readout="flatten")
    arch = ntksym.loads_spec(text)
    X = np.random.default_rng(2).standard_normal((2, 5, 5, 2))
    K = ntksym.kernel(arch, X, kind="both")
    pair = {}
    for st in trace_pair(program(arch), X[0], X[1]):
        if st.side == "pair":
            pair.update(st.values)
    for name, sym in program(arch).outputs.items():
        np.testing.assert_allclose(np.ravel(pair[sym.name])[0], K[name][0, 1], rtol=1e-12)


def test_exact_duplicate_images_get_the_diagonal_value():
    arch = ntksym.load_spec(CNN)
    X = np.random.default_rng(3).standard_normal((4, 8, 8, 1))
    X[3] = X[0]
    K = ntksym.kernel(arch, X, kind="both")
    for k in ("nngp", "ntk"):
        assert K[k][0, 3] == K[k][0, 0] == K[k][3, 3] == K[k][3, 0]
    C = ntksym.kernel(arch, X[:2], X[2:])         # a cross block: x3 of X2 is x0 of X
    assert C[0, 1] == K["ntk"][0, 0]


def test_memory_error_is_a_user_error(monkeypatch):
    import ntksym.engine.vector as vector

    def too_big(*a, **k):
        raise MemoryError
    monkeypatch.setattr(vector, "vector_kernel", too_big)
    with pytest.raises(DataError, match=r"not enough memory for the 3 x 3 kernel.*--tile"):
        ntksym.kernel(ntksym.load_spec(MLP1), np.eye(64)[:3], engine="compiled")


def test_tile_offsets_name_the_pair_in_the_whole_matrix():
    arch = mlp(DENSE_RELU.format(r=3), "[defaults]\nweight_var = 1e200\n")
    X = np.random.default_rng(0).standard_normal((2, 3))
    out = np.ones((1, 2, 2))
    out[0, 1, 0] = np.inf
    with pytest.raises(DataError, match=r"not finite at \(11, 20\) .* of K\(x_11, x_20\)"):
        check_result(out, ["nngp"], "float64", Source(program(arch), X, X, (10, 20)))


@pytest.mark.parametrize("seed", range(6))
def test_scan_finds_the_first_bad_and_denormal_entry_like_a_plain_scan(seed, monkeypatch):
    """_scan's shortcuts (one-sign and mixed-sign chunks that hold only normal entries) give
    the plain elementwise answer: first non-finite or too large entry, first denormal, any
    nonzero, on blocks that cross chunk boundaries."""
    from ntksym.engine import diagnose
    monkeypatch.setattr(diagnose, "CHUNK", 64)        # several chunks, some of them partial
    rng = np.random.default_rng(seed)
    info = np.finfo(np.float64)
    big, tiny = float(info.max), float(info.tiny)
    for trial in range(40):
        n1, m = rng.integers(1, 30), rng.integers(1, 20)
        block = rng.uniform(0.5, 2.0, (n1, m)) * (rng.choice([-1.0, 1.0], (n1, m))
                                                    if trial % 2 else 1.0)
        for value in rng.choice([np.nan, np.inf, -np.inf, 5e-320, -5e-320, 0.0, 1e300],
                                rng.integers(0, 4)):
            block[rng.integers(n1), rng.integers(m)] = value
        a = np.abs(block)
        hit = np.argwhere(~(a <= big))
        small = np.argwhere((a < tiny) & (a > 0))
        expect = (tuple(map(int, hit[0])) if len(hit) else None,
                  tuple(map(int, small[0])) if len(small) else None, bool((a > 0).any()))
        assert diagnose._scan(block, big, tiny) == expect
        f32 = np.finfo(np.float32)
        hit = np.argwhere(~(a <= float(f32.max)))       # 1e300 is too large for float32
        got = diagnose._scan(block, float(f32.max), float(f32.tiny))
        assert got[0] == (tuple(map(int, hit[0])) if len(hit) else None)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mirror_scan_flags_exactly_the_bad_off_diagonal_entries(dtype):
    """The generated mirror copies the upper triangles down and says whether every copied
    magnitude is in [tiny, big] of the dtype (the engine then skips the full scan): checked
    against a plain elementwise test on the upper triangle, with NaN, inf, denormals, zeros and
    too-large values planted across tile boundaries."""
    from ntksym.engine.common import compiled
    mod = compiled(ntksym.load_spec(MLP1))
    info = np.finfo(np.dtype(dtype))
    tiny, big = float(info.tiny), float(info.max)
    rng = np.random.default_rng(3)
    n = 150                                             # three tiles of 64, one partial
    upper = np.triu_indices(n, 1)
    planted = [np.nan, np.inf, -np.inf, 1e-320, 1e-40, 0.0, 1e300, 3e38, -0.5]
    for trial in range(2 * len(planted)):
        out = rng.uniform(0.5, 2.0, (2, n, n)).astype(dtype)
        if trial < len(planted):
            q, k = trial % 2, rng.integers(len(upper[0]))
            with np.errstate(over="ignore"):            # 1e300 and 3e38: inf in float32
                out[q, upper[0][k], upper[1][k]] = planted[trial]
        expect_upper = np.triu(out[0], 1), np.triu(out[1], 1)
        a = np.abs(out[:, upper[0], upper[1]].astype(np.float64))
        expected = bool(np.all((a >= tiny) & (a <= big)))
        assert bool(mod.mirror(out, tiny, big)) == expected, (trial, dtype)
        for q in range(2):
            np.testing.assert_array_equal(np.triu(out[q], 1), expect_upper[q])
            np.testing.assert_array_equal(np.tril(out[q], -1), expect_upper[q].T)


def test_off_diagonal_shortcut_still_reports_a_bad_diagonal():
    """check_result trusts a clean off-diagonal scan, but still finds a diagonal entry that is
    not finite or is denormal."""
    out = np.ones((1, 3, 3))
    out[0, 2, 2] = np.nan
    with pytest.raises(DataError, match=r"not finite at \(2, 2\)"):
        check_result(out, ["ntk"], "float64", off_diagonal_checked=True)
    out[0, 2, 2] = 1e-310
    with pytest.warns(NumericalWarning, match=r"K\[2, 2\]"):
        check_result(out, ["ntk"], "float64", off_diagonal_checked=True)


def test_replay_uses_the_learnable_constants_the_kernel_received():
    """A learnable weight_var set to 1e200 after the program was derived (and memoized) with
    2.0: the compiled kernel received 1e200 and overflowed; the replay must use 1e200 too and
    name dense_2 (the diagonal 1e200 * 5e199 at the third dense layer), not replay finite
    values with 2.0 (nor fail on the constant it has no value for, as it did: KeyError)."""
    defaults = "[defaults]\nweight_var = { value = 2.0, learn = true }\n"
    arch = mlp(DENSE_RELU.format(r=3), defaults)
    X = np.random.default_rng(0).standard_normal((4, 3))
    assert np.isfinite(ntksym.kernel(arch, X, kind="ntk")).all()     # derives with 2.0
    huge = arch.with_hyperparameters({"weight_var": 1e200})
    assert program(huge).hyperparameters == program(arch).hyperparameters   # one program
    with pytest.raises(DataError) as e:
        ntksym.kernel(huge, X, kind="ntk")
    msg = str(e.value)
    assert "not finite at (0, 0)" in msg and "at layer dense_2 in Sigma_3_xx" in msg, msg
    # the replay alone follows the values it is given
    for hp, want in ((1e200, "at layer dense_2"), (2.0, "gives finite values")):
        src = Source(program(huge), X, hp=np.array([hp]))
        assert want in locate_nonfinite(src, 0, 0, diagonal_only=True), hp


def test_replay_with_a_learnable_constant_after_the_overflow():
    """A spec whose learnable weight_var (1e300, its own value) makes the kernel overflow:
    the replay evaluates the first layer with that value (it failed with a KeyError on the
    constant) and names dense_2, where a fixed weight_var of 1e10 takes the 1e300-scale
    variance past the largest float (the pair loop's sqrt(a) sqrt(b) keeps relu_1 finite); a
    second learnable constant after it is not needed by then."""
    arch = mlp('[[layer]]\nkind = "dense"\nactivation = "relu"\n'
               'weight_var = { value = 1e300, learn = true }\n'
               '[[layer]]\nkind = "dense"\nactivation = "relu"\nweight_var = 1e10\n'
               '[[layer]]\nkind = "dense"\nweight_var = { value = 2.0, learn = true }\n')
    X = np.random.default_rng(1).standard_normal((3, 3))
    with pytest.raises(DataError, match=r"at \(0, 0\).*at layer dense_2 in Sigma_3_xx of "
                                        r"K\(x_0, x_0\)"):
        ntksym.kernel(arch, X, kind="ntk")
