"""A resume trusts nothing on disk it has not checked (issue 15): each way testers fooled it.

Every damaged or inconsistent state is refused with one ResumeError line (exit status 2 from
the CLI) that leaves the files as they were and says how to start afresh; what is consistent
resumes to the uninterrupted run's matrix, bit for bit.  Never exit 0 with a wrong matrix,
never a traceback.  The tiny runs and killed states come from tests/scale/conftest.py.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ntksym
from ntksym.errors import NtksymError, OutputExistsError
from ntksym.scale.lock import OutputBusyError, lock_path
from ntksym.scale.manifest import ResumeError, tile_checksum
from ntksym.scale.store import TiledRun
from ntksym.scale.tiles import manifest_path, partial_path, tiled_kernel
from testkit import ROOT, SPEC_DIR


def _edit(out, change):
    p = manifest_path(out)
    m = json.loads(p.read_text())
    change(m)
    p.write_text(json.dumps(m))


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in Path(folder).iterdir()}


def _refused(tiny, name, folder, match):
    """Resume is refused with one ResumeError line matching ``match``; nothing was touched."""
    before = _snapshot(folder)
    with pytest.raises(ResumeError, match=match) as e:
        tiny.resume(name, folder)
    msg = str(e.value)
    assert "\n" not in msg and "--force" in msg
    assert _snapshot(folder) == before            # a refusal changes nothing on disk
    return msg


def _zero_tile(path, bounds, shape, offset=128):
    """Overwrite one tile of the float64 .npy at ``path`` with zeros, in place."""
    i0, i1, j0, j1 = bounds
    with open(path, "r+b") as fh:
        for r in range(i0, i1):
            fh.seek(offset + 8 * (r * shape[1] + j0))
            fh.write(bytes(8 * (j1 - j0)))


@pytest.mark.parametrize("done", ["", "!!!", "AAAA", "gA=", "/w=="])
def test_damaged_done_bitmap_is_refused(tiny, tmp_path, done):
    # "" and "!!!" are the testers' cases: once every tile looked done and the partial's zeros
    # became the output; "AAAA" has the wrong length, "gA=" bad padding, "/w==" padding bits
    out = tiny.restore("killed-2", tmp_path)
    _edit(out, lambda m: m.update(done=done))
    _refused(tiny, "killed-2", tmp_path, "done bitmap is damaged")


def test_done_bitmap_claiming_a_pending_tile_is_refused(tiny, tmp_path):
    out = tiny.restore("killed-2", tmp_path)
    _edit(out, lambda m: m.update(done="8A==", n_done=4))      # tiles 0-3, but 2 and 3 pending
    _refused(tiny, "killed-2", tmp_path, "gives done tile 2 no checksum")


@pytest.mark.parametrize("tile, match", [(3, "tiles of 3 make 10"), (6, "tiles of 6 make 3"),
                                         (0, "tile 0"), ("4", "not an integer"),
                                         (None, "not an integer"), (True, "not an integer")])
def test_edited_tile_size_is_refused(tiny, tmp_path, tile, match):
    out = tiny.restore("killed-2", tmp_path)
    _edit(out, lambda m: m.update(tile=tile))
    _refused(tiny, "killed-2", tmp_path, match)


def test_tile_size_edited_consistently_still_fails_the_checksums(tiny, tmp_path):
    # tile 4 -> 6 with a matching grid, bitmap and checksum list: the checksums are of tiles of
    # 4 (bounds included), so the first tile trusted does not verify
    out = tiny.restore("killed-2", tmp_path)
    _edit(out, lambda m: m.update(tile=6, n_tiles=3, n_done=1, done="gA==",
                                  checksums=m["checksums"][:1] + [None, None]))
    _refused(tiny, "killed-2", tmp_path, "tile 0 .* does not match its checksum")


def test_status_complete_on_an_unfinished_run_is_refused(tiny, tmp_path):
    out = tiny.restore("killed-2", tmp_path)
    _edit(out, lambda m: m.update(status="complete"))
    _refused(tiny, "killed-2", tmp_path, "says complete with 4 of 6 tiles not done")
    assert not out.exists() and partial_path(out).exists()     # not renamed into place


@pytest.mark.parametrize("key", ["tile", "done", "checksums", "n_tiles", "status", "version",
                                 "spec_hash"])
def test_manifest_without_a_field_is_refused(tiny, tmp_path, key):
    out = tiny.restore("killed-2", tmp_path)
    _edit(out, lambda m: m.pop(key))
    msg = _refused(tiny, "killed-2", tmp_path, "manifest")
    assert repr(key) in msg or "version" in msg


def test_old_and_future_manifest_versions_are_refused(tiny, tmp_path):
    out = tiny.restore("killed-2", tmp_path)
    # a version-1 manifest as ntksym wrote it before checksums: no "checksum(s)" fields
    _edit(out, lambda m: (m.update(version=1), m.pop("checksum"), m.pop("checksums")))
    _refused(tiny, "killed-2", tmp_path, "version 1, from an ntksym that did not record tile "
                                         "checksums")
    _edit(out, lambda m: m.update(version=3))
    _refused(tiny, "killed-2", tmp_path, "version 3.*reads version 2")


@pytest.mark.parametrize("cut", [1, 200, 1000, 1152])
def test_truncated_partial_is_refused_not_padded_with_zeros(tiny, tmp_path, cut):
    out = tiny.restore("killed-5", tmp_path)
    size = partial_path(out).stat().st_size                     # 128 header + 12 * 12 * 8
    os.truncate(partial_path(out), size - cut)
    _refused(tiny, "killed-5", tmp_path, "truncated or extended")
    assert partial_path(out).stat().st_size == size - cut       # numpy's r+ memmap would pad


def test_damaged_partial_header_is_refused(tiny, tmp_path):
    out = tiny.restore("killed-2", tmp_path)
    data = bytearray(partial_path(out).read_bytes())
    data[:6] = b"\x00NUMPY"
    partial_path(out).write_bytes(bytes(data))
    _refused(tiny, "killed-2", tmp_path, "no readable .npy header")
    data = tiny.state("killed-2")["K.npy.partial"]
    data = data.replace(b"'fortran_order': False", b"'fortran_order': True ")
    partial_path(out).write_bytes(data)
    _refused(tiny, "killed-2", tmp_path, "Fortran-order")


def test_zeroed_finished_tile_is_refused_naming_it(tiny, tmp_path):
    out = tiny.restore("killed-5", tmp_path)
    _zero_tile(partial_path(out), (0, 4, 4, 8), (12, 12))         # tile 1, done
    _refused(tiny, "killed-5", tmp_path, r"tile 1 \(rows 0:4, columns 4:8\) does not match")


def test_damage_outside_the_trusted_tiles_is_recomputed(tiny, tmp_path):
    # a pending tile and the lower triangle are written over by the resume: no refusal needed
    out = tiny.restore("killed-2", tmp_path)
    _zero_tile(partial_path(out), (8, 12, 8, 12), (12, 12))       # tile 5, pending
    data = bytearray(partial_path(out).read_bytes())
    data[128 + 8 * (11 * 12 + 0)] ^= 0xFF                         # K[11, 0], mirrored later
    partial_path(out).write_bytes(bytes(data))
    tiny.resume("killed-2", tmp_path)
    assert tiny.matches("killed-2", tmp_path)


def test_finished_output_changed_afterwards_is_refused(tiny, tmp_path):
    out = tiny.restore("finished", tmp_path)
    _zero_tile(out, (4, 8, 8, 12), (12, 12))
    msg = _refused(tiny, "finished", tmp_path, "tile 4 .* changed after it was written")
    assert str(out) in msg                                       # delete it too, or --force
    out = tiny.restore("finished", tmp_path)
    data = bytearray(out.read_bytes())
    data[128 + 8 * (9 * 12 + 2)] ^= 1                             # K[9, 2] != K[2, 9]
    out.write_bytes(bytes(data))
    _refused(tiny, "finished", tmp_path, "not the mirror")
    tiny.run("finished", tmp_path, tile=4, force=True)            # the advice works
    assert tiny.matches("finished", tmp_path)


def test_finished_run_resumes_to_nothing(tiny, tmp_path):
    tiny.restore("finished", tmp_path)
    assert tiny.resume("finished", tmp_path)["computed"] == 0
    assert tiny.matches("finished", tmp_path)
    manifest_path(tmp_path / "K.npy").unlink()
    with pytest.raises(ResumeError, match="no run to resume; pass --force"):
        tiny.resume("finished", tmp_path)


@pytest.mark.parametrize("name", ["unrenamed", "both-unrenamed"])
def test_crash_between_complete_and_rename_is_finished(tiny, tmp_path, name):
    out = tiny.restore(name, tmp_path)
    first = sorted(p for p in tmp_path.iterdir() if p.name.endswith(".partial"))[0]
    data = bytearray(first.read_bytes())
    data[128 + 8 * (10 * 12 + 1)] ^= 0x40                         # lower triangle: re-mirrored
    first.write_bytes(bytes(data))
    assert tiny.resume(name, tmp_path)["computed"] == 0
    assert tiny.matches(name, tmp_path)
    assert json.loads(manifest_path(out).read_text())["status"] == "complete"
    # a trusted tile damaged before the rename is not renamed into place
    tiny.restore(name, tmp_path)
    _zero_tile(first, (0, 4, 0, 4), (12, 12))
    _refused(tiny, name, tmp_path, "tile 0 .* does not match")


@pytest.mark.parametrize("name", ["killed-0", "killed-5", "all-done", "cross-3", "both-4"])
def test_consistent_states_resume_bit_for_bit(tiny, tmp_path, name):
    tiny.restore(name, tmp_path)
    tiny.resume(name, tmp_path)
    assert tiny.matches(name, tmp_path)
    assert not lock_path(tmp_path / "K.npy").exists()


def test_refusal_advice_works(tiny, tmp_path):
    out = tiny.restore("killed-2", tmp_path)
    _edit(out, lambda m: m.update(done=""))
    msg = _refused(tiny, "killed-2", tmp_path, "damaged")
    named = msg.split("delete ")[1].split(", or pass")[0].replace(" and ", ", ").split(", ")
    assert sorted(named) == sorted([str(partial_path(out)), str(manifest_path(out))])
    for f in named:
        os.unlink(f)
    tiny.resume("killed-2", tmp_path, tile=4)             # nothing to resume: a fresh run
    assert tiny.matches("killed-2", tmp_path)
    # --force ignores even a manifest it cannot read
    tiny.restore("killed-2", tmp_path)
    manifest_path(out).write_text("{not json")
    with pytest.raises(ResumeError, match="unreadable manifest"):
        tiny.resume("killed-2", tmp_path)
    tiny.run("killed-2", tmp_path, tile=4, force=True)
    assert tiny.matches("killed-2", tmp_path)


def test_a_second_run_on_a_locked_output_is_refused(tiny, tmp_path):
    # the testers' race: two resumes of one output at once (FileNotFoundError on the partial)
    tiny.restore("killed-2", tmp_path)
    (arch, X, _), _ = tiny.args("killed-2")
    first = TiledRun(arch, X, None, tmp_path / "K.npy", resume=True).open()
    try:
        for kw in ({"resume": True}, {"force": True, "tile": 4}):
            with pytest.raises(OutputBusyError, match=f"pid {os.getpid()}") as e:
                tiny.run("killed-2", tmp_path, **kw)
            assert "\n" not in str(e.value) and isinstance(e.value, NtksymError)
    finally:
        first.close()
    tiny.resume("killed-2", tmp_path)
    assert tiny.matches("killed-2", tmp_path)


def test_a_stale_lock_file_is_taken_over(tiny, tmp_path):
    out = tiny.restore("killed-2", tmp_path)
    lock_path(out).write_text("pid 999999999 on a-host-long-gone\n")
    tiny.resume("killed-2", tmp_path)
    assert tiny.matches("killed-2", tmp_path) and not lock_path(out).exists()


def test_not_resuming_an_existing_run_is_refused_as_before(tiny, tmp_path):
    tiny.restore("killed-2", tmp_path)
    with pytest.raises(OutputExistsError, match=r"partial \(2/6 tiles\)"):
        tiny.run("killed-2", tmp_path, tile=4)


def test_checksum_is_the_documented_one_on_large_tiles():
    # a tile over 1 MiB is hashed in chunks of 64 rows on a thread pool: same digest as the
    # definition in docs/reliability.md, computed serially here
    A = np.random.default_rng(3).normal(size=(300, 800))
    B = A.astype(np.float32)
    bounds = (10, 290, 5, 795)
    h = hashlib.blake2b(b"10:290:5:795", digest_size=8)
    for a in (A, B):
        for r in range(10, 290, 64):
            chunk = np.ascontiguousarray(a[r:min(r + 64, 290), 5:795])
            h.update(hashlib.blake2b(chunk.tobytes(), digest_size=8).digest())
    assert tile_checksum([A, B], bounds) == h.hexdigest()
    A[289, 794] = np.nextafter(A[289, 794], 1.0)               # the last bit of the last entry
    assert tile_checksum([A, B], bounds) != h.hexdigest()
    assert tile_checksum([A, B], (10, 290, 5, 794)) != tile_checksum([A, B], bounds)


# ---------------------------------------------------------------- the CLI: exit 2, one line

SPEC = SPEC_DIR / "cntk_mlp_depth3.toml"


class _Killed(Exception):
    pass


def _kill_after_2(done, total):
    if done >= 2:
        raise _Killed


@pytest.fixture(scope="module")
def cli_state(tmp_path_factory):
    """A run of the CLI's spec (64 features) killed after 2 of 6 tiles, and its reference."""
    folder = tmp_path_factory.mktemp("cli")
    arch = ntksym.load_spec(SPEC)
    X = np.random.default_rng(7).normal(size=(12, 64))
    np.save(folder / "X.npy", X)
    tiled_kernel(arch, X, output=folder / "ref.npy", tile=4, progress=False)
    with pytest.raises(_Killed):
        tiled_kernel(arch, X, output=folder / "state" / "K.npy", tile=4, progress=False,
                     checkpoint_every=0.0, on_tile=_kill_after_2)
    return folder, _snapshot(folder / "state"), np.load(folder / "ref.npy")


def _cli(*args):
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "kernel", *map(str, args)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _cli_resume(folder, out):
    p = _cli(SPEC, "--x", folder / "X.npy", "-o", out, "--resume", "--quiet")
    _, err = p.communicate(timeout=300)
    return p.returncode, err


def _fresh(cli_state, tmp_path):
    _, state, _ = cli_state
    for f, data in state.items():
        (tmp_path / f).write_bytes(data)
    return tmp_path / "K.npy"


@pytest.mark.parametrize("damage", ["done", "truncate"])
def test_cli_damaged_resume_exits_2_with_one_line(cli_state, tmp_path, damage):
    folder, _, ref = cli_state
    out = _fresh(cli_state, tmp_path)
    if damage == "done":
        _edit(out, lambda m: m.update(done=""))
    else:
        os.truncate(partial_path(out), 700)
    code, err = _cli_resume(folder, out)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("ntksym: error: cannot resume") and "--force" in err
    assert not out.exists()


def test_cli_lock_held_by_a_live_then_dead_process(cli_state, tmp_path):
    folder, _, ref = cli_state
    out = _fresh(cli_state, tmp_path)
    code = ("import sys, time\nfrom ntksym.scale.lock import OutputLock\n"
            "OutputLock(sys.argv[1]).acquire()\nprint('locked', flush=True)\ntime.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        rc, err = _cli_resume(folder, out)
        assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert f"being written by another ntksym run (pid {holder.pid} on " in err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock_path(out).exists()                 # left behind by the killed holder
    rc, err = _cli_resume(folder, out)
    assert rc == 0, err
    assert np.array_equal(np.load(out), ref) and not lock_path(out).exists()


def test_cli_two_resumes_at_once_never_both_write(cli_state, tmp_path):
    folder, _, ref = cli_state
    out = _fresh(cli_state, tmp_path)
    procs = [_cli(SPEC, "--x", folder / "X.npy", "-o", out, "--resume", "--quiet")
             for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    results = [(p.returncode, err) for p, err in zip(procs, errs)]
    for rc, err in results:
        assert rc == 0 or (rc == 2 and "being written by another ntksym run" in err
                           and err.count("\n") == 1), err
    assert 0 in [rc for rc, _ in results]
    assert np.array_equal(np.load(out), ref)
    assert json.loads(manifest_path(out).read_text())["status"] == "complete"
    assert not partial_path(out).exists() and not lock_path(out).exists()


def test_disk_filling_before_the_run_is_one_message_not_sigbus(tmp_path, monkeypatch):
    """The partial file's blocks are allocated when it is created (posix_fallocate): a disk
    without room for them refuses the run at its start, leaving no partial or manifest."""
    import errno

    from ntksym.errors import DataError

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    arch = ntksym.load_spec("spec/cntk_mlp_depth1.toml")
    X = np.random.default_rng(0).standard_normal((12, 64))
    out = tmp_path / "K.npy"
    with pytest.raises(DataError, match="not enough disk space"):
        tiled_kernel(arch, X, output=out, tile=4)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
