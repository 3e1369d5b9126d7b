"""The branch-free polynomial acos of generated image code (ntksym/codegen/fastmath.py)."""

import math

import numba
import numpy as np

from ntksym.codegen.fastmath import acos_source


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
