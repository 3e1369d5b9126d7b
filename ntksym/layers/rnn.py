"""``rnn``: an Elman recurrent layer h_t = phi(c_W W h_{t-1} + c_A A y_t + c_b b), weights shared
across time.

Conventions (DESIGN.md "Conventions", applied per weight matrix):

* ``parameterization = "ntk"``: W (width x width), A (width x fan_in), b ~ N(0, 1);
  c_W = sqrt(weight_var / width), c_A = sqrt(input_var / fan_in), c_b = sqrt(bias_var).
  ``normalize`` = true | false | a list of the matrices to normalize (["W"], ["A"], ["W", "A"]):
  a matrix left out drops its 1/fan_in (c_A = sqrt(input_var)).
* ``parameterization = "standard"``: the parameters are c_W W, c_A A, c_b b themselves.
* h_0 ~ N(0, hidden_init_var I), drawn independently for every example (so in the limit
  <h_0(x), h_0(x')>/width = hidden_init_var 1{x = x'}, where x = x' means the same example of one
  Gram matrix); hidden_init_var = 0 gives h_0 = 0.
* ``activation``: any activation of the registry (shorthand as on other layers), applied inside
  the recurrence.  Default "relu".
* ``readout``: what the layer outputs: "last" (h_T of every sequence, i.e. aligned from the
  end for sequences of different lengths), "mean" (the average of h_t over t >= readout_from) or
  "all" (the sequence h_t, t >= readout_from: a following ``dense`` applies at every step and
  the kernel is one matrix per pair of time steps).  Stacks: a layer reading another rnn layer,
  directly or through per-step layers (dense, activations, add, concat, layer_norm), needs that
  layer's ``readout = "all"`` (with readout_from = 1).
* ``trainable``: true | false | a list of "W", "A", "b".
* ``mask``: a pruning mask (:mod:`ntksym.layers.mask`: bernoulli, magnitude with scope "layer",
  count) on the matrices listed in its ``matrices`` key: ["W"] (the recurrent matrix) by
  default, ["A"] or ["W", "A"] to prune the input matrix too; b is never masked.  Each listed
  matrix gets its own draw of the mask, shared across time like the matrix itself; a count mask
  removes ``remove`` entries from each.  Gradients are taken with respect to W and A (as on
  dense).  The kernel rule's factor for A is the limit when A's fan_in grows too (an rnn
  reading another rnn's sequence): with a fixed input dimension d the masked input term
  sum_k A_kj m_kj x_k has d terms, a Gaussian mixture rather than a Gaussian, and the finite
  network's kernel stays away from the rule (``derive`` notes this).

Kernel rule over a time pair (t, t'), per-coordinate covariances, w = weight_var, a = input_var
(times fan_in when not normalized), b = bias_var:

    Sigma_g(t, t') = w Sigma_h(t-1, t'-1) + a Sigma_in(t, t') + b
    Sigma_h(t, t') = E[phi(u) phi(v)],
                     (u, v) ~ N(0, [[Sigma_g(x,x)(t,t), .], [., Sigma_g(x',x')(t',t')]])
    Theta_g(t, t') = w Theta_h(t-1, t'-1) + [W] g_W Sigma_h(t-1, t'-1) + a Theta_in(t, t')
                     + [A] g_A Sigma_in(t, t') + [b] g_b
    Theta_h(t, t') = E[phi'(u) phi'(v)] Theta_g(t, t')

with Sigma_h(0, 0) = hidden_init_var 1{x = x'}, Sigma_h = 0 when exactly one time index is 0,
Theta_h = 0 on the boundary, g_W = w, g_A = a, g_b = b (ntk) or width, fan_in, 1 (standard).
A mask on matrix M multiplies its variance (w or a, in Sigma_g and in the propagated Theta term)
by q_M = E[(M m)^2] and its gradient term g_M by k_M = E[m^2], exactly as on ``dense``.

>>> import ntksym
>>> arch = ntksym.loads_spec('name = "r"\\ninput = { shape = [5, 3] }\\n'
...                          '[[layer]]\\nkind = "rnn"\\nweight_var = 2.0\\n'
...                          '[[layer]]\\nkind = "dense"\\n')
>>> arch.graph.nodes["rnn_0"]["shape"]
(None,)
"""

from __future__ import annotations

import functools
import math

from ntksym.duals.activations import (
    activation_name,
    check_activation,
    get_activation,
    parse_shorthand,
)
from ntksym.errors import SpecError

from . import mask as masks
from .base import WEIGHT_KEYS, KernelState, Key, Layer, nonnegative, one_of, sympy_number

# networkx, sympy and NumPy are imported inside the rules that use them: validating and
# describing an rnn layer needs none of them (ntksym.layers.base)

READOUTS = ("last", "mean", "all")
MATRICES = ("W", "A")
#: the rnn-only key of a mask table: which matrices it prunes
MASK_EXTRA = {"matrices": ("list", ["W"])}
MATRIX_NAMES = {"W": "the recurrent matrix W", "A": "the input matrix A"}


def _check_activation(text):
    try:
        kind, params = parse_shorthand(text)
        check_activation(kind, **params)
    except Exception as e:  # the registry's message names the valid kinds
        return str(e)
    return None


def activation_of(node):
    """The registry :class:`~ntksym.duals.base.Activation` of an rnn node."""
    kind, params = parse_shorthand(node["params"]["activation"])
    return get_activation(kind, **params)


def activation_display(node):
    """The name of an rnn node's activation (``relu``, ``leaky_relu(slope=0.1)``), without
    building it."""
    return activation_name(*parse_shorthand(node["params"]["activation"]))


def normalized(node, matrix):
    """Whether ``matrix`` ("W" or "A") is divided by its fan_in."""
    n = node["params"]["normalize"]
    return n if isinstance(n, bool) else matrix in n


def trainable_groups(node):
    t = node["params"]["trainable"]
    if t is True:
        return {"W", "A", "b"}
    if t is False:
        return set()
    return set(t)


def scales(node):
    """(c_W, c_A, c_b, c_h0): forward multipliers of W, A, b and of a N(0, 1) initial state."""
    p = node["params"]
    m, fan_in = node["width"], node["fan_in"]
    c_w = math.sqrt(p["weight_var"] / (m if normalized(node, "W") else 1))
    c_a = math.sqrt(p["input_var"] / (fan_in if normalized(node, "A") else 1))
    return c_w, c_a, math.sqrt(p["bias_var"]), math.sqrt(p["hidden_init_var"])


class Rnn(Layer):
    kind = "rnn"
    has_weights = True
    owns_activation = True          # the activation acts inside the recurrence: no extra node
    parameter_names = ("W", "A", "b")
    keys = dict(WEIGHT_KEYS)
    keys.update({
        "input_var": Key("number", 1.0, nonnegative, "sigma_A^2, variance of the input matrix A"),
        "hidden_init_var": Key("number", 0.0, nonnegative, "variance of h_0 (0: h_0 = 0)"),
        "normalize": Key("bool|list", True, None, "true, false or the list of matrices "
                         "(\"W\", \"A\") divided by their fan_in"),
        "activation": Key("string", "relu", _check_activation, "phi inside the recurrence"),
        "readout": Key("string", "last", one_of(*READOUTS), "last | mean | all"),
        "readout_from": Key("int", 1, lambda v: None if v >= 1 else "must be >= 1",
                            "first time step of the readout (1-based)"),
        "mask": Key("table", None, None, "pruning mask of W and/or A (ntksym.layers.mask; "
                    "matrices = [\"W\"] by default)"),
    })

    @classmethod
    def validate(cls, params, error):
        n = params["normalize"]
        if isinstance(n, list):
            for v in n:
                if v not in MATRICES:
                    error(f"unknown matrix {v!r} in normalize; valid: W, A", "normalize")
        if params["readout"] == "last" and params["readout_from"] != 1:
            error("readout_from applies to the 'mean' and 'all' readouts", "readout_from")
        if params.get("mask") is None:
            params.pop("mask", None)       # unmasked layers keep their params and spec hashes
            return
        m = masks.validate_mask(params["mask"], error, extra=MASK_EXTRA)
        if m["kind"] == "filter":
            error("a 'filter' mask prunes whole conv filters; on rnn use 'bernoulli', "
                  "'magnitude' or 'count'", "mask.kind")
        if m["kind"] == "magnitude" and m["scope"] == "global":
            error("global magnitude pruning is implemented for dense layers only; use "
                  "scope = \"layer\" on rnn", "mask.scope")
        mats = m["matrices"]
        if not mats or any(v not in MATRICES for v in mats) or len(set(mats)) != len(mats):
            error(f"matrices lists the matrices to prune, a non-empty list of distinct names "
                  f"from \"W\" (recurrent) and \"A\" (input); got {mats!r}", "mask.matrices")
        params["mask"] = m

    @classmethod
    def output_shape(cls, node, in_shapes, error):
        (shape,) = in_shapes
        if len(shape) != 2:
            error(f"rnn needs a sequence input [T, d] but receives shape {list(shape)}; "
                  "set input.shape = [T, d] (T = -1 for variable lengths), or give the rnn "
                  "layer below readout = \"all\"", "kind")
        node["fan_in"] = shape[1]
        node["seq_len"] = shape[0]
        p = node["params"]
        m = p.get("mask")
        for M in (m["matrices"] if m else ()):
            masks.check_mask_size(m, p["width"] if M == "W" else shape[1], p["width"], error,
                                  MATRIX_NAMES[M])
        if p["readout"] == "all":
            T = shape[0]
            if T not in (-1, None) and p["readout_from"] > T:
                error(f"readout_from = {p['readout_from']} exceeds the sequence length {T}",
                      "readout_from")
            out_T = -1 if T in (-1, None) else T - p["readout_from"] + 1
            return (out_T, p["width"])
        return (p["width"],)

    @classmethod
    def describe(cls, node):
        p = node["params"]
        groups = sorted(trainable_groups(node))
        norm = [m for m in MATRICES if normalized(node, m)]
        frm = f" from step {p['readout_from']}" if p["readout_from"] != 1 else ""
        return (f"rnn: h_t = {activation_display(node)}(W h_(t-1) + A y_t + b), "
                f"weight_var={p['weight_var']}, input_var={p['input_var']}, "
                f"bias_var={p['bias_var']}, hidden_init_var={p['hidden_init_var']}, "
                f"{p['parameterization']} parameterization, normalized: "
                f"{', '.join(norm) or 'none'} (fan_in={node.get('fan_in')}), "
                f"readout={p['readout']}{frm}, trainable: {', '.join(groups) or 'none'}"
                + "".join(f"; {M}: {f.text.replace('W-gradient', M + '-gradient')}"
                          for M, f in cls.mask_factors(node).items()))

    @classmethod
    def mask_factors(cls, node):
        """{matrix: :class:`~ntksym.layers.mask.MaskFactors`} of the masked matrices (W: width
        x width, A: fan_in x width); empty without a mask."""
        m = node["params"].get("mask")
        if m is None:
            return {}
        width = node.get("width")
        rows = {"W": width, "A": node.get("fan_in")}
        return {M: masks.mask_factors(m, rows[M], width) for M in m["matrices"]}

    @classmethod
    def notes(cls, node):
        out = [f"{node['id']} mask on {M}: {f.note}" for M, f in cls.mask_factors(node).items()]
        if "A" in cls.mask_factors(node) and node.get("fan_in") is not None:
            out.append(f"{node['id']} mask on A: A's fan_in = {node['fan_in']} does not grow "
                       "with the width, so the masked input term is a Gaussian mixture; the "
                       "factor is the limit as fan_in -> inf as well (exact for an rnn reading "
                       "another rnn layer of open width)")
        return out

    # ------------------------------------------------------------------ kernel rule
    @classmethod
    def constants(cls, node):
        """(w, a, b, h0, gW, gA, gb) as exact sympy numbers (gX: the NTK factor of group X)."""
        p = node["params"]
        w = sympy_number(p["weight_var"])
        a = sympy_number(p["input_var"])
        if not normalized(node, "A"):
            a = a * node["fan_in"]
        if not normalized(node, "W"):
            if node.get("width") is None:
                raise ValueError("normalize without W needs the rnn width in the spec")
            w = w * node["width"]
        b = sympy_number(p["bias_var"])
        h0 = sympy_number(p["hidden_init_var"])
        if p["parameterization"] == "standard":
            if node.get("width") is None:
                raise ValueError("the standard parameterization needs the rnn width in the spec")
            gw, ga, gb = sympy_number(node["width"]), sympy_number(node["fan_in"]), sympy_number(1)
        else:
            gw, ga, gb = w, a, b
        return w, a, b, h0, gw, ga, gb

    @classmethod
    def own_groups(cls, node):
        """The NTK groups this layer adds ("rnn_0.W" ...): trainable, and b only if it acts."""
        p = node["params"]
        out = []
        for g in ("W", "A", "b"):
            if g in trainable_groups(node) and (g != "b" or p["bias_var"] != 0
                                                or p["parameterization"] == "standard"):
                out.append(f"{node['id']}.{g}")
        return out

    @classmethod
    def recurrence_rule(cls, node, inp: KernelState, prev: KernelState):
        """The pre-activation state g at (t, t') from the input state at (t, t') and this
        layer's post-activation state ``prev`` at (t-1, t'-1)."""
        import sympy as sp  # here, not at the top: ntksym check runs without sympy
        w, a, b, _, gw, ga, gb = cls.constants(node)
        groups = {g.rsplit(".", 1)[1]: g for g in cls.own_groups(node)}
        f = cls.mask_factors(node)
        one = sp.Integer(1)
        # mask factors: q on the variance (forward and propagated Theta), k on the gradient term
        qw, kw = ((sympy_number(f["W"].weight), sympy_number(f["W"].grad)) if "W" in f
                  else (one, one))
        qa, ka = ((sympy_number(f["A"].weight), sympy_number(f["A"].grad)) if "A" in f
                  else (one, one))

        def times(factor, expr):
            # unevaluated, so that `ntksym derive` shows the mask factor next to the variance
            return expr if factor == 1 or expr == 0 else sp.UnevaluatedExpr(factor) * expr

        def affine(sh, sin):
            return times(qw, w * sh) + times(qa, a * sin) + b

        nngp = affine(prev.nngp, inp.nngp)
        ntk = {}
        for g in dict.fromkeys([*prev.ntk, *inp.ntk]):      # ordered: not a set (hash seed)
            ntk[g] = times(qw, w * prev.ntk.get(g, 0)) + times(qa, a * inp.ntk.get(g, 0))
        for name, factor, k, base in (("W", gw, kw, prev.nngp), ("A", ga, ka, inp.nngp),
                                      ("b", gb, one, 1)):
            if name in groups:
                g = groups[name]
                ntk[g] = ntk.get(g, 0) + times(k, factor * base)
        if inp.diagonal:
            return KernelState(nngp, ntk, nngp, nngp, True)
        return KernelState(nngp, ntk, affine(prev.var_x, inp.var_x),
                           affine(prev.var_y, inp.var_y), False)

    @classmethod
    def activation_rule(cls, node, pre: KernelState):
        """The post-activation state h from the pre-activation state g (the activation
        layer's own rule: dual kernels of the registry, exact diagonal forms)."""
        from .activation import ActivationLayer
        act = activation_of(node)
        return ActivationLayer.kernel_rule({"kind": act.kind, "params": act.params}, [pre])

    @classmethod
    def derive_steps(cls, node, preds, walk):
        """Add this layer's kernel steps to the derivation ``walk``
        (:class:`ntksym.derive.Derivation`): a ``TimeRecurrence`` over the time pairs
        (t, t') -- the pre-activation ``Sigma_kg``/``Theta_kg`` from :meth:`recurrence_rule`
        of the input and of the carried ``Sigma_kp`` (the state at (t-1, t'-1)), then the
        post-activation ``Sigma_k`` -- and, unless the layer feeds another rnn layer (directly
        or through per-step layers) with ``readout = "all"``, a ``Readout`` of the grid (last /
        mean: the state becomes per pair; all: a marker, the layers after it act per pair)."""
        import networkx as nx
        import sympy as sp

        from ntksym.ir.ops import Readout, TimeRecurrence
        from ntksym.ir.program import Structural
        (p,) = preds
        graph = walk.graph
        # an rnn below, directly or through per-step layers, reads every step of its sequence
        for a in sorted(nx.ancestors(graph, node["id"])):
            if graph.nodes[a]["kind"] == "rnn" and graph.nodes[a]["params"]["readout_from"] != 1:
                raise SpecError(f"rnn layer '{node['id']}' reads '{a}', whose readout_from "
                                "must be 1", line=node["line"], key="readout_from")
        k = walk.next_index()
        inp_c, inp_d = walk.cross[p], walk.diag[p]
        # the input's groups, then this layer's, in graph order (a set's order would depend on
        # the string hash seed, and so would the printed and returned per-layer terms)
        groups = list(dict.fromkeys([*inp_c.ntk, *cls.own_groups(node)]))
        if not walk.per_layer:
            groups = ["total"] if groups else []
        hp, tp = f"Sigma_{k}p", f"Theta_{k}p"

        def sym(name):
            return sp.Symbol(name, real=True)

        prev_c = KernelState(sym(hp), {g: sym(walk.theta(tp, g)) for g in groups},
                             sym(hp + "_xx"), sym(hp + "_yy"), False)
        prev_d = KernelState(sym(hp + "_xx"), {g: sym(walk.theta(tp, g) + "_xx") for g in groups},
                             sym(hp + "_xx"), sym(hp + "_xx"), True)
        c_list, d_list = [], []
        pre_c = walk.collapse(cls.recurrence_rule(node, inp_c, prev_c))
        pre_d = walk.collapse(cls.recurrence_rule(node, inp_d, prev_d))
        g_c, g_d = walk.assign(c_list, d_list, pre_c, pre_d, k, "g")
        h_c, h_d = walk.assign(c_list, d_list, cls.activation_rule(node, g_c),
                               cls.activation_rule(node, g_d), k, "")
        h0 = sympy_number(node["params"]["hidden_init_var"])
        zero = sp.Integer(0)
        carry = [(prev_c.nngp, h_c.nngp, h0)]
        carry += [(prev_c.ntk[g], h_c.ntk[g], zero) for g in sorted(groups)]
        carry_d = [(prev_d.nngp, h_d.nngp, h0)]
        carry_d += [(prev_d.ntk[g], h_d.ntk[g], zero) for g in sorted(groups)]
        op = TimeRecurrence(cross=c_list, diag=d_list, carry=carry, carry_diag=carry_d,
                            hidden_init_var=h0, k=k)
        walk.steps.append(Structural(node["id"], cls.describe(node), op,
                                     inputs=(inp_c.nngp,), outputs=(h_c.nngp,)))
        walk.cross[node["id"]], walk.diag[node["id"]] = h_c, h_d
        mode, frm = node["params"]["readout"], node["params"]["readout_from"]
        if mode == "all":
            below = nx.descendants(graph, node["id"])
            if not any(graph.nodes[s]["kind"] == "rnn" for s in below):
                walk.steps.append(Structural(node["id"], f"readout: all steps t, t' >= {frm}",
                                             Readout(mode="all", start=frm)))
            return
        k = walk.next_index()
        rc_list, rd_list = [], []
        # a readout is linear in the state: every entry is read out the same way
        r_c = KernelState(h_c.nngp, dict(h_c.ntk), h_c.var_x, h_c.var_y, False)
        r_d = KernelState(h_d.nngp, dict(h_d.ntk), h_d.nngp, h_d.nngp, True)
        new_c, new_d = walk.assign(rc_list, rd_list, _read_out(r_c), _read_out(r_d), k)
        what = ("last: the pair (T, T'), aligned from the end" if mode == "last" else
                f"mean over all pairs t, t' >= {frm}")
        op = Readout(mode=mode, start=frm, map=[(a.target, a.expr.args[0]) for a in rc_list],
                     map_diag=[(a.target, a.expr.args[0]) for a in rd_list])
        walk.steps.append(Structural(node["id"], f"readout {what}", op))
        walk.cross[node["id"]], walk.diag[node["id"]] = new_c, new_d
        walk.phase = "scalar"

    # ------------------------------------------------------------------ finite width
    @classmethod
    def init(cls, node, rng):
        """W (width x width, h @ W), A (fan_in x width, y @ A), b ~ N(0, 1) and the seed of
        h_0.  With a mask, each masked matrix M is stored masked (M ⊙ m, one mask for all time
        steps) and ``mask_M`` (bool, the kept entries) and ``mask_value`` (s) are added.  A
        node with ``gradient = "fresh"`` also gets ``W_back`` and ``A_back``: independent draws
        (masked by their own draws of the mask) used only by backpropagation through time.

        The unmasked draws come first, so an unmasked network keeps the weights it had before
        masks existed; masks and fresh copies follow from the same generator.
        """
        m, fan_in = node["width"], node["fan_in"]
        out = {"W": rng.standard_normal((m, m)), "A": rng.standard_normal((fan_in, m)),
               "b": rng.standard_normal(m),
               # h_0 is drawn per example at forward time from this seed (see forward)
               "h0_seed": int(rng.integers(2 ** 62))}
        mask = node["params"].get("mask")
        masked = mask["matrices"] if mask else ()
        for M in MATRICES:
            if M in masked:
                out["mask_" + M], out["mask_value"] = masks.apply_mask(mask, out[M], rng)
        if node.get("gradient") == "fresh":
            for M in MATRICES:
                out[M + "_back"] = rng.standard_normal(out[M].shape)
                if M in masked:
                    masks.apply_mask(mask, out[M + "_back"], rng)
        return out

    @classmethod
    def forward(cls, node, weights, inputs, batch=None):
        """The readout of the recurrence on padded sequences (n, T, fan_in): (n, 1, width)
        for "last" / "mean", (n, T - readout_from + 1, width) for "all"; cache (y, H, G,
        lengths).  ``batch``: the lengths (default: all T) and the h_0 stream."""
        import numpy as np  # the finite network only

        from .readout import readout
        (y,) = inputs
        L = batch.lengths if batch is not None and batch.lengths is not None else \
            np.full(y.shape[0], y.shape[1], np.int64)
        H, G = cls.forward_sequence(node, weights, y, 0 if batch is None else batch.stream)
        return readout(node, H[:, 1:], L), (y, H, G, L)

    @classmethod
    def delta(cls, node, weights, cache, grad):
        """dG (O, n, T, width), the gradients w.r.t. the pre-activations of every step, by
        backpropagation through time from the readout's gradient ``grad`` (O, n, T_out, width)."""
        from .readout import readout_adjoint
        _, _, G, L = cache
        dH = readout_adjoint(node, grad, G.shape, L)
        return cls.backward_sequence(node, weights, G, dH)

    @classmethod
    def backward(cls, node, weights, cache, delta):
        return [cls.input_gradient(node, weights, delta)]

    @classmethod
    def ntk_terms(cls, node, weights, cache1, delta1, cache2, delta2):
        """W, A and b terms (O1, n1, O2, n2): each matrix's inputs are the previous states
        (W) or the layer's inputs (A) at every step, its gradients the pre-activations'."""
        from . import grams  # NumPy
        y1, H1, _, _ = cache1
        y2, H2, _, _ = cache2
        c_w, c_a, c_b, _ = scales(node)
        std = node["params"]["parameterization"] == "standard"
        groups = {g.rsplit(".", 1)[1]: g for g in cls.own_groups(node)}
        out = {}
        for name, c, Y1, Y2 in (("W", c_w, H1[:, :-1], H2[:, :-1]),
                                ("A", c_a, y1, y2), ("b", c_b, None, None)):
            if name not in groups:
                continue
            f = 1.0 if std else c ** 2
            if name == "b":
                out[groups[name]] = grams.bias_term(f, delta1, delta2)
            else:
                out[groups[name]] = grams.weight_term(f, delta1, Y1, delta2, Y2,
                                                      weights.get("mask_" + name),
                                                      weights.get("mask_value", 1.0))
        return out

    @classmethod
    def forward_sequence(cls, node, weights, Y, stream=0):
        """Run the recurrence on padded inputs Y (n, T, fan_in) (sequences left-aligned).

        Returns (H, G): H (n, T + 1, width) with H[:, 0] = h_0, G (n, T, width) the
        pre-activations.  Steps past a sequence's length are computed but never read.
        ``stream`` selects independent h_0 draws (0 for X, 1 for X2).
        """
        import numpy as np

        from ntksym.codegen.elementwise import elementwise_function
        c_w, c_a, c_b, c_h = scales(node)
        n, T, _ = Y.shape
        m = node["width"]
        phi = elementwise_function(activation_of(node).phi)
        H = np.empty((n, T + 1, m))
        if c_h:
            r = np.random.default_rng([weights["h0_seed"], stream])
            H[:, 0] = c_h * r.standard_normal((n, m))
        else:
            H[:, 0] = 0.0
        G = c_a * (Y @ weights["A"])          # input term of every step at once (BLAS)
        if c_b:
            G += c_b * weights["b"]
        Wc = c_w * weights["W"]
        for t in range(T):
            G[:, t] += H[:, t] @ Wc
            H[:, t + 1] = phi(G[:, t])
        return H, G

    @classmethod
    def backward_sequence(cls, node, weights, G, dH):
        """Backpropagation through time.

        dH (O, n, T, width): gradients of O outputs w.r.t. h_1..h_T (zero past each length).
        Returns dG (O, n, T, width), the gradients w.r.t. the pre-activations g_t.
        """
        import numpy as np

        from ntksym.codegen.elementwise import elementwise_function
        c_w = scales(node)[0]
        dphi = elementwise_function(activation_of(node).dphi)
        D = dphi(G)                            # (n, T, m)
        dG = np.empty_like(dH)
        T = G.shape[1]
        WcT = c_w * weights.get("W_back", weights["W"]).T     # the fresh copy if any
        carry = np.zeros_like(dH[:, :, 0])
        for t in range(T - 1, -1, -1):
            dG[:, :, t] = (dH[:, :, t] + carry) * D[:, t]
            carry = dG[:, :, t] @ WcT
        return dG

    @classmethod
    def input_gradient(cls, node, weights, dG):
        """d outputs / d y_t (O, n, T, fan_in) from dG."""
        c_a = scales(node)[1]
        return c_a * (dG @ weights.get("A_back", weights["A"]).T)


@functools.cache
def _readout_marker():
    """The sympy function that marks a readout of a grid entry, so that the walker gives it a
    fresh symbol (the readout step's loop template computes it); made on first use, since
    sympy is not loaded to check a spec."""
    import sympy as sp

    class ReadOut(sp.Function):
        nargs = 1

    return ReadOut


def _read_out(state):
    mark = _readout_marker()
    return KernelState(mark(state.nngp), {g: mark(t) for g, t in state.ntk.items()},
                       state.var_x, state.var_y, state.diagonal)
