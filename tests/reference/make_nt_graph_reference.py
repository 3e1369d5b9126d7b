"""Reference kernels of the graph architectures of tests/graph_cases.py (``add``, ``concat``,
``layer_norm``, ``[[block]]``) from neural-tangents 0.6.5 (jax 0.4.26, float64), for
tests/oracles/test_graph_nt_reference.py.

Run ONLY in a separate environment with neural-tangents installed (never by CI):

    # in a venv with neural-tangents 0.6.5, jax 0.4.26:
    nt-env/bin/python tests/reference/make_nt_graph_reference.py

For each case of ``graph_cases.CASES`` the script builds the equivalent stax network by hand and
writes tests/reference/nt_graph_<case>.npz holding X (4 examples of the case's input shape, seeded
by the case name), NT's nngp and ntk, and the case's spec text (the test checks that it is still
``CASES[case]``).

Conventions matched (as in make_nt_reference.py): NT's ``ntk`` parameterization; Dense and Conv
W_std^2 = weight_var (NT divides by fan_in = C q_h q_w), b_std^2 = bias_var, from the spec's
``[defaults]`` and per-layer overrides; ``same`` padding = NT's zero ``SAME``; ``avg_pool``
(window 2, stride = window, ``valid``) = ``AvgPool((2, 2), (2, 2), "VALID")``.  The graph layers:

* ``add`` = ``FanOut(2)``, ``parallel(...)``, ``FanInSum()``: NT sums the branch kernels, our rule
  sums them times scale^2.  ``scales = [1.0, 0.5]`` (the residual MLP's blocks) is written in NT
  by multiplying W_std and b_std of the branch's last Dense by 0.5: the same finite network
  (0.5 (c_W W y + c_b b)), hence kernels 0.25 Sigma_branch and 0.25 Theta_branch.
* ``concat`` = ``FanInConcat(axis=-1)`` of branches of equal width: NT averages the kernels.
* ``layer_norm`` = ``LayerNorm(axis=-1, eps=0.0)``: NT divides nngp and ntk by
  sqrt(Sigma(x,x) Sigma(x',x')) (its default eps = 1e-12 would add 1e-12 to each variance; ours
  has none, so it is set to 0).
* ``leaky_relu(0.2)`` = ``LeakyRelu(0.2)``.  (An earlier version of the dense-shortcut case used
  tanh, ``ElementwiseNumerical(jnp.tanh, deg=600)`` in NT; ntksym's Gauss-Legendre quadrature
  agreed with it to 7e-15.)
"""

import os
import sys

os.environ.setdefault("JAX_ENABLE_X64", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from graph_cases import CASES  # noqa: E402

WV, BV = 2.0, 0.1          # the cases' [defaults]
N = 16                     # any finite width: NT's kernel_fn does not depend on it


def dense(wv=WV, bv=BV, scale=1.0, width=N):
    return stax.Dense(width, W_std=scale * np.sqrt(wv), b_std=scale * np.sqrt(bv))


def conv(q=3, wv=WV, bv=BV):
    return stax.Conv(N, (q, q), padding="SAME", W_std=np.sqrt(wv), b_std=np.sqrt(bv))


def residual_mlp():
    block = stax.serial(
        stax.FanOut(2),
        stax.parallel(stax.Identity(),
                      stax.serial(stax.Relu(), dense(), stax.Relu(), dense(scale=0.5))),
        stax.FanInSum())
    return stax.serial(dense(), block, block, stax.Relu(), dense(width=1)), (5,)


def dense_shortcut():
    # the shortcut reads the stem's relu ("relu_1"), as the branch does
    return stax.serial(
        dense(), stax.Relu(),
        stax.FanOut(2),
        stax.parallel(stax.serial(dense(), stax.LeakyRelu(0.2), dense()),   # branch
                      dense(wv=1.0)),                                      # shortcut
        stax.FanInSum(),
        stax.Erf(),
        dense(width=1)), (5,)


def concat_relu_erf():
    return stax.serial(
        stax.FanOut(2),
        stax.parallel(stax.serial(dense(), stax.Relu()),
                      stax.serial(dense(wv=1.5), stax.Erf())),
        stax.FanInConcat(axis=-1),
        dense(), stax.Relu(), dense(width=1)), (5,)


def layer_norm_mlp():
    return stax.serial(
        dense(), stax.LayerNorm(axis=-1, eps=0.0), stax.Relu(),
        dense(), stax.LayerNorm(axis=-1, eps=0.0), stax.Erf(),
        dense(width=1)), (5,)


def residual_cnn_gap():
    return stax.serial(
        conv(),                                                              # stem
        stax.FanOut(2),
        stax.parallel(stax.Identity(),
                      stax.serial(stax.Relu(), conv(), stax.Relu(), conv())),  # branch
        stax.FanInSum(),
        stax.Relu(), stax.GlobalAvgPool(), dense(width=1)), (5, 5, 2)


def residual_cnn_pool():
    return stax.serial(
        conv(), stax.Relu(),                                                 # relu_1
        stax.FanOut(2),
        stax.parallel(conv(q=1),                                             # shortcut
                      stax.serial(conv(), stax.Relu(), conv())),             # branch
        stax.FanInSum(),
        stax.Relu(),
        stax.AvgPool((2, 2), strides=(2, 2), padding="VALID"),
        stax.Flatten(), dense(width=1)), (6, 6, 2)


BUILDERS = {f.__name__: f for f in (residual_mlp, dense_shortcut, concat_relu_erf,
                                    layer_norm_mlp, residual_cnn_gap, residual_cnn_pool)}


def kernels(name, X):
    net, _ = BUILDERS[name]()
    k = net[2](X, None, ("nngp", "ntk"))
    return np.asarray(k.nngp), np.asarray(k.ntk)


def main():
    assert set(BUILDERS) == set(CASES), (sorted(BUILDERS), sorted(CASES))
    for name in CASES:
        _, shape = BUILDERS[name]()
        rng = np.random.default_rng(sum(map(ord, name)))
        X = rng.standard_normal((4,) + shape)
        nngp, ntk = kernels(name, X)
        np.savez(os.path.join(HERE, f"nt_graph_{name}.npz"), X=X, nngp=nngp, ntk=ntk,
                 spec=np.array(CASES[name]))
        print(name, nngp[0, :2], ntk[0, :2])


if __name__ == "__main__":
    main()
