"""Checks before work (issue 15): a run that would fail at its end refuses at its start with
one line and exit status 2, nothing computed and nothing written; --dry-run warns instead."""

import json
import os

import numpy as np
import pytest

import cli
import ntksym
from ntksym import preflight

MLP = "spec/cntk_mlp_depth1.toml"          # input shape [64]: digits rows


def run(capsys, *args):
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def one_error(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ntksym: error: "), err
    return lines[0]


@pytest.fixture
def no_kernel(monkeypatch):
    """The kernel must not be computed: any call fails the test."""
    def boom(*a, **k):
        raise AssertionError("the kernel was computed before the check")
    monkeypatch.setattr(ntksym, "kernel", boom)


def test_unsupported_format_refused_before_loading_anything(capsys, tmp_path, no_kernel):
    out = tmp_path / "K.txt"
    code, _, err = run(capsys, "kernel", "no-such-spec.toml", "--dataset", "digits:5",
                       "-o", out)
    assert code == 2 and "unsupported output format '.txt'" in one_error(err)
    assert ".npy or .npz" in err and not out.exists()
    # a tiled run writes one .npy memmap
    code, _, err = run(capsys, "kernel", MLP, "--dataset", "digits:5", "--tile", 2,
                       "-o", tmp_path / "K.npz")
    assert code == 2 and "must end in .npy" in one_error(err)
    assert list(tmp_path.iterdir()) == []


def test_parent_is_a_file(capsys, tmp_path, no_kernel):
    f = tmp_path / "file"
    f.write_text("x")
    code, _, err = run(capsys, "kernel", MLP, "--dataset", "digits:5", "-o", f / "sub" / "K.npy")
    assert code == 2 and "is a file, not a directory" in one_error(err)


def test_read_only_directory_mocked(capsys, tmp_path, monkeypatch, no_kernel):
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(preflight.os, "access",
                        lambda p, mode: False if str(p) == str(ro) else real(p, mode))
    code, _, err = run(capsys, "kernel", MLP, "--dataset", "digits:5", "-o", ro / "K.npy")
    assert code == 2 and "cannot write in" in one_error(err)
    assert list(ro.iterdir()) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes into a chmod 555 directory")
def test_read_only_directory_real(capsys, tmp_path, no_kernel):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = run(capsys, "kernel", MLP, "--dataset", "digits:5", "-o", ro / "K.npy")
    finally:
        ro.chmod(0o755)
    assert code == 2 and "cannot write in" in one_error(err)


def _disk(free):
    return lambda path: type("usage", (), {"total": 10**12, "used": 10**12 - free,
                                           "free": free})()


@pytest.mark.parametrize("extra", [[], ["--tile", "4"]])
def test_full_disk_refused(capsys, tmp_path, monkeypatch, no_kernel, extra):
    monkeypatch.setattr(preflight.shutil, "disk_usage", _disk(0))
    code, _, err = run(capsys, "kernel", MLP, "--dataset", "digits:8", *extra,
                       "-o", tmp_path / "K.npy")
    assert code == 2 and "not enough disk space" in one_error(err)
    assert list(tmp_path.iterdir()) == []


def test_dry_run_warns_of_a_full_disk(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(preflight.shutil, "disk_usage", _disk(1000))
    code, out, err = run(capsys, "kernel", MLP, "--dataset", "digits:8", "--tile", "4",
                         "--dry-run", "--json", "-o", tmp_path / "K.npy")
    assert code == 0, err
    warn = [ln for ln in err.splitlines() if ln.startswith("ntksym: warning: ")]
    assert len(warn) == 1 and "not enough disk space" in warn[0]
    assert "not enough disk space" in json.loads(out)["warnings"][0]
    assert list(tmp_path.iterdir()) == []


def test_low_memory_refused_with_the_tiled_alternative(capsys, tmp_path, monkeypatch,
                                                       no_kernel):
    monkeypatch.setattr(preflight, "available_memory", lambda: 100)
    code, _, err = run(capsys, "kernel", MLP, "--dataset", "digits:8", "-o", tmp_path / "K.npy")
    line = one_error(err)
    assert code == 2 and "of memory but 100 B is available" in line and "--tile" in line
    # --dry-run: the same problem as a warning, and the plan
    code, out, err = run(capsys, "kernel", MLP, "--dataset", "digits:8", "--dry-run")
    assert code == 0 and "ntksym: warning: the in-memory kernel" in err and "pairs" in out


def test_memory_within_max_memory_but_not_available(capsys, monkeypatch, no_kernel):
    monkeypatch.setattr(preflight, "available_memory", lambda: 100)
    code, _, err = run(capsys, "kernel", MLP, "--dataset", "digits:8", "--max-memory", "64G")
    assert code == 2 and "is available" in one_error(err)


def test_available_memory_and_disk_are_read():
    mem = preflight.available_memory()
    assert mem is None or mem > 0
    assert preflight.free_disk(".") > 0
    assert preflight.kernel_problems(None, 10, 10, 1, "float64", tiled=False) == []


def test_other_commands_check_their_outputs(capsys, tmp_path):
    code, _, err = run(capsys, "empirical", MLP, "--dataset", "digits:3", "--width", 8,
                       "-o", tmp_path / "E.npy")
    assert code == 2 and "must end in .npz" in one_error(err)
    f = tmp_path / "file"
    f.write_text("x")
    code, _, err = run(capsys, "codegen", MLP, "-o", f / "m.py")
    assert code == 2 and "is a file" in one_error(err)


def test_umask_respected(capsys, tmp_path):
    old = os.umask(0o027)
    try:
        code, _, err = run(capsys, "kernel", MLP, "--dataset", "digits:4",
                           "-o", tmp_path / "K.npy")
    finally:
        os.umask(old)
    assert code == 0, err
    assert (tmp_path / "K.npy").stat().st_mode & 0o777 == 0o640
    assert np.load(tmp_path / "K.npy").shape == (4, 4)
