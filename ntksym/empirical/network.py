"""One finite network for every graph: vectors, images and sequences.

A finite network of width n is the spec's graph with every hidden width left open set to n,
weights drawn from ``numpy.random.default_rng(seed)`` by each layer's ``init`` in topological
order.  Every layer kind provides its own finite-width rules (``ntksym/layers``): ``forward``,
``delta`` (the gradient its parameters see; an rnn backpropagates through time there),
``backward``, ``ntk_terms`` and, on the readout, ``conditional_nngp``.  The network only walks
the graph.

* Empirical NTK of one network: sum over trainable parameter groups of
  <df(x)/dtheta, df(x')/dtheta>, computed per layer from the layer's cache and its delta (for a
  dense layer: c^2 (Delta Delta^T) * (Y Y^T)); the Jacobian is never materialized.
* Empirical NNGP of one network: E[f(x) f(x')] over the readout weights only, i.e. the
  readout layer's own rule applied to its finite input features (the exact conditional
  expectation, a lower-variance estimator of the same limit).

A readout of width k > 1 (a dense last layer, ``width = k``) has k outputs per example: the
NTK of output j uses the gradients of f_j alone, and :meth:`FiniteNetwork.ntk` returns the
mean of the k per-output kernels (``per_output=True``: all of them, (k, ...)); cross-output
kernels <df_i/dtheta, df_j/dtheta>, i != j, tend to 0 with the width and are not computed.
Every output has the same infinite-width limit, the kernel of ``ntksym.kernel``.  The NNGP
estimator E[f_j(x) f_j(x')] over the readout's weights is the same for every j.

Sequence graphs (input shape [T, d]) take padded inputs (n, T, d) with ``lengths``; every
value is then an array (n, T, features) (after a last/mean readout a length-1 sequence) and the
network has one output per readout step: gradients carry a leading output axis O, and kernels
are (n1, n2) for one output per example, else (n1, n2, O1, O2).  The rows of X2 draw their own
h_0 (``stream`` 1).  Per-step outputs (an rnn's ``readout = "all"`` below the readout layer)
follow the analytic convention (:func:`ntksym.engine.sequence.sequence_kernel`): a sequence
has no output at the steps past its length, so its output there is 0 and every kernel entry
involving such a step is 0 (without this, a readout bias would give those entries bias_var,
and a padded sequence would not have the kernel of the same sequence unpadded).

>>> import numpy as np, ntksym
>>> arch = ntksym.loads_spec('name = "r"\\ninput = { shape = [3, 2] }\\n'
...     '[[layer]]\\nkind = "rnn"\\n[[layer]]\\nkind = "dense"\\n')
>>> net = FiniteNetwork(arch.finite_graph(16), seed=0)
>>> net.ntk(np.ones((2, 3, 2)), lengths=np.array([3, 2])).shape
(2, 2)
"""

from __future__ import annotations

import numpy as np

from ntksym.layers import LAYER_KINDS
from ntksym.layers.base import Batch
from ntksym.layers.dense import trainable_groups
from ntksym.layers.mask import finalize_global_masks
from ntksym.spec.graph import layer_order


def feeds_trainable(graph, order):
    """Nodes at or above a layer with trainable parameters: the ones whose output gradient
    some NTK term needs (``order`` topological, without "input")."""
    feeds = set()
    for node in order:
        attrs = graph.nodes[node]
        cls = LAYER_KINDS[attrs["kind"]]
        own = cls.has_weights and trainable_groups(attrs, cls.parameter_names)
        if own or any(p in feeds for p in graph.predecessors(node)):
            feeds.add(node)
    return feeds


def arrange_outputs(a, per_step=False):
    """A sequence graph's (O1, n1, O2, n2) -> (n1, n2) for one output per example (a last or
    mean readout), else (n1, n2, O1, O2); ``per_step`` (a readout "all") keeps the step axes
    even when one step is read (T = readout_from), as the analytic kernel does."""
    if a.shape[0] == 1 and a.shape[2] == 1 and not per_step:
        return a[0, :, 0, :]
    return a.transpose(1, 3, 0, 2)


class FiniteNetwork:
    """One random draw of the finite network described by ``graph`` (widths all set)."""

    def __init__(self, graph, seed=0):
        self.graph = graph
        self.order = [n for n in layer_order(graph) if n != "input"]
        self.sequences = len(graph.graph["input_shape"]) == 2
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.weights = {}
        for node in self.order:
            attrs = graph.nodes[node]
            self.weights[node] = LAYER_KINDS[attrs["kind"]].init(attrs, rng)
        # masks whose threshold spans several layers (global magnitude pruning)
        finalize_global_masks(graph, self.weights)
        self.feeds_trainable = feeds_trainable(graph, self.order)

    @property
    def per_step_outputs(self):
        """Whether the output is a sequence, one output per readout step (an rnn's
        ``readout = "all"`` below the readout layer; its node shape is (T', k))."""
        return self.sequences and len(self.graph.nodes[self.graph.graph["output"]]["shape"]) == 2

    def output_steps(self, lengths, T, O):
        """(n, O) float: 1 where example i has output step o, 0 past its length.  Output o of
        a per-step readout is time step T - O + o (0-based; T - O = readout_from - 1); other
        graphs have one output per example, always present."""
        if not self.per_step_outputs:
            return np.ones((len(lengths), O))
        return (np.arange(T - O, T)[None, :] < np.asarray(lengths)[:, None]).astype(float)

    def forward(self, X, lengths=None, stream=0):
        """Values and per-node caches (for backward and the NTK terms).  ``lengths``: of
        padded sequences (default: full length); ``stream``: 0 for X, 1 for X2 (own h_0).
        Per-step outputs past a sequence's length are 0 (:meth:`output_steps`)."""
        if self.sequences:
            lengths = self._lengths(X, lengths)
        batch = Batch(lengths, stream)
        values, caches = {"input": X}, {}
        for node in self.order:
            attrs = self.graph.nodes[node]
            inputs = [values[p] for p in self.graph.predecessors(node)]
            values[node], caches[node] = LAYER_KINDS[attrs["kind"]].forward(
                attrs, self.weights[node], inputs, batch)
        if self.per_step_outputs:
            out = self.graph.graph["output"]
            steps = self.output_steps(lengths, X.shape[1], values[out].shape[1])
            values[out] = values[out] * steps[:, :, None]
        return values, caches

    @property
    def readout_width(self):
        """k: the width of the readout layer (outputs of each example, or of each step)."""
        return self.graph.nodes[self.graph.graph["output"]]["width"]

    def outputs_per_example(self, values):
        """O: the readout steps of a sequence graph, 1 otherwise."""
        return values[self.graph.graph["output"]].shape[1] if self.sequences else 1

    def backward(self, caches, n, only_trainable=False, outputs=1, unit=0, steps=None):
        """{node: delta}: each layer's delta (its output gradient; an rnn's pre-activation
        gradients) for the output ``unit`` (0..k-1 of the readout) of every example,
        (O, n, ...) with O = ``outputs`` on sequence graphs.

        ``only_trainable``: skip the backward steps whose result no trainable parameter
        needs (below the lowest trainable layer, e.g. into a fixed first conv layer).
        ``steps``: (n, O) from :meth:`output_steps` (default: every output present); an
        absent output (0 by definition) has gradient 0."""
        out = self.graph.graph["output"]
        k = self.readout_width
        if self.sequences:       # output o of every example: d f_o / d f_o' = 1{o = o'}
            grad = np.zeros((outputs, n, outputs, k))
            for o in range(outputs):
                grad[o, :, o, unit] = 1.0 if steps is None else steps[:, o]
        else:
            grad = np.zeros((n, k))
            grad[:, unit] = 1.0
        grads, deltas = {out: grad}, {}
        for node in reversed(self.order):
            grad = grads.pop(node, None)
            if grad is None:
                continue
            attrs = self.graph.nodes[node]
            cls = LAYER_KINDS[attrs["kind"]]
            deltas[node] = cls.delta(attrs, self.weights[node], caches[node], grad)
            preds = list(self.graph.predecessors(node))
            if only_trainable and not any(p in self.feeds_trainable for p in preds):
                continue
            for p, gp in zip(preds, cls.backward(attrs, self.weights[node], caches[node],
                                                 deltas[node])):
                if p != "input":
                    grads[p] = grads[p] + gp if p in grads else gp
        return deltas

    def run(self, X, lengths=None, stream=0):
        """(outputs per example, caches, [deltas of each readout unit]) of the NTK: forward
        once, then backward as far as parameters need, once per output unit."""
        values, caches = self.forward(X, lengths, stream)
        O = self.outputs_per_example(values)
        steps = None
        if self.sequences:
            steps = self.output_steps(self._lengths(X, lengths), X.shape[1], O)
        return O, caches, [self.backward(caches, X.shape[0], only_trainable=True, outputs=O,
                                         unit=j, steps=steps) for j in range(self.readout_width)]

    def ntk(self, X, X2=None, per_layer=False, lengths=None, lengths2=None, per_output=False):
        """Empirical NTK matrix (and per-group terms) between rows of X and X2: with k readout
        outputs the mean of the k per-output kernels, or (``per_output``) all of them,
        stacked along a leading axis of length k."""
        O1, c1, d1 = self.run(X, lengths, 0)
        O2, c2, d2 = (O1, c1, d1) if X2 is None else self.run(X2, lengths2, 1)
        n2 = X.shape[0] if X2 is None else X2.shape[0]
        units = [self._ntk_of_unit(c1, a, c2, b, O1, O2, X.shape[0], n2)
                 for a, b in zip(d1, d2)]
        combine = np.stack if per_output else (lambda arrays: sum(arrays) / len(arrays))
        total = combine([t for t, _ in units])
        terms = {g: combine([u[g] for _, u in units]) for g in units[0][1]}
        return (total, terms) if per_layer else total

    def _ntk_of_unit(self, c1, d1, c2, d2, O1, O2, n1, n2):
        terms = {}
        for node in self.order:
            attrs = self.graph.nodes[node]
            if node in d1:
                terms.update(LAYER_KINDS[attrs["kind"]].ntk_terms(
                    attrs, self.weights[node], c1[node], d1[node], c2[node], d2[node]))
        if self.sequences:
            terms = {g: arrange_outputs(t, self.per_step_outputs) for g, t in terms.items()}
        if terms:
            total = sum(terms.values())
        elif self.sequences:
            total = arrange_outputs(np.zeros((O1, n1, O2, n2)), self.per_step_outputs)
        else:
            total = np.zeros((n1, n2))
        return total, terms

    def nngp(self, X, X2=None, lengths=None, lengths2=None):
        """E[f(x) f(x')] over the readout's weights given the finite features below it (the
        same for each output of a readout of width k)."""
        out = self.graph.graph["output"]
        (pred,) = list(self.graph.predecessors(out))
        v1, _ = self.forward(X, lengths, 0)
        v2 = v1 if X2 is None else self.forward(X2, lengths2, 1)[0]
        attrs = self.graph.nodes[out]
        K = LAYER_KINDS[attrs["kind"]].conditional_nngp(attrs, v1[pred], v2[pred])
        if not self.sequences:
            return K
        if self.per_step_outputs:         # (O1, n1, O2, n2): 0 where a step is absent
            X2, lengths2 = (X, lengths) if X2 is None else (X2, lengths2)
            s1, s2 = (self.output_steps(self._lengths(A, L), A.shape[1], k)
                      for A, L, k in ((X, lengths, K.shape[0]), (X2, lengths2, K.shape[2])))
            K = K * s1.T[:, :, None, None] * s2.T[None, None]
        return arrange_outputs(K, self.per_step_outputs)

    @staticmethod
    def _lengths(X, lengths):
        """The lengths of padded sequences X (default: all full length)."""
        return np.full(X.shape[0], X.shape[1], np.int64) if lengths is None else lengths
