"""Progress on stderr (ntksym.progress): drawn on a terminal, silent when piped or with --quiet,
plain lines when forced onto a file; the long commands show it under a pseudo-terminal."""

import io
import os
import pty
import subprocess
import sys
import threading

import pytest

from ntksym import progress
from testkit import ROOT

MLP1 = str(ROOT / "spec" / "cntk_mlp_depth1.toml")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_forced_on_a_file_writes_plain_lines():
    out = io.StringIO()
    with progress.task("widths", total=2, enabled=True, stream=out) as outer:
        for w in (8, 16):
            with progress.task(f"networks of width {w}", total=3) as inner:
                for _ in range(3):
                    inner.update()
            outer.update()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[0] == "widths 0/2 (0%)"
    assert lines[1] == "widths 0/2 (0%) > networks of width 8 0/3 (0%)"
    assert lines[-1].startswith("widths 2/2 done in ")


def test_terminal_redraws_one_line_and_erases_it():
    term = Terminal()
    with progress.task("reproduce x", stream=term):
        with progress.task("rows", total=4) as t:
            t.set(4)
    text = term.getvalue()
    assert text.startswith("\rreproduce x  ")
    assert "\rreproduce x  0.0 s > rows 0/4 (0%)" in text       # nested tasks on one line
    assert "\n" not in text and text.endswith("\r\x1b[K")      # transient: erased at the end


def test_failure_leaves_the_line_and_a_newline():
    term = Terminal()
    with pytest.raises(ValueError):
        with progress.task("networks", total=3, stream=term) as t:
            t.update()
            raise ValueError("boom")
    assert term.getvalue().endswith("networks 1/3 (33%)\x1b[K\n") or \
        term.getvalue().endswith("\x1b[K\n")


def test_enabled_follows_flag_then_configure_then_terminal():
    term, pipe = Terminal(), io.StringIO()
    assert progress.enabled(None, term) and not progress.enabled(None, pipe)
    restore = progress.configure(False)                 # --quiet
    try:
        assert not progress.enabled(None, term) and progress.enabled(True, term)
        with progress.task("quiet", total=1, stream=term) as t:
            t.update()
        assert term.getvalue() == ""
    finally:
        restore()
    restore = progress.configure(True)                  # --progress
    try:
        assert progress.enabled(None, pipe)
    finally:
        restore()
    assert progress.enabled(None, term) and not progress.enabled(None, pipe)


def test_write_keeps_the_line(monkeypatch):
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    with progress.task("networks", total=2):
        progress.write("ntksym: warning: something")
    text = term.getvalue()
    assert "\r\x1b[Kntksym: warning: something\n\rnetworks 0/2 (0%)" in text


def test_status_ticks_the_elapsed_time(monkeypatch):
    monkeypatch.setattr(progress, "TICK_S", 0.02)
    term = Terminal()
    ticked = threading.Event()
    with progress.task("compiling mlp (first use of this spec, cached afterwards)",
                       stream=term):
        for _ in range(200):
            if term.getvalue().count("\rcompiling") >= 3:
                ticked.set()
                break
            ticked.wait(0.01)
    assert ticked.is_set()


def test_format_seconds_and_rates():
    t = progress.Task("rows", total=10)
    t.done, t.t0 = 5, t.t0 - 10.0
    assert t.text() == "rows 5/10 (50%)  2 s each  ETA 10 s"


# ------------------------------------------------------------------ the commands on a terminal

def run_on_terminal(*args, tty=True, cwd=None):
    """Run ``python cli.py ARGS`` with stderr on a pseudo-terminal (or a pipe) and stdout on a
    pipe; returns (exit status, stdout, stderr) as text."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_NUM_THREADS="1", MPLBACKEND="Agg")
    cmd = [sys.executable, str(ROOT / "cli.py"), *map(str, args)]
    if not tty:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                         env=env, cwd=cwd)
    os.close(slave)
    chunks = []

    def drain():
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:                             # EIO: the other side is closed
                break
            if not data:
                break
            chunks.append(data)
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out = p.stdout.read().decode()
    code = p.wait(timeout=300)
    reader.join(10)
    os.close(master)
    return code, out, b"".join(chunks).decode(errors="replace")


EMPIRICAL = ["empirical", MLP1, "--dataset", "digits:3", "--width", "16", "--samples", "3"]


def test_empirical_progress_on_a_terminal_only():
    code, out, err = run_on_terminal(*EMPIRICAL)
    assert code == 0 and "samples:" in out
    assert "networks of width 16" in err and "\r" in err
    assert "networks" not in out                        # stdout stays the result alone
    code, out, err = run_on_terminal(*EMPIRICAL, tty=False)
    assert code == 0 and "samples:" in out and err == ""     # piped: nothing


# the other long commands in-process, stderr a terminal (the pty test above covers the real one)

def run_with_terminal(capsys, monkeypatch, *args):
    import cli
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in args])
    return e.value.code, capsys.readouterr().out, term.getvalue()


def test_converge_shows_widths_and_networks(capsys, monkeypatch):
    code, out, err = run_with_terminal(capsys, monkeypatch, "converge", MLP1, "--dataset",
                                       "digits:3", "--widths", "8,16", "--samples", 2)
    assert code == 0 and "slope" in out
    assert "widths 0/2 (0%) > networks of width 8" in err
    code, out, err = run_with_terminal(capsys, monkeypatch, "converge", MLP1, "--dataset",
                                       "digits:3", "--widths", "8,16", "--samples", 2,
                                       "--quiet")
    assert code == 0 and err == ""


def test_prune_sim_and_reproduce_show_their_steps(capsys, monkeypatch, tmp_path):
    code, out, err = run_with_terminal(capsys, monkeypatch, "prune-sim", "--width", 32,
                                       "--quick")
    assert code == 0 and "gradient ascent steps" in err and "certificate" in out
    code, out, err = run_with_terminal(capsys, monkeypatch, "reproduce",
                                       "qian-klabjan-simulator", "--quick", "--out", tmp_path)
    assert code == 0 and "certificate_holds: yes" in out
    assert "reproduce qian-klabjan-simulator" in err and " > configurations " in err


def test_forced_progress_into_a_pipe_is_plain_lines(capsys):
    import cli
    with pytest.raises(SystemExit) as e:
        cli.main([*EMPIRICAL, "--progress"])
    err = capsys.readouterr().err
    assert e.value.code == 0 and "networks of width 16 3/3 done in" in err and "\r" not in err


def test_in_memory_kernel_shows_a_status_line(capsys, monkeypatch):
    code, out, err = run_with_terminal(capsys, monkeypatch, "kernel", MLP1, "--dataset",
                                       "digits:5", "--engine", "numpy")
    assert code == 0 and "shape:" in out
    assert "\rntk kernel 5 x 5 (numpy)" in err and err.endswith("\r\x1b[K")
