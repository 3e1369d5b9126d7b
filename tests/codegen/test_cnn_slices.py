"""The per-offset-slice schedule against the full (H W)^2 schedule of the same program:
zero, valid and circular padding, GAP and flatten readouts, a frozen first layer, and
digits with blank pixels (zero variances), to 1e-12 relative."""

import numpy as np
import pytest

import ntksym
import ntksym.codegen.image as ci

SPECS = {
    "same-valid-gap-frozen": '''
name = "slices_a"
input = { shape = [6, 5, 2] }
[[layer]]
kind = "conv"
normalize = false
trainable = false
activation = "relu"
[[layer]]
kind = "conv"
padding = "valid"
bias_var = 0.1
activation = "erf"
[[layer]]
kind = "global_avg_pool"
[[layer]]
kind = "dense"
''',
    "circular-flatten": '''
name = "slices_b"
input = { shape = [5, 4, 1] }
[[layer]]
kind = "conv"
padding = "circular"
activation = "relu"
[[layer]]
kind = "conv"
padding = "circular"
filter = [2, 3]
activation = "relu"
[[layer]]
kind = "flatten"
[[layer]]
kind = "dense"
activation = "relu"
[[layer]]
kind = "dense"
''',
}


def _both(arch, X, monkeypatch):
    fast = ntksym.kernel(arch, X, kind="both", progress=False)
    with monkeypatch.context() as m:
        m.setattr(ci, "slice_plan", lambda program: None)
        full = ntksym.kernel(arch, X, kind="both", progress=False)
    return fast, full


@pytest.mark.parametrize("name", sorted(SPECS))
def test_slices_equal_full_schedule(name, monkeypatch):
    arch = ntksym.loads_spec(SPECS[name])
    assert ci.slice_plan(arch.derive()) is not None
    X = np.random.default_rng(5).standard_normal((4,) + tuple(arch.input_shape))
    fast, full = _both(arch, X, monkeypatch)
    for k in ("nngp", "ntk"):
        np.testing.assert_allclose(fast[k], full[k], rtol=1e-12, atol=0)


def test_slices_digits_blank_pixels(monkeypatch, spec_dir):
    from ntksym.data import load_dataset
    arch = ntksym.load_spec(spec_dir / "cntk_gap_digits_depth4.toml")
    X = load_dataset("digits-images:6").X
    assert (X == 0).any()
    fast, full = _both(arch, X, monkeypatch)
    for k in ("nngp", "ntk"):
        assert np.isfinite(fast[k]).all()
        np.testing.assert_allclose(fast[k], full[k], rtol=1e-11, atol=0)


def test_step_with_many_operands_takes_them_as_one_tuple():
    """A call of more than 30 positional arguments compiles as a star-args call in CPython,
    which Numba cannot inline: such a step takes its (array, row) operands as one tuple."""
    import sympy as sp

    from ntksym.codegen.image import ImagePrinter
    from ntksym.codegen.steps import MAX_POSITIONAL, StepFunctions
    from ntksym.ir.program import Assign
    fns = StepFunctions(ImagePrinter(), circular=False)
    few = [Assign(sp.Symbol("Theta_9"), sp.Symbol("Theta_1") + sp.Symbol("Theta_2"))]
    assert fns.call(few, ["Theta_1", "Theta_2"], {"Theta_1": 0, "Theta_2": 1, "Theta_9": 0},
                    {}, (4, 4)) == "_step0(buf[0], buf[1], 4, 4, di, dj)"
    n = MAX_POSITIONAL // 2
    reads = [f"Theta_{k}" for k in range(1, n + 1)]
    many = [Assign(sp.Symbol("Theta_99"), sp.Add(*[sp.Symbol(r) for r in reads]))]
    slots = {r: k for k, r in enumerate(reads)} | {"Theta_99": 0}
    call = fns.call(many, reads, slots, {}, (4, 4))
    assert call.startswith("_step1((buf[0], buf[1], ") and call.endswith(",), 4, 4, di, dj)")
    assert "def _step1(ops, H, W, di, dj):" in fns.source()


@pytest.mark.slow
def test_per_layer_terms_of_a_deep_cntk(monkeypatch, spec_dir):
    """CNTK-GAP depth 11 with one NTK term per layer (steps of 15 operands): the slice schedule
    equals the full schedule, and the terms sum to the NTK (compiles two programs: ~1 min)."""
    arch = ntksym.load_spec(spec_dir / "cntk_gap_depth11.toml").with_input_shape((4, 4, 3))
    X = np.random.default_rng(0).standard_normal((3, 4, 4, 3))
    fast = ntksym.kernel(arch, X, kind="both", per_layer=True, progress=False)
    with monkeypatch.context() as m:
        m.setattr(ci, "slice_plan", lambda program: None)
        full = ntksym.kernel(arch, X, kind="both", per_layer=True, progress=False)
    assert len(fast) == 13 and set(fast) == set(full)
    for k in fast:
        np.testing.assert_allclose(fast[k], full[k], rtol=1e-12, atol=1e-14 * fast["ntk"].max())
    terms = sum(v for k, v in fast.items() if k.startswith("ntk["))
    np.testing.assert_allclose(terms, fast["ntk"], rtol=1e-13)
