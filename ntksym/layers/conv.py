"""``conv``: a 2-D convolution on channels-last images (n, H, W, C).

Conventions (DESIGN.md "Conventions", as in the CNTK paper and neural-tangents' ``Conv``):

* z[p, o] = c_W sum_{a, c} W[a, c, o] y[s p + a - pad, c] + c_b b[o], with W, b ~ N(0, 1),
  a running over the q_h x q_w filter offsets, s the stride.  c_W^2 = weight_var / (C q_h q_w)
  (fan_in = C q_h q_w), or weight_var when ``normalize = false`` (the CNTK paper's first layer).
* Padding: ``same`` (zeros, output ceil(H / s), the TensorFlow split: (total - 1) // 2 ... before),
  ``valid`` (no padding, output (H - q) // s + 1), ``circular`` (wrap around, same sizes as same).

Kernel rule over pixel pairs (p, p'), with Sigma[p, p'] = <y_p, y'_p'> / C:

    P[p, p']  = sum_a Sigma[s p + a, s p' + a]                  (structural step ``patch_sum``)
    Sigma'    = w P + b
    Theta'    = w patch_sum(Theta) + [W trainable] w P + [b trainable] b

with w = weight_var / (q_h q_w) (or weight_var * C unnormalized) and b = bias_var.  Only the
``ntk`` parameterization is supported (the ``standard`` one has no finite limit for a hidden conv).

>>> from ntksym import loads_spec
>>> arch = loads_spec('name = "c"\\ninput = { shape = [4, 4, 2] }\\n'
...                   '[[layer]]\\nkind = "conv"\\nfilter = 3\\n'
...                   '[[layer]]\\nkind = "flatten"\\n[[layer]]\\nkind = "dense"\\n')
>>> arch.graph.nodes["conv_0"]["shape"], arch.graph.nodes["conv_0"]["fan_in"]
((4, 4, None), 18)
"""

from __future__ import annotations

import math

from . import mask as masks
from .base import WEIGHT_KEYS, KernelState, Key, Layer, one_of, positive_pair, sympy_number
from .dense import trainable_groups

PADDINGS = ("same", "valid", "circular")


def pair2(v, name):
    """[a] -> (a, a); [a, b] -> (a, b)."""
    v = list(v)
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def window_geometry(size, q, s, padding):
    """(output size, padding before) of one spatial axis; None if the window does not fit."""
    if padding == "valid":
        if q > size:
            return None
        return (size - q) // s + 1, 0
    out = -(-size // s)
    total = max((out - 1) * s + q - size, 0)
    return out, total // 2


def image_shape(in_shape, kind, error):
    if len(in_shape) != 3:
        error(f"{kind} needs an image input (H, W, C) but receives shape "
              f"{['n' if s is None else s for s in in_shape]}; image layers must come before "
              "'flatten' / 'global_avg_pool' (and the spec's input must be [H, W, C])", "kind")
    return in_shape


def spatial_output(node, in_shape, window, stride, padding, error, key):
    """(Ho, Wo, pads) of a windowed layer, or a SpecError naming ``key``."""
    H, W, _ = in_shape
    (gh, gw) = (window_geometry(H, window[0], stride[0], padding),
                window_geometry(W, window[1], stride[1], padding))
    if gh is None or gw is None:
        error(f"{node['kind']} window {list(window)} is larger than its input image "
              f"{H}x{W} under padding '{padding}'; use a smaller {key} or padding = \"same\"",
              key)
    if padding != "valid" and (window[0] > H or window[1] > W) and node["kind"] != "conv":
        error(f"{node['kind']} window {list(window)} is larger than its input image {H}x{W}",
              key)
    return gh[0], gw[0], (gh[1], gw[1])


class Conv(Layer):
    zero_mean = "fresh"
    kind = "conv"
    keys = dict(WEIGHT_KEYS,
                filter=Key("ints", [3, 3], positive_pair, "q_h, q_w"),
                stride=Key("ints", [1, 1], positive_pair, "s_h, s_w"),
                padding=Key("string", "same", one_of(*PADDINGS)),
                mask=Key("table", None, None, "pruning mask of W (ntksym.layers.mask; "
                         "'filter' prunes whole q x q filters)"))
    has_weights = True
    parameter_names = ("W", "b")

    @classmethod
    def validate(cls, params, error):
        if params["parameterization"] != "ntk":
            error("conv supports only parameterization = \"ntk\" (the standard "
                  "parameterization has no infinite-width limit for a hidden conv)",
                  "parameterization")
        if params.get("mask") is None:
            params.pop("mask", None)       # unmasked layers keep their params and spec hashes
        else:
            params["mask"] = masks.validate_mask(params["mask"], error)
            if params["mask"]["kind"] == "magnitude" and params["mask"]["scope"] == "global":
                error("global magnitude pruning is implemented for dense layers only; use "
                      "scope = \"layer\" on conv", "mask.scope")

    @classmethod
    def output_shape(cls, node, in_shapes, error):
        (shape,) = in_shapes
        image_shape(shape, "conv", error)
        p = node["params"]
        q, s = pair2(p["filter"], "filter"), pair2(p["stride"], "stride")
        Ho, Wo, pads = spatial_output(node, shape, q, s, p["padding"], error, "filter")
        C = shape[2]
        if not p["normalize"] and C is None:
            error("normalize = false needs a known input channel count (C appears in the "
                  "kernel); use it only on the first layer", "normalize")
        node["geometry"] = dict(filter=q, stride=s, padding=p["padding"], pads=pads,
                                in_hw=(shape[0], shape[1]), out_hw=(Ho, Wo))
        node["fan_in"] = None if C is None else C * q[0] * q[1]
        masks.check_mask_size(p.get("mask"), node["fan_in"], p["width"], error)
        return (Ho, Wo, p["width"])

    @classmethod
    def describe(cls, node):
        p, g = node["params"], node["geometry"]
        groups = sorted(trainable_groups(node))
        f = cls.mask_factors(node)
        return (f"conv {g['filter'][0]}x{g['filter'][1]}, stride {list(g['stride'])}, "
                f"padding {g['padding']}: weight_var={p['weight_var']}, "
                f"bias_var={p['bias_var']}, "
                f"{'normalized by fan_in = C*q*q' if p['normalize'] else 'not normalized'}, "
                f"trainable: {', '.join(groups) or 'none'}"
                + ("" if f is None else f"; {f.text}"))

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
    def structural_step(cls, node):
        from ntksym.ir.ops import PatchSum  # the kernel rule's IR: not needed to check a spec
        return PatchSum(**node["geometry"])

    @classmethod
    def kernel_rule(cls, node, inputs):
        import sympy as sp  # here, not at the top: ntksym check runs without sympy (layers.base)
        (s,) = inputs
        p, g = node["params"], node["geometry"]
        q = g["filter"][0] * g["filter"][1]
        w = sympy_number(p["weight_var"])
        w = w / q if p["normalize"] else w * node["in_shapes"][0][2]
        b = sympy_number(p["bias_var"])
        groups = trainable_groups(node)
        f = cls.mask_factors(node)
        mq, mk = (1, 1) if f is None else (sympy_number(f.weight), sympy_number(f.grad))

        def times(factor, expr):
            # a sympy factor on the weight-variance / gradient terms, unevaluated so that
            # `derive` shows it; the structural steps (and so codegen) are unchanged
            return expr if factor == 1 else sp.UnevaluatedExpr(factor) * expr

        ntk = {grp: times(mq, w * t) for grp, t in s.ntk.items()}
        if "W" in groups:
            ntk[f"{node['id']}.W"] = times(mk, w * s.nngp)
        if "b" in groups and p["bias_var"] != 0:
            ntk[f"{node['id']}.b"] = b
        nngp = times(mq, w * s.nngp) + b
        if s.diagonal:
            return KernelState(nngp, ntk, nngp, nngp, True)
        return KernelState(nngp, ntk, times(mq, w * s.var_x) + b, times(mq, w * s.var_y) + b,
                           False)

    # ------------------------------------------------------------------ finite width
    @classmethod
    def init(cls, node, rng):
        """W ~ N(0, 1) stored masked (W ⊙ m), b ~ N(0, 1); with a mask also ``mask`` (bool, kept
        entries, rows ordered (a_h, a_w, c) like :func:`im2col`) and ``mask_value``.  W and b
        are drawn first, so unmasked networks keep their weights.  A node with
        ``gradient = "fresh"`` also gets ``W_back``, an independent draw masked by its own
        draw of the mask, used only by the backward pass (as on ``dense``)."""
        out = {"W": rng.standard_normal((node["fan_in"], node["width"])),
               "b": rng.standard_normal(node["width"])}
        mask = node["params"].get("mask")
        if mask is not None:
            out["mask"], out["mask_value"] = cls._mask(node, mask, out["W"], rng)
        if node.get("gradient") == "fresh":
            out["W_back"] = rng.standard_normal(out["W"].shape)
            if mask is not None:
                cls._mask(node, mask, out["W_back"], rng)
        return out

    @classmethod
    def _mask(cls, node, mask, W, rng):
        """Sample the mask of W and apply it in place; (kept, value)."""
        import numpy as np  # the finite network only (layers.base: no NumPy for a spec check)
        if mask["kind"] != "filter":
            return masks.apply_mask(mask, W, rng)
        q = node["geometry"]["filter"]
        per_filter = masks.bernoulli_keep(rng, (node["in_shapes"][0][2], node["width"]),
                                          mask["keep"])
        kept = np.tile(per_filter, (q[0] * q[1], 1))   # one decision per (c, o) filter
        W *= kept
        return kept, 1.0

    @classmethod
    def scales(cls, node):
        p = node["params"]
        c_w = math.sqrt(p["weight_var"] / (node["fan_in"] if p["normalize"] else 1.0))
        return c_w, math.sqrt(p["bias_var"])

    @classmethod
    def forward(cls, node, weights, inputs, batch=None):
        (y,) = inputs
        c_w, c_b = cls.scales(node)
        cols = im2col(y, node["geometry"])                 # (n, Ho, Wo, q q C)
        # one 2-D BLAS product (a 4-D matmul loops over tiny per-row products)
        z = c_w * (cols.reshape(-1, cols.shape[-1]) @ weights["W"]).reshape(
            cols.shape[:-1] + (weights["W"].shape[1],))
        if c_b:
            z += c_b * weights["b"]
        return z, cols

    @classmethod
    def backward(cls, node, weights, cache, grad):
        # col2im(grad W^T) one filter offset at a time: nine (n P, C) x (C, C_in) products
        # added into the padded input gradient, never the (n, P, q q C_in) patch gradient
        import numpy as np
        c_w, _ = cls.scales(node)
        W, g = weights.get("W_back", weights["W"]), node["geometry"]   # fresh copy if any
        n, Ho, Wo, C = grad.shape
        C_in = node["in_shapes"][0][2]
        (bh, ah), (bw, aw) = _padded_extent(g)
        H, Wd = g["in_hw"]
        padded = np.zeros((n, bh + H + ah, bw + Wd + aw, C_in))
        flat = grad.reshape(-1, C)
        for i, j, rows, cols in _offset_slices(g):
            o = (i * g["filter"][1] + j) * C_in
            padded[:, rows, cols, :] += (flat @ W[o:o + C_in].T).reshape(n, Ho, Wo, C_in)
        return [c_w * _unpad(padded, g)]

    @classmethod
    def ntk_terms(cls, node, weights, cache1, delta1, cache2, delta2):
        # <dF/dW(x), dF/dW(x')> = c^2 sum_{p, p'} <delta_p, delta'_p'> <col_p, col'_p'>:
        # pixel-pair Gram products instead of per-example weight gradients.
        import numpy as np
        c_w, c_b = cls.scales(node)
        n1, n2 = delta1.shape[0], delta2.shape[0]
        d1, d2 = delta1.reshape(n1, -1, delta1.shape[-1]), delta2.reshape(n2, -1, delta2.shape[-1])
        groups = trainable_groups(node)
        out = {}
        if "W" in groups:
            x1, x2 = (cache1.reshape(n1, -1, cache1.shape[-1]),
                      cache2.reshape(n2, -1, cache2.shape[-1]))
            kept = weights.get("mask")
            P, k, C = x1.shape[1], x1.shape[2], d1.shape[2]
            if kept is not None:
                # d/dW_io = c sum_p col_pi m_io delta_po: per-example (fan_in, width) Jacobians
                g1 = np.einsum("api,apo->aio", x1, d1) * kept
                g2 = np.einsum("bpi,bpo->bio", x2, d2)
                s = weights["mask_value"]
                out[f"{node['id']}.W"] = c_w ** 2 * s * s * np.einsum("aio,bio->ab", g1, g2)
            else:
                # Two exact ways; pick the cheaper in flops.  Pixel pairs cost
                # n1 n2 P^2 (k + C) and win for few channels; per-example weight gradients
                # x_a^T delta_a (k x C) cost (n1 + n2) P k C + n1 n2 k C and win for many
                # pixels and channels (the CNTK paper's 128-channel CNNs on 8x8 images: ~30x
                # fewer flops).
                if n1 * n2 * P * P * (k + C) <= (n1 + n2) * P * k * C + n1 * n2 * k * C:
                    dd = np.einsum("apk,bqk->abpq", d1, d2)
                    xx = np.einsum("apk,bqk->abpq", x1, x2)
                    val = np.einsum("abpq,abpq->ab", dd, xx)
                else:
                    val = _gradient_gram(x1, d1, x2, d2, cache1 is cache2 and delta1 is delta2)
                out[f"{node['id']}.W"] = c_w ** 2 * val
        if "b" in groups and c_b != 0:
            out[f"{node['id']}.b"] = c_b ** 2 * (d1.sum(1) @ d2.sum(1).T)
        return out


def _gradient_gram(x1, d1, x2, d2, same, budget=1 << 22):
    """sum_{p,p'} <d1_p, d2_p'> <x1_p, x2_p'> for all example pairs, as the Gram matrix of
    the per-example weight gradients G_a = x_a^T d_a (k x C).

    The gradients are formed and multiplied in blocks of examples and of the k patch entries
    of about ``budget`` floats each, accumulating the Gram matrix: the (n, k C) gradient
    matrix (472 MB for 400 examples of a 128-channel 3x3 conv) is never stored, which saves
    memory traffic and page faults, not flops."""
    import numpy as np
    n1, n2 = x1.shape[0], x2.shape[0]
    k, C = x1.shape[2], d1.shape[2]
    step = min(max(n1, n2), max(1, budget // C))           # examples per block
    kb = max(1, budget // (step * C))                        # patch entries per block

    def grads(x, d, lo, hi, f):
        xs = x[lo:hi, :, f:f + kb]                           # strided view, no copy
        return np.matmul(xs.transpose(0, 2, 1), d[lo:hi]).reshape(hi - lo, -1)

    out = np.zeros((n1, n2))
    for lo2 in range(0, n2, step):
        hi2 = min(n2, lo2 + step)
        for lo1 in range(0, n1, step):
            hi1 = min(n1, lo1 + step)
            for f in range(0, k, kb):
                G2 = grads(x2, d2, lo2, hi2, f)
                G1 = G2 if same and lo1 == lo2 else grads(x1, d1, lo1, hi1, f)
                out[lo1:hi1, lo2:hi2] += G1 @ G2.T
    return out


def _padded_extent(geometry):
    """Per axis: (padding before, padding after) so that every window of every output pixel
    lies inside the padded image (input index r -> padded index r + before)."""
    (H, W), (Ho, Wo) = geometry["in_hw"], geometry["out_hw"]
    (qh, qw), (sh, sw), (ph, pw) = geometry["filter"], geometry["stride"], geometry["pads"]
    return ((ph, max(0, (Ho - 1) * sh + qh - ph - H)), (pw, max(0, (Wo - 1) * sw + qw - pw - W)))


def _offset_slices(geometry):
    """(a_h, a_w, slice of padded rows, slice of padded columns) for each filter offset: the
    input pixels that offset reads for all output pixels (a strided slab, no gather)."""
    (Ho, Wo) = geometry["out_hw"]
    (qh, qw), (sh, sw) = geometry["filter"], geometry["stride"]
    for i in range(qh):
        for j in range(qw):
            yield i, j, slice(i, i + (Ho - 1) * sh + 1, sh), slice(j, j + (Wo - 1) * sw + 1, sw)


def im2col(y, geometry):
    """(n, H, W, C) -> (n, Ho, Wo, qh*qw*C) patches, padded entries zero (order: a_h, a_w, c);
    ``circular`` padding wraps around instead."""
    import numpy as np
    n, H, W, C = y.shape
    (Ho, Wo), (qh, qw) = geometry["out_hw"], geometry["filter"]
    (bh, ah), (bw, aw) = _padded_extent(geometry)
    if geometry["padding"] == "circular":
        padded = np.pad(y, ((0, 0), (bh, ah), (bw, aw), (0, 0)), mode="wrap")
    else:
        padded = np.zeros((n, bh + H + ah, bw + W + aw, C), dtype=y.dtype)
        padded[:, bh:bh + H, bw:bw + W, :] = y
    out = np.empty((n, Ho, Wo, qh, qw, C), dtype=y.dtype)
    # one strided slab copy per filter offset (a fancy-index gather is several times slower)
    for i, j, rows, cols in _offset_slices(geometry):
        out[:, :, :, i, j, :] = padded[:, rows, cols, :]
    return out.reshape(n, Ho, Wo, qh * qw * C)


def col2im(dcols, geometry, C):
    """The adjoint of :func:`im2col`: scatter-add patch gradients back to (n, H, W, C)."""
    import numpy as np
    (H, W) = geometry["in_hw"]
    n, Ho, Wo, _ = dcols.shape
    (qh, qw) = geometry["filter"]
    (bh, ah), (bw, aw) = _padded_extent(geometry)
    d = dcols.reshape(n, Ho, Wo, qh, qw, C)
    padded = np.zeros((n, bh + H + ah, bw + W + aw, C), dtype=dcols.dtype)
    # for a fixed offset, distinct output pixels read distinct padded pixels: a slab +=
    for i, j, rows, cols in _offset_slices(geometry):
        padded[:, rows, cols, :] += d[:, :, :, i, j, :]
    return _unpad(padded, geometry)


def _unpad(padded, geometry):
    """(n, H + pads, W + pads, C) gradient of the padded image -> (n, H, W, C): padding
    dropped, or folded back onto the pixels it copies (``circular``)."""
    import numpy as np
    (H, W) = geometry["in_hw"]
    (bh, _), (bw, _) = _padded_extent(geometry)
    if geometry["padding"] != "circular":
        return padded[:, bh:bh + H, bw:bw + W, :]
    # wrap-around: padded index r holds input pixel (r - before) mod size
    n, C = padded.shape[0], padded.shape[3]
    rows = np.zeros((n, H, padded.shape[2], C), dtype=padded.dtype)
    for r in range(padded.shape[1]):
        rows[:, (r - bh) % H] += padded[:, r]
    out = np.zeros((n, H, W, C), dtype=padded.dtype)
    for c in range(padded.shape[2]):
        out[:, :, (c - bw) % W] += rows[:, :, c]
    return out
