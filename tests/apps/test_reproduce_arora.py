"""`ntksym reproduce arora-table1-digits / arora-table2-digits --quick`: files and sane numbers."""

import csv

import numpy as np
import pytest
from click.testing import CliRunner

from cli import app
from ntksym.apps.reproduce import arora, get


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_table1_quick(tmp_path):
    res = CliRunner().invoke(app, ["reproduce", "arora-table1-digits", "--quick",
                                   "--out", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    rows = _rows(tmp_path / "arora_table1_digits.csv")
    assert {(r["kernel"], int(r["depth"])) for r in rows} == {
        (v, d) for v in ("CNTK-V", "CNTK-GAP") for d in arora.TABLE1_QUICK["depths"]}
    for r in rows:
        assert (int(r["n_train"]), int(r["n_test"])) == arora.TABLE1_QUICK["split"]
        assert 0.8 < float(r["digits_accuracy"]) <= 1.0          # chance is 0.1
        d = int(r["depth"])
        assert float(r["paper_cifar10_accuracy"]) == pytest.approx(
            arora.PAPER_TABLE1[d][r["kernel"]] / 100)
    assert (tmp_path / "arora_table1_digits.png").stat().st_size > 1000
    assert "70.47%" in res.output and "CNTK-GAP" in res.output   # the paper's column printed


def test_table2_quick(tmp_path):
    res = CliRunner().invoke(app, ["reproduce", "arora-table2-digits", "--quick",
                                   "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    rows = _rows(tmp_path / "arora_table2_digits.csv")
    inits = arora.TABLE2_QUICK["inits"]
    for v in ("CNTK-V", "CNTK-GAP"):
        rf = [float(r["digits_accuracy"]) for r in rows
              if r["kernel"] == v and r["method"] == "random features"]
        assert len(rf) == inits
        (med,) = [float(r["digits_accuracy"]) for r in rows
                  if r["kernel"] == v and r["method"] == "random features median"]
        assert med == pytest.approx(float(np.median(rf)))
        (exact,) = [float(r["digits_accuracy"]) for r in rows
                    if r["kernel"] == v and r["method"] == "exact"]
        assert 0.75 < exact <= 1.0                                  # two classes: chance 0.5
        assert all(0.0 <= a <= 1.0 for a in rf)
    assert "52.85%" in res.output                                   # paper's RF CNTK-GAP
    assert "0-4 vs 5-9" in res.output and "not comparable" in res.output


def test_table2_task_is_two_groups_of_digits():
    # labels are the index of the digit's group, checked against the raw digits of the split
    from ntksym.data import load_dataset, split_dataset
    Xtr, ytr, Xte, yte = arora._digits(30, 20, 0, classes=arora.TABLE2_CLASSES)
    train, test = split_dataset(load_dataset("digits"), 30, 20, seed=0)   # all digits kept
    np.testing.assert_array_equal(ytr, (np.asarray(train.y) >= 5).astype(int))
    np.testing.assert_array_equal(yte, (np.asarray(test.y) >= 5).astype(int))
    np.testing.assert_array_equal(Xtr.reshape(30, -1), train.X)
    _, y38, _, _ = arora._digits(20, 5, 0, classes=((3,), (8,)))
    assert set(y38.tolist()) == {0, 1}
    assert arora._task_name(arora.TABLE2_CLASSES) == "0-4 vs 5-9"
    assert arora._task_name(((3,), (8,))) == "3 vs 8"


def test_random_features_use_the_finite_cnn_of_the_spec():
    # the "random features" kernel is the empirical NTK of one 128-channel CNN: different
    # initializations give different kernels, the same seed the same one
    import ntksym
    arch = arora.digits_arch("CNTK-GAP", 3)
    X = arora._digits(6, 2, 0)[0]
    k = [ntksym.empirical_kernel(arch, X, width=8, samples=1, seed=s, kind="ntk").mean["ntk"]
         for s in (0, 0, 1)]
    np.testing.assert_array_equal(k[0], k[1])
    assert not np.allclose(k[0], k[2])


def test_registered_and_bad_variant():
    from ntksym.errors import DataError
    assert get("arora-table1-digits")[1] is arora.run_table1
    assert get("arora-table2-digits")[1] is arora.run_table2
    with pytest.raises(DataError):
        arora.digits_arch("CNTK-X", 4)
    with pytest.raises(DataError):
        arora.digits_arch("CNTK-V", 5)
