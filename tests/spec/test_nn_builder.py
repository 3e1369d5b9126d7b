"""ntksym.nn, the Python builder, and Architecture.to_toml (issue 18).

A network built in Python and the same network written in TOML are the same spec: identical
hash, graph, printed derivation and kernels (MLP, CNN, residual, concat, LayerNorm); to_toml
round-trips every shipped spec and the graph cases of issue 11 (blocks written out expanded).
"""

from pathlib import Path

import numpy as np
import pytest

import ntksym
import ntksym.nn as nn
from graph_cases import CASES
from ntksym import Architecture
from ntksym.codegen.generate import generate_source
from ntksym.errors import SpecError
from ntksym.layers import LAYER_KINDS
from testkit import ROOT

SPECS = sorted((ROOT / "spec").glob("*.toml"))


def same(a, b, X=None):
    """a and b are the same network: hash, graph nodes, derivation, (kernels on X)."""
    assert a.hash == b.hash
    assert list(a.graph.nodes) == list(b.graph.nodes)
    assert list(a.graph.edges) == list(b.graph.edges)
    assert str(a.derive()) == str(b.derive())
    assert str(a.derive(per_layer=True)) == str(b.derive(per_layer=True))
    if X is not None:
        Ka, Kb = ntksym.kernel(a, X, kind="both"), ntksym.kernel(b, X, kind="both")
        for k in ("nngp", "ntk"):
            np.testing.assert_array_equal(Ka[k], Kb[k])


def rows(n, shape, seed=0):
    return np.random.default_rng(seed).standard_normal((n, *shape))


MLP_TOML = '''name = "network"
input = { shape = [6] }
[defaults]
weight_var = 2.0
[[layer]]
kind = "dense"
bias_var = 0.1
activation = "relu"
repeat = 2
[[layer]]
kind = "dense"
'''

CNN_TOML = '''name = "cnn"
input = { shape = [5, 5, 2] }
[[layer]]
kind = "conv"
filter = 3
normalize = false
[[layer]]
kind = "relu"
[[layer]]
kind = "conv"
weight_var = 2.0
padding = "valid"
[[layer]]
kind = "erf"
[[layer]]
kind = "global_avg_pool"
[[layer]]
kind = "dense"
'''

RESIDUAL_TOML = '''name = "res"
input = { shape = [6] }
[defaults]
weight_var = 2.0
[[layer]]
kind = "dense"
[[layer]]
kind = "relu"
[[layer]]
kind = "dense"
[[layer]]
kind = "relu"
[[layer]]
kind = "dense"
[[layer]]
kind = "add"
inputs = ["relu_1", "dense_4"]
scales = [1.0, 0.5]
[[layer]]
kind = "relu"
[[layer]]
kind = "dense"
[[layer]]
kind = "add"
inputs = ["add_5", "dense_7"]
[[layer]]
kind = "dense"
[[layer]]
kind = "layer_norm"
[[layer]]
kind = "relu"
[[layer]]
kind = "dense"
'''

CONCAT_TOML = '''name = "cat"
input = { shape = [6] }
[[layer]]
kind = "dense"
activation = "relu"
[[layer]]
kind = "dense"
inputs = ["input"]
bias_var = 0.2
[[layer]]
kind = "leaky_relu"
slope = 0.1
[[layer]]
kind = "concat"
inputs = ["relu_1", "leaky_relu_3"]
[[layer]]
kind = "dense"
'''


def test_every_kind_has_a_constructor():
    for kind in LAYER_KINDS:
        assert callable(getattr(nn, kind)), kind
        assert getattr(nn, kind).__name__ == kind
    assert set(nn.KINDS) == set(LAYER_KINDS)


def test_mlp_built_equals_toml():
    built = nn.serial(*[nn.dense(bias_var=0.1, activation="relu")] * 2, nn.dense(),
                      input_shape=[6], defaults={"weight_var": 2.0})
    same(built, ntksym.loads_spec(MLP_TOML), rows(4, [6]))


def test_cnn_built_equals_toml():
    built = nn.serial(nn.conv(filter=3, normalize=False), nn.relu(),
                      nn.conv(weight_var=2.0, padding="valid"), nn.erf(),
                      nn.global_avg_pool(), nn.dense(), input_shape=[5, 5, 2], name="cnn")
    same(built, ntksym.loads_spec(CNN_TOML), rows(3, [5, 5, 2]))


def test_residual_built_equals_toml():
    """Two residual blocks (identity shortcuts, one scaled), then a LayerNorm MLP head."""
    built = nn.serial(nn.dense(), nn.relu(),
                      nn.residual(nn.dense(), nn.relu(), nn.dense(), scales=[1.0, 0.5]),
                      nn.residual(nn.relu(), nn.dense()),
                      nn.dense(), nn.layer_norm(), nn.relu(), nn.dense(),
                      input_shape=[6], name="res", defaults={"weight_var": 2.0})
    same(built, ntksym.loads_spec(RESIDUAL_TOML), rows(4, [6]))


def test_parallel_branches_name_their_inputs():
    """nn.parallel: every branch reads the same node; a join takes all their outputs."""
    arch = nn.serial(nn.dense(),
                     nn.parallel(nn.serial(), nn.serial(nn.relu(), nn.dense()),
                                 nn.serial(nn.erf(), nn.dense())),
                     nn.add(scales=[1.0, 0.5, 0.5]), nn.dense(), input_shape=[3])
    assert [(l.id, l.inputs) for l in arch.spec.layers] == [
        ("dense_0", None), ("relu_1", None), ("dense_2", None), ("erf_3", ["dense_0"]),
        ("dense_4", None), ("add_5", ["dense_0", "dense_2", "dense_4"]), ("dense_6", None)]
    arch.derive()


def test_concat_built_equals_toml():
    built = nn.serial(
        nn.parallel(nn.dense(activation="relu"),
                    nn.serial(nn.dense(bias_var=0.2), nn.leaky_relu(0.1))),
        nn.concat(), nn.dense(), input_shape=[6], name="cat")
    same(built, ntksym.loads_spec(CONCAT_TOML), rows(4, [6]))


def test_built_network_round_trips_through_to_toml():
    arch = nn.serial(nn.dense(weight_var=2.0, mask={"kind": "bernoulli", "keep": 0.5}),
                     nn.relu_power(2), nn.dense(trainable=["W"]), input_shape=[4],
                     description="a \"quoted\" description\nover two lines")
    back = Architecture.from_toml(arch.to_toml())
    same(arch, back)
    assert back.spec.description == arch.spec.description


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_to_toml_round_trips_every_shipped_spec(path):
    """Same hash, graph and printed derivation; the same generated module, so the same
    kernels (computed for the two cheapest below)."""
    a = ntksym.load_spec(path)
    b = Architecture.from_toml(a.to_toml())
    same(a, b)
    assert generate_source(a.derive()) == generate_source(b.derive())


@pytest.mark.parametrize("name", ["cntk_mlp_depth3", "erf_mlp_bias"])
def test_to_toml_round_trip_kernels(name):
    a = ntksym.load_spec(ROOT / "spec" / f"{name}.toml")
    b = Architecture.from_toml(a.to_toml())
    same(a, b, rows(5, a.input_shape))


@pytest.mark.parametrize("name", sorted(CASES))
def test_to_toml_round_trips_graphs_with_blocks(name):
    text = CASES[name]
    a = ntksym.loads_spec(text)
    out = a.to_toml()
    assert "[[block]]" not in out          # blocks are written out as their layers
    same(a, Architecture.from_toml(out))


def test_builder_errors_are_one_line_spec_errors():
    with pytest.raises(SpecError, match="did you mean 'width'"):
        nn.dense(wigth=3)
    with pytest.raises(SpecError, match="key 'width': expected an integer"):
        nn.dense(width="8")
    with pytest.raises(SpecError, match="must be one of"):
        nn.conv(padding="full")
    with pytest.raises(SpecError, match="receives 2 parallel branches"):
        nn.serial(nn.parallel(nn.dense(), nn.dense()), nn.relu(), input_shape=[3])
    with pytest.raises(SpecError, match="put nn.parallel"):
        nn.serial(nn.dense(), nn.add(), input_shape=[3])
    with pytest.raises(SpecError, match="ends in 2 parallel branches"):
        nn.serial(nn.parallel(nn.dense(), nn.dense()), input_shape=[3])
    with pytest.raises(SpecError, match="must end in a readout"):
        nn.serial(nn.dense(), nn.relu(), input_shape=[3])
    with pytest.raises(TypeError, match="call the constructor"):
        nn.serial(nn.relu, input_shape=[3])
    with pytest.raises(TypeError, match="positional"):
        nn.relu(1)
    with pytest.raises(SpecError, match="unknown layer kind"):
        nn.layer("dens")


def test_saved_spec_loads_from_a_file(tmp_path: Path):
    arch = nn.serial(nn.conv(3, activation="relu"), nn.avg_pool(2), nn.flatten(), nn.dense(),
                     input_shape=[4, 4, 1], name="saved")
    p = tmp_path / "saved.toml"
    p.write_text(arch.to_toml())
    same(arch, ntksym.load_spec(p))


def test_to_toml_keeps_learnable_constants_and_their_ties():
    """{ value, learn } constants survive to_toml: the shared [defaults] symbol stays shared,
    a layer's own stays its own (same hyperparameters, hash and kernel)."""
    import numpy as np
    text = ('name = "h"\ninput = { shape = [3] }\n[defaults]\n'
            'weight_var = { value = 2.0, learn = true }\nbias_var = 0.1\n'
            '[[layer]]\nkind = "dense"\nweight_var = { value = 1.5, learn = true }\n'
            'activation = "relu"\n[[layer]]\nkind = "dense"\n')
    a = ntksym.loads_spec(text)
    b = ntksym.loads_spec(a.to_toml())
    assert b.spec.hyperparameters == a.spec.hyperparameters == {
        "weight_var": 2.0, "weight_var_dense_0": 1.5}
    assert b.hash == a.hash
    X = np.random.default_rng(0).standard_normal((3, 3))
    assert np.array_equal(ntksym.kernel(a, X, kind="both")["ntk"],
                          ntksym.kernel(b, X, kind="both")["ntk"])
