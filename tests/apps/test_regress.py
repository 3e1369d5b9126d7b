"""ntksym regress: the CNTK paper's kernel classification on a split, and its bad inputs
(issue 7, items "regress" and "Done when" 6)."""

import json

import numpy as np
import pytest

import cli
import ntksym
import ntksym.apps.regress as regress_mod
from ntksym.apps.predict import kernel_regression
from ntksym.data import load_dataset, split_dataset
from ntksym.errors import DataError

MLP = "spec/cntk_mlp_depth3.toml"
LINEAR = ('name = "linear"\ninput = { shape = [4] }\n[[layer]]\nkind = "dense"\n'
          'activation = "identity"\n[[layer]]\nkind = "dense"\n')


def run(capsys, *args):
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_digits_classification_json(capsys):
    code, out, err = run(capsys, "regress", MLP, "--dataset", "digits:400", "--train", 300,
                         "--test", 100, "--seed", 3, "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["task"] == "classification" and r["n_train"] == 300 and r["n_test"] == 100
    assert r["accuracy"] > 0.95
    # the reported condition number is that of the training kernel on the same split
    train, _ = split_dataset(load_dataset("digits:400"), 300, 100, seed=3)
    K = ntksym.kernel(ntksym.load_spec(MLP), train.X)
    assert r["condition_number"] == pytest.approx(np.linalg.cond(K), rel=1e-6)
    assert r["kernel_seconds"] > 0 and r["solve_seconds"] > 0


def test_text_output_names_the_score(capsys):
    code, out, _ = run(capsys, "regress", MLP, "--dataset", "iris", "--train", 100,
                       "--test", 50, "--ridge", 1e-3)
    assert code == 0
    lines = {k: v.strip() for k, v in (line.split(":", 1) for line in out.strip().splitlines())}
    assert float(lines["accuracy"]) >= 0.8 and lines["input_shape"] == "4"
    assert lines["ridge"] == "0.001"


def test_regression_matches_direct_solve():
    arch = ntksym.load_spec(MLP)
    r = regress_mod.regress(arch, "diabetes", 120, 60, ridge=0.5, kind="nngp", seed=1)
    train, test = split_dataset(load_dataset("diabetes"), 120, 60, seed=1)
    a10, _ = regress_mod.as_spec_input(arch, train.X)
    K = ntksym.kernel(a10, train.X, kind="nngp")
    Ks = ntksym.kernel(a10, test.X, train.X, kind="nngp")
    pred = kernel_regression(K, train.y, Ks, ridge=0.5)
    assert r.score_name == "mse"
    assert r.score == pytest.approx(np.mean((pred - test.y) ** 2), rel=1e-10)
    assert r.extra["r2"] == pytest.approx(
        1 - np.sum((pred - test.y) ** 2) / np.sum((test.y - test.y.mean()) ** 2), rel=1e-10)


def test_only_train_train_and_test_train_blocks(monkeypatch):
    calls = []
    real = regress_mod._kernel

    def counting(arch, X, X2, kind, dtype):
        calls.append((len(X), None if X2 is None else len(X2)))
        return real(arch, X, X2, kind, dtype)

    monkeypatch.setattr(regress_mod, "_kernel", counting)
    regress_mod.regress(ntksym.load_spec(MLP), "digits:120", 80, 40)
    assert calls == [(80, None), (40, 80)]          # no (40, 40) test-test block


def test_image_spec_takes_flat_digits():
    arch = ntksym.loads_spec('name = "img"\ninput = { shape = [2, 2, 1] }\n[[layer]]\n'
                             'kind = "dense"\n')
    a2, X = regress_mod.as_spec_input(arch, np.zeros((3, 4)))
    assert a2 is arch and X.shape == (3, 2, 2, 1)


@pytest.mark.parametrize("args, message", [
    (["--dataset", "digts", "--train", 10, "--test", 10],
     "unknown dataset 'digts' (did you mean 'digits'?)"),
    (["--dataset", "digits:100", "--train", 80, "--test", 30],
     "has 100 examples; cannot split into 80 train + 30 test"),
    (["--dataset", "iris", "--train", 0, "--test", 30], "both must be positive"),
    (["--dataset", "mnist:/nonexistent/mnist", "--train", 10, "--test", 10], "not found"),
    (["--dataset", "digits", "--train", 10, "--test", 10, "--ridge", -1], "ridge must be"),
])
def test_bad_inputs_exit_2(capsys, args, message):
    code, out, err = run(capsys, "regress", MLP, *args)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_data_files(capsys, tmp_path):
    code, _, err = run(capsys, "regress", MLP, "--dataset", f"mnist:{tmp_path}", "--train", 10,
                       "--test", 10)
    assert code == 2 and "no idx files" in err and str(tmp_path) in err
    # images present, their label file missing: the message names the missing file
    header = bytes([0, 0, 0x08, 3]) + np.array([2, 2, 2], ">u4").tobytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(header + bytes(8))
    code, _, err = run(capsys, "regress", MLP, "--dataset", f"mnist:{tmp_path}", "--train", 1,
                       "--test", 1)
    assert code == 2 and "file not found" in err and "train-labels-idx1-ubyte" in err


def test_singular_kernel_without_ridge_suggests_one(capsys, tmp_path):
    # A linear network's NTK on 4 features has rank <= 4: 60 training examples make it singular.
    spec = tmp_path / "linear.toml"
    spec.write_text(LINEAR)
    code, out, err = run(capsys, "regress", spec, "--dataset", "iris", "--train", 60,
                         "--test", 20)
    assert code == 2 and out == ""
    assert "numerically singular" in err and "pass a ridge, e.g. --ridge" in err
    code, out, _ = run(capsys, "regress", spec, "--dataset", "iris", "--train", 60,
                       "--test", 20, "--ridge", 0.1, "--json")
    assert code == 0 and json.loads(out)["accuracy"] > 0.5


def test_library_rejects_unknown_kind():
    with pytest.raises(DataError, match="unknown kernel kind"):
        regress_mod.regress(ntksym.load_spec(MLP), "iris", 10, 10, kind="both")
