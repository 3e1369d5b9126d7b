"""The examples in the docstrings run and give what they show."""

import doctest
import importlib

import pytest

MODULES = ["ntksym.spec", "ntksym.graph", "ntksym.architecture", "ntksym.errors", "ntksym.ir",
           "ntksym.printing", "ntksym.numeric", "ntksym.cache", "ntksym.codegen",
           "ntksym.engine", "ntksym.empirical", "ntksym.layers.dense", "ntksym.symbolic"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
