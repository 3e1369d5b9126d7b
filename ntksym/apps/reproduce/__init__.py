"""Registry of paper reproductions (``ntksym reproduce NAME``).

A reproduction is a function ``run(out_dir: pathlib.Path, quick: bool = False) -> dict`` that
writes its CSV (the measured numbers beside the paper's) into ``out_dir`` and returns a summary.
Modules register theirs with the decorator, naming the files it writes, so that
:func:`preflight` can refuse before any work (existing files without ``force``, an unwritable
directory, a PNG without matplotlib)::

    from ntksym.apps.reproduce import register

    @register("qian-klabjan-table2", "spectral-norm quantiles of uniform random matrices",
              outputs=["qian_klabjan_table2.csv"])
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
import time
from pathlib import Path

from ntksym.errors import DataError, NtksymError

#: name -> (description, function, module name)
REGISTRY: dict = {}
#: name -> the file names it writes into its output directory
OUTPUTS: dict = {}

#: submodules holding reproductions; missing ones are skipped (written by different people)
SUBMODULES = ["qian_klabjan", "yang_wang", "arora", "chatterji_long_bartlett",
              "allen_zhu_li_song", "shankar", "residual_depth"]


def register(name, description, outputs=()):
    """Decorator registering ``fn`` under ``name`` with a one-line ``description`` and the
    file names it writes (``outputs``)."""
    def deco(fn):
        if name in REGISTRY and REGISTRY[name][1] is not fn:
            raise ValueError(f"reproduction '{name}' registered twice")
        REGISTRY[name] = (description, fn, fn.__module__)
        OUTPUTS[name] = tuple(outputs)
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


def preflight(name, out_dir, force=False):
    """Refuse, before any work, what would fail or overwrite at the end of reproduction
    ``name``: an ``out_dir`` that is a file or not writable, an existing output file without
    ``force`` (OutputExistsError), a PNG output without matplotlib (DataError with the pip
    hint).  Returns the paths it will write."""
    from ntksym.io import refuse_existing
    from ntksym.preflight import directory_problems, enforce
    get(name)
    enforce(directory_problems(out_dir, "--out"))
    paths = [Path(out_dir) / f for f in OUTPUTS.get(name, ())]
    for p in paths:
        refuse_existing(p, force)
    if any(p.suffix == ".png" for p in paths):
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise DataError(f"{name} draws its figure with matplotlib, which is not installed: "
                            "pip install 'ntksym[plot]'") from None
    return paths


def run(name, out_dir, quick=False):
    """Run reproduction ``name`` into ``out_dir`` under a ``reproduce NAME`` progress line
    (:mod:`ntksym.progress`); returns its summary with ``name`` and ``wall_seconds`` added.
    Call :func:`preflight` first to refuse before any work."""
    from ntksym.progress import task
    _, fn, _ = get(name)
    t0 = time.perf_counter()
    with task(f"reproduce {name}"):
        summary = fn(Path(out_dir), quick=quick)
    return dict(summary, name=name, wall_seconds=round(time.perf_counter() - t0, 1))
