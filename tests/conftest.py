"""Shared fixtures.  The paths and spec builders live in tests/testkit.py (a plain module that
module-level code may import); this file hands them to test functions as fixtures.

A private numba/ntksym cache per test session is NOT used on purpose: the on-disk cache is what
keeps the suite fast on 2 cores (DESIGN: the second run pays no JIT).  Tests that check caching
itself run a child process with a cache directory of its own."""

import os

import pytest

from testkit import ROOT, SPEC_DIR, cntk_toml

# Plots are written to files: a user's interactive MPLBACKEND would open windows (or fail
# without a display).  Set before anything imports matplotlib; subprocesses inherit it.
os.environ["MPLBACKEND"] = "Agg"


@pytest.fixture(scope="session", autouse=True)
def _run_from_the_repository_root():
    """Some tests name shipped files relative to the root ("spec/rntk_last.toml", "cli.py"),
    as a user would from a checkout: the suite runs there wherever pytest was started."""
    before = os.getcwd()
    os.chdir(ROOT)
    yield
    os.chdir(before)


@pytest.fixture(scope="session")
def root():
    """The repository root (cli.py, spec/, kernels/, benchmarks/)."""
    return ROOT


@pytest.fixture(scope="session")
def spec_dir():
    """spec/: the shipped spec files."""
    return SPEC_DIR


@pytest.fixture(scope="session")
def cntk_spec():
    """testkit.cntk_toml: the text of an Arora et al. CNTK variant no shipped spec covers."""
    return cntk_toml
