"""The same graph as a finite network: empirical NTK and Monte Carlo NNGP/NTK.

A finite network of width n is the spec's graph with every hidden width left open set to n,
weights drawn from ``numpy.random.default_rng(seed)`` in topological order.  Each layer kind
provides its own forward, backward and NTK terms (``ntksym/layers``).

* Empirical NTK of one network: sum over trainable parameter groups of
  <df(x)/dtheta, df(x')/dtheta>, computed per layer from the layer's input and the
  backpropagated output gradient (for a dense layer: c^2 (Delta Delta^T) * (Y Y^T)); the
  Jacobian is never materialized.
* Empirical NNGP of one network: E[f(x) f(x')] over the readout weights only, i.e. the
  readout layer's own rule applied to its finite input features (the exact conditional
  expectation, a lower-variance estimator of the same limit).
* Monte Carlo: the mean over ``samples`` independent networks, with the standard deviation and
  the standard error of the mean.

>>> import numpy as np, ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [2] }\\n'
...                          '[[layer]]\\nkind = "dense"\\nactivation = "relu"\\n'
...                          '[[layer]]\\nkind = "dense"\\n')
>>> E = empirical_kernel(arch, np.eye(2), width=64, samples=4, seed=0)
>>> E.mean["ntk"].shape, E.samples["ntk"].shape
((2, 2), (4, 2, 2))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from ntksym.engine.dispatch import check_data
from ntksym.errors import DataError
from ntksym.layers import LAYER_KINDS
from ntksym.layers.mask import finalize_global_masks

GRADIENTS = ("true", "fresh")


def feeds_trainable(graph, order):
    """Nodes at or above a layer with trainable parameters: the ones whose output gradient
    some NTK term needs (``order`` topological, without "input")."""
    from ntksym.layers.dense import trainable_groups
    feeds = set()
    for node in order:
        attrs = graph.nodes[node]
        cls = LAYER_KINDS[attrs["kind"]]
        own = cls.has_weights and trainable_groups(attrs, cls.parameter_names)
        if own or any(p in feeds for p in graph.predecessors(node)):
            feeds.add(node)
    return feeds


class FiniteNetwork:
    """One random draw of the finite network described by ``graph`` (widths all set)."""

    def __init__(self, graph, seed=0):
        self.graph = graph
        self.order = [n for n in nx.topological_sort(graph) if n != "input"]
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.weights = {}
        for node in self.order:
            attrs = graph.nodes[node]
            self.weights[node] = LAYER_KINDS[attrs["kind"]].init(attrs, rng)
        # masks whose threshold spans several layers (global magnitude pruning)
        finalize_global_masks(graph, self.weights)
        self.feeds_trainable = feeds_trainable(graph, self.order)

    def forward(self, X):
        """Outputs (n, 1) and the per-node caches needed by backward and the NTK terms."""
        values, caches = {"input": X}, {}
        for node in self.order:
            attrs = self.graph.nodes[node]
            inputs = [values[p] for p in self.graph.predecessors(node)]
            values[node], caches[node] = LAYER_KINDS[attrs["kind"]].forward(
                attrs, self.weights[node], inputs)
        return values, caches

    def backward(self, caches, n, only_trainable=False):
        """Output gradients of every node for a scalar output per example (df/dz rows).

        ``only_trainable``: skip the backward steps whose result no trainable parameter
        needs (below the lowest trainable layer, e.g. into a fixed first conv layer)."""
        out = self.graph.graph["output"]
        deltas = {out: np.ones((n, 1))}
        for node in reversed(self.order):
            attrs = self.graph.nodes[node]
            grad = deltas.pop(node, None)
            if grad is None:
                continue
            deltas[(node, "out")] = grad
            preds = list(self.graph.predecessors(node))
            if only_trainable and not any(p in self.feeds_trainable for p in preds):
                continue
            grads = LAYER_KINDS[attrs["kind"]].backward(attrs, self.weights[node],
                                                         caches[node], grad)
            for p, gp in zip(preds, grads):
                if p != "input":
                    deltas[p] = deltas[p] + gp if p in deltas else gp
        return {k[0]: v for k, v in deltas.items() if isinstance(k, tuple)}

    def ntk(self, X, X2=None, per_layer=False):
        """Empirical NTK matrix (and per-group terms) between rows of X and X2."""
        vals1, c1 = self.forward(X)
        d1 = self.backward(c1, X.shape[0], only_trainable=True)
        if X2 is None:
            c2, d2 = c1, d1
        else:
            _, c2 = self.forward(X2)
            d2 = self.backward(c2, X2.shape[0], only_trainable=True)
        terms = {}
        for node in self.order:
            attrs = self.graph.nodes[node]
            if node in d1:
                terms.update(LAYER_KINDS[attrs["kind"]].ntk_terms(
                    attrs, self.weights[node], c1[node], d1[node], c2[node], d2[node]))
        n2 = X.shape[0] if X2 is None else X2.shape[0]
        total = sum(terms.values()) if terms else np.zeros((X.shape[0], n2))
        return (total, terms) if per_layer else total

    def nngp(self, X, X2=None):
        """E[f(x) f(x')] over the readout's weights given the finite features below it."""
        out = self.graph.graph["output"]
        (pred,) = list(self.graph.predecessors(out))
        v1, _ = self.forward(X)
        v2 = v1 if X2 is None else self.forward(X2)[0]
        y1, y2 = v1[pred], v2[pred]
        attrs = self.graph.nodes[out]
        return LAYER_KINDS[attrs["kind"]].conditional_nngp(attrs, y1, y2)


@dataclass
class EmpiricalResult:
    """Monte Carlo kernels: ``mean``, ``std`` and ``stderr`` (std / sqrt(samples)) per kind,
    and ``samples`` (samples, n1, n2) per kind."""

    mean: dict = field(default_factory=dict)
    std: dict = field(default_factory=dict)
    stderr: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict)
    width: int = 0
    seed: int = 0


def empirical_kernel(arch, X, X2=None, width=256, samples=16, seed=0, kind="both",
                     gradient="true", per_layer=False, lengths=None, lengths2=None):
    """Monte Carlo NNGP and empirical NTK of ``samples`` finite networks of ``width``.

    Network s uses seed ``seed + s``.  ``gradient = "fresh"`` (pruning papers' variant) is
    accepted only by graphs whose layers support it.  Returns an :class:`EmpiricalResult`.

    Example: ``E = ntksym.empirical_kernel(arch, X, width=1024, samples=16, seed=0)``;
    ``E.mean["ntk"]``, ``E.stderr["ntk"]``.
    """
    if kind not in ("nngp", "ntk", "both"):
        raise DataError(f"unknown kernel kind {kind!r}; valid: nngp, ntk, both")
    if gradient not in GRADIENTS:
        raise DataError(f"unknown gradient {gradient!r}; valid: {', '.join(GRADIENTS)}")
    if int(width) < 1 or int(samples) < 1:
        raise DataError("width and samples must be >= 1")
    if len(arch.input_shape) == 2:      # sequences: finite RNNs with BPTT
        from ntksym.empirical.sequence import sequence_empirical_kernel
        return sequence_empirical_kernel(arch, X, X2, width=width, samples=samples, seed=seed,
                                         kind=kind, per_layer=per_layer, lengths=lengths,
                                         lengths2=lengths2, gradient=gradient)
    X = check_data(X, arch.input_shape, "X")
    X2 = None if X2 is None else check_data(X2, arch.input_shape, "X2")
    graph = arch.finite_graph(int(width))
    for n in graph.nodes:
        graph.nodes[n]["gradient"] = gradient
    kinds = ["nngp", "ntk"] if kind == "both" else [kind]
    draws = {k: [] for k in kinds}
    for s in range(int(samples)):
        net = FiniteNetwork(graph, seed=seed + s)
        if "ntk" in kinds:
            if per_layer:
                total, terms = net.ntk(X, X2, per_layer=True)
                draws["ntk"].append(total)
                for g, t in terms.items():
                    draws.setdefault(f"ntk[{g}]", []).append(t)
            else:
                draws["ntk"].append(net.ntk(X, X2))
        if "nngp" in kinds:
            draws["nngp"].append(net.nngp(X, X2))
    res = EmpiricalResult(width=int(width), seed=seed)
    for k, v in draws.items():
        a = np.stack(v)
        res.samples[k] = a
        res.mean[k] = a.mean(0)
        res.std[k] = a.std(0, ddof=1) if len(v) > 1 else np.zeros_like(a[0])
        res.stderr[k] = res.std[k] / np.sqrt(len(v))
    return res
