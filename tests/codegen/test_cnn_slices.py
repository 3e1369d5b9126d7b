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
