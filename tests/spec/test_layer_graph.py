"""The graph as plain dicts (LayerGraph) is the networkx graph: same nodes, attributes, edges and
orders, and topological_order / find_cycle return what networkx's functions return.

``ntksym check`` and ``graph`` print the LayerGraph (no networkx); everything else uses the
DiGraph built from it, so the two must never differ.
"""

import glob

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ntksym
from ntksym.layers.layer_graph import LayerGraph, find_cycle, topological_order
from ntksym.spec.graph import graph_dot, graph_summary, graph_text

SPECS = sorted(glob.glob("spec/*.toml") + glob.glob("docs/examples/*.toml"))


def operations(max_nodes=8):
    node = st.integers(0, max_nodes - 1)
    return st.lists(st.one_of(st.tuples(st.just("node"), node),
                              st.tuples(st.just("edge"), node, node)), max_size=24)


def both(ops):
    lg, g = LayerGraph(), nx.DiGraph()
    for op in ops:
        for h in (lg, g):
            if op[0] == "node":
                h.add_node(op[1])
            else:
                h.add_edge(op[1], op[2])
    return lg, g


def same_structure(lg, g):
    assert list(lg.nodes) == list(g.nodes) and list(lg.edges) == list(g.edges)
    for n in g:
        assert list(lg.predecessors(n)) == list(g.predecessors(n))
        assert list(lg.successors(n)) == list(g.successors(n))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations())
def test_order_and_cycles_are_networkx(ops):
    lg, g = both(ops)
    same_structure(lg, g)
    same_structure(lg.to_networkx(), g)
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        cycle = None
    assert find_cycle(lg) == cycle and find_cycle(g) == cycle
    if cycle is None:
        assert topological_order(lg) == list(nx.topological_sort(g)) == topological_order(g)
    else:
        with pytest.raises(ValueError):
            topological_order(lg)


@pytest.mark.parametrize("path", SPECS)
def test_spec_graphs_agree(path):
    arch = ntksym.load_spec(path)
    lg, g = arch.layer_graph, arch.graph
    same_structure(lg, g)
    assert lg.graph == g.graph
    for n in g:
        assert lg.nodes[n] == g.nodes[n]
    assert graph_text(lg) == graph_text(g) and graph_dot(lg) == graph_dot(g)
    assert graph_summary(lg) == graph_summary(g)
    finite = arch.finite_graph(5)
    assert list(finite.nodes) == list(g.nodes) and list(finite.edges) == list(g.edges)


def test_forward_reference_keeps_networkx_node_order():
    """A layer naming a later layer as input adds that node first, as networkx's add_edge
    does; the listings follow."""
    arch = ntksym.loads_spec(
        'name = "f"\ninput = { shape = [3] }\n'
        '[[layer]]\nkind = "dense"\nid = "a"\ninputs = ["c"]\n'
        '[[layer]]\nkind = "dense"\nid = "b"\ninputs = ["input"]\nwidth = 3\n'
        '[[layer]]\nkind = "relu"\nid = "c"\n'
        '[[layer]]\nkind = "dense"\ninputs = ["a"]\n')
    assert list(arch.layer_graph.nodes) == ["input", "a", "c", "b", "dense_3"]
    same_structure(arch.layer_graph, arch.graph)
