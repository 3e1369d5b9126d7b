"""Progress on stderr for work that takes more than a few seconds.

Two kinds of task share one line, the innermost last, joined by ``" > "``:

* a counted task (``total`` given): ``networks 5/16 (31%)  2.1/s  ETA 0:05``;
* a status (no total) for one long call: ``compiling mlp (first use of this spec, cached
  afterwards)  12 s``; its elapsed time is redrawn every second by a small thread.

For example ``reproduce yang-wang-fig1 > width 256 > networks 3/64 (5%)  1.9/s  ETA 0:32``.

Whether anything is drawn: a task's own ``enabled`` argument when it is not None, else the
CLI's ``--progress`` / ``--quiet`` for the running command (:func:`configure`), else whether
stderr is a terminal, so a piped or redirected run, a notebook or a test stays silent.  On a
terminal the line is redrawn in place (at most 5 times a second) and erased when the work is
done (the result follows on stdout).  Forced onto a stream that is not a terminal
(``--progress 2> log``), it is written as plain lines: one when a task starts, at most one every
10 s while it runs, and a closing one with the time taken.

Any module may use it; it imports nothing else of ntksym::

    from ntksym import progress
    with progress.task("networks", total=16) as t:
        for s in range(16):
            ...
            t.update()
    with progress.task("compiling mlp (first use of this spec, cached afterwards)"):
        ...
    for w in progress.track(widths, "widths"):
        ...

>>> import io
>>> out = io.StringIO()
>>> with task("networks", total=2, enabled=True, stream=out) as t:
...     t.update(); t.update()
>>> out.getvalue().splitlines()[-1]
'networks 2/2 done in 0.0 s'
>>> with task("silent", total=2, enabled=False) as t:
...     t.update()
>>> t.done
1
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import time

__all__ = ["enabled", "configure", "task", "track", "write", "Task", "format_seconds"]

_FORCED: list = [None]          # the CLI's --progress (True) / --quiet (False) / None
_LOCK = threading.RLock()
_STACK: list = []               # active, drawn tasks, outermost first
_STATE = {"stream": None, "tty": False, "last": 0.0, "ticker": None, "stop": None}

REDRAW_S = 0.2                  # a terminal line is redrawn at most this often
TICK_S = 1.0                    # elapsed times are refreshed this often on a terminal
LOG_EVERY_S = 10.0              # forced onto a non-terminal: one line at most this often


def configure(flag):
    """Set the process-wide default of :func:`enabled` (True: ``--progress``, False:
    ``--quiet``, None: stderr is a terminal).  Returns a function that restores the previous
    default (the CLI calls it when the command ends).

    >>> restore = configure(False)
    >>> enabled()
    False
    >>> restore()
    """
    previous = _FORCED[0]
    _FORCED[0] = flag

    def restore():
        _FORCED[0] = previous
    return restore


def enabled(flag=None, stream=None) -> bool:
    """Whether progress is shown: ``flag`` when not None, else the :func:`configure` default,
    else whether ``stream`` (stderr) is a terminal.

    >>> enabled(True), enabled(False)
    (True, False)
    """
    return _resolve(flag, stream)


def _resolve(flag, stream):
    if flag is not None:
        return bool(flag)
    if _FORCED[0] is not None:
        return bool(_FORCED[0])
    return _isatty(sys.stderr if stream is None else stream)


def format_seconds(s) -> str:
    """``7.9 s``, ``42 s``, ``3:05``, ``1:02:03``.

    >>> format_seconds(7.94), format_seconds(42.2), format_seconds(185), format_seconds(3723)
    ('7.9 s', '42 s', '3:05', '1:02:03')
    """
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    s = int(round(s))
    if s < 3600:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Task:
    """One task: ``label``, ``total`` (None for a status), ``done`` steps.  Advance it with
    :meth:`update` (by steps) or :meth:`set` (to a count); rename it with :meth:`relabel`."""

    def __init__(self, label, total=None, drawn=False):
        self.label, self.total, self.done, self.drawn = str(label), total, 0, drawn
        self.t0 = time.monotonic()

    def update(self, n=1):
        """Advance by ``n`` steps."""
        self.set(self.done + n)

    def set(self, done):
        """Set the number of steps done."""
        self.done = done
        if self.drawn:
            _draw()

    def relabel(self, label):
        """Change the label (e.g. the width being run)."""
        self.label = str(label)
        if self.drawn:
            _draw()

    def text(self, final=False):
        """What this task shows: counts, rate and ETA, or the elapsed time."""
        el = time.monotonic() - self.t0
        if self.total is None:
            return f"{self.label}: done in {format_seconds(el)}" if final else \
                f"{self.label}  {format_seconds(el)}"
        if final:
            return f"{self.label} {self.done}/{self.total} done in {format_seconds(el)}"
        pct = 100.0 * self.done / self.total if self.total else 100.0
        s = f"{self.label} {self.done}/{self.total} ({pct:.0f}%)"
        if self.done > 0 and el > 0:
            rate = self.done / el
            s += f"  {rate:.3g}/s" if rate >= 1 else f"  {1 / rate:.3g} s each"
            s += f"  ETA {format_seconds(max(self.total - self.done, 0) / rate)}"
        elif el >= 1:
            s += f"  {format_seconds(el)}"
        return s


def _line():
    return " > ".join(t.text() for t in _STACK)


def _draw(force=False):
    """Redraw the line (throttled); on a non-terminal, a full line at most every 10 s."""
    with _LOCK:
        if not _STACK:
            return
        now = time.monotonic()
        stream = _STATE["stream"]
        if _STATE["tty"]:
            if force or now - _STATE["last"] >= REDRAW_S:
                _STATE["last"] = now
                _write(stream, "\r" + _fit(_line(), _columns(stream)) + "\x1b[K")
        elif force or now - _STATE["last"] >= LOG_EVERY_S:
            _STATE["last"] = now
            _write(stream, _line() + "\n")


def _columns(stream):
    """The terminal's width (a wrapped line could not be redrawn in place)."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return 100
    return columns if columns > 0 else 100         # a new pseudo-terminal says 0


def _fit(line, columns):
    """``line`` within ``columns`` - 1 characters, cut on the left (the innermost task, at the
    end, is the one that moves).

    >>> _fit("reproduce x > widths 1/4 > networks 3/8", 24)
    '...s 1/4 > networks 3/8'
    """
    width = max(columns - 1, 10)
    return line if len(line) <= width else "..." + line[len(line) - width + 3:]


def _write(stream, text):
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):               # a closed terminal: progress is not worth dying
        pass


def _tick(stop):
    while not stop.wait(TICK_S):
        _draw(force=True)


def _push(t, stream):
    with _LOCK:
        if not _STACK:
            tty = _isatty(stream)
            _STATE.update(stream=stream, tty=tty, last=0.0)
            if tty:
                stop = threading.Event()
                ticker = threading.Thread(target=_tick, args=(stop,), daemon=True,
                                          name="ntksym-progress")
                _STATE.update(stop=stop, ticker=ticker)
                ticker.start()
        _STACK.append(t)
        _draw(force=True)


def _pop(t, ok):
    with _LOCK:
        if t not in _STACK:
            return
        stream, tty = _STATE["stream"], _STATE["tty"]
        outermost = _STACK[0] is t
        if outermost:
            _STATE["stop"] is not None and _STATE["stop"].set()
            if tty:
                # progress is transient: the line goes when the work is done (the command's
                # result follows on stdout); after a failure it stays, and the error message
                # starts on a fresh line below it
                _write(stream, "\r\x1b[K" if ok else "\n")
            elif ok:
                _write(stream, t.text(final=True) + "\n")
            _STACK.clear()
            _STATE.update(stream=None, ticker=None, stop=None)
        else:
            del _STACK[_STACK.index(t):]
            if tty:
                _draw(force=True)


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):        # closed, or file-like without isatty
        return False


@contextlib.contextmanager
def task(label, total=None, enabled=None, stream=None):
    """A progress task for the ``with`` block; yields its :class:`Task`.

    ``total``: the number of steps (None: a status line with the elapsed time).
    ``enabled``: True/False, or None for the process default (:func:`enabled`); a task
    started inside a drawn one is drawn too, on its parent's line.
    ``stream``: where to draw (default stderr; a nested task draws on its parent's).
    """
    with _LOCK:
        if _STACK and enabled is None:     # inside a drawn task: drawn too, on the same line
            on, stream = True, _STATE["stream"]
        else:
            stream = sys.stderr if stream is None else stream
            on = _resolve(enabled, stream)
    t = Task(label, total, drawn=on)
    if not on:
        yield t
        return
    _push(t, stream)
    ok = False
    try:
        yield t
        ok = True
    finally:
        _pop(t, ok)


def track(iterable, label, total=None, enabled=None):
    """Iterate over ``iterable`` inside a counted :func:`task` (``total`` defaults to its
    ``len``), advancing it after each item.

    >>> list(track(range(3), "items", enabled=False))
    [0, 1, 2]
    """
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    with task(label, total, enabled) as t:
        for item in iterable:
            yield item
            t.update()


def write(message, stream=None):
    """Print ``message`` as a line of its own on stderr without breaking a live progress line
    (it is erased, the message written, and the line drawn again)."""
    with _LOCK:
        if _STACK and _STATE["tty"]:
            s = _STATE["stream"]
            _write(s, "\r\x1b[K" + message + "\n")
            _draw(force=True)
        else:
            _write(sys.stderr if stream is None else stream, message + "\n")
