"""Image-to-image and image-to-vector layers without weights: ``avg_pool``, ``sum_pool``,
``global_avg_pool``, ``flatten``.  Each is one structural IR step; the state passes through
unchanged otherwise.

Kernel rules over pixel pairs (Sigma[p, p'] = <y_p, y'_p'> / C, m = window area):

* ``avg_pool``: Sigma'[p, p'] = m^-2 sum_{a, a'} Sigma[s p + a, s p' + a'] (zeros in the padding
  count, as in neural-tangents' ``AvgPool`` with ``normalize_edges = False``);
* ``sum_pool``: the same without the m^-2 (neural-tangents' ``SumPool``);
* ``global_avg_pool``: Sigma' = P^-2 sum_{p, p'} Sigma[p, p'] (output: C features);
* ``flatten``: Sigma' = P^-1 sum_p Sigma[p, p] (output: H W C features, so a normalized dense
  readout gets weight_var * Sigma').

The same rule applies to every NTK term.

>>> from ntksym import loads_spec
>>> arch = loads_spec('name = "p"\\ninput = { shape = [4, 4, 1] }\\n'
...                   '[[layer]]\\nkind = "avg_pool"\\nwindow = 2\\n'
...                   '[[layer]]\\nkind = "global_avg_pool"\\n[[layer]]\\nkind = "dense"\\n')
>>> arch.graph.nodes["avg_pool_0"]["shape"]
(2, 2, 1)
"""

from __future__ import annotations

from .base import Key, Layer, one_of, positive_pair
from .conv import col2im, im2col, image_shape, pair2, spatial_output


class PassThrough(Layer):
    """Kernel rule: the state after the structural step is the layer's state."""
    zero_mean = "linear"

    @classmethod
    def kernel_rule(cls, node, inputs):
        (s,) = inputs
        return s


class AvgPool(PassThrough):
    kind = "avg_pool"
    keys = {"window": Key("ints", [2, 2], positive_pair, "w_h, w_w"),
            "stride": Key("ints", None, positive_pair, "default: the window"),
            "padding": Key("string", "valid", one_of("valid", "same"))}

    @classmethod
    def output_shape(cls, node, in_shapes, error):
        (shape,) = in_shapes
        image_shape(shape, cls.kind, error)
        p = node["params"]
        win = pair2(p["window"], "window")
        stride = pair2(p["stride"], "stride") if p["stride"] else win
        Ho, Wo, pads = spatial_output(node, shape, win, stride, p["padding"], error, "window")
        node["geometry"] = dict(filter=win, stride=stride, padding=p["padding"], pads=pads,
                                in_hw=(shape[0], shape[1]), out_hw=(Ho, Wo))
        return (Ho, Wo, shape[2])

    @classmethod
    def describe(cls, node):
        g = node["geometry"]
        return (f"avg_pool {g['filter'][0]}x{g['filter'][1]}, stride {list(g['stride'])}, "
                f"padding {g['padding']}")

    @classmethod
    def structural_step(cls, node):
        from ntksym.ir import ops  # the IR: not needed to check a spec
        return ops.AvgPool(**node["geometry"])

    @classmethod
    def forward(cls, node, weights, inputs, batch=None):
        (y,) = inputs
        g = node["geometry"]
        m = g["filter"][0] * g["filter"][1]
        cols = im2col(y, g)
        n, Ho, Wo, _ = cols.shape
        return cols.reshape(n, Ho, Wo, m, y.shape[3]).mean(3), None

    @classmethod
    def backward(cls, node, weights, cache, grad):
        import numpy as np  # the finite network only (layers.base: no NumPy for a spec check)
        g = node["geometry"]
        m = g["filter"][0] * g["filter"][1]
        d = np.repeat(grad[:, :, :, None, :] / m, m, axis=3)
        return [col2im(d.reshape(grad.shape[:3] + (-1,)), g, grad.shape[3])]


class SumPool(AvgPool):
    """Sum over the window: the average pool times its area m (neural-tangents' ``SumPool``),
    so its kernel is m^2 times the average pool's."""

    kind = "sum_pool"

    @classmethod
    def describe(cls, node):
        return "sum" + super().describe(node)[3:]

    @classmethod
    def structural_step(cls, node):
        from ntksym.ir import ops
        return ops.SumPool(**node["geometry"])

    @classmethod
    def forward(cls, node, weights, inputs, batch=None):
        y, cache = super().forward(node, weights, inputs, batch)
        g = node["geometry"]
        return y * (g["filter"][0] * g["filter"][1]), cache

    @classmethod
    def backward(cls, node, weights, cache, grad):
        g = node["geometry"]
        return super().backward(node, weights, cache, grad * (g["filter"][0] * g["filter"][1]))


class GlobalAvgPool(PassThrough):
    kind = "global_avg_pool"

    @classmethod
    def output_shape(cls, node, in_shapes, error):
        (shape,) = in_shapes
        image_shape(shape, "global_avg_pool", error)
        return (shape[2],)

    @classmethod
    def describe(cls, node):
        H, W, _ = node["in_shapes"][0]
        return f"global_avg_pool over {H}x{W} pixels"

    @classmethod
    def structural_step(cls, node):
        from ntksym.ir import ops
        return ops.GlobalAvg(in_hw=tuple(node["in_shapes"][0][:2]))

    @classmethod
    def forward(cls, node, weights, inputs, batch=None):
        (y,) = inputs
        return y.mean(axis=(1, 2)), y.shape

    @classmethod
    def backward(cls, node, weights, cache, grad):
        import numpy as np
        n, H, W, C = cache
        return [np.broadcast_to(grad[:, None, None, :] / (H * W), cache).copy()]


class Flatten(PassThrough):
    kind = "flatten"

    @classmethod
    def output_shape(cls, node, in_shapes, error):
        (shape,) = in_shapes
        image_shape(shape, "flatten", error)
        H, W, C = shape
        return (None if C is None else H * W * C,)

    @classmethod
    def describe(cls, node):
        H, W, _ = node["in_shapes"][0]
        return f"flatten {H}x{W} pixels (kernel: mean of the pixel diagonal)"

    @classmethod
    def structural_step(cls, node):
        from ntksym.ir import ops
        return ops.Flatten(in_hw=tuple(node["in_shapes"][0][:2]))

    @classmethod
    def forward(cls, node, weights, inputs, batch=None):
        (y,) = inputs
        return y.reshape(y.shape[0], -1), y.shape

    @classmethod
    def backward(cls, node, weights, cache, grad):
        return [grad.reshape(cache)]
