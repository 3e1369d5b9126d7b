"""The graph of a network as plain dicts: what the spec checks and ``ntksym check`` need of a
``networkx.DiGraph``, without loading networkx (docs/startup.md).

:class:`LayerGraph` has the part of the DiGraph interface that ntksym reads -- ``graph`` (the
graph's attributes), ``nodes`` (node -> attribute dict), ``edges``, ``predecessors``,
``successors``, ``number_of_nodes`` -- and keeps nodes, edges, predecessors and successors in
the order networkx would, so that a listing is the same from either graph and
:meth:`LayerGraph.to_networkx` gives the DiGraph that adding the same nodes and edges to one
gives.  :func:`topological_order` and :func:`find_cycle` take either graph and return what
``networkx.topological_sort`` and ``networkx.find_cycle`` return (tests/spec/test_layer_graph.py
compares them on random graphs).

>>> g = LayerGraph(name="m")
>>> g.add_node("input")
>>> g.add_edge("b", "a")
>>> g.add_edge("input", "b")
>>> topological_order(g), find_cycle(g)
(['input', 'b', 'a'], None)
>>> g.add_edge("a", "b")
>>> find_cycle(g)
[('b', 'a'), ('a', 'b')]
"""

from __future__ import annotations

_DONE = object()


class LayerGraph:
    """A directed graph: nodes with attribute dicts, edges without attributes."""

    def __init__(self, **attrs):
        self.graph = dict(attrs)
        self.nodes = {}                  # node -> attribute dict, in the order first added
        self._succ, self._pred = {}, {}  # node -> {neighbour: None}, in the order added
        self._edges = []                 # (u, v) in the order added: to_networkx replays them

    def add_node(self, node, **attrs):
        """Add ``node`` (or update its attributes), as ``DiGraph.add_node``."""
        if node not in self.nodes:
            self.nodes[node], self._succ[node], self._pred[node] = {}, {}, {}
        self.nodes[node].update(attrs)

    def add_edge(self, u, v):
        """Add the edge u -> v, adding u, then v, if they are new (as ``DiGraph.add_edge``)."""
        for node in (u, v):
            if node not in self.nodes:
                self.add_node(node)
        if v not in self._succ[u]:
            self._succ[u][v] = self._pred[v][u] = None
            self._edges.append((u, v))

    def predecessors(self, node):
        return iter(self._pred[node])

    def successors(self, node):
        return iter(self._succ[node])

    @property
    def edges(self):
        """The edges as networkx lists them: by source node, then in the order added."""
        return [(u, v) for u in self._succ for v in self._succ[u]]

    def number_of_nodes(self):
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    def __contains__(self, node):
        return node in self.nodes

    def __len__(self):
        return len(self.nodes)

    def to_networkx(self):
        """The same graph as a ``networkx.DiGraph`` (each node's attribute dict copied, the
        values shared)."""
        import networkx as nx  # loaded here, when a caller needs the DiGraph
        g = nx.DiGraph(**self.graph)
        for node, attrs in self.nodes.items():
            g.add_node(node, **attrs)
        g.add_edges_from(self._edges)
        return g


def topological_order(g):
    """The nodes of the acyclic graph ``g`` (a LayerGraph or a networkx.DiGraph) in the order of
    ``networkx.topological_sort``: generation by generation (the nodes without predecessors in
    the graph's node order, then those whose last predecessor that frees, ...).  A ValueError
    if ``g`` has a cycle."""
    indegree, ready = {}, []
    for node in g.nodes:
        n = sum(1 for _ in g.predecessors(node))
        if n:
            indegree[node] = n
        else:
            ready.append(node)
    order = []
    while ready:
        generation, ready = ready, []
        for node in generation:
            for child in g.successors(node):
                indegree[child] -= 1
                if not indegree[child]:
                    ready.append(child)
                    del indegree[child]
        order.extend(generation)
    if indegree:
        raise ValueError("the graph has a cycle")
    return order


def find_cycle(g):
    """The edges [(u, v), ...] of the cycle that ``networkx.find_cycle(g)`` reports (the first
    edge back into the current path of a depth-first search from each node in the graph's
    order, successors in their order), or None if ``g`` is acyclic."""
    explored = set()
    for start in g.nodes:
        if start in explored:
            continue
        path, on_path, seen = [start], {start}, {start}
        pending = [iter(g.successors(start))]
        while pending:
            child = next(pending[-1], _DONE)
            if child is _DONE:
                pending.pop()
                on_path.discard(path.pop())
                continue
            if child in on_path:
                cycle = path[path.index(child):] + [child]
                return list(zip(cycle[:-1], cycle[1:]))
            if child in explored or child in seen:
                continue                       # finished: no cycle through it
            seen.add(child)
            path.append(child)
            on_path.add(child)
            pending.append(iter(g.successors(child)))
        explored |= seen
    return None
