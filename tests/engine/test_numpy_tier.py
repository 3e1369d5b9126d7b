"""The NumPy tier (issue 16, "no waiting to start"): the same KernelProgram evaluated with
NumPy, without compiling, agrees with the compiled tier; the automatic choice and the engine
options.

* every shipped vector and image spec, kind "both" with every per-layer term (where recorded:
  all but the depth-11 and depth-21 CNNs), K(X, X) and K(X, X2): against the compiled tier's
  numbers recorded in tests/reference/kernels_before_redesign.npz (which
  tests/oracles/test_reference_kernels.py holds the compiled tier to, at 1e-15), to 1e-12 of
  the largest entry; the 32 x 32 CNNs (seconds each in NumPy) with ``-m slow``;
* the structural variants of the neural-tangents references (strides, valid and circular
  padding, average pooling, flatten, bias, erf) and the graph cases (add, concat,
  layer_norm, residual CNNs): NumPy against compiled, live, to 1e-12;
* float32 output, duplicate examples, one example;
* ``choose_engine``: small problems in NumPy, sequences and large problems compiled, a forced
  engine kept; refusals of impossible combinations.

Speed is measured by benchmarks/bench_startup.py, not here.
"""

import numpy as np
import pytest

import ntksym
from graph_cases import CASES
from ntksym.engine.common import program
from ntksym.engine.numpy_tier import choice_line, choose_engine, numpy_seconds, supported
from ntksym.errors import DataError
from testkit import ROOT, SPEC_DIR

REFERENCE = ROOT / "tests" / "reference"
TOL = 1e-12
SMALL_IMAGES = {"cntk_gap_digits_depth4", "vgg_small_bernoulli"}


def _inputs(shape, n, seed):
    """The recorder's inputs (tests/reference/make_kernel_reference.py)."""
    return np.random.default_rng(seed).standard_normal((n, *shape)) * 0.5


def _close(got, want, label):
    assert got.shape == want.shape, label
    err = float(np.max(np.abs(got - want))) / max(float(np.max(np.abs(want))), 1e-300)
    assert err <= TOL, f"{label}: {err:.3g} of the largest entry"


def _shipped():
    out = []
    for p in sorted(SPEC_DIR.glob("*.toml")):
        shape = ntksym.load_spec(p).input_shape
        if len(shape) == 2:              # sequences: not lowered (auto compiles them)
            continue
        slow = len(shape) == 3 and p.stem not in SMALL_IMAGES
        out.append(pytest.param(p.stem, marks=[pytest.mark.slow] if slow else [], id=p.stem))
    return out


@pytest.mark.parametrize("name", _shipped())
def test_shipped_spec_matches_the_compiled_tier(name):
    arch = ntksym.load_spec(SPEC_DIR / f"{name}.toml")
    X, X2 = _inputs(arch.input_shape, 3, 0), _inputs(arch.input_shape, 2, 1)
    z = np.load(REFERENCE / "kernels_before_redesign.npz")
    for tag, args in (("xx", (X,)), ("xy", (X, X2))):
        prefix = f"{name}|kernel|{tag}|"
        want = {k[len(prefix):]: z[k] for k in z.files if k.startswith(prefix)}
        per_layer = any(k.startswith("ntk[") for k in want)   # recorded for most specs
        got = ntksym.kernel(arch, *args, kind="both", per_layer=per_layer, engine="numpy")
        assert set(got) == set(want), name
        for k in want:
            _close(got[k], want[k], f"{name} {tag} {k}")


def _variants():
    nt = [pytest.param(ntksym.loads_spec(str(np.load(p)["spec"])), np.load(p)["X"], id=p.stem)
          for p in sorted(REFERENCE.glob("nt_*.npz")) if not p.stem.startswith("nt_graph_")]
    graph = [pytest.param(ntksym.loads_spec(CASES[c]),
                          np.load(REFERENCE / f"nt_graph_{c}.npz")["X"], id=c) for c in CASES]
    return nt + graph


@pytest.mark.parametrize("arch, X", _variants())
def test_structural_variants_match_the_compiled_tier(arch, X):
    # the specs and inputs of the neural-tangents comparisons (compiled by those tests too)
    want = ntksym.kernel(arch, X, kind="both", engine="compiled", progress=False)
    got = ntksym.kernel(arch, X, kind="both", engine="numpy")
    for k in want:
        _close(got[k], want[k], f"{arch.name} {k}")
    a, b = X[: len(X) // 2 + 1], X[len(X) // 2 + 1:]
    want = ntksym.kernel(arch, a, b, kind="ntk", engine="compiled", progress=False)
    _close(ntksym.kernel(arch, a, b, kind="ntk", engine="numpy"), want, f"{arch.name} cross")


def test_dtype_duplicates_and_single_example():
    arch = ntksym.load_spec(SPEC_DIR / "cntk_gap_digits_depth4.toml")
    X = _inputs(arch.input_shape, 4, 2)
    X[3] = X[1]                              # identical examples: K(x, x') = K(x, x)
    want = ntksym.kernel(arch, X, kind="nngp", dtype="float32", engine="compiled",
                         progress=False)
    got = ntksym.kernel(arch, X, kind="nngp", dtype="float32", engine="numpy")
    assert got.dtype == np.float32 and np.allclose(got, want, rtol=1e-6, atol=0)
    assert got[1, 3] == got[1, 1]
    mlp = ntksym.load_spec(SPEC_DIR / "cntk_mlp_depth1.toml")
    x = _inputs(mlp.input_shape, 1, 3)
    assert ntksym.kernel(mlp, x, engine="numpy") == pytest.approx(
        ntksym.kernel(mlp, x, engine="compiled"), rel=TOL)


def test_the_automatic_choice():
    mlp = ntksym.load_spec(SPEC_DIR / "cntk_mlp_depth5.toml")
    prog = program(mlp)
    small = choose_engine(mlp, prog, 100, 100, True)
    assert small.engine == "numpy" and small.pairs == 100 * 101 // 2
    assert numpy_seconds(prog, mlp.input_shape, 100, 100, True) < 1
    # a million-pair request costs more in NumPy than the module costs to load
    big = choose_engine(mlp, prog, 20000, 20000, True)
    assert big.engine == "compiled" and big.numpy_seconds > 10
    assert choose_engine(mlp, prog, 100, 100, True, engine="compiled").engine == "compiled"
    assert choose_engine(mlp, prog, 20000, 20000, True, engine="numpy").engine == "numpy"
    assert choose_engine(mlp, prog, 10, 10, True, device="gpu").engine == "compiled"
    rnn = ntksym.load_spec(SPEC_DIR / "rntk_last.toml")
    seq = choose_engine(rnn, program(rnn), 3, 3, True)
    assert seq.engine == "compiled" and "sequence" in seq.reason
    assert supported(program(rnn)) is not None


def test_repeated_numpy_calls_switch_to_compiling(monkeypatch):
    """Rent or buy: NumPy while the process's NumPy estimates for the program stay below the
    compile cost, then the compiled program."""
    from ntksym.engine import numpy_tier
    monkeypatch.setattr(numpy_tier, "_NUMPY_SPENT", {})
    mlp = ntksym.load_spec(SPEC_DIR / "cntk_mlp_depth5.toml")
    prog = program(mlp)
    est = numpy_seconds(prog, mlp.input_shape, 2000, 2000, True)
    assert numpy_tier.COMPILED_OVERHEAD_SECONDS < est < numpy_tier.COLD_COMPILE_SECONDS
    monkeypatch.setattr("ntksym.engine.common.compiled_on_disk", lambda *a: False)
    calls = int(numpy_tier.COLD_COMPILE_SECONDS // est)
    got = [choose_engine(mlp, prog, 2000, 2000, True) for _ in range(calls + 1)]
    assert [c.engine for c in got] == ["numpy"] * calls + ["compiled"]
    assert got[-1].reason == "repeated" and "earlier NumPy calls" in choice_line(got[-1])


def test_refusals():
    mlp = ntksym.load_spec(SPEC_DIR / "cntk_mlp_depth1.toml")
    X = _inputs(mlp.input_shape, 2, 0)
    with pytest.raises(DataError, match="unknown engine 'fast'; valid: auto, numpy, compiled"):
        ntksym.kernel(mlp, X, engine="fast")
    with pytest.raises(DataError, match="NumPy tier runs on the CPU"):
        ntksym.kernel(mlp, X, engine="numpy", device="gpu")
    rnn = ntksym.load_spec(SPEC_DIR / "rntk_last.toml")
    with pytest.raises(DataError, match="sequence programs are not lowered to NumPy"):
        ntksym.kernel(rnn, np.ones((2, 3, 4)), engine="numpy")
