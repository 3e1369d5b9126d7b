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


def load_module(source: str, stem: str):
    """Write ``source`` to the cache (atomically, once) and import it; memoized per process."""
    key = f"{stem}_{source_hash(source)}"
    mod = _LOADED.get(key)
    if mod is not None:
        return mod
    path = cache_dir() / f"ntksym_gen_{key}.py"
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
