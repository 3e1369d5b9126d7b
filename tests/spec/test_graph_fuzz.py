"""Hypothesis fuzzers of graph specs: random `id`/`inputs` graphs (DAGs, cycles, dangling and
repeated ids) and random blocks with random `repeat` sizes (up to 10**9).  Every outcome is a
valid program or a SpecError, never another exception, and no example takes more than a few
seconds (huge repeats are refused before they are expanded)."""

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ntksym
from ntksym.errors import SpecError

KINDS = ["dense", "conv", "relu", "erf", "add", "concat", "layer_norm", "avg_pool",
         "global_avg_pool", "flatten"]
SECONDS = 5.0


@st.composite
def layer_tables(draw, ids, local=False):
    """One [[layer]] (or [[block.layer]]) table: a kind, maybe an id, maybe inputs naming
    earlier, later, unknown or repeated ids, maybe a width or scales."""
    kind = draw(st.sampled_from(KINDS))
    lines = [f'kind = "{kind}"']
    if draw(st.booleans()):
        lines.append(f'id = "{draw(st.sampled_from(ids))}"')
    if draw(st.integers(0, 3)) > 0:
        pool = ids + (["block_input"] if local else ["input"]) + ["nope"]
        refs = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
        lines.append("inputs = [" + ", ".join(f'"{r}"' for r in refs) + "]")
    if kind in ("dense", "conv") and draw(st.booleans()):
        lines.append(f"width = {draw(st.integers(1, 4))}")
    if kind == "conv":
        lines.append(f'padding = "{draw(st.sampled_from(["same", "valid"]))}"')
    if kind == "add" and draw(st.booleans()):
        lines.append("scales = [" + ", ".join(["0.5"] * draw(st.integers(1, 3))) + "]")
    if draw(st.integers(0, 4)) == 0:
        lines.append(f"repeat = {draw(st.integers(1, 3))}")
    return "\n".join(lines) + "\n"


@st.composite
def graph_specs(draw):
    ids = ["a", "b", "c", "d", "e"]
    shape = draw(st.sampled_from(["[3]", "[4, 4, 2]"]))
    text = f'name = "fuzz"\ninput = {{ shape = {shape} }}\n'
    blocks = []
    for b in range(draw(st.integers(0, 2))):
        name = f"blk{b}"
        blocks.append(name)
        text += f'[[block]]\nname = "{name}"\n'
        for _ in range(draw(st.integers(0, 3))):
            text += "[[block.layer]]\n" + draw(layer_tables(ids, local=True))
    for _ in range(draw(st.integers(0, 6))):
        if blocks and draw(st.integers(0, 3)) == 0:
            repeat = draw(st.one_of(st.integers(1, 4), st.integers(10 ** 4, 10 ** 9)))
            text += f'[[layer]]\nblock = "{draw(st.sampled_from(blocks + ["nob"]))}"\n'
            text += f"repeat = {repeat}\n"
        else:
            text += "[[layer]]\n" + draw(layer_tables(ids))
    if draw(st.booleans()):
        text += '[[layer]]\nkind = "dense"\n'
    return text


@st.composite
def valid_graph_specs(draw):
    """Graphs that ntksym must accept: residual blocks (identity or dense shortcut, scales),
    concats of two activated branches, layer_norm after a dense layer, in random order, on
    vectors, with random block repeats."""
    text = 'name = "ok"\ninput = { shape = [3] }\n[defaults]\nweight_var = 2.0\n'
    text += '[[block]]\nname = "res"\n[[block.layer]]\nkind = "relu"\n'
    text += '[[block.layer]]\nkind = "dense"\nid = "branch"\n'
    text += '[[block.layer]]\nkind = "add"\ninputs = ["block_input", "branch"]\n'
    text += '[[layer]]\nkind = "dense"\nid = "stem"\n'
    prev = "stem"          # the last layer: always the output of a weight layer or a join
    for k in range(draw(st.integers(1, 5))):
        pattern = draw(st.sampled_from(["res", "shortcut", "concat", "norm", "block"]))
        acts = st.sampled_from(["relu", "erf", "abs", "sin"])
        if pattern == "res":
            s = draw(st.sampled_from(["", "scales = [1.0, 0.5]\n"]))
            text += (f'[[layer]]\nkind = "dense"\nactivation = "{draw(acts)}"\n'
                     f'inputs = ["{prev}"]\n[[layer]]\nkind = "dense"\nid = "b{k}"\n'
                     f'[[layer]]\nkind = "add"\nid = "j{k}"\ninputs = ["{prev}", "b{k}"]\n{s}')
        elif pattern == "shortcut":
            text += (f'[[layer]]\nkind = "{draw(acts)}"\nid = "a{k}"\n'
                     f'inputs = ["{prev}"]\n'
                     f'[[layer]]\nkind = "dense"\nid = "b{k}"\n'
                     f'[[layer]]\nkind = "dense"\nid = "s{k}"\ninputs = ["a{k}"]\n'
                     f'[[layer]]\nkind = "add"\nid = "j{k}"\ninputs = ["b{k}", "s{k}"]\n')
        elif pattern == "concat":
            for h in "pq":
                text += (f'[[layer]]\nkind = "dense"\nid = "{h}{k}"\ninputs = ["{prev}"]\n'
                         f'[[layer]]\nkind = "{draw(acts)}"\nid = "{h}a{k}"\n')
            text += (f'[[layer]]\nkind = "concat"\ninputs = ["pa{k}", "qa{k}"]\n'
                     f'[[layer]]\nkind = "dense"\nid = "j{k}"\n')
        elif pattern == "norm":
            text += f'[[layer]]\nkind = "layer_norm"\nid = "j{k}"\ninputs = ["{prev}"]\n'
        else:
            text += (f'[[layer]]\nblock = "res"\nid = "r{k}"\ninputs = ["{prev}"]\n'
                     f'repeat = {draw(st.integers(1, 3))}\n[[layer]]\nkind = "dense"\n'
                     f'id = "j{k}"\n')
        prev = f"j{k}"
    return text + '[[layer]]\nkind = "relu"\n[[layer]]\nkind = "dense"\n'


def _only_spec_errors(text):
    start = time.perf_counter()
    try:
        arch = ntksym.loads_spec(text)
        arch.graph
        arch.derive()
    except SpecError as e:
        assert "\n" not in str(e), str(e)
    elapsed = time.perf_counter() - start
    assert elapsed < SECONDS, (elapsed, text)


@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graph_specs())
def test_random_graph_specs_only_raise_spec_errors(text):
    _only_spec_errors(text)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(valid_graph_specs())
def test_valid_graph_specs_are_accepted_and_derived(text):
    start = time.perf_counter()
    arch = ntksym.loads_spec(text)
    program = arch.derive()
    assert any(arch.graph.in_degree(n) > 1 for n in arch.graph.nodes) or "layer_norm" in text
    assert program.outputs["ntk"].free_symbols
    assert time.perf_counter() - start < SECONDS


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graph_specs())
def test_random_graph_specs_only_raise_spec_errors_long(text):
    _only_spec_errors(text)


def test_the_random_fuzzer_reaches_the_refusals():
    """The random strategy is not vacuous: among its first examples the refusals include
    cycles, dangling ids, huge block repeats and layer_norm placement."""
    seen = set()

    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(graph_specs())
    def collect(text):
        try:
            ntksym.loads_spec(text).graph
        except SpecError as e:
            for needle in ("cycle", "no layer id", "takes 1 input", "fresh weights",
                           "more than 10000 layers", "no block is named", "zero-mean"):
                if needle in str(e):
                    seen.add(needle)

    collect()
    assert {"cycle", "no layer id", "more than 10000 layers", "zero-mean"} <= seen, seen
