"""A validated spec as a ``networkx.DiGraph``: nodes are layers, edges are data flow.

Node attributes: ``kind``, ``params`` (validated spec keys), ``id``, ``line`` (in the spec file),
``shape`` (output shape of one example; ``None`` entries are widths left to the finite network),
``in_shapes``, ``fan_in`` (weight layers), ``width``, ``is_output``.  The node ``"input"`` holds
the input shape.  Graph attributes: ``name``, ``spec_hash``, ``input_shape``, ``output``.

The checks run on the same graph as plain dicts (:func:`layer_graph`, a
:class:`~ntksym.layers.layer_graph.LayerGraph`), which is what ``ntksym check`` and ``graph``
print: they never load networkx (docs/startup.md); :func:`build_graph` turns it into the
DiGraph.  The listings (:func:`graph_text`, :func:`graph_summary`, :func:`graph_dot`) take
either graph.

>>> from ntksym.spec.parse import loads_spec
>>> g = build_graph(loads_spec('name = "m"\\ninput = { shape = [3] }\\n'
...                            '[[layer]]\\nkind = "dense"\\nwidth = 8\\nactivation = "relu"\\n'
...                            '[[layer]]\\nkind = "dense"\\n'))
>>> list(g.nodes)
['input', 'dense_0', 'relu_1', 'dense_2']
>>> g.nodes["dense_2"]["fan_in"], g.nodes["dense_2"]["shape"]
(8, (1,))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ntksym.errors import SpecError
from ntksym.layers import LAYER_KINDS
from ntksym.layers.base import Layer
from ntksym.layers.branches import BranchFacts
from ntksym.layers.layer_graph import LayerGraph, find_cycle, topological_order

if TYPE_CHECKING:
    import networkx as nx


def build_graph(spec, widths=None) -> nx.DiGraph:
    """The graph of a :class:`~ntksym.spec.parse.Spec` as a ``networkx.DiGraph``.

    ``widths``: an int setting the width of every hidden weight layer that has none in the spec
    (the finite network of ``ntksym empirical --width N``), or None for the analytic graph.
    """
    return layer_graph(spec, widths).to_networkx()


def layer_graph(spec, widths=None) -> LayerGraph:
    """The graph of a :class:`~ntksym.spec.parse.Spec`, checked (shapes, inputs, cycles, the
    layers' whole-graph checks, the readout), as a
    :class:`~ntksym.layers.layer_graph.LayerGraph`: the nodes, attributes and edges of
    :func:`build_graph`'s DiGraph, without networkx.  ``widths`` as there.

    >>> from ntksym.spec.parse import loads_spec
    >>> g = layer_graph(loads_spec('name = "m"\\ninput = { shape = [3] }\\n'
    ...                            '[[layer]]\\nkind = "dense"\\n'))
    >>> g.nodes["dense_0"]["shape"], list(g.predecessors("dense_0"))
    ((1,), ['input'])
    """
    g = LayerGraph(name=spec.name, spec_hash=spec.structure_hash,
                   input_shape=spec.input_shape, description=spec.description,
                   hyperparameters=spec.hyperparameters)
    g.add_node("input", kind="input", id="input", params={}, shape=tuple(spec.input_shape),
               line=None, position=-1)
    prev = "input"
    for i, layer in enumerate(spec.layers):
        g.add_node(layer.id, kind=layer.kind, id=layer.id, params=dict(layer.params),
                   line=layer.line, source_index=layer.source_index, position=i)
        for src in (layer.inputs or [prev]):
            g.add_edge(src, layer.id)
        prev = layer.id
    output = spec.layers[-1].id
    g.graph["output"] = output
    fname = spec.path or "<spec>"
    _refuse_cycles(g, spec, fname)
    for node in topological_order(g):
        if node == "input":
            continue
        attrs = g.nodes[node]
        cls = LAYER_KINDS[attrs["kind"]]
        attrs["is_output"] = node == output
        attrs["inputs"] = list(g.predecessors(node))
        attrs["in_shapes"] = [g.nodes[p]["shape"] for p in attrs["inputs"]]
        if cls.has_weights:
            w = attrs["params"].get("width")
            if w is None:
                w = 1 if node == output else widths
            attrs["params"]["width"] = w
            attrs["width"] = w

        def error(msg, key=None, _a=attrs):
            raise SpecError(msg, file=fname, line=_a["line"], layer=_a["source_index"], key=key)

        _check_input_count(cls, attrs, error)
        attrs["shape"] = tuple(cls.output_shape(attrs, attrs["in_shapes"], error))
        if attrs["params"].get("mask") is not None:
            attrs["mask"] = attrs["params"]["mask"]   # pruning mask (ntksym.layers.mask)
        if cls.has_weights and "fan_in" not in attrs:
            attrs["fan_in"] = _fan_in(attrs["in_shapes"][0])
    _check_branches(g, fname)
    last = g.nodes[output]
    if not LAYER_KINDS[last["kind"]].has_weights:
        raise SpecError("the network must end in a readout: a weight layer (width 1 unless "
                        f"given; the last layer is '{last['kind']}' with output shape "
                        f"{list(last['shape'])}); add [[layer]] kind = \"dense\" at the end",
                        file=fname, line=last["line"], layer=last["source_index"], key="kind")
    if len(last["shape"]) == 3:
        raise SpecError(f"the readout '{output}' outputs images (shape "
                        f"{list(last['shape'])}), but a kernel is between whole examples: add "
                        "[[layer]] kind = \"global_avg_pool\" (or \"flatten\") and a dense "
                        "readout at the end", file=fname, line=last["line"],
                        layer=last["source_index"], key="kind")
    if last["shape"][-1] != 1 and last["kind"] != "dense":
        # k outputs: the same limit kernel for each (docs/spec.md); per-output empirical
        # kernels are implemented for dense readouts
        raise SpecError(f"a readout of width {last['shape'][-1]} must be a dense layer (the "
                        f"last layer is '{last['kind']}'); give it width = 1 or add "
                        "[[layer]] kind = \"dense\" at the end", file=fname, line=last["line"],
                        layer=last["source_index"], key="width")
    return g


def layer_order(g) -> list:
    """The nodes of a networkx graph in topological order, ties broken by their order in the
    spec file (the order in which derivations number their symbols and finite networks draw
    their weights)."""
    import networkx as nx
    return list(nx.lexicographical_topological_sort(g, key=lambda n: g.nodes[n]["position"]))


def _refuse_cycles(g, spec, fname):
    """SpecError naming the layers on a cycle of ``inputs``, at the layer whose ``inputs``
    names a layer at or after itself (the edge that points backwards in the file)."""
    cycle = find_cycle(g)
    if cycle is None:
        return
    order = {layer.id: i for i, layer in enumerate(spec.layers)}
    _, culprit = next(((u, v) for u, v in cycle if order[v] <= order[u]), cycle[0])
    path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
    a = g.nodes[culprit]
    raise SpecError(f"inputs form a cycle: {path}; a layer's inputs must be 'input' or layers "
                    "before it", file=fname, line=a["line"], layer=a["source_index"],
                    key="inputs")


def _check_input_count(cls, attrs, error):
    lo, hi = cls.inputs_range
    n = len(attrs["inputs"])
    if n < lo or (hi is not None and n > hi):
        want = (f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}")
        article = "an" if attrs["kind"][0] in "aeiou" else "a"
        error(f"{article} '{attrs['kind']}' layer takes {want} input{'s' if hi != 1 else ''}, but "
              f"inputs names {n}: {', '.join(attrs['inputs'])}"
              + ("; join branches with an 'add' or 'concat' layer first" if hi == 1 else ""),
              "inputs")


def _check_branches(g, fname):
    """The layers' whole-graph checks (``check_graph``: add's independent branches ...)."""
    facts = None
    for node in topological_order(g):
        if node == "input":
            continue
        attrs = g.nodes[node]
        cls = LAYER_KINDS[attrs["kind"]]
        if cls.check_graph.__func__ is Layer.check_graph.__func__:
            continue
        facts = facts or BranchFacts(g)

        def error(msg, key=None, _a=attrs):
            raise SpecError(msg, file=fname, line=_a["line"], layer=_a["source_index"], key=key)

        cls.check_graph(attrs, facts, error)


def _fan_in(shape):
    n = 1
    for s in shape:
        if s is None:
            return None
        n *= s
    return n


def graph_text(g) -> str:
    """One line per node: id, kind, shape, constants; then the edges that are not sequential.
    ``g``: a LayerGraph or the networkx graph."""
    lines = [f"{g.graph['name']}: {g.number_of_nodes() - 1} layers, input shape "
             f"{list(g.graph['input_shape'])}"]
    for node in topological_order(g):
        a = g.nodes[node]
        if node == "input":
            lines.append(f"  input{'':14s} shape {list(a['shape'])}")
            continue
        desc = LAYER_KINDS[a["kind"]].describe(a)
        shape = ["n" if s is None else s for s in a["shape"]]
        preds = list(g.predecessors(node))
        src = f"  <- {', '.join(preds)}" if len(preds) > 1 else ""
        lines.append(f"  {node:19s} shape {shape!s:14s} {desc}{src}")
    hyper = g.graph.get("hyperparameters")
    if hyper:
        lines.append("  learnable constants: " + ", ".join(f"{n} = {v!r}" for n, v in
                                                          hyper.items()))
    return "\n".join(lines)


def graph_summary(g) -> dict:
    """The graph as a JSON-ready dict (``ntksym check --json``): name, input shape, output
    node and one record per layer (id, kind, shape with None for an open width, inputs,
    constants, spec line), in topological order.

    >>> import ntksym
    >>> s = graph_summary(ntksym.load_spec("spec/cntk_mlp_depth1.toml").graph)
    >>> s["output"], [(l["id"], l["shape"]) for l in s["layers"]][:2]
    ('dense_2', [('dense_0', [None]), ('relu_1', [None])])
    """
    layers = []
    for node in topological_order(g):
        if node == "input":
            continue
        a = g.nodes[node]
        layers.append({"id": node, "kind": a["kind"], "shape": list(a["shape"]),
                       "inputs": list(g.predecessors(node)), "params": dict(a.get("params", {})),
                       "line": a.get("line")})
    return {"name": g.graph["name"], "input_shape": list(g.graph["input_shape"]),
            "output": g.graph.get("output"), "layers": layers}


def graph_dot(g) -> str:
    """Graphviz DOT text of the graph (render with ``dot -Tpng``); a LayerGraph or the
    networkx graph."""
    out = [f'digraph "{g.graph["name"]}" {{', "  rankdir=TB;",
           "  node [shape=box, fontname=\"Helvetica\"];"]
    for node in g.nodes:
        a = g.nodes[node]
        shape = ["n" if s is None else s for s in a["shape"]]
        label = f"{node}\\n{a['kind']} {shape}".replace('"', "'")
        out.append(f'  "{node}" [label="{label}"];')
    for u, v in g.edges:
        out.append(f'  "{u}" -> "{v}";')
    out.append("}")
    return "\n".join(out)


def graph_png(g, path):
    """Draw the graph top to bottom (one row per topological generation) into a PNG file.

    Needs matplotlib (``pip install ntksym[plot]``); written to a temporary name, then renamed
    (:func:`ntksym.io.atomic_write`).
    """
    import networkx as nx

    from ntksym.io import atomic_write

    if isinstance(g, LayerGraph):
        g = g.to_networkx()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from ntksym.errors import NtksymError
        raise NtksymError("--format png needs matplotlib: pip install 'ntksym[plot]'") from None
    pos = {}
    for depth, layer in enumerate(nx.topological_generations(g)):
        for k, node in enumerate(sorted(layer)):
            pos[node] = (k - (len(layer) - 1) / 2, -depth)
    labels = {n: n + "\n[" + ", ".join("n" if s is None else str(s)
                                         for s in g.nodes[n]["shape"]) + "]" for n in g.nodes}
    depth = 1 - min(y for _, y in pos.values())
    width = max(x for x, _ in pos.values()) - min(x for x, _ in pos.values()) + 1
    fig, ax = plt.subplots(figsize=(1.8 * width + 1, 1.1 * depth + 0.4))
    nx.draw_networkx_nodes(g, pos, ax=ax, node_shape="o", node_color="#dde8f5", node_size=1500)
    nx.draw_networkx_labels(g, pos, ax=ax, labels=labels, font_size=6)
    # an edge that skips generations (a residual shortcut) would run straight through the
    # nodes it skips: draw it as an arc beside them
    level = {n: -y for n, (_, y) in pos.items()}
    near = [(u, v) for u, v in g.edges if level[v] - level[u] <= 1]
    skips = [(u, v) for u, v in g.edges if level[v] - level[u] > 1]
    nx.draw_networkx_edges(g, pos, ax=ax, edgelist=near, arrows=True, node_size=1500)
    nx.draw_networkx_edges(g, pos, ax=ax, edgelist=skips, arrows=True, node_size=1500,
                           connectionstyle="arc3,rad=0.45", edge_color="#c0504d")
    ax.margins(x=0.25, y=0.05)
    ax.set_axis_off()
    ax.set_title(g.graph["name"], fontsize=9)
    try:
        with atomic_write(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
