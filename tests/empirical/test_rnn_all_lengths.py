"""Per-step outputs (rnn ``readout = "all"``) of padded sequences: a sequence has no output past
its own length, so the finite network's kernel entries there are 0, as the analytic kernel's are
(ntksym.engine.sequence), and padding a sequence changes nothing else.  Before the fix a readout
bias gave those entries bias_var in the empirical NNGP and NTK."""

import numpy as np

import ntksym

SPEC = '''
name = "all-lengths"
input = { shape = [-1, 3] }
[[layer]]
kind = "rnn"
weight_var = 1.5
input_var = 1.0
bias_var = 0.2
hidden_init_var = 0.3
activation = "erf"
readout = "all"
readout_from = 2
[[layer]]
kind = "dense"
bias_var = 0.3
'''


def test_padded_sequence_has_the_kernel_of_the_unpadded_one():
    """Same seed: the steps a sequence has give bit-identical kernels padded (with garbage in
    the padding) or not; the steps past its length give exact zeros, per layer too."""
    arch = ntksym.loads_spec(SPEC)
    rng = np.random.default_rng(0)
    short, X2 = rng.standard_normal((2, 3, 3)), rng.standard_normal((2, 4, 3))
    padded = np.concatenate([short, rng.standard_normal((2, 2, 3))], axis=1)
    kw = dict(width=32, samples=2, seed=3, per_layer=True)
    E1 = ntksym.empirical_kernel(arch, short, X2, **kw)
    E2 = ntksym.empirical_kernel(arch, padded, X2, lengths=[3, 3], **kw)
    assert set(E1.mean) == set(E2.mean) and len(E1.mean) > 3
    for k in E1.mean:
        assert E1.mean[k].shape == (2, 2, 2, 3) and E2.mean[k].shape == (2, 2, 4, 3)
        assert np.array_equal(E2.mean[k][:, :, :2], E1.mean[k]), k
        assert np.array_equal(E2.mean[k][:, :, 2:], np.zeros((2, 2, 2, 3))), k
    # the symmetric Gram of the padded set: zero rows and columns past the length
    G = ntksym.empirical_kernel(arch, padded, lengths=[3, 3], **kw)
    for k in ("nngp", "ntk"):
        assert not G.mean[k][:, :, 2:].any() and not G.mean[k][:, :, :, 2:].any()


def test_unequal_lengths_match_the_analytic_kernel():
    """Lengths 5, 3, 4: the Monte Carlo mean lies within 4 standard errors of the analytic
    kernel at every entry the sequences have, at two widths, and is exactly 0 (as the analytic
    kernel is) at the entries past a length."""
    arch = ntksym.loads_spec(SPEC)
    X = np.random.default_rng(1).standard_normal((3, 5, 3)) / np.sqrt(3)
    L = np.array([5, 3, 4])
    K = ntksym.kernel(arch, X, kind="both", lengths=L)
    present = (np.arange(1, 5)[None, :] < L[:, None]).astype(float)       # steps 2..5
    inside = present[:, None, :, None] * present[None, :, None, :] > 0
    for width in (64, 256):
        E = ntksym.empirical_kernel(arch, X, width=width, samples=16, seed=5, lengths=L)
        for k in ("nngp", "ntk"):
            assert E.mean[k].shape == K[k].shape == (3, 3, 4, 4)
            assert not K[k][~inside].any() and not E.mean[k][~inside].any(), k
            z = np.abs(E.mean[k] - K[k])[inside] / E.stderr[k][inside]
            assert z.max() < 4.0, (k, width, z.max())


def test_one_step_read_keeps_the_step_axes():
    """T = readout_from: one step is read, and the kernels are still (n1, n2, 1, 1), as the
    analytic kernel's are (the finite network used to squeeze them to (n1, n2)); with
    lengths 2, 3 and T = 3 the length-2 sequence has no output at the second step read."""
    arch = ntksym.loads_spec(SPEC)
    X = np.random.default_rng(2).standard_normal((2, 2, 3))
    K = ntksym.kernel(arch, X, kind="both")
    E = ntksym.empirical_kernel(arch, X, width=16, samples=2, seed=0, per_layer=True)
    for k in E.mean:
        assert E.mean[k].shape == (2, 2, 1, 1), k
    assert K["ntk"].shape == K["nngp"].shape == (2, 2, 1, 1)
    X3 = np.random.default_rng(3).standard_normal((2, 3, 3))
    E = ntksym.empirical_kernel(arch, X3, width=16, samples=2, seed=0, lengths=[2, 3])
    assert E.mean["ntk"].shape == (2, 2, 2, 2)
    assert not E.mean["ntk"][0, :, 1].any() and E.mean["ntk"][1, 1, 1, 1] > 0
