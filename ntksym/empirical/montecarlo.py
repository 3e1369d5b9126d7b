"""Monte Carlo NNGP and empirical NTK: the mean over ``samples`` independent finite networks
(:class:`~ntksym.empirical.network.FiniteNetwork`, network s drawn with seed ``seed + s``),
with the standard deviation and the standard error of the mean.

>>> import numpy as np, ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [2] }\\n'
...                          '[[layer]]\\nkind = "dense"\\nactivation = "relu"\\n'
...                          '[[layer]]\\nkind = "dense"\\n')
>>> E = empirical_kernel(arch, np.eye(2), width=64, samples=4, seed=0)
>>> E.mean["ntk"].shape, E.samples["ntk"].shape
((2, 2), (4, 2, 2))
>>> rnn = ntksym.loads_spec('name = "r"\\ninput = { shape = [-1, 2] }\\n'
...     '[[layer]]\\nkind = "rnn"\\n[[layer]]\\nkind = "dense"\\n')
>>> E = empirical_kernel(rnn, np.ones((2, 3, 2)), width=16, samples=2, lengths=[3, 1])
>>> E.mean["nngp"].shape
(2, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ntksym.empirical.network import FiniteNetwork
from ntksym.engine.common import check_data
from ntksym.engine.sequence import as_sequences
from ntksym.errors import DataError
from ntksym.progress import track

KINDS = ("nngp", "ntk", "both")
GRADIENTS = ("true", "fresh")


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
                     gradient="true", per_layer=False, lengths=None, lengths2=None,
                     per_output=False, progress=None):
    """Monte Carlo NNGP and empirical NTK of ``samples`` finite networks of ``width``.

    Network s uses seed ``seed + s``.  ``gradient = "fresh"`` (pruning papers' variant)
    backpropagates through independent copies of the weight matrices, in the layers that have
    them.  ``per_layer`` adds "ntk[group]" per trainable parameter group.  Sequence specs take
    padded (n, T, d) arrays with ``lengths`` / ``lengths2`` or lists of (T_i, d) arrays.
    A readout of width k > 1: "ntk" is the mean of the k per-output NTKs (the same limit as
    each, the analytic kernel); ``per_output`` adds "ntk_per_output", the k kernels stacked
    (k, n1, n2).  "nngp" is E[f_j(x) f_j(x')] over the readout weights, equal for every j.
    ``progress``: a ``networks 3/16`` line on stderr (None: :func:`ntksym.progress.enabled`,
    on a terminal).  Returns an :class:`EmpiricalResult`.

    Example: ``E = ntksym.empirical_kernel(arch, X, width=1024, samples=16, seed=0)``;
    ``E.mean["ntk"]``, ``E.stderr["ntk"]``.
    """
    if kind not in KINDS:
        raise DataError(f"unknown kernel kind {kind!r}; valid: {', '.join(KINDS)}")
    if gradient not in GRADIENTS:
        raise DataError(f"unknown gradient {gradient!r}; valid: {', '.join(GRADIENTS)}")
    if int(width) < 1 or int(samples) < 1:
        raise DataError("width and samples must be >= 1")
    if len(arch.input_shape) == 2:      # sequences: padded, with their lengths
        X, lengths = as_sequences(X, arch.input_shape, lengths, "X")
        if X2 is not None:
            X2, lengths2 = as_sequences(X2, arch.input_shape, lengths2, "X2")
        else:
            lengths2 = None
    else:
        X = check_data(X, arch.input_shape, "X")
        X2 = None if X2 is None else check_data(X2, arch.input_shape, "X2")
        lengths = lengths2 = None
    graph = arch.finite_graph(int(width))
    for n in graph.nodes:
        graph.nodes[n]["gradient"] = gradient
    kinds = ["nngp", "ntk"] if kind == "both" else [kind]
    draws = {k: [] for k in kinds}
    for s in track(range(int(samples)), f"networks of width {int(width)}", enabled=progress):
        net = FiniteNetwork(graph, seed=seed + s)
        if "ntk" in kinds:
            each, terms = net.ntk(X, X2, per_layer=True, lengths=lengths, lengths2=lengths2,
                                  per_output=True)
            draws["ntk"].append(each.mean(0))
            if per_output:
                draws.setdefault("ntk_per_output", []).append(each)
            if per_layer:
                for g, t in terms.items():
                    draws.setdefault(f"ntk[{g}]", []).append(t.mean(0))
        if "nngp" in kinds:
            draws["nngp"].append(net.nngp(X, X2, lengths, lengths2))
    return statistics(draws, int(width), seed)


def statistics(draws, width, seed):
    """The :class:`EmpiricalResult` of {kind: [one array per network]}."""
    res = EmpiricalResult(width=width, seed=seed)
    for k, v in draws.items():
        a = np.stack(v)
        res.samples[k] = a
        res.mean[k] = a.mean(0)
        res.std[k] = a.std(0, ddof=1) if len(v) > 1 else np.zeros_like(a[0])
        res.stderr[k] = res.std[k] / np.sqrt(len(v))
    return res
