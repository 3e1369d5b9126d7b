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

With a pruning ``mask`` (:mod:`ntksym.layers.mask`) the layer computes c_W (W ⊙ m) y and the
rule becomes

    Sigma' = q w Sigma + b,    Theta' = q w Theta + [W trainable] k g_W + ...

with q = E[(W m)^2] and k = E[m^2] (gradients with respect to W, Yang & Wang's convention);
``describe`` and ``ntksym derive`` print q, k and how they were derived.

>>> from ntksym import loads_spec
>>> arch = loads_spec('name = "m"\\ninput = { shape = [3] }\\n[[layer]]\\nkind = "dense"\\n'
...                   'weight_var = 2.0\\nbias_var = 0.5\\n')
>>> [(str(a.target), str(a.expr)) for a in arch.derive().steps[0].cross]
[('Sigma_1', '2*Sigma_0 + 1/2'), ('Theta_1', '2*Sigma_0 + 1/2')]
"""

from __future__ import annotations

import math

from . import mask as masks
from .base import WEIGHT_KEYS, KernelState, Key, Layer, sympy_number


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
    zero_mean = "fresh"
    acts_per_time_step = True
    kind = "dense"
    keys = dict(WEIGHT_KEYS,
                mask=Key("table", None, None, "pruning mask of W (see ntksym.layers.mask)"))
    has_weights = True
    parameter_names = ("W", "b")

    @classmethod
    def validate(cls, params, error):
        if params.get("mask") is None:
            # absent, not None: unmasked layers keep the params (and spec hashes) they had
            params.pop("mask", None)
        else:
            params["mask"] = masks.validate_mask(params["mask"], error)
            if params["mask"]["kind"] == "filter":
                error("a 'filter' mask prunes whole conv filters; on dense use 'bernoulli', "
                      "'magnitude' or 'count'", "mask.kind")

    @classmethod
    def output_shape(cls, node, in_shapes, error):
        (shape,) = in_shapes
        if len(shape) == 2:
            # a sequence (T, k) from an rnn with readout = "all": the layer acts at every step
            node["fan_in"] = shape[1]
            return (shape[0], node["params"]["width"])
        if len(shape) != 1:
            error(f"dense needs a vector input but receives shape {list(shape)}; "
                  "insert a 'flatten' or 'global_avg_pool' layer before it", "kind")
        masks.check_mask_size(node["params"].get("mask"), shape[0], node["params"]["width"],
                              error)
        return (node["params"]["width"],)

    @classmethod
    def mask_factors(cls, node):
        """The :class:`~ntksym.layers.mask.MaskFactors` of the node's mask, or None."""
        m = node["params"].get("mask")
        return None if m is None else masks.mask_factors(m, node.get("fan_in"), node.get("width"))

    @classmethod
    def notes(cls, node):
        f = cls.mask_factors(node)
        return [] if f is None else [f"{node['id']} mask: {f.note}"]

    @classmethod
    def describe(cls, node):
        p = node["params"]
        groups = sorted(trainable_groups(node))
        f = cls.mask_factors(node)
        return (f"dense: weight_var={p['weight_var']}, bias_var={p['bias_var']}, "
                f"{p['parameterization']} parameterization, "
                f"{'normalized by fan_in' if p['normalize'] else 'not normalized'} "
                f"(fan_in={node['fan_in'] or 'n'}), trainable: {', '.join(groups) or 'none'}"
                + ("" if f is None else f"; {f.text}"))

    @classmethod
    def kernel_rule(cls, node, inputs):
        import sympy as sp  # here, not at the top: ntksym check runs without sympy (layers.base)
        (s,) = inputs
        p = node["params"]
        fan_in = node["fan_in"]
        w = sympy_number(p["weight_var"])
        if not p["normalize"]:
            w = w * fan_in
        b = sympy_number(p["bias_var"])
        groups = trainable_groups(node)
        standard = p["parameterization"] == "standard"
        f = cls.mask_factors(node)
        q, k = ((sp.Integer(1), sp.Integer(1)) if f is None else
                (sympy_number(f.weight), sympy_number(f.grad)))

        def times(factor, expr):
            # unevaluated, so that `ntksym derive` shows the mask factor next to the variance
            return expr if factor == 1 else sp.UnevaluatedExpr(factor) * expr

        def rule(sigma):
            return times(q, w * sigma) + b

        nngp = rule(s.nngp)
        ntk = {g: times(q, w * t) for g, t in s.ntk.items()}
        if "W" in groups:
            ntk[f"{node['id']}.W"] = times(k, (fan_in if standard else w) * s.nngp)
        if "b" in groups and (standard or p["bias_var"] != 0):
            ntk[f"{node['id']}.b"] = sympy_number(1) if standard else b
        if s.diagonal:
            return KernelState(nngp, ntk, nngp, nngp, True)
        return KernelState(nngp, ntk, rule(s.var_x), rule(s.var_y), False)

    # ------------------------------------------------------------------ finite width
    @classmethod
    def init(cls, node, rng):
        """W ~ N(0, 1) (stored masked: W ⊙ m), b ~ N(0, 1); with a mask also ``mask`` (bool,
        the kept entries) and ``mask_value`` (s, the value of m on them).  A node with
        ``gradient = "fresh"`` gets ``W_back``: an independent draw of W ⊙ m used only by the
        backward pass (the gradient-independence variant of Yang & Wang's Thm. 3.1).

        W and b are drawn first, so an unmasked network has the same weights as before masks
        existed; mask and fresh draws follow from the same generator.
        """
        fan_in, width = node["fan_in"], node["width"]
        out = {"W": rng.standard_normal((fan_in, width)), "b": rng.standard_normal(width)}
        mask = node["params"].get("mask")
        if mask is not None:
            out["mask"], out["mask_value"] = masks.apply_mask(mask, out["W"], rng)
        if node.get("gradient") == "fresh":
            out["W_back"] = rng.standard_normal((fan_in, width))
            if mask is not None:
                out["mask_back"], _ = masks.apply_mask(mask, out["W_back"], rng)
        return out

    @classmethod
    def forward(cls, node, weights, inputs, batch=None):
        (y,) = inputs
        c_w, c_b = weight_scales(node)
        z = c_w * (y @ weights["W"])
        if c_b:
            z += c_b * weights["b"]
        return z, y

    @classmethod
    def backward(cls, node, weights, cache, grad):
        c_w, _ = weight_scales(node)
        return [c_w * (grad @ weights.get("W_back", weights["W"]).T)]

    @classmethod
    def conditional_nngp(cls, node, y1, y2):
        """E[z(x) z(x')] over this layer's weights (and mask), given its finite inputs y1, y2:
        (n1, n2), or for sequences (n, T, k) one output per step, (T1, n1, T2, n2)."""
        c_w, c_b = weight_scales(node)
        f = cls.mask_factors(node)
        if y1.ndim == 2:
            q = 1.0 if f is None else float(f.weight)
            return q * c_w ** 2 * (y1 @ y2.T) + c_b ** 2
        c_w = c_w * (1.0 if f is None else float(f.weight) ** 0.5)   # E[(W m)^2] of a mask
        n1, T1, k = y1.shape
        n2, T2, _ = y2.shape
        K = (y1.reshape(n1 * T1, k) @ y2.reshape(n2 * T2, k).T).reshape(n1, T1, n2, T2)
        return (c_w ** 2 * K + c_b ** 2).transpose(1, 0, 3, 2)

    @classmethod
    def ntk_terms(cls, node, weights, cache1, delta1, cache2, delta2):
        """The W and b terms; the same code for one application (delta (n, width)) and for a
        layer acting at every step of a sequence (delta (O, n, T, width))."""
        from . import grams  # NumPy: the finite network only
        c_w, c_b = weight_scales(node)
        standard = node["params"]["parameterization"] == "standard"
        groups = trainable_groups(node)
        out = {}
        if "W" in groups:
            out[f"{node['id']}.W"] = grams.weight_term(
                1.0 if standard else c_w ** 2, delta1, cache1, delta2, cache2,
                weights.get("mask"), weights.get("mask_value", 1.0))
        if "b" in groups and (standard or c_b != 0):
            out[f"{node['id']}.b"] = grams.bias_term(1.0 if standard else c_b ** 2,
                                                     delta1, delta2)
        return out


