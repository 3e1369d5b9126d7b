"""Tiled, resumable kernel runs: tiles, manifest, refusals, SIGKILL + resume bit for bit."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ntksym
from ntksym.errors import DataError, OutputExistsError
from ntksym.scale.progress import Progress
from ntksym.scale.run import kernel_command, parse_bytes, plan
from ntksym.scale.tiles import (
    compute_tile,
    manifest_path,
    partial_path,
    tile_grid,
    tiled_kernel,
)
from testkit import ROOT, SPEC_DIR

SPEC = SPEC_DIR / "cntk_mlp_depth3.toml"
SPEC_OTHER = SPEC_DIR / "cntk_mlp_depth2.toml"


@pytest.fixture(scope="module")
def arch():
    return ntksym.load_spec(SPEC)


def _data(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 64))


class _Stop(Exception):
    pass


def _interrupt_after(k):
    def cb(done, total):
        if done >= k:
            raise _Stop
    return cb


def test_tile_grid_covers_upper_triangle_once():
    for n, t in [(1, 4), (7, 3), (10, 5), (11, 4)]:
        cover = np.zeros((n, n), int)
        for i0, i1, j0, j1 in tile_grid(n, n, t, True):
            assert j0 >= i0
            cover[i0:i1, j0:j1] += 1
        assert (cover[np.triu_indices(n)] == 1).all()
        i, j = np.tril_indices(n, -1)
        # below the diagonal only the diagonal tiles' own lower halves (computed by mirroring)
        assert (cover[i, j] == (i // t == j // t)).all()
    cover = np.zeros((5, 8), int)
    for i0, i1, j0, j1 in tile_grid(5, 8, 3, False):
        cover[i0:i1, j0:j1] += 1
    assert (cover == 1).all()


def test_tiled_equals_engine_symmetric_cross_float32(arch, tmp_path):
    X, Z = _data(23), _data(9, seed=1)
    tiled_kernel(arch, X, output=tmp_path / "s.npy", tile=5, progress=False)
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), ntksym.kernel(arch, X), rtol=1e-12)
    S = np.load(tmp_path / "s.npy")
    assert np.array_equal(S, S.T)                           # mirrored, not recomputed
    tiled_kernel(arch, X, Z, output=tmp_path / "c.npy", tile=4, kind="nngp", dtype="float32",
                 progress=False)
    C = np.load(tmp_path / "c.npy")
    assert C.dtype == np.float32 and C.shape == (23, 9)
    np.testing.assert_allclose(C, ntksym.kernel(arch, X, Z, kind="nngp"), rtol=1e-6)
    m = json.loads(manifest_path(tmp_path / "c.npy").read_text())
    assert m["status"] == "complete" and m["n_done"] == m["n_tiles"] == 6 * 3
    assert not partial_path(tmp_path / "c.npy").exists()


def test_compute_tile_is_a_block_of_the_kernel(arch):
    X = _data(12)
    K = ntksym.kernel(arch, X)
    np.testing.assert_allclose(compute_tile(arch, X[2:7], X[5:12]), K[2:7, 5:12], rtol=1e-12)
    np.testing.assert_allclose(compute_tile(arch, X[3:9]), K[3:9, 3:9], rtol=1e-12)


def test_interrupted_in_process_run_resumes_to_same_bits(arch, tmp_path):
    X = _data(40)
    out = tmp_path / "K.npy"
    with pytest.raises(_Stop):
        tiled_kernel(arch, X, output=out, tile=7, progress=False, checkpoint_every=0.0,
                     on_tile=_interrupt_after(5))
    # a partial run is never mistaken for a finished output
    assert not out.exists() and partial_path(out).exists()
    m = json.loads(manifest_path(out).read_text())
    assert m["status"] == "running" and m["n_done"] == 5
    with pytest.raises(OutputExistsError, match="--resume"):
        tiled_kernel(arch, X, output=out, tile=7, progress=False)
    with pytest.raises(DataError, match="--tile 7"):
        tiled_kernel(arch, X, output=out, tile=8, resume=True, progress=False)
    with pytest.raises(DataError, match="dtype"):
        tiled_kernel(arch, X, output=out, dtype="float32", resume=True, progress=False)
    seen = []
    info = tiled_kernel(arch, X, output=out, resume=True, progress=False,
                        on_tile=lambda d, t: seen.append(d))
    assert info["computed"] == info["tiles"] - 5 and seen[0] == 6
    ref = tmp_path / "ref.npy"
    tiled_kernel(arch, X, output=ref, tile=7, progress=False)
    assert np.array_equal(np.load(out), np.load(ref))
    # resuming a finished run does nothing; --force starts over
    assert tiled_kernel(arch, X, output=out, resume=True, progress=False)["computed"] == 0
    assert tiled_kernel(arch, X, output=out, tile=9, force=True, progress=False)["tile"] == 9


def test_both_and_per_layer_write_one_memmap_each_and_resume(arch, tmp_path):
    X, Z = _data(33), _data(12, seed=4)
    ref = ntksym.kernel(arch, X, kind="both", per_layer=True)
    assert len(ref) > 3                       # nngp, ntk and at least two per-layer terms
    out = tmp_path / "K.npy"
    with pytest.raises(_Stop):
        tiled_kernel(arch, X, output=out, kind="both", per_layer=True, tile=8,
                     progress=False, checkpoint_every=0.0, on_tile=_interrupt_after(4))
    m = json.loads(manifest_path(out).read_text())
    assert m["outputs"] == list(ref) and m["n_done"] == 4 and m["status"] == "running"
    # a resume asking for other kernels is refused, naming what differs
    with pytest.raises(DataError, match="different kernel kind"):
        tiled_kernel(arch, X, output=out, kind="ntk", resume=True, progress=False)
    with pytest.raises(DataError, match="different kernels"):
        tiled_kernel(arch, X, output=out, kind="both", resume=True, progress=False)
    info = tiled_kernel(arch, X, output=out, kind="both", per_layer=True, resume=True,
                        progress=False)
    assert info["computed"] == info["tiles"] - 4
    assert not out.exists()                   # several kernels: OUT.<name>.npy, never OUT.npy
    assert set(info["files"]) == set(ref)
    assert Path(info["files"]["nngp"]).name == "K.nngp.npy"
    for name, path in info["files"].items():
        assert Path(path).exists() and not partial_path(path).exists()
        np.testing.assert_allclose(np.load(path), ref[name], rtol=1e-12, atol=1e-12)
    # the per-layer files sum to the NTK file
    terms = sum(np.load(p) for n, p in info["files"].items() if n.startswith("ntk["))
    np.testing.assert_allclose(terms, np.load(info["files"]["ntk"]), rtol=1e-12)
    # a cross kernel in float32, kind "both": the same numbers as the engine's
    outc = tmp_path / "C.npy"
    infoc = tiled_kernel(arch, X, Z, output=outc, kind="both", dtype="float32", tile=5,
                         progress=False)
    refc = ntksym.kernel(arch, X, Z, kind="both", dtype="float32")
    for name in ("nngp", "ntk"):
        assert np.array_equal(np.load(infoc["files"][name]), refc[name])
    # an existing OUT.<name>.npy is not overwritten without --force
    (tmp_path / "D.nngp.npy").write_bytes(b"x")
    with pytest.raises(OutputExistsError, match="D.nngp.npy"):
        tiled_kernel(arch, X, output=tmp_path / "D.npy", kind="both", progress=False)


def test_cli_kernel_both_tiled_writes_two_files(arch, tmp_path):
    X = _data(20)
    np.save(tmp_path / "X.npy", X)
    p = _cli(SPEC, "--x", tmp_path / "X.npy", "--kernel", "both", "--tile", 8, "-o",
             tmp_path / "K.npy", "--json")
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["kernels"] == ["nngp", "ntk"]
    assert summary["output"] == {"nngp": str(tmp_path / "K.nngp.npy"),
                                 "ntk": str(tmp_path / "K.ntk.npy")}
    ref = ntksym.kernel(arch, X, kind="both")
    for name in ("nngp", "ntk"):
        np.testing.assert_allclose(np.load(tmp_path / f"K.{name}.npy"), ref[name],
                                   rtol=1e-12, atol=1e-12)


def test_progress_text_and_quiet_when_piped():
    import io
    buf = io.StringIO()
    p = Progress(10, done=2, stream=buf)                     # StringIO is not a terminal
    p.update(5)
    p.close()
    assert buf.getvalue() == ""
    p = Progress(10, done=2, enabled=True, stream=buf)
    p.t0 -= 2.0                                              # 3 tiles in 2 s
    p.update(5, force=True)
    assert "tiles 5/10 (50%)" in buf.getvalue() and "1.5 tiles/s" in buf.getvalue()
    assert "ETA 0:00:03" in buf.getvalue()


def test_parse_bytes_and_max_memory_plan(arch):
    assert parse_bytes("512M") == 512 * 2**20 and parse_bytes("2GiB") == 2 * 2**30
    with pytest.raises(DataError, match="memory size"):
        parse_bytes("lots")
    X = _data(300)
    free = plan(arch, X, tile=256, calibrate_time=False)
    assert free["tile"] == 256 and free["pairs"] == 300 * 301 // 2 and free["tiles"] == 3
    budget = free["base_rss_bytes"] + 200_000
    tight = plan(arch, X, tile=256, max_memory=budget, calibrate_time=False)
    assert tight["retiled"] and tight["tile"] < 256
    assert tight["base_rss_bytes"] + tight["working_bytes"] <= budget + 50 * 2**20
    with pytest.raises(DataError, match="max-memory"):
        plan(arch, X, tile=256, max_memory=1000, calibrate_time=False)


def test_dry_run_reports_pairs_time_memory(arch):
    X = _data(200)
    s = kernel_command(arch, X, dry_run=True, tile=64)
    assert s["pairs"] == 200 * 201 // 2 and s["tiles"] == 10
    assert s["estimated_seconds"] >= 0 and s["seconds_per_pair"] > 0
    assert s["output_bytes"] == 200 * 200 * 8
    assert s["peak_rss_estimate_bytes"] > s["output_bytes"]


def test_max_memory_retiles_an_in_memory_run(arch, tmp_path):
    X = _data(600)
    out = tmp_path / "K.npy"
    from ntksym.scale.run import current_rss
    # room for tiles (2 MiB) but not for the 600 x 600 in-memory matrix (2.7 MiB)
    limit = current_rss() + 2 * 2**20
    s = kernel_command(arch, X, output=out, max_memory=str(limit))
    assert s["tiles"] > 1 and out.exists()
    np.testing.assert_allclose(np.load(out), ntksym.kernel(arch, X), rtol=1e-12)
    assert kernel_command(arch, X, output=tmp_path / "big.npy", max_memory="64G") is None


# ---------------------------------------------------------------- the CLI, killed and resumed

def _cli(*args, env=None):
    return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "kernel", *map(str, args)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_resume_with_different_spec_or_data_exits_2(arch, tmp_path):
    X = _data(30)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "X_other.npy", _data(30, seed=5))
    out = tmp_path / "K.npy"
    with pytest.raises(_Stop):
        tiled_kernel(arch, X, output=out, tile=6, progress=False, checkpoint_every=0.0,
                     on_tile=_interrupt_after(3))
    for spec, x, word in [(SPEC_OTHER, "X.npy", "spec"), (SPEC, "X_other.npy", "data")]:
        p = _cli(spec, "--x", tmp_path / x, "--tile", 6, "-o", out, "--resume")
        _, err = p.communicate(timeout=120)
        assert p.returncode == 2, err.decode()
        assert f"different {word}" in err.decode() and "Traceback" not in err.decode()
    assert partial_path(out).exists() and not out.exists()   # the refused resume left it alone


def test_sigkill_at_random_moments_then_resume_is_bit_for_bit(arch, tmp_path):
    rng = random.Random(1234)
    n, tile = 1400, 70                                   # 210 tiles, a few seconds of work
    X = _data(n, seed=3)
    np.save(tmp_path / "X.npy", X)
    ref = tmp_path / "ref.npy"
    tiled_kernel(arch, X, output=ref, tile=tile, progress=False)
    out = tmp_path / "K.npy"
    env = dict(os.environ, NTKSYM_CHECKPOINT_SECONDS="0.05")
    args = (SPEC, "--x", tmp_path / "X.npy", "--tile", tile, "-o", out, "--resume", "--quiet")
    kills, restarts, progress_seen = 0, 0, []
    while kills < 10:
        mpath = manifest_path(out)
        before = mpath.stat().st_mtime_ns if mpath.exists() else 0
        p = _cli(*args, env=env)
        # kill at a random moment once this process has started writing tiles
        deadline = time.monotonic() + 120
        while p.poll() is None and time.monotonic() < deadline:
            if mpath.exists() and mpath.stat().st_mtime_ns != before:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
            if mpath.exists():
                progress_seen.append(json.loads(mpath.read_text())["n_done"])
            assert not out.exists() or json.loads(mpath.read_text())["status"] == "complete"
        else:
            # finished before we struck (a fast machine): start over so that ten kills land
            assert p.returncode == 0, p.stderr.read().decode()
            assert np.array_equal(np.load(out), np.load(ref))
            out.unlink()
            mpath.unlink()
            restarts += 1
            assert restarts < 5
    p = _cli(*args, env=env)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()
    assert np.array_equal(np.load(out), np.load(ref))
    assert json.loads(manifest_path(out).read_text())["status"] == "complete"
    assert not partial_path(out).exists()
    assert max(progress_seen) > 0                       # kills did land mid-run
