"""``dense``: a fully connected layer z = c_W W y + c_b b.

Conventions (DESIGN.md "Conventions"):

* ``parameterization = "ntk"``: W, b ~ N(0, 1) and c_W = sigma_w / sqrt(fan_in) (or sigma_w when
  ``normalize = false``), c_b = sigma_b.  Gradients are taken with respect to the N(0, 1)
  parameters, so the NTK is width-independent.
* ``parameterization = "standard"``: the parameters are c_W W and c_b b themselves; their
  gradients are y and 1, so the NTK grows with fan_in (as in neural-tangents).

Kernel rule, with w = sigma_w^2 (times fan_in when not normalized), b = sigma_b^2:

    Sigma' = w Sigma + b
    Theta' = w Theta + [W trainable] g_W + [b trainable] g_b

where g_W = w Sigma, g_b = b (ntk) or g_W = fan_in Sigma, g_b = 1 (standard).

>>> from ntksym import loads_spec
>>> arch = loads_spec('name = "m"\\ninput = { shape = [3] }\\n[[layer]]\\nkind = "dense"\\n'
...                   'weight_var = 2.0\\nbias_var = 0.5\\n')
>>> [(str(a.target), str(a.expr)) for a in arch.derive().steps[0].cross]
[('Sigma_1', '2*Sigma_0 + 1/2'), ('Theta_1', '2*Sigma_0 + 1/2')]
"""

from __future__ import annotations

import math

import numpy as np

from .base import WEIGHT_KEYS, KernelState, Layer, sympy_number


def weight_scales(node):
    """(w, b, c_W, c_b): the variance factors of the kernel rule and the forward multipliers."""
    p = node["params"]
    fan_in = node["fan_in"]
    s = 1.0 / fan_in if p["normalize"] else 1.0
    c_w = math.sqrt(p["weight_var"] * s)
    c_b = math.sqrt(p["bias_var"])
    return c_w, c_b


def trainable_groups(node, names=("W", "b")):
    t = node["params"]["trainable"]
    if t is True:
        return set(names)
    if t is False:
        return set()
    return set(t)


class Dense(Layer):
    kind = "dense"
    keys = dict(WEIGHT_KEYS)
    has_weights = True
    parameter_names = ("W", "b")

    @classmethod
    def output_shape(cls, node, in_shapes, error):
        (shape,) = in_shapes
        if len(shape) != 1:
            error(f"dense needs a vector input but receives shape {list(shape)}; "
                  "insert a 'flatten' or 'global_avg_pool' layer before it", "kind")
        return (node["params"]["width"],)

    @classmethod
    def describe(cls, node):
        p = node["params"]
        groups = sorted(trainable_groups(node))
        return (f"dense: weight_var={p['weight_var']}, bias_var={p['bias_var']}, "
                f"{p['parameterization']} parameterization, "
                f"{'normalized by fan_in' if p['normalize'] else 'not normalized'} "
                f"(fan_in={node['fan_in'] or 'n'}), trainable: {', '.join(groups) or 'none'}")

    @classmethod
    def kernel_rule(cls, node, inputs):
        (s,) = inputs
        p = node["params"]
        fan_in = node["fan_in"]
        w = sympy_number(p["weight_var"])
        if not p["normalize"]:
            w = w * fan_in
        b = sympy_number(p["bias_var"])
        groups = trainable_groups(node)
        standard = p["parameterization"] == "standard"

        def rule(sigma):
            return w * sigma + b

        nngp = rule(s.nngp)
        ntk = {g: w * t for g, t in s.ntk.items()}
        if "W" in groups:
            ntk[f"{node['id']}.W"] = (fan_in if standard else w) * s.nngp
        if "b" in groups and (standard or p["bias_var"] != 0):
            ntk[f"{node['id']}.b"] = sympy_number(1) if standard else b
        if s.diagonal:
            return KernelState(nngp, ntk, nngp, nngp, True)
        return KernelState(nngp, ntk, rule(s.var_x), rule(s.var_y), False)

    # ------------------------------------------------------------------ finite width
    @classmethod
    def init(cls, node, rng):
        fan_in, width = node["fan_in"], node["width"]
        return {"W": rng.standard_normal((fan_in, width)), "b": rng.standard_normal(width)}

    @classmethod
    def forward(cls, node, weights, inputs):
        (y,) = inputs
        c_w, c_b = weight_scales(node)
        z = c_w * (y @ weights["W"])
        if c_b:
            z += c_b * weights["b"]
        return z, y

    @classmethod
    def backward(cls, node, weights, cache, grad):
        c_w, _ = weight_scales(node)
        return [c_w * (grad @ weights["W"].T)]

    @classmethod
    def conditional_nngp(cls, node, y1, y2):
        """E[z(x) z(x')] over this layer's weights, given its finite inputs y1, y2."""
        c_w, c_b = weight_scales(node)
        return c_w ** 2 * (y1 @ y2.T) + c_b ** 2

    @classmethod
    def ntk_terms(cls, node, weights, cache1, delta1, cache2, delta2):
        c_w, c_b = weight_scales(node)
        standard = node["params"]["parameterization"] == "standard"
        groups = trainable_groups(node)
        dd = delta1 @ delta2.T
        out = {}
        if "W" in groups:
            out[f"{node['id']}.W"] = (1.0 if standard else c_w ** 2) * dd * (cache1 @ cache2.T)
        if "b" in groups and (standard or c_b != 0):
            out[f"{node['id']}.b"] = (1.0 if standard else c_b ** 2) * dd
        return out


