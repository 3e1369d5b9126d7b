"""The branch-free polynomial acos and asin of generated code (ntksym/codegen/fastmath.py)."""

import math

import numba
import numpy as np

from ntksym.codegen.fastmath import acos_source, asin_source


def test_polynomial_acos_is_accurate_to_a_few_ulps():
    ns = {"math": math, "njit": numba.njit}
    exec(acos_source().replace("cache=True", "cache=False"), ns)
    acos = ns["_acos"]
    x = np.concatenate([np.linspace(-1, 1, 20001), 1 - np.logspace(-16, -1, 300),
                        -1 + np.logspace(-16, -1, 300), [0.0, -0.0, 1.0, -1.0]])
    got = np.array([acos(v) for v in x])
    ref = np.arccos(x)
    rel = np.abs(got - ref) / np.maximum(ref, 1e-300)
    assert rel.max() < 1e-15
    assert got[-2] == 0.0 and abs(got[-1] - math.pi) < 1e-15


def _compiled(src, name):
    ns = {"math": math, "njit": numba.njit}
    exec(src.replace("cache=True", "cache=False"), ns)
    return ns[name]


_GRID = np.concatenate([np.linspace(-1, 1, 20001), 1 - np.logspace(-16, -1, 300),
                        -1 + np.logspace(-16, -1, 300), np.logspace(-300, -1, 300),
                        -np.logspace(-300, -1, 300), [0.0, -0.0, 1.0, -1.0, 0.5, -0.5]])


def test_estrin_acos_of_vector_kernels_is_as_accurate_as_horner():
    """The vector (MLP) modules evaluate the acos polynomial by Estrin's scheme below its two
    leading terms (shorter dependency chains in the vectorized row loop)."""
    acos = _compiled(acos_source(estrin=True), "_acos")
    got = np.array([acos(v) for v in _GRID])
    ref = np.arccos(_GRID)
    rel = np.abs(got - ref) / np.maximum(ref, 1e-300)
    assert rel.max() < 1e-15
    assert acos(1.0) == 0.0 and abs(acos(-1.0) - math.pi) < 1e-15


def test_polynomial_asin_is_accurate_to_a_few_ulps():
    """The branch-free asin of the vector modules (erf duals): relative error below 1e-15,
    also for tiny arguments (the a h(a^2) branch), odd, asin(+-1) = +-pi/2."""
    asin = _compiled(acos_source(estrin=True) + asin_source(), "_asin")
    got = np.array([asin(v) for v in _GRID])
    ref = np.arcsin(_GRID)
    rel = np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300)
    assert rel.max() < 1e-15
    assert asin(0.0) == 0.0 and asin(1.0) == -asin(-1.0)
    assert abs(asin(1.0) - math.pi / 2) < 1e-15
