"""On-disk cache of generated modules, keyed by a hash of their source.

Generated Numba source is written to ``$NTKSYM_CACHE_DIR`` (default ``~/.cache/ntksym``) as
``<stem>_<hash>.py`` and imported from there, so that Numba's own ``cache=True`` stores the
compiled machine code beside it: a second process pays no JIT.

>>> mod = load_module("def f():\\n    return 42\\n", "doctest")
>>> mod.f()
42
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

from ntksym.io import atomic_write

_LOADED: dict = {}


def cache_dir() -> Path:
    d = Path(os.environ.get("NTKSYM_CACHE_DIR") or Path.home() / ".cache" / "ntksym")
    d.mkdir(parents=True, exist_ok=True)
    return d


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def module_path(source: str, stem: str) -> Path:
    """Where :func:`load_module` writes ``source``."""
    return cache_dir() / f"ntksym_gen_{stem}_{source_hash(source)}.py"


def is_compiled(source: str, stem: str) -> bool:
    """Whether Numba's disk cache holds machine code of the module of ``source`` (an index
    file of one of its functions), without importing Numba: then loading it costs no JIT.

    Numba keeps the cache beside the source (``__pycache__``) or, with ``NUMBA_CACHE_DIR``,
    in ``$NUMBA_CACHE_DIR/<folder>_<sha1 of the folder's path>`` (numba.core.caching).
    """
    path = module_path(source, stem)
    folder = path.parent.resolve()
    if os.environ.get("NUMBA_CACHE_DIR"):
        digest = hashlib.sha1(str(folder).encode()).hexdigest()
        where = Path(os.environ["NUMBA_CACHE_DIR"]) / f"{folder.name}_{digest}"
    else:
        where = folder / "__pycache__"
    return path.exists() and any(where.glob(f"{path.stem}.*.nbi"))


def load_module(source: str, stem: str):
    """Write ``source`` to the cache (atomically, once) and import it; memoized per process."""
    key = f"{stem}_{source_hash(source)}"
    mod = _LOADED.get(key)
    if mod is not None:
        return mod
    path = module_path(source, stem)
    if not path.exists() or path.read_text() != source:
        with atomic_write(path) as fh:
            fh.write(source)
    name = f"ntksym_gen_{key}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    _LOADED[key] = mod
    return mod
