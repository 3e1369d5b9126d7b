"""Finite RNNs built from a sequence spec: forward, backpropagation through time, empirical NTK
and Monte Carlo NNGP.

Every activation is an array (n, T, features): the input, each rnn layer's sequence, and after
a last/mean readout a length-1 "sequence" (so a dense layer acts per step or on the readout by
the same code).  Backward passes carry a leading output axis O: one output for the last/mean
readouts, one per readout step for ``readout = "all"``.

* Empirical NTK: for every trainable group, sum_{t, s} <delta_t(x), delta_s(x')> <y_t(x), y_s(x')>
  times the group's constant (y: the input that multiplies the parameter at step t, delta: the
  backpropagated gradient there), from Gram products of stacked (example, step) rows; the
  Jacobian is never formed.
* NNGP of one network: E[f(x) f(x')] over the readout's weights given its finite inputs.
* Pruning masks (rnn W / A, dense W) are sampled with the network's seed, one per matrix for
  all time steps; a masked group's term keeps only the kept entries (gradients w.r.t. the
  unmasked parameters, see :func:`_masked_pair_sum`).  ``gradient = "fresh"`` backpropagates
  through independent copies of W, A (and of dense W), as :mod:`ntksym.empirical.network` does.

>>> import numpy as np, ntksym
>>> arch = ntksym.loads_spec('name = "r"\\ninput = { shape = [3, 2] }\\n'
...     '[[layer]]\\nkind = "rnn"\\n[[layer]]\\nkind = "dense"\\n')
>>> E = sequence_empirical_kernel(arch, np.ones((2, 3, 2)), width=16, samples=2)
>>> E.mean["ntk"].shape
(2, 2)
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from ntksym.layers import LAYER_KINDS
from ntksym.layers import rnn as rnn_mod
from ntksym.layers.dense import Dense
from ntksym.layers.dense import trainable_groups as dense_groups
from ntksym.layers.dense import weight_scales
from ntksym.layers.mask import finalize_global_masks


def _pair_sum(D1, Y1, D2, Y2):
    """sum_{t, s} <D1[o, i, t], D2[p, j, s]> <Y1[i, t], Y2[j, s]>  ->  (O1, n1, O2, n2).

    D: (O, n, T, m) gradients, Y: (n, T, k) inputs (or None: the bias, Y = 1)."""
    O1, n1, T1, m = D1.shape
    O2, n2, T2, _ = D2.shape
    P = D1.reshape(O1 * n1 * T1, m) @ D2.reshape(O2 * n2 * T2, m).T
    P = P.reshape(O1, n1, T1, O2, n2, T2)
    if Y1 is None:
        return P.sum(axis=(2, 5))
    Q = (Y1.reshape(n1 * T1, -1) @ Y2.reshape(n2 * T2, -1).T).reshape(n1, T1, n2, T2)
    return np.einsum("oitpjs,itjs->oipj", P, Q)


def _masked_pair_sum(D1, Y1, D2, Y2, kept, budget=1 << 24):
    """The term of a masked matrix: sum_{t,s} sum_{i,j} Y1[i', t, i] Y2[j', s, i] kept[i, j]
    D1[o, i', t, j] D2[p, j', s, j]  ->  (O1, n1, O2, n2).

    The gradient of output o of example i' w.r.t. the matrix (k x m) is sum_t y_t delta_t^T on
    the kept entries (times the constants, applied by the caller); the term is the Gram matrix
    of these per-example gradients.  kept^2 = kept, so the mask is applied to one side only.
    Rows of (output, example) are processed in chunks of about ``budget`` floats.

    >>> r = np.random.default_rng(0)
    >>> D, Y, K = r.standard_normal((1, 2, 3, 4)), r.standard_normal((2, 3, 5)), r.random((5, 4)) < .5
    >>> ref = np.einsum("ati,bsi,ij,oatj,pbsj->oapb", Y, Y, K, D, D)
    >>> bool(np.allclose(_masked_pair_sum(D, Y, D, Y, K), ref))
    True
    """
    O1, n1, _, m = D1.shape
    O2, n2, _, _ = D2.shape
    size = Y1.shape[2] * m
    Kf = kept.reshape(-1).astype(np.float64)
    step = max(1, budget // max(size, 1))

    def grads(Y, D, lo, hi):
        o, a = np.divmod(np.arange(lo, hi), D.shape[1])
        return np.matmul(Y[a].transpose(0, 2, 1), D[o, a]).reshape(hi - lo, size)

    out = np.empty((O1 * n1, O2 * n2))
    for lo2 in range(0, O2 * n2, step):
        hi2 = min(O2 * n2, lo2 + step)
        G2 = grads(Y2, D2, lo2, hi2)
        for lo1 in range(0, O1 * n1, step):
            hi1 = min(O1 * n1, lo1 + step)
            out[lo1:hi1, lo2:hi2] = (grads(Y1, D1, lo1, hi1) * Kf) @ G2.T
    return out.reshape(O1, n1, O2, n2)


def _group_term(weights, key, D1, Y1, D2, Y2):
    """The pair sum of parameter matrix ``key`` ("W", "A"), masked if the network masks it."""
    kept = weights.get("mask" if key == "dense" else "mask_" + key)
    if kept is None:
        return _pair_sum(D1, Y1, D2, Y2)
    s = weights["mask_value"]
    return s * s * _masked_pair_sum(D1, Y1, D2, Y2, kept)


class FiniteSequenceNetwork:
    """One random draw of the finite network of a sequence graph (widths all set)."""

    def __init__(self, graph, seed=0):
        self.graph = graph
        self.order = [n for n in nx.topological_sort(graph) if n != "input"]
        rng = np.random.default_rng(seed)
        self.weights = {n: LAYER_KINDS[graph.nodes[n]["kind"]].init(graph.nodes[n], rng)
                        for n in self.order}
        finalize_global_masks(graph, self.weights)     # dense layers with scope = "global"

    def forward(self, X, L, stream=0):
        """Values (n, T, k) per node and caches; ``stream`` picks independent h_0 draws."""
        vals, caches = {"input": X}, {}
        self.lengths = L
        for node in self.order:
            a = self.graph.nodes[node]
            (p,) = list(self.graph.predecessors(node))
            y = vals[p]
            if a["kind"] == "rnn":
                H, G = rnn_mod.Rnn.forward_sequence(a, self.weights[node], y, stream)
                caches[node] = (y, H, G)
                vals[node] = self._readout(a, H[:, 1:], L)
            else:
                vals[node], caches[node] = LAYER_KINDS[a["kind"]].forward(
                    a, self.weights[node], [y])
        return vals, caches

    @staticmethod
    def _readout(a, Hs, L):
        mode, frm = a["params"]["readout"], a["params"]["readout_from"]
        n, T, m = Hs.shape
        if mode == "last":
            return Hs[np.arange(n), L - 1][:, None, :]
        if mode == "mean":
            mask = (np.arange(T)[None, :] >= frm - 1) & (np.arange(T)[None, :] < L[:, None])
            return ((Hs * mask[:, :, None]).sum(1) / mask.sum(1)[:, None])[:, None, :]
        mask = np.arange(T)[None, :] < L[:, None]
        return (Hs * mask[:, :, None])[:, frm - 1:]

    def backward(self, caches, L):
        """{node: (O, n, T, k) gradient w.r.t. the node's pre-activations (rnn) / outputs}."""
        n = len(L)
        O = caches["__T_out"]
        grad = np.zeros((O, n, O, 1))
        for o in range(O):
            grad[o, :, o, 0] = 1.0
        deltas = {}
        for node in reversed(self.order):
            a = self.graph.nodes[node]
            if a["kind"] == "rnn":
                y, H, G = caches[node]
                T = G.shape[1]
                dH = np.zeros(grad.shape[:2] + (T, G.shape[2]))
                mode, frm = a["params"]["readout"], a["params"]["readout_from"]
                if mode == "last":
                    dH[:, np.arange(n), L - 1] = grad[:, :, 0]
                elif mode == "mean":
                    mask = (np.arange(T)[None, :] >= frm - 1) & (np.arange(T)[None, :] < L[:, None])
                    dH += grad[:, :, :1] * (mask / mask.sum(1)[:, None])[None, :, :, None]
                else:
                    mask = (np.arange(T)[None, :] < L[:, None])[None, :, frm - 1:, None]
                    dH[:, :, frm - 1:] = grad * mask
                dG = rnn_mod.Rnn.backward_sequence(a, self.weights[node], G, dH)
                deltas[node] = dG
                grad = rnn_mod.Rnn.input_gradient(a, self.weights[node], dG)
            else:
                deltas[node] = grad
                (grad,) = LAYER_KINDS[a["kind"]].backward(a, self.weights[node], caches[node],
                                                          grad)
        return deltas

    def run(self, X, L, stream):
        vals, caches = self.forward(X, L, stream)
        out = self.graph.graph["output"]
        caches["__T_out"] = vals[out].shape[1]
        return vals, caches, self.backward(caches, L)

    def ntk(self, X, L, X2=None, L2=None, per_layer=False):
        """Empirical NTK (n1, n2) or (n1, n2, To1, To2) for readout = "all"."""
        v1, c1, d1 = self.run(X, L, 0)
        v2, c2, d2 = (v1, c1, d1) if X2 is None else self.run(X2, L2, 1)
        terms = {}
        for node in self.order:
            a = self.graph.nodes[node]
            if a["kind"] == "rnn":
                y1, H1, G1 = c1[node]
                y2, H2, G2 = c2[node]
                c_w, c_a, c_b, _ = rnn_mod.scales(a)
                std = a["params"]["parameterization"] == "standard"
                groups = {g.rsplit(".", 1)[1]: g for g in rnn_mod.Rnn.own_groups(a)}
                for name, c, Y1, Y2 in (("W", c_w, H1[:, :-1], H2[:, :-1]),
                                        ("A", c_a, y1, y2), ("b", c_b, None, None)):
                    if name in groups:
                        f = 1.0 if std else c ** 2
                        terms[groups[name]] = f * (
                            _pair_sum(d1[node], None, d2[node], None) if name == "b" else
                            _group_term(self.weights[node], name, d1[node], Y1, d2[node], Y2))
            elif a["kind"] == "dense":
                c_w, c_b = weight_scales(a)
                std = a["params"]["parameterization"] == "standard"
                g = dense_groups(a)
                if "W" in g:
                    terms[f"{node}.W"] = (1.0 if std else c_w ** 2) * _group_term(
                        self.weights[node], "dense", d1[node], c1[node], d2[node], c2[node])
                if "b" in g and (std or c_b != 0):
                    terms[f"{node}.b"] = (1.0 if std else c_b ** 2) * _pair_sum(
                        d1[node], None, d2[node], None)
        terms = {k: _layout(v) for k, v in terms.items()}
        total = sum(terms.values())
        return (total, terms) if per_layer else total

    def nngp(self, X, L, X2=None, L2=None):
        """E[f(x) f(x')] over the readout's weights given its finite inputs."""
        out = self.graph.graph["output"]
        (pred,) = list(self.graph.predecessors(out))
        v1, _ = self.forward(X, L, 0)
        v2 = v1 if X2 is None else self.forward(X2, L2, 1)[0]
        c_w, c_b = weight_scales(self.graph.nodes[out])
        f = Dense.mask_factors(self.graph.nodes[out])
        c_w = c_w * (1.0 if f is None else float(f.weight) ** 0.5)   # E[(W m)^2] of a masked readout
        y1, y2 = v1[pred], v2[pred]
        n1, T1, k = y1.shape
        n2, T2, _ = y2.shape
        K = (y1.reshape(n1 * T1, k) @ y2.reshape(n2 * T2, k).T).reshape(n1, T1, n2, T2)
        # (n1, T1, n2, T2) -> (O1, n1, O2, n2): one output per readout step
        return _layout((c_w ** 2 * K + c_b ** 2).transpose(1, 0, 3, 2))


def _layout(a):
    """(O1, n1, O2, n2) -> (n1, n2) for one output, else (n1, n2, O1, O2)."""
    O1, n1, O2, n2 = a.shape
    if O1 == 1 and O2 == 1:
        return a[0, :, 0, :]
    return a.transpose(1, 3, 0, 2)


def sequence_empirical_kernel(arch, X, X2=None, width=256, samples=16, seed=0, kind="both",
                              per_layer=False, lengths=None, lengths2=None, gradient="true"):
    """Monte Carlo NNGP and empirical NTK of ``samples`` finite RNNs of ``width``; see
    :func:`ntksym.empirical.network.empirical_kernel`.  Network s uses seed ``seed + s``;
    ``gradient = "fresh"`` backpropagates through independent copies of the weight matrices."""
    from ntksym.empirical.network import EmpiricalResult
    from ntksym.engine.sequence import as_sequences
    X, L = as_sequences(X, arch.input_shape, lengths, "X")
    if X2 is not None:
        X2, L2 = as_sequences(X2, arch.input_shape, lengths2, "X2")
    else:
        L2 = None
    graph = arch.finite_graph(int(width))
    for n in graph.nodes:
        graph.nodes[n]["gradient"] = gradient
    kinds = ["nngp", "ntk"] if kind == "both" else [kind]
    draws = {k: [] for k in kinds}
    for s in range(int(samples)):
        net = FiniteSequenceNetwork(graph, seed=seed + s)
        if "ntk" in kinds:
            if per_layer:
                total, terms = net.ntk(X, L, X2, L2, per_layer=True)
                draws["ntk"].append(total)
                for g, t in terms.items():
                    draws.setdefault(f"ntk[{g}]", []).append(t)
            else:
                draws["ntk"].append(net.ntk(X, L, X2, L2))
        if "nngp" in kinds:
            draws["nngp"].append(net.nngp(X, L, X2, L2))
    res = EmpiricalResult(width=int(width), seed=seed)
    for k, v in draws.items():
        a = np.stack(v)
        res.samples[k] = a
        res.mean[k] = a.mean(0)
        res.std[k] = a.std(0, ddof=1) if len(v) > 1 else np.zeros_like(a[0])
        res.stderr[k] = res.std[k] / np.sqrt(len(v))
    return res
