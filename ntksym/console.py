"""How the ``ntksym`` process behaves on a console: ntksym's warnings as one line, Ctrl-C as
"aborted" with exit status 130 whatever code it interrupts.

:func:`install` is called once by the CLI's entry point (never on import, so the Python API
keeps Python's own handlers); :func:`interrupted` tells the entry point whether an exception
is, or came from, Ctrl-C.  An interrupt that arrives inside compiled code or a C callback
(Numba's first compilation, for example) may surface as another exception, such as a
SystemError "returned a result with an exception set"; the handler records every interrupt,
so that one also reads "aborted".  One raised inside a ctypes callback (llvmlite's object
cache, during a compilation) is swallowed by ctypes, which would print "Exception ignored ...":
:func:`install`'s unraisable hook drops that message and raises SIGINT again 10 ms later, so
the interrupt takes effect outside the callback.  Outputs are written to a
temporary name and renamed when complete (:mod:`ntksym.io`), and the exception unwinds through
those writers, so an interrupted command leaves no half-written file.

>>> interrupted(Interrupted()), interrupted(KeyboardInterrupt())
(True, True)
>>> interrupted(ValueError("x"))
False
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading
import warnings

from ntksym import progress
from ntksym.errors import NumericalWarning

_INTERRUPTS: list = []
_SHOW = warnings.showwarning


_SHOWN: set = set()


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """ntksym's own warnings (underflow ...) as one line, once per kind of problem (a tiled run
    would otherwise repeat it for every tile); others as Python shows them."""
    if issubclass(category, NumericalWarning):
        key = str(message).split(":", 1)[0]           # "the nngp kernel underflows"
        if key not in _SHOWN:
            _SHOWN.add(key)
            progress.write(f"ntksym: warning: {message}")     # not into a progress line
    else:
        _SHOW(message, category, filename, lineno, file, line)


class Interrupted(BaseException):
    """Ctrl-C in the CLI.  Not a KeyboardInterrupt, so that click does not turn it into its
    Abort (and a blank line) on the way out; like KeyboardInterrupt, no ``except Exception``
    catches it, and ``finally`` blocks and the atomic writers' cleanup run."""


def _on_sigint(signum, frame):
    _INTERRUPTS.append(signum)
    raise Interrupted


def install():
    """One-line warnings, and a SIGINT handler that records the interrupt and raises
    :class:`Interrupted` (only in the main thread; elsewhere Python's handler stays), with an
    unraisable hook that re-raises an interrupt a C callback swallowed (module docstring).
    Returns a function that puts back what was there (the CLI calls it on the way out, so
    that tests running ``cli.main`` in-process keep pytest's own handlers)."""
    _INTERRUPTS.clear()
    _SHOWN.clear()
    show = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        handler = signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:
        handler = None
    hook = sys.unraisablehook

    def unraisable(info):
        if isinstance(info.exc_value, Interrupted):
            # again in 10 ms, from another thread: by then the callback has returned (raised
            # here, in the hook, the handler's exception would be swallowed too)
            threading.Timer(0.01, _thread.interrupt_main, (signal.SIGINT,)).start()
        else:
            hook(info)

    if handler is not None:
        sys.unraisablehook = unraisable

    def restore():
        warnings.showwarning = show
        if handler is not None:
            signal.signal(signal.SIGINT, handler)
            sys.unraisablehook = hook
    return restore


def interrupted(exc):
    """Whether ``exc`` is Ctrl-C (KeyboardInterrupt, click's Abort), was caused by it, or
    arrived after the handler of :func:`install` saw an interrupt."""
    import click
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (Interrupted, KeyboardInterrupt, click.exceptions.Abort)):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return bool(_INTERRUPTS)
