"""The examples of ``--x`` / ``--x2``: one reader for every file format, shaped for a spec.

:func:`load_examples` reads ``.npy`` / ``.npz`` (:func:`ntksym.data.load_array`, and for
sequence specs :func:`ntksym.engine.sequence.load_sequences`, which keeps ``lengths``) or
delimited text (:mod:`ntksym.tabular`: a row per example, reshaped to the input shape).
:func:`table_options` adds the CLI's ``--delimiter`` and ``--header/--no-header`` to a command
and keeps their values in the click context, where :func:`table_settings` finds them.
Light on import (click only): the CLI imports it at start-up.

>>> import os, tempfile
>>> p = os.path.join(tempfile.mkdtemp(), "x.csv")
>>> _ = open(p, "w").write("1,2,3,4\\n5,6,7,8\\n")
>>> load_examples(p, [2, 2, 1]).shape
(2, 2, 2, 1)
"""

from __future__ import annotations

import click


def load_examples(path, input_shape, name="--x", delimiter=None, header=None):
    """The examples in ``path`` for a spec of ``input_shape``: an array, or for sequence
    specs ``(padded array, lengths)`` as :func:`ntksym.engine.sequence.as_sequences` gives.
    DataError (one line: file, line and column for a bad CSV cell) otherwise."""
    from ntksym.data import load_array
    from ntksym.tabular import is_delimited
    delimited = is_delimited(path, delimiter)
    if len(input_shape) == 2:                   # sequences: (X, lengths) or a list of arrays
        from ntksym.engine.sequence import as_sequences, load_sequences
        seqs, lengths = (load_array(path, name, delimiter, header, input_shape), None) \
            if delimited else load_sequences(path, name=name)
        return as_sequences(seqs, input_shape, lengths, name=name)
    return load_array(path, name, delimiter, header, input_shape if delimited else None)


def table_settings() -> dict:
    """{"delimiter": ..., "header": ...} of the running command (None each outside one)."""
    ctx = click.get_current_context(silent=True)
    meta = ctx.meta if ctx is not None else {}
    return {k: meta.get(f"ntksym.{k}") for k in ("delimiter", "header")}


def table_options(f):
    """--delimiter and --header/--no-header for CSV/TSV --x/--x2, kept in the click context
    (the command's signature does not change)."""
    def keep(ctx, param, value):
        ctx.meta[f"ntksym.{param.name}"] = value
    for decl, text in (("--header/--no-header", "CSV/TSV: the first line is (not) a header "
                        "(default: it is when none of its cells is a number)."),
                       ("--delimiter", "CSV/TSV: one character, or comma, tab, semicolon, "
                        "space, whitespace, pipe (default: .csv comma, .tsv tab).")):
        f = click.option(decl, default=None, expose_value=False, callback=keep, help=text)(f)
    return f
