"""The Dask backend: a LocalCluster of 2 worker processes gives the threaded result, also when
one worker is killed mid-run: the same pairs by the same compiled program, up to the last bit
of the BLAS Gram products (a worker's BLAS runs on one thread, and on some CPUs (AVX-512
OpenBLAS) one thread and two round a product differently in the last bit)."""

import os
import signal

import numpy as np
import pytest

import ntksym
from ntksym.scale.tiles import tiled_kernel

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def arch(spec_dir):
    return ntksym.load_spec(spec_dir / "cntk_mlp_depth3.toml")


@pytest.fixture(scope="module")
def client():
    from ntksym.scale.cluster import connect
    c, cluster = connect(workers=2)
    yield c
    c.close()
    cluster.close()


def same(a, b):
    """Equal up to the last bits of the Gram products (1e-13 of the matrix)."""
    return a.shape == b.shape and np.abs(a - b).max() <= 1e-13 * np.abs(a).max()


def _data(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 64))


def test_local_cluster_equals_threaded(arch, client, tmp_path):
    X, Z = _data(300), _data(70, seed=1)
    assert len(client.nthreads()) == 2
    tiled_kernel(arch, X, output=tmp_path / "t.npy", tile=60, progress=False)
    info = tiled_kernel(arch, X, output=tmp_path / "d.npy", tile=60, progress=False,
                        client=client)
    assert info["computed"] == info["tiles"] == 15
    assert same(np.load(tmp_path / "t.npy"), np.load(tmp_path / "d.npy"))
    # a cross kernel in float32 too
    tiled_kernel(arch, X, Z, output=tmp_path / "tc.npy", tile=64, kind="nngp", dtype="float32",
                 progress=False)
    tiled_kernel(arch, X, Z, output=tmp_path / "dc.npy", tile=64, kind="nngp", dtype="float32",
                 progress=False, client=client)
    assert same(np.load(tmp_path / "tc.npy"), np.load(tmp_path / "dc.npy"))
    # both workers took part
    assert all(n > 0 for n in client.run(lambda: len(
        __import__("ntksym.scale.cluster", fromlist=["_WORKER_ARCH"])._WORKER_ARCH)).values())


def test_killed_worker_costs_only_its_tiles(arch, client, tmp_path):
    X = _data(500, seed=2)
    ref = tmp_path / "ref.npy"
    tiled_kernel(arch, X, output=ref, tile=40, progress=False)
    pids = client.run(os.getpid)                        # {worker address: pid}
    victim = sorted(pids.values())[0]
    killed = []

    def kill_one(done, total):
        if done == 5 and not killed:
            os.kill(victim, signal.SIGKILL)
            killed.append(done)

    info = tiled_kernel(arch, X, output=tmp_path / "d.npy", tile=40, progress=False,
                        client=client, on_tile=kill_one)
    assert killed and info["computed"] == info["tiles"] == 91
    assert same(np.load(ref), np.load(tmp_path / "d.npy"))
    assert victim not in client.run(os.getpid).values()      # the nanny started a new worker


def test_images_and_both_kernels_tile_on_the_cluster(client, tmp_path, spec_dir):
    # the CNTK-GAP on 8x8x1 digits (blank pixels: zero-variance patches) tiles on Dask workers
    # exactly as in one process, for both kernels at once (one memmap each)
    from ntksym.data import load_dataset
    gap = ntksym.load_spec(spec_dir / "cntk_gap_digits_depth4.toml")
    X = load_dataset("digits").X[:22].reshape(-1, 8, 8, 1)
    ref = ntksym.kernel(gap, X, kind="both")
    t = tiled_kernel(gap, X, output=tmp_path / "t.npy", kind="both", tile=8, progress=False)
    d = tiled_kernel(gap, X, output=tmp_path / "d.npy", kind="both", tile=8, progress=False,
                     client=client)
    assert d["computed"] == d["tiles"] == 6
    for name in ("nngp", "ntk"):
        assert same(np.load(t["files"][name]), np.load(d["files"][name]))
        np.testing.assert_allclose(np.load(d["files"][name]), ref[name], rtol=1e-12)
        assert np.isfinite(ref[name]).all()
