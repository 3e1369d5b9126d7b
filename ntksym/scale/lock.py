"""One writer per output: the lock a tiled run holds on ``K.npy`` while it runs.

The lock is ``fcntl.flock`` on ``K.npy.lock`` beside the output, taken without waiting.  The
kernel releases it when its holder exits, however it exits (SIGKILL, a lost node's process
killed by the scheduler), so a lock file left behind by a dead run is simply taken by the
next one: there are no stale locks to clean up by hand.  The file holds the holder's pid and
host, for the message a second run gets.  A run that ends removes the file while it still
holds the lock; a run that took the lock on a file removed meanwhile notices (the path no longer
names the inode it locked) and takes it again on the new file.

>>> import os, tempfile
>>> out = os.path.join(tempfile.mkdtemp(), "K.npy")
>>> with OutputLock(out):
...     try:
...         OutputLock(out).acquire()
...     except OutputBusyError as e:
...         print(str(e).split(" (pid")[0])
K.npy is being written by another ntksym run
>>> os.path.exists(out + ".lock")
False
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path

from ntksym.errors import NtksymError


class OutputBusyError(NtksymError):
    """Another run holds the output's lock: two runs never write one output at once."""


def lock_path(output):
    return Path(str(output) + ".lock")


class OutputLock:
    """The lock on ``output`` (``OUT.npy.lock``); ``acquire()`` or ``with OutputLock(out):``."""

    def __init__(self, output):
        self.output = Path(output)
        self.path = lock_path(output)
        self.fd = None

    def acquire(self):
        """Take the lock now or raise OutputBusyError naming the holder."""
        while self.fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as e:
                raise NtksymError(f"cannot create the lock file {self.path}: "
                                  f"{e.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = _read_holder(fd)
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
                    raise OutputBusyError(
                        f"{self.output.name} is being written by another ntksym run "
                        f"({holder or 'holder unknown'}; lock {self.path}); wait for it to "
                        "finish or stop it, then run again") from None
                raise NtksymError(f"cannot lock {self.path}: {e.strerror} (this filesystem "
                                  "may not support file locks); write the output elsewhere"
                                  ) from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:                 # its holder removed it as we opened it: try again
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
            self.fd = fd
        return self

    def release(self):
        """Remove the lock file and drop the lock (a no-op when not held)."""
        if self.fd is None:
            return
        try:
            os.unlink(self.path)          # while still locked: see the module docstring
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_holder(fd):
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return ""
