"""User-facing errors.

Every mistake a user can make (a bad spec, bad data, a refused overwrite) raises a subclass of
:class:`NtksymError`; the CLI prints its message on one line and exits with status 2.  Any other
exception is an internal failure and keeps its traceback (exit status 1).

>>> try:
...     raise SpecError("unknown kind 'dens'", file="mlp.toml", line=7, key="kind",
...                     hint="did you mean 'dense'?")
... except NtksymError as e:
...     print(e)
mlp.toml:7: key 'kind': unknown kind 'dens' (did you mean 'dense'?)
"""

from __future__ import annotations


class NtksymError(Exception):
    """A user error: printed as one line by the CLI, exit status 2."""

    exit_code = 2


class SpecError(NtksymError, ValueError):
    """A spec file that is malformed or describes an impossible network.

    Carries ``file``, ``line``, ``layer`` (index or id) and ``key`` where known; the message
    names all of them and, where useful, the valid choices or a "did you mean".
    """

    def __init__(self, message, *, file=None, line=None, layer=None, key=None, hint=None):
        self.file, self.line, self.layer, self.key, self.hint = file, line, layer, key, hint
        self.message = message
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        elif line is not None:
            where = f"line {line}: "
        ctx = []
        if layer is not None:
            ctx.append(f"layer {layer}")
        if key is not None:
            ctx.append(f"key '{key}'")
        text = where + (", ".join(ctx) + ": " if ctx else "") + message
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class DataError(NtksymError, ValueError):
    """Input data that do not fit the spec: wrong shape, NaN/inf, missing file, bad labels."""


class OutputExistsError(NtksymError):
    """Refused to overwrite an existing output without --force."""


class DeviceError(NtksymError):
    """A requested device (GPU, cluster) is not available."""


class NumericalWarning(UserWarning):
    """A result that is finite but has lost its precision (underflow to zero or to denormal
    numbers); the CLI prints it as one ``ntksym: warning:`` line."""
