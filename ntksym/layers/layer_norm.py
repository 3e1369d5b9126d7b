"""``layer_norm``: each example's features (vectors), each pixel's channels (images) or each
time step's features (sequences) centred and divided by their standard deviation, without a
learned gain or bias: y = (z - mean(z)) / std(z) over the last axis.

At infinite width the features of a zero-mean input are i.i.d. N(0, Sigma(x, x)), so the mean
vanishes and the standard deviation is sqrt(Sigma(x, x)) (per pixel for images):

    Sigma' = Sigma / sqrt(Sigma(x, x) Sigma(x', x'))
    Theta' = Theta / sqrt(Sigma(x, x) Sigma(x', x'))

and on the diagonal Sigma' = 1, Theta' = Theta / Sigma(x, x) (neural-tangents' ``LayerNorm``
over the channel axis).  The mean is dropped, which is exact only for a zero-mean input, so the
layer must follow a dense or conv layer (before the activation); elsewhere it is refused.

>>> from ntksym import loads_spec
>>> arch = loads_spec('name = "ln"\\ninput = { shape = [3] }\\n'
...     '[[layer]]\\nkind = "dense"\\nbias_var = 0.5\\n'
...     '[[layer]]\\nkind = "layer_norm"\\n[[layer]]\\nkind = "dense"\\n')
>>> str(arch.derive().steps[1].cross[0].expr)
'Sigma_1/sqrt(Sigma_1_xx*Sigma_1_yy)'
"""

from __future__ import annotations

from .base import KernelState, Layer


class LayerNorm(Layer):
    kind = "layer_norm"
    keys = {}
    zero_mean = "linear"
    acts_per_time_step = True

    @classmethod
    def check_graph(cls, node, facts, error):
        (src,) = node["inputs"]
        if facts.sources[src] is None:
            error(f"layer_norm after {src!r}: its infinite-width rule needs zero-mean features; "
                  "put it right after a dense or conv layer (before the activation)", "kind")

    @classmethod
    def describe(cls, node):
        axis = "channels of each pixel" if len(node["shape"]) == 3 else "features"
        return f"layer_norm over the {axis} (no gain or bias): Sigma / sqrt(Sigma_xx Sigma_yy)"

    @classmethod
    def kernel_rule(cls, node, inputs):
        import sympy as sp  # here, not at the top: ntksym check runs without sympy (layers.base)
        (s,) = inputs
        if s.diagonal:
            one = sp.Integer(1)
            return KernelState(one, {g: t / s.nngp for g, t in s.ntk.items()}, one, one, True)
        r = 1 / sp.sqrt(s.var_x * s.var_y)
        return KernelState(s.nngp * r, {g: t * r for g, t in s.ntk.items()}, sp.Integer(1),
                           sp.Integer(1), False)

    @classmethod
    def forward(cls, node, weights, inputs, batch=None):
        import numpy as np  # the finite network only
        (z,) = inputs
        centred = z - z.mean(axis=-1, keepdims=True)
        inv_std = 1.0 / np.sqrt((centred ** 2).mean(axis=-1, keepdims=True))
        y = centred * inv_std
        return y, (y, inv_std)

    @classmethod
    def backward(cls, node, weights, cache, grad):
        y, inv_std = cache
        g = grad - grad.mean(axis=-1, keepdims=True)
        return [inv_std * (g - y * (grad * y).mean(axis=-1, keepdims=True))]
