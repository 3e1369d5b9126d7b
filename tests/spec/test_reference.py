"""docs/spec.md: complete (every kind, every key), current (equal to what the generator renders
from the code), and its examples valid; `ntksym check --keys` prints the same reference."""

import re
import subprocess
import sys

import pytest

import ntksym
from ntksym.duals.activations import ACTIVATION_KINDS
from ntksym.layers import LAYER_KINDS
from ntksym.layers.mask import MASK_KINDS
from ntksym.spec import reference
from ntksym.spec.parse import COMMON_KEYS, TOP_KEYS
from testkit import ROOT

DOC = ROOT / "docs" / "spec.md"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                          cwd=ROOT)


def test_docs_spec_md_is_current():
    """Regenerate with `python -m ntksym.spec.reference > docs/spec.md`."""
    assert DOC.read_text() == reference.render(), (
        "docs/spec.md is stale: run `python -m ntksym.spec.reference > docs/spec.md`")


def test_every_declared_key_has_a_meaning():
    assert reference.undocumented() == []


def _section(doc, kind):
    m = re.search(rf"^### `{kind}`\n(.*?)(?=^### |^## )", doc, re.S | re.M)
    assert m, f"docs/spec.md has no section for kind {kind!r}"
    return m.group(1)


@pytest.mark.parametrize("kind", list(LAYER_KINDS))
def test_every_kind_and_key_is_in_the_reference(kind):
    """A layer that declares a key the reference does not mention fails here."""
    section = _section(DOC.read_text(), kind)
    for key in LAYER_KINDS[kind].keys:
        assert re.search(rf"^\| `{key}` \| .+ \| .+ \| .+ \|$", section, re.M), \
            f"docs/spec.md: kind {kind!r} does not document its key {key!r}"
    assert "```toml" in section


def test_top_level_common_mask_keys_are_documented():
    doc = DOC.read_text()
    for key in TOP_KEYS + COMMON_KEYS:
        assert f"| `{key}` |" in doc
    masks = doc[doc.index("## Masks"):]
    for kind, keys in MASK_KINDS.items():
        assert f'`kind = "{kind}"`' in masks
        for key in keys:
            assert f"| `{key}` |" in masks


@pytest.mark.parametrize("kind", list(LAYER_KINDS))
def test_examples_are_valid_specs(kind):
    arch = ntksym.loads_spec(reference.kind_example(kind), path=f"docs/spec.md ({kind})")
    assert any(arch.graph.nodes[n]["kind"] == kind for n in arch.graph)


@pytest.mark.parametrize("kind", [k for k in ACTIVATION_KINDS if k in LAYER_KINDS])
def test_activation_shorthand_of_the_reference_parses(kind):
    _, short = reference.activation_example(kind)
    text = (f'name = "a"\ninput = {{ shape = [3] }}\n[[layer]]\nkind = "dense"\n'
            f'activation = {short!r}\n[[layer]]\nkind = "dense"\n').replace("'", '"')
    if '"' in short:      # activation("z**3 - z"): a TOML literal string keeps its quotes
        text = text.replace(f'activation = "{short}"', f"activation = '{short}'")
    assert ntksym.loads_spec(text).graph.nodes["dense_0"]


def test_pitfalls_say_what_the_code_does():
    """The reference's claims about defaults, checked against the derivation."""
    def groups(extra, param="ntk"):
        a = ntksym.loads_spec(f'name = "m"\ninput = {{ shape = [3] }}\n[[layer]]\n'
                              f'kind = "dense"\nparameterization = "{param}"\n{extra}\n')
        return [k for k in a.derive(per_layer=True).outputs if k.startswith("ntk[")]
    # ntk parameterization: bias_var = 0 is no bias, the same as trainable = ["W"]
    assert groups("bias_var = 0.0") == groups('trainable = ["W"]') == ["ntk[dense_0.W]"]
    assert groups("bias_var = 0.5") == ["ntk[dense_0.W]", "ntk[dense_0.b]"]
    # standard: a bias initialized at 0 and trained, whose NTK term is 1
    assert groups("bias_var = 0.0", "standard") == ["ntk[dense_0.W]", "ntk[dense_0.b]"]
    assert groups('bias_var = 0.0\ntrainable = ["W"]', "standard") == ["ntk[dense_0.W]"]
    # avg_pool's stride defaults to its window
    a = ntksym.loads_spec('name = "p"\ninput = { shape = [4, 4, 1] }\n[[layer]]\n'
                          'kind = "avg_pool"\n[[layer]]\nkind = "flatten"\n[[layer]]\n'
                          'kind = "dense"\n')
    assert a.graph.nodes["avg_pool_0"]["shape"] == (2, 2, 1)
    # list-valued trainable on conv
    c = ntksym.loads_spec('name = "c"\ninput = { shape = [4, 4, 1] }\n[[layer]]\nkind = "conv"\n'
                          'trainable = ["b"]\nbias_var = 0.5\n[[layer]]\nkind = "flatten"\n'
                          '[[layer]]\nkind = "dense"\ntrainable = false\n')
    groups = list(c.derive(per_layer=True).outputs)
    assert groups == ["nngp", "ntk", "ntk[conv_0.b]"]
    # an id with the activation shorthand names the weight layer
    s = ntksym.loads_spec('name = "i"\ninput = { shape = [3] }\n[[layer]]\nkind = "dense"\n'
                          'id = "h"\nactivation = "relu"\n[[layer]]\nkind = "dense"\n')
    assert [(layer.id, layer.kind) for layer in s.spec.layers][:2] == [("h", "dense"),
                                                                        ("relu_1", "relu")]


def test_check_keys_prints_the_reference():
    r = run_cli("check", "--keys", "conv")
    assert r.returncode == 0
    assert r.stdout.strip() == reference.kind_section("conv").strip()
    assert r.stdout.strip() in DOC.read_text()
    r = run_cli("check", "--keys")
    assert r.returncode == 0
    for kind in LAYER_KINDS:
        assert re.search(rf"^  {kind} ", r.stdout, re.M)
    r = run_cli("check", "--keys", "avgpool")
    assert r.returncode == 2 and "did you mean 'avg_pool'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli("check")
    assert r.returncode == 2 and "--keys" in r.stderr
