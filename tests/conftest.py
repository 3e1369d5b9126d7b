"""Shared fixtures: a private numba/ntksym cache per test session is NOT used on purpose --
the on-disk cache is what keeps the suite fast on 2 cores (DESIGN: second run pays no JIT)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC_DIR = ROOT / "spec"


@pytest.fixture
def spec_dir():
    return SPEC_DIR
