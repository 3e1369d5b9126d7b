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


def estrin_lines(c, head=2, t="t", out="p", indent="    ") -> list:
    """Lines computing out = sum_k c[k] t^k: the tail c[head:] by Estrin's scheme (pairs
    c[2k] + c[2k+1] t, then pairs of those with t^2, t^4, ...: log2 dependent multiply-adds
    instead of Horner's one per coefficient), then the ``head`` leading coefficients by
    Horner's rule, so that a vectorized loop is not bound by the latency of one long chain
    while the large leading terms are rounded as by Horner (all of Estrin's scheme rounds the
    leading sum once per level: ~2x the error).  Error: tests/codegen/test_fastmath.py."""
    terms = [repr(v) for v in c[head:]]
    lines, power, level = [], t, 0
    while len(terms) > 1:
        nxt = []
        for k in range(0, len(terms), 2):
            if k + 1 < len(terms):
                name = f"{out}{level}_{k // 2}"
                lines.append(f"{name} = {terms[k]} + {terms[k + 1]} * {power}")
                nxt.append(name)
            else:
                nxt.append(terms[k])
        terms = nxt
        if len(terms) > 1:
            lines.append(f"{t}{2 ** (level + 1)} = {power} * {power}")
            power = f"{t}{2 ** (level + 1)}"
        level += 1
    lines.append(f"{out} = {terms[0]}")
    lines += [f"{out} = {out} * {t} + {v!r}" for v in reversed(c[:head])]
    return [indent + ln for ln in lines]


def acos_source(name: str = "_acos", estrin: bool = False) -> str:
    """Numba source of the branch-free acos (inlined so that loops around it vectorize);
    ``estrin``: the polynomial by :func:`estrin_lines` (short dependency chains: vectorized
    loops run several times faster), else by Horner's rule."""
    c = acos_coefficients()
    horner = ([f"    p = {c[-1]!r}"] + [f"    p = p * t + {v!r}" for v in reversed(c[:-1])]
              if not estrin else estrin_lines(c))
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


ASIN_NODES = 16


@lru_cache(maxsize=None)
def asin_coefficients(n: int = ASIN_NODES) -> tuple:
    """Monomial coefficients c_k (k = 0..n-1), in t = 8s - 1, of the interpolant of
    h(s) = asin(sqrt(s)) / sqrt(s) at the n Chebyshev nodes of s in [0, 1/4] (so that
    asin(a) = a h(a^2) for |a| <= 1/2).  h is analytic except at s = 1 (t = 7), so the
    interpolant converges like (7 + sqrt(48))^-n: 16 nodes leave ~1e-18 of h."""
    import mpmath as mp
    with mp.workdps(60):
        def h(s):
            return mp.mpf(1) if s == 0 else mp.asin(mp.sqrt(s)) / mp.sqrt(s)
        half = mp.mpf(1) / 2
        nodes = [mp.cos(mp.pi * (k + half) / n) for k in range(n)]
        vals = [h((t + 1) / 8) for t in nodes]
        cheb = [2 * mp.fsum(vals[k] * mp.cos(mp.pi * j * (k + half) / n) for k in range(n)) / n
                for j in range(n)]
        cheb[0] /= 2
        return tuple(float(v) for v in _monomial(cheb))


def _monomial(cheb):
    """Chebyshev coefficients -> monomial coefficients (T_j = 2 t T_{j-1} - T_{j-2})."""
    import mpmath as mp
    n = len(cheb)
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
    return mono


def asin_source(name: str = "_asin", acos: str = "_acos", estrin: bool = True) -> str:
    """Numba source of the branch-free asin: a h(a^2) for |a| <= 1/2, pi/2 - acos(|a|) above
    (``acos``: the polynomial of :func:`acos_source`, which the module must define too), both
    evaluated and one selected; the sign restored by a select.  Relative error below 1e-15
    over [-1, 1] (tests/codegen/test_fastmath.py): the small branch keeps full relative
    accuracy near 0, the large one loses at most an ulp of pi/2 against asin(a) >= 0.52."""
    c = asin_coefficients()
    horner = ([f"    p = {c[-1]!r}"] + [f"    p = p * t + {v!r}" for v in reversed(c[:-1])]
              if not estrin else estrin_lines(c))
    return (f'''

@njit(cache=True, inline="always", error_model="numpy")
def {name}(x):
    # asin(a) = a h(a^2) for a = |x| <= 1/2 (h a degree-{len(c) - 1} Chebyshev interpolant in
    # t = 8 a^2 - 1), else pi/2 - acos(a); asin(-a) = -asin(a).  No branches: loops vectorize.
    a = abs(x)
    t = 8.0 * a * a - 1.0
''' + "\n".join(horner) + f'''
    r = a * p if a <= 0.5 else 1.5707963267948966 - {acos}(a)
    return -r if x < 0.0 else r
''')
