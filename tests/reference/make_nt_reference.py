"""Reference kernels from neural-tangents 0.6.5 (jax 0.4.26, float64) for
tests/oracles/test_cnn_reference.py.

Run ONLY in a separate environment with neural-tangents installed (never by CI):

    # in a venv with neural-tangents 0.6.5, jax 0.4.26:
    nt-env/bin/python tests/reference/make_nt_reference.py

Each case is a stax network and the ntksym spec text describing the same network; the script
writes tests/reference/nt_<case>.npz holding X (n, 6, 6, 2), nngp, ntk and the spec text.
Conventions matched: NT's ``ntk`` parameterization, Conv variance W_std^2 / (C q^2), Dense
W_std^2 / fan_in, biases b_std^2, AvgPool dividing by the full window (zeros in the padding count).
"""

import os

os.environ.setdefault("JAX_ENABLE_X64", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WV, BV = 2.0, 0.1


def conv(pad, stride, bias, act):
    b = BV if bias else 0.0
    net = [stax.Conv(8, (3, 3), strides=(stride, stride), padding=pad.upper(),
                     W_std=np.sqrt(WV), b_std=np.sqrt(b) if b else None), act[0]]
    toml = (f'[[layer]]\nkind = "conv"\nfilter = [3, 3]\nstride = [{stride}, {stride}]\n'
            f'padding = "{pad}"\nweight_var = {WV}\nbias_var = {b}\n'
            f'activation = "{act[1]}"\n')
    return net, toml


def dense(bias):
    b = BV if bias else 0.0
    return ([stax.Dense(1, W_std=np.sqrt(WV), b_std=np.sqrt(b) if b else None)],
            f'[[layer]]\nkind = "dense"\nweight_var = {WV}\nbias_var = {b}\n')


RELU, ERF = (stax.Relu(), "relu"), (stax.Erf(), "erf")


def add_readout(r, net, toml):
    if r == "flatten":
        net.append(stax.Flatten())
        toml += '[[layer]]\nkind = "flatten"\n'
    elif r == "gap":
        net.append(stax.GlobalAvgPool())
        toml += '[[layer]]\nkind = "global_avg_pool"\n'
    elif r == "pool":
        net.append(stax.AvgPool((2, 2), strides=(2, 2), padding="VALID"))
        toml += '[[layer]]\nkind = "avg_pool"\nwindow = [2, 2]\nstride = [2, 2]\n'
    return net, toml


def case(name, layers, readout, bias):
    net, toml = [], f'name = "nt-{name}"\ninput = {{ shape = [6, 6, 2] }}\n'
    for layer in layers:
        if layer == "pool":
            readout_now = ["pool"]
        else:
            n, t = conv(*layer[:2], bias, layer[2])
            net += n
            toml += t
            readout_now = []
        for r in readout_now + (readout if layer is layers[-1] else []):
            net, toml = add_readout(r, net, toml)
    n, t = dense(bias)
    net += n
    toml += t
    _, _, kernel_fn = stax.serial(*net)
    rng = np.random.default_rng(sum(map(ord, name)))
    X = rng.standard_normal((4, 6, 6, 2))
    k = kernel_fn(X, None, ("nngp", "ntk"))
    np.savez(os.path.join(HERE, f"nt_{name}.npz"), X=X, nngp=np.asarray(k.nngp),
             ntk=np.asarray(k.ntk), spec=np.array(toml))
    print(name, np.asarray(k.ntk)[0, :2])


case("same_relu_flatten", [("same", 1, RELU), ("same", 1, RELU)], ["flatten"], False)
case("valid_erf_flatten_bias", [("valid", 1, ERF), ("same", 1, ERF)], ["flatten"], True)
case("stride2_relu_gap", [("same", 2, RELU), ("same", 1, RELU)], ["gap"], False)
case("valid_stride2_relu_gap_bias", [("valid", 2, RELU)], ["gap"], True)
case("avgpool_relu_flatten", [("same", 1, RELU), "pool"], ["flatten"], False)
case("avgpool_then_conv_erf_gap_bias", [("same", 1, ERF), "pool", ("same", 1, ERF)], ["gap"], True)
case("circular_relu_gap", [("circular", 1, RELU), ("circular", 1, RELU)], ["gap"], False)
