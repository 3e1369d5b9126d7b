"""``concat``: inputs side by side along features (vectors), channels (images) or the features
of every time step (sequences).

A layer after it sums over all the concatenated units, so its rule sees the mean of the
per-unit kernels: with branch widths n_i (the last axis of each input),

    Sigma' = sum_i a_i Sigma_i,   Theta' = sum_i a_i Theta_i,   a_i = n_i / sum_j n_j

and a_i = 1/k for k branches whose widths are all left to the finite network (n each).  No
independence is needed: units of different branches are never paired.  Mixing branches with and
without a width is refused (their ratio would be undefined as n grows).

>>> from ntksym import loads_spec
>>> arch = loads_spec('name = "c"\\ninput = { shape = [3] }\\n'
...     '[[layer]]\\nkind = "dense"\\nid = "a"\\nactivation = "relu"\\n'
...     '[[layer]]\\nkind = "dense"\\ninputs = ["input"]\\nactivation = "erf"\\n'
...     '[[layer]]\\nkind = "concat"\\ninputs = ["relu_1", "erf_3"]\\n'
...     '[[layer]]\\nkind = "dense"\\n')
>>> arch.graph.nodes["concat_4"]["params"], str(arch.derive().steps[4].cross[0].expr)
({}, 'Sigma_2/2 + Sigma_4/2')
"""

from __future__ import annotations

from fractions import Fraction

from .add import shape_text, weighted_sum
from .base import Layer, sympy_number


def concat_weights(node):
    """a_i: the share of each input's units (exact fractions; ``describe`` prints them as the
    kernel rule's sympy Rationals print).

    >>> concat_weights({"in_shapes": [(3,), (1,)]})
    [Fraction(3, 4), Fraction(1, 4)]
    """
    widths = [s[-1] for s in node["in_shapes"]]
    if all(w is None for w in widths):
        return [Fraction(1, len(widths))] * len(widths)
    return [Fraction(w, sum(widths)) for w in widths]


class Concat(Layer):
    kind = "concat"
    keys = {}
    inputs_range = (2, None)
    zero_mean = "linear"
    acts_per_time_step = True

    @classmethod
    def output_shape(cls, node, in_shapes, error):
        first = in_shapes[0]
        for src, shape in zip(node["inputs"][1:], in_shapes[1:]):
            if len(shape) != len(first) or tuple(shape[:-1]) != tuple(first[:-1]):
                what = {1: "vectors", 2: "sequences of one length", 3: "images of one size"}
                error(f"concat joins {what.get(len(first), 'arrays')} along the last axis, but "
                      f"{node['inputs'][0]!r} gives {shape_text(first)} and {src!r} gives "
                      f"{shape_text(shape)}", "inputs")
        widths = [s[-1] for s in in_shapes]
        if any(w is None for w in widths) and not all(w is None for w in widths):
            given = [f"{i} ({w})" for i, w in zip(node["inputs"], widths) if w is not None]
            error("concat of branches with and without a width: the kernel weights are the "
                  f"width ratios, undefined as n grows ({', '.join(given)} have one); give "
                  "every branch's last weight layer a width, or none", "inputs")
        last = None if widths[0] is None else sum(widths)
        return tuple(first[:-1]) + (last,)

    @classmethod
    def describe(cls, node):
        shares = ", ".join(f"{w} {i}" for w, i in zip(concat_weights(node), node["inputs"]))
        return f"concat along the last axis (kernel: width-weighted mean, {shares})"

    @classmethod
    def kernel_rule(cls, node, inputs):
        return weighted_sum(node, inputs, [sympy_number(a) for a in concat_weights(node)])

    @classmethod
    def forward(cls, node, weights, inputs, batch=None):
        import numpy as np  # the finite network only (layers.base: no NumPy for a spec check)
        return np.concatenate(inputs, axis=-1), np.cumsum([y.shape[-1] for y in inputs])[:-1]

    @classmethod
    def backward(cls, node, weights, cache, grad):
        import numpy as np
        return np.split(grad, cache, axis=-1)
