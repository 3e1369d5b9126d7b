"""Learnable constants in specs (SPEC.md "Learnable constants", issue #17): parsing, names,
hashes, refusals, the printed recursion and the generated code's run-time values."""

import subprocess
import sys

import numpy as np
import pytest

import ntksym
from ntksym.codegen.generate import generate_source
from ntksym.errors import DeviceError, SpecError
from ntksym.ir.symbols import HyperSymbol

HEAD = 'name = "m"\ninput = { shape = [3] }\n'


def spec(body):
    return ntksym.loads_spec(HEAD + body)


def test_defaults_give_one_shared_symbol_layers_their_own_and_names_tie():
    a = spec('[defaults]\nweight_var = { value = 2.0, learn = true }\n'
             '[[layer]]\nkind = "dense"\nbias_var = { value = 0.1, learn = true }\n'
             'activation = "relu"\nrepeat = 2\n'
             '[[layer]]\nkind = "dense"\nid = "out"\n'
             'bias_var = { value = 0.3, learn = true, name = "b_tied" }\n'
             'weight_var = { value = 0.3, learn = true, name = "b_tied" }\n')
    assert a.hyperparameters == {"weight_var": 2.0, "bias_var_dense_0": 0.1, "b_tied": 0.3}
    p = a.derive()
    assert list(p.hyperparameters) == [HyperSymbol(n) for n in a.hyperparameters]
    text = str(p)
    assert "learnable constants" in text and "weight_var = 2.0" in text
    assert "weight_var*Sigma_0" in text.replace(" ", "") or "Sigma_0(x, x')*weight_var" in text


def test_learn_false_means_the_plain_number_and_hashes():
    plain = spec('[[layer]]\nkind = "dense"\nweight_var = 2.0\n')
    off = spec('[[layer]]\nkind = "dense"\nweight_var = { value = 2.0, learn = false }\n')
    on = spec('[[layer]]\nkind = "dense"\nweight_var = { value = 2.0, learn = true }\n')
    other = spec('[[layer]]\nkind = "dense"\nweight_var = { value = 3.0, learn = true }\n')
    assert off.hash == plain.hash and not off.hyperparameters
    assert on.hash != plain.hash and on.hash != other.hash
    assert on.spec.structure_hash == other.spec.structure_hash != plain.spec.structure_hash
    assert plain.spec.structure_hash == plain.hash
    # the generated code does not depend on the values: no recompilation when they change
    assert generate_source(on.derive()) == generate_source(other.derive())
    assert "HYPERPARAMETERS" in generate_source(on.derive())
    assert "hp" not in generate_source(plain.derive()).split("def kernel")[1].split(":")[0]


def test_a_table_valued_default_is_not_a_learnable_constant():
    a = spec('[defaults]\nmask = { kind = "bernoulli", keep = 0.5 }\n'
             '[[layer]]\nkind = "dense"\nwidth = 8\n[[layer]]\nkind = "dense"\n')
    assert a.spec.layers[0].params["mask"]["keep"] == 0.5 and not a.hyperparameters


@pytest.mark.parametrize("body, match", [
    ('[[layer]]\nkind = "dense"\nweight_var = { value = 0.0, learn = true }\n', "value > 0"),
    ('[[layer]]\nkind = "dense"\nweight_var = { value = -1.0, learn = true }\n', "value > 0"),
    ('[[layer]]\nkind = "dense"\nweight_var = { value = 2.0, lern = true }\n', "unknown key"),
    ('[[layer]]\nkind = "dense"\nweight_var = { learn = true }\n', "finite number value"),
    ('[[layer]]\nkind = "dense"\nweight_var = { value = 2.0, learn = "yes" }\n', "true or false"),
    ('[[layer]]\nkind = "dense"\nweight_var = { value = 2.0, learn = true, name = "Sigma_1" }\n',
     "hyperparameter name"),
    ('[defaults]\nbias_var = { value = 2.0, learn = true, name = "1x" }\n[[layer]]\n'
     'kind = "dense"\n', "hyperparameter name"),
    ('[[layer]]\nkind = "dense"\nweight_var = { value = 2.0, learn = true, name = "w" }\n'
     'bias_var = { value = 1.0, learn = true, name = "w" }\n', "two values"),
    ('[[layer]]\nkind = "dense"\nmask = { kind = "bernoulli", keep = { value = 0.5, '
     'learn = true } }\n', "keep"),
    ('[[layer]]\nkind = "dense"\n[[layer]]\nkind = "huberized_relu"\n'
     'h = { value = 0.5, learn = true }\n[[layer]]\nkind = "dense"\n', "cannot be learned"),
])
def test_refusals_name_the_key(body, match):
    with pytest.raises(SpecError, match=match):
        spec(body)


def test_gradient_refused_without_constants_and_where_no_derivative_exists():
    with pytest.raises(SpecError, match="no learnable constants"):
        spec('[[layer]]\nkind = "dense"\n').derive(gradient=True)
    # the Huberized ReLU's phi'' jumps: its NTK dual has no quadrature derivative
    a = spec('[[layer]]\nkind = "dense"\nweight_var = { value = 2.0, learn = true }\n'
             'activation = "huberized_relu(0.5)"\n[[layer]]\nkind = "dense"\n')
    with pytest.raises(SpecError, match="continuous"):
        a.derive(gradient=True)
    with pytest.raises(DeviceError, match="CPU"):
        ntksym.kernel(a, np.eye(3), device="gpu")


def test_derive_gradient_cli_prints_the_tangent_recursion(root, tmp_path):
    f = tmp_path / "m.toml"
    f.write_text(HEAD + '[defaults]\nweight_var = { value = 2.0, learn = true }\n'
                 '[[layer]]\nkind = "dense"\nactivation = "relu"\n[[layer]]\nkind = "dense"\n')
    run = [sys.executable, "cli.py", "derive", str(f), "--gradient"]
    r = subprocess.run(run, cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "(dSigma_2(x, x')/dweight_var) =" in r.stdout
    assert "output dntk/d[weight_var](x, x') = (dTheta_3(x, x')/dweight_var)" in r.stdout
    r = subprocess.run(run + ["--kernel", "nngp", "--format", "latex"], cwd=root,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r"\partial_{\mathrm{weight\_var}}\Sigma_{2}" in r.stdout and "Theta" not in r.stdout
    r = subprocess.run(run[:3] + [str(root / "spec" / "erf_mlp_bias.toml"), "--gradient"],
                       cwd=root, capture_output=True, text=True)
    assert r.returncode == 2 and "no learnable constants" in r.stderr


def test_the_finite_network_uses_the_current_values():
    a = spec('[[layer]]\nkind = "dense"\nweight_var = { value = 2.0, learn = true }\n'
             'width = 4\nactivation = "relu"\n[[layer]]\nkind = "dense"\n')
    b = spec('[[layer]]\nkind = "dense"\nweight_var = 2.0\nwidth = 4\nactivation = "relu"\n'
             '[[layer]]\nkind = "dense"\n')
    X = np.random.default_rng(0).standard_normal((3, 3))
    ea = ntksym.empirical_kernel(a, X, width=8, samples=2, seed=0)
    eb = ntksym.empirical_kernel(b, X, width=8, samples=2, seed=0)
    for k in ("nngp", "ntk"):
        np.testing.assert_allclose(ea.mean[k], eb.mean[k], rtol=1e-14)


def test_single_dense_layer_gradient_is_the_input_gram():
    """No diagonal state at all (the pair function takes only G and hp): dK/dw = <x, x'>/d,
    dK/db = 1."""
    a = spec('[[layer]]\nkind = "dense"\nweight_var = { value = 2.0, learn = true, name = "w" }\n'
             'bias_var = { value = 0.5, learn = true, name = "b" }\n')
    X = np.random.default_rng(0).standard_normal((4, 3))
    out = ntksym.kernel(a, X, kind="nngp", gradient=True)
    np.testing.assert_allclose(out["nngp"], 2.0 * X @ X.T / 3 + 0.5, rtol=1e-14)
    np.testing.assert_allclose(out["dnngp/d[w]"], X @ X.T / 3, rtol=1e-14)
    np.testing.assert_allclose(out["dnngp/d[b]"], np.ones((4, 4)), rtol=1e-14)
