"""Every shipped spec's kernels equal the numbers recorded before the one-pipeline redesign.

tests/reference/kernels_before_redesign.npz was written by
tests/reference/make_kernel_reference.py on main at cf5a0c6, before any module moved (#13).
A refactor moves no number: analytic kernels must agree to 1e-15 relative (of the matrix's
largest entry; 4e-15 for the two specs with series duals, see SERIES_SPECS), the finite
networks' empirical kernels (same seeds, same draws) to 1e-12.

The default run checks the vector and sequence specs and the 8x8 digits CNTK; the other
image specs' analytic kernels (one cold compilation each, 10-60 s) run with ``-m slow``.
"""

import numpy as np
import pytest

import ntksym
from testkit import ROOT, SPEC_DIR

REFERENCE = ROOT / "tests" / "reference" / "kernels_before_redesign.npz"
SPECS = sorted(p.stem for p in SPEC_DIR.glob("*.toml"))
SMALL_IMAGES = {"cntk_gap_digits_depth4"}   # the other image specs compile 10-60 s each


def _inputs(shape, n, seed):
    """The recorder's inputs: n examples of the input shape (a free time axis: T = 5)."""
    shape = [5 if s == -1 else s for s in shape]
    return np.random.default_rng(seed).standard_normal((n, *shape)) * 0.5


def _recorded(name, what, tag):
    z = np.load(REFERENCE)
    prefix = f"{name}|{what}|{tag}|"
    return {k[len(prefix):]: z[k] for k in z.files if k.startswith(prefix)}


#: specs whose duals are Hermite series / quadrature: their coefficient rules are dot products
#: summed with fastmath reassociation, whose order follows the CPU's SIMD width and the thread
#: layout, so a recording made on another machine differs by a few units of round-off
SERIES_SPECS = {"clb_huberized_relu", "custom_expression"}
SERIES_RTOL = 4e-15

#: specs whose programs take minutes to compile cold: checked under -m slow only
DEEP_SPECS = {"residual_mlp_depth50"}


def _params(slow_big_images):
    out = []
    for name in SPECS:
        shape = ntksym.load_spec(SPEC_DIR / f"{name}.toml").input_shape
        big_image = len(shape) == 3 and name not in SMALL_IMAGES
        deep = name in DEEP_SPECS           # long programs: minutes of cold compile
        marks = [pytest.mark.slow] if (big_image and slow_big_images) or deep else []
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def _assert_close(got, want, rtol, label):
    assert got.shape == want.shape, label
    scale = max(float(np.max(np.abs(want))), 1e-300)
    err = float(np.max(np.abs(got - want))) / scale
    assert err <= rtol, f"{label}: max deviation {err:.3g} of the largest entry (allowed {rtol})"


def test_reference_covers_every_shipped_spec():
    z = np.load(REFERENCE)
    recorded = {k.split("|")[0] for k in z.files}
    assert recorded == set(SPECS), "re-record only if a spec was added (see the recorder)"


@pytest.mark.parametrize("name", _params(slow_big_images=True))
def test_analytic_kernels_unchanged(name):
    arch = ntksym.load_spec(SPEC_DIR / f"{name}.toml")
    X, X2 = _inputs(arch.input_shape, 3, 0), _inputs(arch.input_shape, 2, 1)
    for tag, args in (("xx", (X,)), ("xy", (X, X2))):
        want = _recorded(name, "kernel", tag)
        per_layer = any(k.startswith("ntk[") for k in want)
        got = ntksym.kernel(arch, *args, kind="both", per_layer=per_layer)
        assert set(got) == set(want), name
        for k in want:
            _assert_close(got[k], want[k], SERIES_RTOL if name in SERIES_SPECS else 1e-15,
                          f"{name} {tag} {k}")


@pytest.mark.parametrize("name", _params(slow_big_images=False))
def test_empirical_kernels_unchanged(name):
    arch = ntksym.load_spec(SPEC_DIR / f"{name}.toml")
    X, X2 = _inputs(arch.input_shape, 3, 0), _inputs(arch.input_shape, 2, 1)
    want = _recorded(name, "empirical", "xy")
    E = ntksym.empirical_kernel(arch, X, X2, width=16, samples=2, seed=0, per_layer=True)
    assert set(E.samples) == set(want), name
    for k in want:
        _assert_close(E.samples[k], want[k], 1e-12, f"{name} empirical {k}")
