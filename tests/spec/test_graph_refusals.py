"""Graph specs that ntksym must refuse: exit 2, one line naming file, line, layer and key, and
nothing written (`ntksym kernel ... -o K.npy` leaves no K.npy)."""

import subprocess
import sys

import numpy as np
import pytest

import ntksym
from ntksym.errors import SpecError

VEC = 'name = "g"\ninput = { shape = [4] }\n'
IMG = 'name = "g"\ninput = { shape = [6, 6, 2] }\n'


def layer(kind, **keys):
    out = f'[[layer]]\nkind = "{kind}"\n'
    for k, v in keys.items():
        out += f"{k} = " + (f'"{v}"' if isinstance(v, str) else
                            str(v).replace("'", '"').replace("True", "true")) + "\n"
    return out


READOUT = layer("dense")

REFUSALS = {
    # name: (spec text, words the message must contain)
    "cycle": (VEC + layer("dense", id="a", inputs=["c"]) + layer("relu", id="b")
              + layer("dense", id="c") + READOUT, ["cycle", "a -> b -> c -> a", "key 'inputs'"]),
    "dangling id": (VEC + layer("dense", id="a") + layer("add", inputs=["a", "nope"]) + READOUT,
                    ["'nope'", "no layer id", "key 'inputs'"]),
    "two inputs into dense": (VEC + layer("dense", id="a", width=4)
                              + layer("dense", inputs=["input", "a"]) + READOUT,
                              ["takes 1 input", "input, a", "'add' or 'concat'"]),
    "one input into add": (VEC + layer("dense", id="a") + layer("add", inputs=["a"]) + READOUT,
                           ["an 'add' layer takes at least 2 inputs"]),
    "add shape mismatch": (VEC + layer("dense", id="a", width=3)
                           + layer("add", inputs=["input", "a"]) + READOUT,
                           ["one shape", "[4]", "[3]", "key 'inputs'"]),
    "add of dependent branches": (VEC + layer("dense", id="a", width=4) + layer("relu", id="r")
                                  + layer("add", inputs=["a", "r"]) + READOUT,
                                  ["'a' and 'r'", "fresh weights"]),
    "add of two activations": (VEC + layer("dense", width=4, activation="relu")
                               + layer("dense", inputs=["input"], width=4, activation="relu")
                               + layer("add", inputs=["relu_1", "relu_3"]) + READOUT,
                               ["'relu_1' and 'relu_3'"]),
    "add names a layer twice": (VEC + layer("dense", id="a", width=4)
                                + layer("add", inputs=["a", "a"]) + READOUT,
                                ["twice"]),
    "scales count": (VEC + layer("dense", id="a", width=4)
                     + layer("add", inputs=["input", "a"], scales=[1.0]) + READOUT,
                     ["scales has 1 entries for 2 inputs", "key 'scales'"]),
    "concat of images of different sizes": (
        IMG + layer("conv", id="a", padding="same") + layer("conv", id="b", padding="valid",
                                                            inputs=["input"])
        + layer("concat", inputs=["a", "b"]) + layer("flatten") + READOUT,
        ["images of one size", "[6, 6, n]", "[4, 4, n]"]),
    "concat with and without widths": (VEC + layer("dense", id="a", activation="relu")
                                       + layer("concat", inputs=["input", "relu_1"]) + READOUT,
                                       ["with and without a width", "input (4) have one"]),
    "layer_norm after an activation": (VEC + layer("dense", activation="relu")
                                       + layer("layer_norm") + READOUT,
                                       ["layer_norm after 'relu_1'", "zero-mean"]),
    "layer_norm on the input": (VEC + layer("layer_norm") + READOUT, ["layer_norm after 'input'"]),
    "unknown block": ('name = "g"\ninput = { shape = [4] }\n[[block]]\nname = "res"\n'
                      '[[block.layer]]\nkind = "dense"\n[[layer]]\nblock = "rse"\n' + READOUT,
                      ["no block is named 'rse'", "did you mean 'res'"]),
    "block reaches outside": ('name = "g"\ninput = { shape = [4] }\n[[block]]\nname = "res"\n'
                              '[[block.layer]]\nkind = "add"\ninputs = ["input", "x"]\n'
                              '[[layer]]\nblock = "res"\n' + READOUT,
                              ["no layer of block 'res'", "block_input", "layer 1 of block 'res'"]),
    "block in a block": ('name = "g"\ninput = { shape = [4] }\n[[block]]\nname = "res"\n'
                         '[[block.layer]]\nblock = "res"\n[[layer]]\nblock = "res"\n' + READOUT,
                         ["cannot instantiate a block"]),
    "image readout": (IMG + layer("conv", activation="relu") + layer("conv", width=1),
                      ["outputs images", "[6, 6, 1]", "global_avg_pool"]),
    "huge block repeat": ('name = "g"\ninput = { shape = [4] }\n[[block]]\nname = "res"\n'
                          '[[block.layer]]\nkind = "dense"\n[[block.layer]]\nkind = "relu"\n'
                          '[[layer]]\nblock = "res"\nrepeat = 1000000000\n' + READOUT,
                          ["more than 10000 layers", "block 'res'", "key 'repeat'"]),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refused_with_a_message_naming_the_place(name):
    text, words = REFUSALS[name]
    with pytest.raises(SpecError) as e:
        ntksym.loads_spec(text, path="g.toml").graph   # the graph is built on first use
    msg = str(e.value)
    assert msg.startswith("g.toml:") and "\n" not in msg, msg
    for w in words:
        assert w in msg, (w, msg)


@pytest.mark.parametrize("name", ["cycle", "two inputs into dense", "add shape mismatch",
                                  "add of dependent branches",
                                  "concat of images of different sizes",
                                  "layer_norm after an activation", "huge block repeat"])
def test_cli_exit_2_one_line_nothing_written(name, tmp_path):
    text, words = REFUSALS[name]
    spec = tmp_path / "g.toml"
    spec.write_text(text)
    X = tmp_path / "X.npy"
    np.save(X, np.ones((2, 6, 6, 2) if "images" in name else (2, 4)))
    out = tmp_path / "K.npy"
    r = subprocess.run([sys.executable, "-m", "cli", "kernel", str(spec), "--x", str(X), "-o",
                        str(out)], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(spec) in lines[0] and words[0] in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.npy", "g.toml"]
