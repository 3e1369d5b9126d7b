"""Issue #17, done-when 1: every dK/dtheta of the fused gradient program agrees with central
finite differences of the kernel to 1e-7 relative, for MLPs (relu, erf, leaky_relu with a
learned slope, tanh by quadrature), a CNN with a global average pool and an rnn.

The finite differences evaluate the same compiled module at theta +- h (the values of
learnable constants are run-time arguments, so nothing is recompiled); h = 1e-4 * theta per
hyperparameter, whose truncation error (~h^2 K''') and round-off (~1e-16 K / h) are both
far below 1e-7.  Both K(X, X) (exact diagonals included) and a cross block K(X, X2) are
checked.

X also holds a duplicated example (a correlation of 1 off the diagonal, where arccos has an
infinite slope).  There the kernel itself carries round-off of order sqrt(1e-16) (a
correlation computed as 1 - 1e-16 instead of 1 moves acos by 1.5e-8), which finite
differences amplify to ~1e-4: so the duplicate's gradients are checked against the exact ones
of the example it copies (the row of x_0, and dK(x_0, x_0)/dtheta by the exact diagonal
rule) instead of against finite differences.
"""

import numpy as np
import pytest

import ntksym

MLP = '''name = "{name}"
input = {{ shape = [3] }}
[defaults]
weight_var = {{ value = 1.7, learn = true }}
[[layer]]
kind = "dense"
bias_var = {{ value = 0.1, learn = true }}
[[layer]]
kind = "{act}"
{act_params}
[[layer]]
kind = "dense"
bias_var = {{ value = 0.05, learn = true, name = "b_out" }}
[[layer]]
kind = "{act}"
{act_params}
[[layer]]
kind = "dense"
'''

CASES = {
    "mlp_relu": (MLP.format(name="g-relu", act="relu", act_params=""), (5, 3)),
    "mlp_erf": (MLP.format(name="g-erf", act="erf", act_params=""), (5, 3)),
    "mlp_leaky_slope": (MLP.format(name="g-leaky", act="leaky_relu",
                                   act_params='slope = { value = 0.2, learn = true, '
                                              'name = "slope" }'), (5, 3)),
    "mlp_tanh_quadrature": (MLP.format(name="g-tanh", act="tanh", act_params=""), (4, 3)),
    "cnn_gap": ('''name = "g-cnn"
input = { shape = [4, 4, 2] }
[defaults]
weight_var = { value = 2.0, learn = true }
[[layer]]
kind = "conv"
filter = [3, 3]
padding = "same"
bias_var = { value = 0.1, learn = true }
activation = "relu"
[[layer]]
kind = "conv"
filter = [3, 3]
padding = "same"
activation = "erf"
[[layer]]
kind = "global_avg_pool"
[[layer]]
kind = "dense"
''', (4, 4, 4, 2)),
    # strides mix offsets: the full (H W)^2 schedule; a frozen readout (a zero NTK term)
    "cnn_stride_flatten": ('''name = "g-cnn-full"
input = { shape = [4, 4, 2] }
[defaults]
weight_var = { value = 2.0, learn = true }
[[layer]]
kind = "conv"
filter = [2, 2]
stride = [2, 2]
padding = "valid"
bias_var = { value = 0.1, learn = true }
activation = "relu"
[[layer]]
kind = "flatten"
[[layer]]
kind = "dense"
trainable = false
''', (4, 4, 4, 2)),
    "rnn": ('''name = "g-rnn"
input = { shape = [4, 2] }
[[layer]]
kind = "rnn"
weight_var = { value = 1.5, learn = true }
input_var = { value = 1.2, learn = true }
bias_var = { value = 0.2, learn = true }
hidden_init_var = { value = 0.3, learn = true }
activation = "erf"
[[layer]]
kind = "dense"
weight_var = { value = 1.1, learn = true }
''', (4, 4, 2)),
}


def _kernels(arch, X, X2):
    out = ntksym.kernel(arch, X, X2, kind="both", gradient=True)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_gradient_matches_central_differences(case):
    text, shape = CASES[case]
    arch = ntksym.loads_spec(text)
    rng = np.random.default_rng(3)
    X = rng.standard_normal(shape)
    X[-1] = X[0]                                   # a duplicate: rho = 1 off the diagonal
    X2 = rng.standard_normal((3,) + shape[1:])
    hypers = arch.hyperparameters
    assert len(hypers) >= 2
    worst = {}
    for args in ((X, None), (X, X2)):
        grad = _kernels(arch, *args)
        for h, v in hypers.items():
            step = 1e-4 * v
            plus = _kernels(arch.with_hyperparameters({h: v + step}), *args)
            minus = _kernels(arch.with_hyperparameters({h: v - step}), *args)
            for k in ("nngp", "ntk"):
                g = grad[f"d{k}/d[{h}]"]
                fd = (plus[k] - minus[k]) / (2 * step)
                assert np.isfinite(g).all()
                scale = np.abs(g).max()
                rows = slice(0, -1)                        # all but the duplicate
                cols = rows if args[1] is None else slice(None)
                err = np.abs(fd - g)[rows, cols].max() / scale
                # the duplicate's row is the row of x_0 (its copy) ...
                others = slice(1, -1) if args[1] is None else slice(None)
                err_dup = np.abs(g[-1, others] - g[0, others]).max() / scale
                if args[1] is None and len(shape) != 3:
                    # ... and K(x_0, dup) = K(x_0, x_0) (not for sequences: h_0 is drawn
                    # per example, so a copy is another example)
                    err_dup = max(err_dup, abs(g[0, -1] - g[0, 0]) / scale)
                worst[(h, k)] = max(worst.get((h, k), 0.0), err, err_dup)
    print(case, {f"{h}:{k}": f"{e:.1e}" for (h, k), e in worst.items()})
    bad = {key: e for key, e in worst.items() if not e < 1e-7}
    assert not bad, bad


def test_gradient_of_a_frozen_constant_is_zero_and_kernel_is_unchanged():
    """The kernel of a learnable spec equals the kernel of the same spec with plain numbers,
    and the gradient program's kernel equals the plain program's."""
    text, shape = CASES["mlp_relu"]
    arch = ntksym.loads_spec(text)
    plain = ntksym.loads_spec(text.replace("{ value = 1.7, learn = true }", "1.7")
                              .replace("{ value = 0.1, learn = true }", "0.1")
                              .replace('{ value = 0.05, learn = true, name = "b_out" }', "0.05"))
    assert not plain.hyperparameters
    X = np.random.default_rng(0).standard_normal(shape)
    K = ntksym.kernel(arch, X, kind="both")
    K0 = ntksym.kernel(plain, X, kind="both")
    G = ntksym.kernel(arch, X, kind="both", gradient=True)
    for k in ("nngp", "ntk"):
        np.testing.assert_allclose(K[k], K0[k], rtol=1e-14)
        np.testing.assert_allclose(G[k], K0[k], rtol=1e-14)
