"""The finite CNN built from a spec converges to the analytic kernel of the same spec.

6x6x2 images, two 3x3 conv layers (same and valid padding, stride 2 in one variant), ReLU,
then global average pooling or flatten, and a dense readout.  For each width the empirical
NTK is averaged over S independent networks; its Monte Carlo standard error is std / sqrt(S).
At the largest width the mean must lie within 4 standard errors (plus a 1/width allowance for
the O(1/width) bias of a finite network) of the analytic kernel, and the error of one network
must shrink as the width grows (the spread of the empirical NTK is O(1/sqrt(width))).
"""

import numpy as np
import pytest

import ntksym
from testkit import assert_input_gradient_matches_finite_differences


def cnn(cntk_spec, pad, stride, readout, bias, first=None):
    """The CNTK preset on 6x6x2 images: its second conv with this padding and stride."""
    return ntksym.loads_spec(cntk_spec([6, 6, 2], [{"padding": pad, "stride": stride}],
                                       readout=readout, defaults={"bias_var": bias},
                                       first=first, name="emp"))


@pytest.mark.parametrize("pad,stride,readout,bias", [
    ("same", 1, "global_avg_pool", 0.0),
    ("valid", 2, "flatten", 0.1),
])
def test_empirical_ntk_converges(pad, stride, readout, bias, cntk_spec):
    arch = cnn(cntk_spec, pad, stride, readout, bias)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 6, 6, 2)) / np.sqrt(2)
    K = ntksym.kernel(arch, X, progress=False)
    spreads = []
    for width, samples in ((16, 6), (256, 6)):
        E = ntksym.empirical_kernel(arch, X, width=width, samples=samples, seed=1, kind="ntk")
        spreads.append(np.abs(E.samples["ntk"] - K).mean())
    err = np.abs(E.mean["ntk"] - K)
    assert np.all(err <= 4 * E.stderr["ntk"] + np.abs(K) / 256), (err, E.stderr["ntk"])
    assert spreads[1] < spreads[0] / 2, spreads       # 16x the width: ~1/4 the spread


@pytest.mark.parametrize("pad,stride", [("circular", 2), ("same", 1), ("valid", 2)])
def test_finite_conv_backward_is_the_adjoint(pad, stride, cntk_spec):
    """<conv(y), g> = <y, backward(g)> for the finite layers (gradient correctness)."""
    arch = cnn(cntk_spec, pad, stride, "flatten", 0.0)
    X = np.random.default_rng(1).standard_normal((2, 6, 6, 2))
    assert_input_gradient_matches_finite_differences(arch, X)


def test_backward_skips_only_layers_no_parameter_needs(cntk_spec):
    """With the first conv fixed, the NTK's backward pass stops above it; the output gradients
    it does compute equal those of the full pass (and so does the NTK)."""
    arch = cnn(cntk_spec, "same", 1, "global_avg_pool", 0.0, first={"trainable": False})
    from ntksym.empirical.network import FiniteNetwork
    net = FiniteNetwork(arch.finite_graph(6), seed=0)
    X = np.random.default_rng(2).standard_normal((3, 6, 6, 2))
    _, caches = net.forward(X)
    full, part = net.backward(caches, 3), net.backward(caches, 3, only_trainable=True)
    first = net.order[0]
    assert first in full and first not in part
    assert "conv_2" in part and "dense_5" in part          # the trainable layers' gradients
    assert set(part) < set(full)
    for node, d in part.items():
        np.testing.assert_array_equal(d, full[node])
