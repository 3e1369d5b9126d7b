"""Branch-free polynomial replacements for libm calls in generated loops.

libm's ``acos`` is a scalar call (~20 ns here), and a call inside a loop stops LLVM from
vectorizing it; a polynomial with selects instead of branches vectorizes.  The arc-cosine
kernels of ReLU layers call acos once per pixel pair per layer, so it dominates the CNTK.

acos on [0, 1] factors as ``acos(a) = sqrt(1 - a) g(a)`` with g analytic on [0, 1] (its
nearest singularity is at a = -1), so a Chebyshev interpolant of g converges geometrically:
20 nodes give a maximum relative error of about 3e-16 for acos on [-1, 1] (checked in
tests/test_fastmath.py), using ``acos(-a) = pi - acos(a)`` for negative arguments.  The
coefficients are computed here with mpmath at 60 digits, deterministically, and printed into
the generated source.

>>> c = acos_coefficients()
>>> len(c), round(c[0], 6)
(20, 1.480961)
"""

from __future__ import annotations

from functools import lru_cache

ACOS_NODES = 20


@lru_cache(maxsize=None)
def acos_coefficients(n: int = ACOS_NODES) -> tuple:
    """Monomial coefficients c_k (k = 0..n-1) of the interpolant of
    g(a) = acos(a) / sqrt(1 - a) at the n Chebyshev nodes of [0, 1], in t = 2a - 1."""
    import mpmath as mp
    with mp.workdps(60):
        def g(a):
            return mp.sqrt(2) if a == 1 else mp.acos(a) / mp.sqrt(1 - a)
        half = mp.mpf(1) / 2
        nodes = [mp.cos(mp.pi * (k + half) / n) for k in range(n)]
        vals = [g((t + 1) / 2) for t in nodes]
        cheb = [2 * mp.fsum(vals[k] * mp.cos(mp.pi * j * (k + half) / n) for k in range(n)) / n
                for j in range(n)]
        cheb[0] /= 2
        # Chebyshev -> monomial basis in t (T_{j} = 2 t T_{j-1} - T_{j-2})
        T = [[mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]]
        for j in range(2, n):
            new = [mp.mpf(0)] * (j + 1)
            for i, v in enumerate(T[j - 1]):
                new[i + 1] += 2 * v
            for i, v in enumerate(T[j - 2]):
                new[i] -= v
            T.append(new)
        mono = [mp.mpf(0)] * n
        for j in range(n):
            for i, v in enumerate(T[j]):
                mono[i] += cheb[j] * v
        return tuple(float(v) for v in mono)


def acos_source(name: str = "_acos") -> str:
    """Numba source of the branch-free acos (inlined so that loops around it vectorize)."""
    c = acos_coefficients()
    horner = [f"    p = {c[-1]!r}"] + [f"    p = p * t + {v!r}" for v in reversed(c[:-1])]
    return (f'''

@njit(cache=True, inline="always")
def {name}(x):
    # acos(|x|) = sqrt(1 - |x|) g(2|x| - 1), g a degree-{len(c) - 1} Chebyshev interpolant
    # (ntksym/codegen/fastmath.py); acos(-a) = pi - acos(a).  No branches: loops vectorize.
    a = abs(x)
    t = 2.0 * a - 1.0
''' + "\n".join(horner) + '''
    r = math.sqrt(1.0 - a) * p
    return math.pi - r if x < 0.0 else r
''')
