import gzip
import os
import pickle

import numpy as np
import pytest

from ntksym.data import (
    check_finite,
    load_array,
    load_cifar10_batches,
    load_dataset,
    load_mnist_idx,
    split_dataset,
    standardize_channels,
)
from ntksym.errors import DataError, NtksymError

# ------------------------------------------------------------------ embedded datasets

@pytest.mark.parametrize("name, shape, n_classes", [
    ("digits", (1797, 64), 10),
    ("digits-images", (1797, 8, 8, 1), 10),
    ("iris", (150, 4), 3),
    ("wine", (178, 13), 3),
    ("breast_cancer", (569, 30), 2),
])
def test_embedded_shapes(name, shape, n_classes):
    ds = load_dataset(name)
    assert ds.X.shape == shape and ds.X.dtype == np.float64
    assert ds.y.shape == (shape[0],) and ds.y.dtype == np.int64
    assert ds.task == "classification" and len(ds.classes) == n_classes
    assert set(np.unique(ds.y)) == set(range(n_classes))
    assert ds.name == name and ds.description


def test_digits_scaling_and_image_layout():
    from sklearn.datasets import load_digits

    raw = load_digits()
    v, im = load_dataset("digits"), load_dataset("digits-images")
    assert v.X.min() == 0.0 and v.X.max() == 1.0
    np.testing.assert_array_equal(v.X * 16, raw.data)
    # images are the same pixels, row-major 8 x 8, one channel last
    np.testing.assert_array_equal(im.X[:, :, :, 0] * 16, raw.images)
    np.testing.assert_array_equal(im.X.reshape(len(im), -1), v.X)


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "diabetes"])
def test_tabular_standardized(name):
    X = load_dataset(name).X
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(X.std(axis=0), 1, rtol=1e-12)


def test_diabetes_is_regression():
    ds = load_dataset("diabetes")
    assert ds.task == "regression" and ds.classes is None and ds.y.dtype == np.float64


def test_first_n_in_shipped_order():
    full, head = load_dataset("digits"), load_dataset("digits:200")
    assert head.X.shape == (200, 64)
    np.testing.assert_array_equal(head.X, full.X[:200])
    np.testing.assert_array_equal(head.y, full.y[:200])
    assert head.name == "digits:200"


def test_seed_permutes_before_taking_n():
    # iris ships sorted by class: the first 30 are one class, a seeded 30 are not
    assert len(set(load_dataset("iris:30").y)) == 1
    a, b = load_dataset("iris:30", seed=1), load_dataset("iris:30", seed=1)
    np.testing.assert_array_equal(a.X, b.X)
    assert len(set(a.y)) > 1


def test_split_dataset_disjoint_and_deterministic():
    ds = load_dataset("digits")
    tr, te = split_dataset(ds, 1000, 797, seed=0)
    tr2, _ = split_dataset(ds, 1000, 797, seed=0)
    assert len(tr) == 1000 and len(te) == 797
    np.testing.assert_array_equal(tr.X, tr2.X)
    rows = {r.tobytes() for r in tr.X}
    assert sum(r.tobytes() in rows for r in te.X) < 10  # digits has a few duplicate images
    with pytest.raises(DataError, match="cannot split"):
        split_dataset(ds, 1000, 1000)


@pytest.mark.parametrize("spec, message", [
    ("digts", "did you mean 'digits'"),
    ("cifar", "did you mean 'cifar10'"),
    ("nonsense", "valid names: digits"),
    ("digits:0", "positive integer"),
    ("digits:-3", "positive integer"),
    ("digits:abc", "positive integer"),
    ("digits:5000", "only 1797 available"),
    ("", "empty dataset name"),
    ("cifar10", "needs a directory"),
])
def test_bad_name_specs(spec, message):
    with pytest.raises(DataError, match=message) as info:
        load_dataset(spec)
    assert isinstance(info.value, NtksymError) and info.value.exit_code == 2


# ------------------------------------------------------------------ CIFAR-10 batches

def _write_cifar_batch(path, images_nhwc_uint8, labels, protocol=2):
    # The published files: a dict with bytes keys, data rows = R plane, G plane, B plane.
    data = images_nhwc_uint8.transpose(0, 3, 1, 2).reshape(len(labels), 3072)
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"testing batch", b"labels": list(labels),
                     b"data": data, b"filenames": [b"x.png"] * len(labels)}, f,
                    protocol=protocol)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar_batch_round_trip(tmp_path, protocol):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(7, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7)
    _write_cifar_batch(tmp_path / "data_batch_1", imgs, labels, protocol)
    X, y = load_cifar10_batches([tmp_path / "data_batch_1"])
    assert X.shape == (7, 32, 32, 3) and X.dtype == np.float64
    np.testing.assert_array_equal(X * 255, imgs)
    np.testing.assert_array_equal(y, labels)


def test_cifar_directory_spec(tmp_path):
    rng = np.random.default_rng(1)
    for name, n in [("data_batch_1", 4), ("data_batch_2", 3), ("test_batch", 2)]:
        _write_cifar_batch(tmp_path / name, rng.integers(0, 256, (n, 32, 32, 3), np.uint8),
                           rng.integers(0, 10, n))
    assert load_dataset(f"cifar10:{tmp_path}").X.shape == (9, 32, 32, 3)
    ds = load_dataset(f"cifar10:{tmp_path}:5")
    assert ds.X.shape == (5, 32, 32, 3) and ds.classes[0] == "airplane"


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_refuses_os_system(tmp_path):
    p = tmp_path / "data_batch_1"
    with open(p, "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": [0]}, f, protocol=2)
    with pytest.raises(DataError, match=r"refusing to load global '(posix|nt|os)\.system'"):
        load_cifar10_batches([p])


def test_cifar_missing_and_malformed(tmp_path):
    with pytest.raises(DataError, match="file not found: .*data_batch_9"):
        load_cifar10_batches([tmp_path / "data_batch_9"])
    with pytest.raises(DataError, match="directory not found"):
        load_dataset(f"cifar10:{tmp_path / 'nope'}")
    with pytest.raises(DataError, match="no batch files"):
        load_dataset(f"cifar10:{tmp_path}")
    p = tmp_path / "data_batch_1"
    with open(p, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(DataError, match=r"shape \(n, 3072\)"):
        load_cifar10_batches(p)
    p.write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="not a CIFAR-10 python batch"):
        load_cifar10_batches(p)


# ------------------------------------------------------------------ MNIST idx

def _idx_bytes(arr, type_byte):
    header = bytes([0, 0, type_byte, arr.ndim]) + np.array(arr.shape, ">u4").tobytes()
    return header + arr.tobytes()


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_round_trip(tmp_path, gz):
    rng = np.random.default_rng(2)
    imgs = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 5).astype(np.uint8)
    suffix = ".gz" if gz else ""
    write = (lambda p, b: gzip.open(p, "wb").write(b)) if gz else (lambda p, b: p.write_bytes(b))
    ip = tmp_path / f"train-images-idx3-ubyte{suffix}"
    lp = tmp_path / f"train-labels-idx1-ubyte{suffix}"
    write(ip, _idx_bytes(imgs, 0x08))
    write(lp, _idx_bytes(labels, 0x08))
    X, y = load_mnist_idx(ip, lp)
    assert X.shape == (5, 28, 28, 1) and X.max() <= 1.0
    np.testing.assert_array_equal(X[..., 0] * 255, imgs)
    np.testing.assert_array_equal(y, labels)
    ds = load_dataset(f"mnist:{tmp_path}:3")
    assert ds.X.shape == (3, 28, 28, 1)


def test_idx_big_endian_non_byte_type(tmp_path):
    a = (np.arange(6).reshape(2, 3) - 3).astype(">i4")
    p = tmp_path / "a.idx"
    p.write_bytes(_idx_bytes(a, 0x0C))
    from ntksym.data import _read_idx

    np.testing.assert_array_equal(_read_idx(p), a)


def test_mnist_errors(tmp_path):
    imgs = np.zeros((3, 4, 4), np.uint8)
    (tmp_path / "i").write_bytes(_idx_bytes(imgs, 0x08))
    (tmp_path / "l").write_bytes(_idx_bytes(np.zeros(2, np.uint8), 0x08))
    with pytest.raises(DataError, match="expected 3 labels"):
        load_mnist_idx(tmp_path / "i", tmp_path / "l")
    with pytest.raises(DataError, match="file not found: .*missing"):
        load_mnist_idx(tmp_path / "missing", tmp_path / "l")
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="bad magic"):
        load_mnist_idx(tmp_path / "bad", tmp_path / "l")
    (tmp_path / "short").write_bytes(_idx_bytes(imgs, 0x08)[:-5])
    with pytest.raises(DataError, match="file has"):
        load_mnist_idx(tmp_path / "short", tmp_path / "l")
    with pytest.raises(DataError, match="no idx files"):
        load_dataset(f"mnist:{tmp_path}")


# ------------------------------------------------------------------ standardization

def test_standardize_channels_uses_training_statistics():
    rng = np.random.default_rng(3)
    train = rng.random((20, 4, 4, 3)) * np.array([1.0, 5.0, 0.1]) + np.array([0.0, 2.0, -1.0])
    test = rng.random((6, 4, 4, 3))
    tr, te = standardize_channels(train, test)
    np.testing.assert_allclose(tr.reshape(-1, 3).mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(tr.reshape(-1, 3).std(0), 1, rtol=1e-12)
    mean = train.reshape(-1, 3).mean(0)
    std = train.reshape(-1, 3).std(0)
    np.testing.assert_allclose(te, (test - mean) / std)
    only = standardize_channels(train)
    np.testing.assert_allclose(only, tr)
    with pytest.raises(DataError, match="channels"):
        standardize_channels(train, np.zeros((2, 4, 4, 1)))


# ------------------------------------------------------------------ arrays

def test_load_array_npy_and_npz(tmp_path):
    a = np.arange(12.0).reshape(3, 4)
    np.save(tmp_path / "a.npy", a)
    np.testing.assert_array_equal(load_array(tmp_path / "a.npy"), a)
    np.savez(tmp_path / "x.npz", x=a, y=np.zeros(3))
    np.testing.assert_array_equal(load_array(tmp_path / "x.npz"), a)
    np.savez(tmp_path / "bigx.npz", X=a)
    np.testing.assert_array_equal(load_array(tmp_path / "bigx.npz"), a)
    np.savez(tmp_path / "only.npz", data=a)
    np.testing.assert_array_equal(load_array(tmp_path / "only.npz"), a)
    np.savez(tmp_path / "two.npz", a=a, b=a)
    with pytest.raises(DataError, match=r"two\.npz: no array named 'x'"):
        load_array(tmp_path / "two.npz")


def test_load_array_errors(tmp_path):
    with pytest.raises(DataError, match=r"--x: file not found: .*nope\.npy"):
        load_array(tmp_path / "nope.npy", name="--x")
    (tmp_path / "a.json").write_text("[1, 2]\n")      # CSV/TSV: tests/engine/test_csv_input.py
    with pytest.raises(DataError, match=r"a\.json: expected a \.npy, \.npz, \.csv or \.tsv"):
        load_array(tmp_path / "a.json")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"obj\.npy: cannot load"):
        load_array(tmp_path / "obj.npy")
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(DataError, match="numeric array"):
        load_array(tmp_path / "s.npy")
    (tmp_path / "junk.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"junk\.npy"):
        load_array(tmp_path / "junk.npy")


def test_check_finite():
    ok = np.ones((2, 3))
    assert check_finite(ok) is ok
    bad = np.ones((2, 3))
    bad[1, 2], bad[1, 0] = np.inf, np.nan
    with pytest.raises(DataError, match=r"X2 has a non-finite value nan at index \(1, 0\) \(2 "):
        check_finite(bad, "X2")
    check_finite(np.arange(3))  # integers are always finite


@pytest.mark.parametrize("threads", [0, -1, 10 ** 6, 1.5, True])
def test_library_refuses_thread_counts_out_of_range(threads, spec_dir):
    """ntksym.kernel(threads=...) is checked like --threads: a DataError naming the range,
    not numba's ValueError (or, for 0, silently all cores)."""
    import ntksym
    arch = ntksym.load_spec(spec_dir / "cntk_mlp_depth1.toml")
    with pytest.raises(DataError, match="threads must be an integer from 1 to"):
        ntksym.kernel(arch, np.ones((2, 64)), threads=threads)
