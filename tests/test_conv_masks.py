"""Pruning masks on conv: kernel-rule factors, derive output, and the finite masked CNN.

A Bernoulli (or whole-filter) mask with keep k multiplies the conv layer's weight-variance and
W-gradient terms by k (by 1 with rescale); the empirical NTK of the finite masked CNN must match
the analytic one within 4 standard errors (plus a 1/width allowance for the finite-width bias).
"""

import numpy as np
import pytest

import ntksym
from ntksym.errors import SpecError

SPEC = '''
name = "masked_cnn"
input = {{ shape = [5, 5, 1] }}
[defaults]
weight_var = 2.0
[[layer]]
kind = "conv"
normalize = false
activation = "relu"
[[layer]]
kind = "conv"
activation = "relu"
mask = {mask}
[[layer]]
kind = "global_avg_pool"
[[layer]]
kind = "dense"
'''
UNMASKED = SPEC.replace("mask = {mask}\n", "")


def _X():
    return np.random.default_rng(0).standard_normal((3, 5, 5, 1))


@pytest.mark.parametrize("mask", ['{ kind = "bernoulli", keep = 0.5 }',
                                  '{ kind = "filter", keep = 0.5 }'])
def test_masked_cnn_empirical_matches_analytic(mask):
    arch = ntksym.loads_spec(SPEC.format(mask=mask))
    X = _X()
    K = ntksym.kernel(arch, X, progress=False)
    dense = ntksym.kernel(ntksym.loads_spec(UNMASKED.format()), X, progress=False)
    assert not np.allclose(K, dense)              # the mask changes the kernel
    width = 96
    E = ntksym.empirical_kernel(arch, X, width=width, samples=12, seed=2, kind="ntk")
    err = np.abs(E.mean["ntk"] - K)
    assert np.all(err <= 4 * E.stderr["ntk"] + np.abs(K) / width), (err, E.stderr["ntk"])


def test_conv_mask_factors_in_derive_and_rescale_is_dense():
    arch = ntksym.loads_spec(SPEC.format(mask='{ kind = "filter", keep = 0.25 }'))
    text = str(arch.derive())
    assert "filter mask keep=0.25: weight variance x 1/4, W-gradient term x 1/4" in text
    assert "note: conv_2 mask: whole q x q filters" in text
    X = _X()
    resc = ntksym.loads_spec(SPEC.format(mask='{ kind = "bernoulli", keep = 0.3, rescale = true }'))
    dense = ntksym.loads_spec(UNMASKED.format())
    np.testing.assert_allclose(ntksym.kernel(resc, X, progress=False),
                               ntksym.kernel(dense, X, progress=False), rtol=1e-12)


@pytest.mark.parametrize("mask", ['{ kind = "filter", keep = 0 }',
                                  '{ kind = "magnitude", keep = 0.5, scope = "global" }'])
def test_bad_conv_masks(mask):
    with pytest.raises(SpecError):
        ntksym.loads_spec(SPEC.format(mask=mask))


def test_filter_mask_on_dense_is_rejected():
    with pytest.raises(SpecError, match="filter"):
        ntksym.loads_spec('name = "d"\ninput = { shape = [3] }\n[[layer]]\nkind = "dense"\n'
                          'mask = { kind = "filter", keep = 0.5 }\n')
