"""``add``: the sum of two or more inputs of the same shape (a residual connection).

The finite layer computes y = sum_i s_i y_i (``scales`` s_i, default 1; e.g. 1/sqrt(L) on a
residual branch).  Kernel rule, for branches whose infinite-width covariances vanish
(:mod:`ntksym.layers.branches`: each pair differs by fresh weights):

    Sigma' = sum_i s_i^2 Sigma_i,    Theta' = sum_i s_i^2 Theta_i

(per parameter group; a group below the fork appears in several branches and its terms add).
A graph the rule does not cover is refused, naming the two branches.

>>> from ntksym import loads_spec
>>> arch = loads_spec('name = "r"\\ninput = { shape = [3] }\\n'
...     '[[layer]]\\nkind = "dense"\\nwidth = 3\\nweight_var = 2.0\\nid = "branch"\\n'
...     '[[layer]]\\nkind = "add"\\ninputs = ["input", "branch"]\\nscales = [1.0, 0.5]\\n'
...     '[[layer]]\\nkind = "dense"\\n')
>>> [(str(a.target), str(a.expr)) for a in arch.derive().steps[1].cross]
[('Sigma_2', 'Sigma_0 + Sigma_1/4'), ('Theta_2', 'Theta_1/4')]
"""

from __future__ import annotations

from .base import KernelState, Key, Layer, sympy_number


def scales_of(node):
    s = node["params"]["scales"]
    return [1.0] * len(node["in_shapes"]) if s is None else s


def weighted_sum(node, inputs, weights):
    """The state sum_i weights_i * input_i, group by group (used by ``add`` and ``concat``)."""
    import sympy as sp  # here, not at the top: ntksym check runs without sympy (layers.base)

    def total(values):
        return sp.Add(*[w * v for w, v in zip(weights, values)])

    nngp = total([s.nngp for s in inputs])
    groups = {}
    for w, s in zip(weights, inputs):
        for g, t in s.ntk.items():
            groups.setdefault(g, []).append(w * t)
    ntk = {g: sp.Add(*terms) for g, terms in groups.items()}
    if inputs[0].diagonal:
        return KernelState(nngp, ntk, nngp, nngp, True)
    return KernelState(nngp, ntk, total([s.var_x for s in inputs]),
                       total([s.var_y for s in inputs]), False)


class Add(Layer):
    kind = "add"
    keys = {"scales": Key("numbers", None, None, "one multiplier per input (default 1)")}
    inputs_range = (2, None)
    zero_mean = "linear"
    acts_per_time_step = True

    @classmethod
    def output_shape(cls, node, in_shapes, error):
        scales = node["params"]["scales"]
        if scales is not None and len(scales) != len(in_shapes):
            error(f"scales has {len(scales)} entries for {len(in_shapes)} inputs; give one per "
                  "input", "scales")
        first = in_shapes[0]
        for src, shape in zip(node["inputs"][1:], in_shapes[1:]):
            if tuple(shape) != tuple(first):
                error(f"add needs inputs of one shape, but {node['inputs'][0]!r} gives "
                      f"{shape_text(first)} and {src!r} gives {shape_text(shape)}; give the "
                      "layers the same width (a hidden width left out is n, the network's)",
                      "inputs")
        return tuple(first)

    @classmethod
    def check_graph(cls, node, facts, error):
        ins = node["inputs"]
        for i, u in enumerate(ins):
            for v in ins[i + 1:]:
                if u == v:
                    error(f"add names {u!r} twice; write scales = [2.0] ... or add a branch",
                          "inputs")
                if not facts.independent(u, v):
                    error(f"add of {u!r} and {v!r}: the infinite-width rule (sum of the branch "
                          "kernels) needs branches that differ by fresh weights: one of them must "
                          "end in a dense or conv layer (pooling/flatten after it are fine) that "
                          "the other does not pass through", "inputs")

    @classmethod
    def describe(cls, node):
        terms = [name if s == 1.0 else f"{s:g}*{name}"
                 for s, name in zip(scales_of(node), node["inputs"])]
        return (f"add: {' + '.join(terms)} (independent branches: the kernels add, each times "
                "its scale^2)")

    @classmethod
    def kernel_rule(cls, node, inputs):
        return weighted_sum(node, inputs, [sympy_number(s) ** 2 for s in scales_of(node)])

    @classmethod
    def forward(cls, node, weights, inputs, batch=None):
        out = 0.0
        for s, y in zip(scales_of(node), inputs):
            out = out + (y if s == 1.0 else s * y)
        return out, None

    @classmethod
    def backward(cls, node, weights, cache, grad):
        return [grad if s == 1.0 else s * grad for s in scales_of(node)]


def shape_text(shape):
    return "[" + ", ".join("n" if s is None else str(s) for s in shape) + "]"
