"""Ctrl-C prints one line, "aborted", exits 130 and leaves no output, whenever it comes: while
the modules load, during the derivation or the first (cold) Numba compilation, or later."""

import os
import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process")
@pytest.mark.parametrize("delay", [0.3, 2.5, 5.0])
def test_ctrl_c_prints_aborted_and_writes_nothing(tmp_path, root, delay):
    cache = tmp_path / "cache"                  # a cold cache: the first numba call compiles
    env = dict(os.environ, NTKSYM_CACHE_DIR=str(cache), NUMBA_CACHE_DIR=str(cache),
               NUMBA_NUM_THREADS="1")
    out = tmp_path / "out"
    # --engine compiled: 40 examples would otherwise be evaluated in NumPy, without compiling
    p = subprocess.Popen([sys.executable, "cli.py", "kernel", "spec/erf_mlp_bias.toml",
                          "--dataset", "digits:40", "--engine", "compiled",
                          "-o", str(out / "K.npy")],
                         cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    if p.returncode == 0:                       # finished before the signal: nothing to test
        pytest.skip("the run finished before the interrupt")
    if "init_import_site" in stderr:            # a loaded machine: still in Python's own start-up
        pytest.skip("the interrupt came before the interpreter had started ntksym")
    assert p.returncode == 130, stderr
    assert stderr == "aborted\n"
    assert not out.exists() or list(out.iterdir()) == []


def test_an_interrupt_surfacing_as_another_exception_still_reads_aborted():
    from ntksym import console
    restore = console.install()
    try:
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise SystemError("returned a result with an exception set")   # numba-style
        except SystemError as e:
            assert console.interrupted(e)
        assert not console.interrupted(ValueError("unrelated"))
        with pytest.raises(console.Interrupted):         # what Ctrl-C does in the CLI
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        assert console.interrupted(SystemError("no context left"))
    finally:
        restore()


def test_interrupt_inside_a_c_callback_takes_effect_after_it(capsys):
    """Ctrl-C that arrives while a ctypes callback runs Python (llvmlite's object cache during a
    cold compile): ctypes swallows the handler's exception; the hook of console.install drops
    its "Exception ignored" message and raises the interrupt again once the callback returned."""
    import ctypes

    from ntksym import console

    def callback():
        raise console.Interrupted

    restore = console.install()
    try:
        cb = ctypes.CFUNCTYPE(None)(callback)
        with pytest.raises(console.Interrupted):
            cb()                                     # swallowed by ctypes, re-raised later
            for _ in range(2000):
                time.sleep(0.001)
    finally:
        restore()
        console._INTERRUPTS.clear()                  # the recorded interrupt: this test's own
    assert "Exception ignored" not in capsys.readouterr().err
