"""The examples in the docstrings run and give what they show."""

import doctest
import importlib

import pytest

from testkit import ROOT

# engine.image's example compiles a CNN program (minutes on a cold cache): marked slow, the
# CNN tests cover the same calls in the default run
SLOW = {"ntksym.engine.image"}


def _modules_with_examples():
    """Every ntksym module whose source has a ``>>>`` example (found, not listed by hand, so
    that a new module's examples are tested too)."""
    names = []
    for f in sorted((ROOT / "ntksym").rglob("*.py")):
        if ">>>" not in f.read_text():
            continue
        parts = f.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names.append(pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name)
    return names


MODULES = _modules_with_examples()


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
