"""Registry of paper reproductions (``ntksym reproduce NAME``).

A reproduction is a function ``run(out_dir: pathlib.Path, quick: bool = False) -> dict`` that
writes its CSV (the measured numbers beside the paper's) into ``out_dir`` and returns a summary.
Modules register theirs with the decorator::

    from ntksym.apps.reproduce import register

    @register("qian-klabjan-table2", "spectral-norm quantiles of uniform random matrices")
    def run(out_dir, quick=False):
        ...

>>> from ntksym.apps.reproduce import names, get
>>> "qian-klabjan-table2" in names()
True
>>> get("qian-klabjan-table2")[0]
'Qian & Klabjan Table 2: spectral-norm mean/std/quantiles (c0, delta0) of uniform random matrices'
"""

from __future__ import annotations

import difflib
import importlib

from ntksym.errors import NtksymError

#: name -> (description, function, module name)
REGISTRY: dict = {}

#: submodules holding reproductions; missing ones are skipped (written by different people)
SUBMODULES = ["qian_klabjan", "yang_wang", "arora", "chatterji_long_bartlett",
              "allen_zhu_li_song", "shankar", "residual_depth"]


def register(name, description):
    """Decorator registering ``fn`` under ``name`` with a one-line ``description``."""
    def deco(fn):
        if name in REGISTRY and REGISTRY[name][1] is not fn:
            raise ValueError(f"reproduction '{name}' registered twice")
        REGISTRY[name] = (description, fn, fn.__module__)
        return fn
    return deco


def _load_all():
    """Import every known reproduction module that exists (so that they register)."""
    for mod in SUBMODULES:
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{mod}":
                raise


def names():
    """Sorted names of all registered reproductions."""
    _load_all()
    return sorted(REGISTRY)


def get(name):
    """``(description, function, module)`` of reproduction ``name``.

    Unknown names raise :class:`~ntksym.errors.NtksymError` with a did-you-mean.
    """
    _load_all()
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, list(REGISTRY), n=3, cutoff=0.5)
        hint = (f"did you mean {', '.join(repr(c) for c in close)}?" if close
                else f"available: {', '.join(sorted(REGISTRY)) or 'none'}")
        raise NtksymError(f"unknown reproduction '{name}' ({hint})")
    return REGISTRY[name]
