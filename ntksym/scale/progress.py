"""A one-line progress report on stderr for long runs (tiles of a tiled kernel).

>>> Progress(4, done=1, enabled=False).text()
'tiles 1/4 (25%)'
"""

from __future__ import annotations

import sys
import time

from ntksym.progress import enabled as progress_enabled


class Progress:
    """``tiles 12/78 (15%)  3.2 tiles/s  ETA 0:00:20`` on stderr, redrawn at most 5 times a
    second.  ``enabled=None`` means the CLI's --progress/--quiet, else only when stderr is a
    terminal (quiet when piped): :func:`ntksym.progress.enabled`.

    The rate counts only tiles done in this session, so a resumed run's ETA is honest.
    """

    def __init__(self, total, done=0, enabled=None, stream=None, label="tiles"):
        self.stream = stream or sys.stderr
        enabled = progress_enabled(enabled, self.stream)
        self.enabled, self.total, self.done, self.start_done = enabled, total, done, done
        self.label, self.t0, self.last = label, time.monotonic(), 0.0

    def text(self):
        el = time.monotonic() - self.t0
        new = self.done - self.start_done
        rate = new / el if el > 0 else 0.0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        s = f"{self.label} {self.done}/{self.total} ({pct:.0f}%)"
        if new > 0 and rate > 0:
            eta = int(round((self.total - self.done) / rate))
            hms = f"{eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}"
            s += f"  {rate:.3g} {self.label}/s  ETA {hms}"
        return s

    def update(self, done, force=False):
        self.done = done
        now = time.monotonic()
        if self.enabled and (force or now - self.last >= 0.2 or done == self.total):
            self.last = now
            self.stream.write("\r" + self.text() + "\x1b[K")
            self.stream.flush()

    def close(self):
        if self.enabled:
            self.update(self.done, force=True)
            self.stream.write("\n")
            self.stream.flush()



class Tee:
    """A progress sink that updates a :class:`Progress` bar and calls ``on_tile(done, total)``
    (tests, GUIs) after every tile."""

    def __init__(self, bar, on_tile, total):
        self.bar, self.on_tile, self.total = bar, on_tile, total

    def update(self, done):
        self.bar.update(done)
        if self.on_tile is not None:
            self.on_tile(done, self.total)
