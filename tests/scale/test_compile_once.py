"""A process derives and compiles a program once, however many tiles or calls evaluate it
(DESIGN, performance principles): one memo by (spec hash, per_layer, target) for vector,
image and sequence programs alike."""

import importlib

import numpy as np
import pytest

import ntksym
import ntksym.codegen.generate as generate
from ntksym.engine import common
from ntksym.scale.tiles import tiled_kernel
from testkit import SPEC_DIR

# the module, not the package attribute: Architecture.derive imports it lazily (sympy loads there)
derive_module = importlib.import_module("ntksym.derive")


@pytest.fixture
def counted(monkeypatch):
    """Empty the process memos and count sympy derivations and code generations (the CSE)."""
    monkeypatch.setattr(common, "_PROGRAMS", {})
    monkeypatch.setattr(common, "_MODULES", {})
    monkeypatch.setattr(common, "_SOURCES", {})
    calls = {"derive": 0, "generate": 0}
    real_derive, real_generate = derive_module.derive, generate.generate_source

    def derive(*args, **kw):
        calls["derive"] += 1
        return real_derive(*args, **kw)

    def count_generate(*args, **kw):
        calls["generate"] += 1
        return real_generate(*args, **kw)

    monkeypatch.setattr(derive_module, "derive", derive)
    monkeypatch.setattr(generate, "generate_source", count_generate)
    return calls


def _arch(name, shape):
    return ntksym.load_spec(SPEC_DIR / f"{name}.toml").with_input_shape(shape)


@pytest.mark.parametrize("name, shape", [("cntk_gap_depth21", (4, 4, 3)),
                                         ("cntk_mlp_depth3", (5,))])
def test_tiled_run_derives_and_compiles_once(name, shape, counted, tmp_path):
    X = np.random.default_rng(0).normal(size=(7,) + shape)
    info = tiled_kernel(_arch(name, shape), X, output=tmp_path / "K.npy", tile=2,
                        progress=False)
    assert info["tiles"] == 10
    # another Architecture of the same spec (as a Dask worker builds) reuses the program too
    K = ntksym.kernel(_arch(name, shape), X, progress=False)
    assert counted == {"derive": 1, "generate": 1}
    np.testing.assert_allclose(np.load(tmp_path / "K.npy"), K, rtol=1e-12)


def test_sequence_program_derived_and_compiled_once(counted):
    arch = ntksym.load_spec(SPEC_DIR / "rntk_last.toml")
    X = np.random.default_rng(1).normal(size=(3, 5, arch.input_shape[1]))
    first = ntksym.kernel(arch, X)
    for rows in (slice(0, 2), slice(1, 3)):
        np.testing.assert_allclose(ntksym.kernel(arch, X[rows]), first[rows, rows], rtol=1e-12)
    assert counted == {"derive": 1, "generate": 1}
