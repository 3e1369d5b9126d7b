"""What the infinite-width rules of graph layers (``add``, ``layer_norm``) need to know about
the branches of a graph: which values are zero-mean in fresh weights, and who is whose ancestor.

Why ``add`` needs it: the kernel of u + v is K_u + K_v + K_uv + K_vu, and the infinite-width
rule keeps only K_u + K_v.  The cross terms vanish when u is *led by fresh weights* that v does
not see: u is an affine map with its own weights W_u (a dense or conv layer), possibly followed
by maps that keep a zero mean (pooling, flatten, add, concat, layer_norm), and no weight layer
leading u is v itself or an ancestor of v.  Then E[u(x) v(x')] = E[E[u(x) | all but W_u] v(x')] = 0,
and the same argument removes the cross terms of the NTK (gradient independence).  An identity
shortcut plus a branch ending in a weight layer qualifies; ``relu(dense_a(y)) + relu(dense_b(y))``
does not (E[relu] != 0), nor does y + y.  neural-tangents' ``FanInSum`` sums the kernels of any
branches (with a warning); ntksym refuses what the rule does not cover.

Why ``layer_norm`` needs it: its infinite-width rule Sigma / sqrt(Sigma(x,x) Sigma(x',x'))
drops the mean that the finite layer subtracts, which is exact only when the features have mean
zero, i.e. when the input is led by fresh weights.

>>> from ntksym import loads_spec
>>> spec = ('name = "r"\\ninput = { shape = [4] }\\n'
...         '[[layer]]\\nkind = "relu"\\nid = "a"\\n'
...         '[[layer]]\\nkind = "dense"\\nwidth = 4\\nid = "b"\\n'
...         '[[layer]]\\nkind = "add"\\ninputs = ["a", "b"]\\n[[layer]]\\nkind = "dense"\\n')
>>> facts = BranchFacts(loads_spec(spec).graph)
>>> facts.sources["b"], facts.sources["a"], facts.independent("a", "b")
(frozenset({'b'}), None, True)
"""

from __future__ import annotations

from . import LAYER_KINDS
from .layer_graph import topological_order


class BranchFacts:
    """Per node of a graph (built in topological order, bit sets for the ancestors):

    ``sources[node]``: the weight layers whose fresh weights ``node`` is led by (a frozenset),
    or None when ``node`` is not a zero-mean map of fresh weights (the input, activations);
    ``ancestors(node)``: an int whose bit ``index[a]`` is set for every ancestor a of ``node``.
    """

    def __init__(self, graph):
        # graph: a LayerGraph (ntksym check) or a networkx.DiGraph
        self.graph = graph
        order = topological_order(graph)
        self.index = {node: i for i, node in enumerate(order)}
        self._anc, self.sources = {}, {}
        for node in order:
            preds = list(graph.predecessors(node))
            bits = 0
            for p in preds:
                bits |= self._anc[p] | (1 << self.index[p])
            self._anc[node] = bits
            kind = None if node == "input" else LAYER_KINDS[graph.nodes[node]["kind"]].zero_mean
            if kind == "fresh":
                self.sources[node] = frozenset([node])
            elif kind == "linear" and preds and all(self.sources[p] is not None for p in preds):
                self.sources[node] = frozenset().union(*(self.sources[p] for p in preds))
            else:
                self.sources[node] = None

    def ancestors(self, node):
        return self._anc[node]

    def sees(self, node, weight_layer):
        """Whether ``node`` is ``weight_layer`` or depends on it."""
        return node == weight_layer or bool(self._anc[node] >> self.index[weight_layer] & 1)

    def led_by_fresh_weights(self, u, v):
        """Whether u is led by fresh weights that v does not see."""
        s = self.sources[u]
        return s is not None and not any(self.sees(v, w) for w in s)

    def independent(self, u, v):
        """Whether the infinite-width covariance of u and v (and of their gradients) is zero."""
        return self.led_by_fresh_weights(u, v) or self.led_by_fresh_weights(v, u)
