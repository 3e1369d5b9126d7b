"""ntksym's graph kernels (``add``, ``concat``, ``layer_norm``, ``[[block]]``) against
neural-tangents 0.6.5 (jax 0.4.26, float64): FanOut / parallel / FanInSum / FanInConcat /
LayerNorm.

The arrays in tests/reference/nt_graph_<case>.npz were written by
tests/reference/make_nt_graph_reference.py in a separate environment; each holds the inputs X,
NT's nngp and ntk, and the spec text of the case (which must still be ``CASES[case]`` of
tests/graph_cases.py: a changed case needs its reference regenerated).  CI needs no
neural-tangents.
"""

import numpy as np
import pytest

import ntksym
from graph_cases import CASES
from testkit import ROOT

REFERENCE = ROOT / "tests" / "reference"


@pytest.mark.parametrize("case", sorted(CASES))
def test_graph_matches_neural_tangents(case):
    ref = np.load(REFERENCE / f"nt_graph_{case}.npz")
    assert str(ref["spec"]) == CASES[case], "case changed: rerun make_nt_graph_reference.py"
    K = ntksym.kernel(ntksym.loads_spec(CASES[case]), ref["X"], kind="both", progress=False)
    for kind in ("nngp", "ntk"):
        assert K[kind].shape == ref[kind].shape
        err = np.abs(K[kind] - ref[kind]).max() / np.abs(ref[kind]).max()
        assert err <= 1e-7, (kind, err)
