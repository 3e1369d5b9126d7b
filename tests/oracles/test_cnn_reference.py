"""ntksym's convolutional kernels against neural-tangents 0.6.5 (jax 0.4.26, float64).

The arrays in tests/reference/nt_*.npz were written by tests/reference/make_nt_reference.py in a
separate environment; each holds the images X, NT's nngp and ntk, and the ntksym spec text of
the same network.  CI needs no neural-tangents.
"""

import numpy as np
import pytest

import ntksym
from testkit import ROOT

CASES = sorted((ROOT / "tests" / "reference").glob("nt_*.npz"))


def test_reference_files_exist():
    assert len(CASES) >= 7


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_matches_neural_tangents(path):
    ref = np.load(path)
    arch = ntksym.loads_spec(str(ref["spec"]))
    K = ntksym.kernel(arch, ref["X"], kind="both", progress=False)
    for kind in ("nngp", "ntk"):
        err = np.abs(K[kind] - ref[kind]).max() / np.abs(ref[kind]).max()
        assert err <= 1e-7, (kind, err)
