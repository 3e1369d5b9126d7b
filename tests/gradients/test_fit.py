"""`ntksym fit` and the estimators' hyperparameter options (issue #17): the LML rises along
the printed path, the fitted spec is the same file with the values filled in, outputs are
never overwritten without --force, and user errors exit 2."""

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

import ntksym
from ntksym.apps.marginal import fit_hyperparameters, log_marginal_likelihood
from ntksym.data import load_dataset, split_dataset
from ntksym.errors import SpecError
from ntksym.estimators import NTKRegressor
from ntksym.spec.fitted import with_values_text

EXAMPLE = "docs/examples/mlp_relu_learnable.toml"


def _cli(root, *args):
    return subprocess.run([sys.executable, "cli.py", *args], cwd=root, capture_output=True,
                          text=True)


def test_fit_command_prints_the_path_and_writes_the_fitted_spec(root, tmp_path):
    out = tmp_path / "fitted.toml"
    r = _cli(root, "fit", EXAMPLE, "--dataset", "diabetes", "--train", "150", "-o", str(out))
    assert r.returncode == 0, r.stderr
    path = [l for l in r.stdout.splitlines() if l.startswith("iter ") and "LML" in l]
    assert len(path) >= 3 and "LML" in path[0] and "|grad|" in path[0]
    lmls = [float(l.split("LML")[1].split()[0]) for l in path]
    assert max(lmls) > lmls[0] + 10
    fitted = ntksym.load_spec(out)
    original = ntksym.load_spec(root / EXAMPLE)
    assert set(fitted.hyperparameters) == {"weight_var", "bias_var"}
    assert fitted.hyperparameters != original.hyperparameters
    text, before = out.read_text(), (root / EXAMPLE).read_text()
    assert text.splitlines()[0] == before.splitlines()[0]        # comments kept
    assert len(text.splitlines()) == len(before.splitlines())
    # refused without --force (exit 2), allowed with it; --json is machine-readable
    r = _cli(root, "fit", EXAMPLE, "--dataset", "diabetes:60", "-o", str(out))
    assert r.returncode == 2 and "--force" in r.stderr
    r = _cli(root, "fit", EXAMPLE, "--dataset", "diabetes:60", "-o", str(out), "--force",
             "--json", "--maxiter", "5", "--kernel", "ntk")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["kind"] == "ntk" and d["lml"] >= d["lml_start"] and d["path"][0]["iteration"] == 0


@pytest.mark.parametrize("args, message", [
    (["--dataset", "nosuch"], "unknown dataset"),
    (["--dataset", "diabetes", "--noise", "-1"], "noise"),
    (["--dataset", "diabetes:50", "--train", "80"], "50 examples"),
])
def test_fit_user_errors_exit_2(root, args, message):
    r = _cli(root, "fit", EXAMPLE, *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_lml_gradient_matches_finite_differences_and_fit_raises_the_lml():
    arch = ntksym.load_spec(EXAMPLE)
    train, _ = split_dataset(load_dataset("diabetes"), 80, 10, seed=1)
    y = (train.y - train.y.mean()) / train.y.std()
    lml, g, gn = log_marginal_likelihood(arch, train.X, y, "nngp", 0.3)
    for k, (h, v) in enumerate(arch.hyperparameters.items()):
        e = 1e-5
        up = log_marginal_likelihood(arch.with_hyperparameters({h: v * np.exp(e)}),
                                     train.X, y, "nngp", 0.3)[0]
        down = log_marginal_likelihood(arch.with_hyperparameters({h: v * np.exp(-e)}),
                                       train.X, y, "nngp", 0.3)[0]
        assert abs((up - down) / (2 * e) - g[k]) < 1e-5 * max(1.0, abs(g[k]))
    up = log_marginal_likelihood(arch, train.X, y, "nngp", 0.3 * np.exp(1e-5))[0]
    down = log_marginal_likelihood(arch, train.X, y, "nngp", 0.3 * np.exp(-1e-5))[0]
    assert abs((up - down) / 2e-5 - gn) < 1e-5 * max(1.0, abs(gn))
    r = fit_hyperparameters(arch, train.X, train.y, maxiter=30)
    assert r.lml > r.lml_start and r.path[0].lml == r.lml_start
    assert all(np.isfinite(s.lml) for s in r.path)


def test_fitted_text_refuses_a_constant_it_cannot_rewrite(tmp_path):
    text = ('name = "m"\ninput = { shape = [2] }\n[[layer]]\nkind = "dense"\n'
            '[layer.weight_var]\nvalue = 2.0\nlearn = true\n')
    spec = ntksym.loads_spec(text).spec
    assert spec.hyperparameters == {"weight_var_dense_0": 2.0}
    with pytest.raises(SpecError, match="one-line"):
        with_values_text(spec, {"weight_var_dense_0": 1.0})


def test_estimator_hyperparameter_options():
    train, test = split_dataset(load_dataset("diabetes"), 120, 60, seed=0)
    y = (train.y - train.y.mean()) / train.y.std()
    base = NTKRegressor(spec=EXAMPLE, kernel="nngp", ridge=0.5)
    fixed = base.set_params(hyperparameters={"weight_var": 1.5}).fit(train.X, y)
    assert fixed.hyperparameters_ == {"weight_var": 1.5, "bias_var": 0.1}
    lml = NTKRegressor(spec=EXAMPLE, kernel="nngp", hyperparameters="lml").fit(train.X, y)
    assert set(lml.hyperparameters_) == {"weight_var", "bias_var"} and lml.ridge_ > 0
    assert np.isfinite(lml.lml_) and np.isfinite(lml.predict(test.X)).all()
    search = GridSearchCV(NTKRegressor(spec=EXAMPLE, kernel="nngp", ridge=0.5),
                          {"hyperparameters": [{"weight_var": w} for w in (0.5, 1.0, 2.0)]},
                          cv=3).fit(train.X, y)
    assert search.best_params_["hyperparameters"]["weight_var"] in (0.5, 1.0, 2.0)
    with pytest.raises(ValueError, match="hyperparameters"):
        NTKRegressor(spec=EXAMPLE, hyperparameters="cv").fit(train.X, y)
    with pytest.raises(ValueError, match="no learnable constant"):
        NTKRegressor(spec=EXAMPLE, hyperparameters={"nope": 1.0}).fit(train.X, y)
