"""The theory papers' explicit bounds as importable sympy expressions.

One module per paper; each holds :class:`~ntksym.bounds.core.Bound` objects named after the
paper's numbering (``theorem_3_5_width``, ``lemma_3_spectral_norm``, ...).  ``all_bounds()``
returns every bound keyed by its qualified name (``"yang_wang.theorem_3_5_width"``).

>>> from ntksym.bounds import all_bounds, get
>>> b = get("yang_wang.theorem_3_5_width")
>>> b.status
'unspecified-constants'
>>> len(all_bounds()) > 40
True
"""

from __future__ import annotations

import difflib
import importlib

from ntksym.errors import NtksymError

#: the papers' modules, imported on first use (PEP 562): each builds its sympy expressions at
#: import, about a second in all, which ``ntksym --help`` and ``import ntksym.bounds.commands``
#: need not pay
PAPER_NAMES = ("yang_wang", "qian_klabjan", "arora", "chatterji_long_bartlett",
               "allen_zhu_li_song")
_CORE = ("Assumption", "Bound", "SymbolInfo")


def __getattr__(name):
    if name == "PAPERS":
        return {p: importlib.import_module(f"ntksym.bounds.{p}") for p in PAPER_NAMES}
    if name in PAPER_NAMES:
        return importlib.import_module(f"ntksym.bounds.{name}")
    if name in _CORE:
        return getattr(importlib.import_module("ntksym.bounds.core"), name)
    raise AttributeError(f"module 'ntksym.bounds' has no attribute {name!r}")


def all_bounds():
    """Every bound of every paper: ``{qualified name: Bound}``, sorted by name."""
    out = {}
    for p in PAPER_NAMES:
        out.update(importlib.import_module(f"ntksym.bounds.{p}").BOUNDS)
    return dict(sorted(out.items()))


def get(name):
    """The bound called ``name`` (qualified, e.g. ``"arora.theorem_b_2_width"``).

    An unqualified name is accepted when exactly one paper has it.  Unknown names raise
    :class:`~ntksym.errors.NtksymError` with a did-you-mean.
    """
    bounds = all_bounds()
    if name in bounds:
        return bounds[name]
    short = [k for k in bounds if k.split(".", 1)[1] == name]
    if len(short) == 1:
        return bounds[short[0]]
    if len(short) > 1:
        raise NtksymError(f"bound '{name}' is ambiguous: {', '.join(short)}")
    close = difflib.get_close_matches(name, list(bounds) + [k.split(".", 1)[1] for k in bounds],
                                      n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else \
        " (list them with: ntksym bounds list)"
    raise NtksymError(f"unknown bound '{name}'{hint}")


__all__ = ["Assumption", "Bound", "SymbolInfo", "all_bounds", "get", "PAPERS",
           "yang_wang", "qian_klabjan", "arora", "chatterji_long_bartlett", "allen_zhu_li_song"]
