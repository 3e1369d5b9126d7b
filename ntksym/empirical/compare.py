"""Monte Carlo kernels against the infinite-width limit: a pass/fail verdict with its tolerance
(``ntksym empirical --compare``).

For each kernel, every distinct entry (the upper triangle with the diagonal for K(X, X)) gives
t = (mean_s K_s[i, j] - K[i, j]) / stderr[i, j], the deviation of the mean of the S networks in
its own standard error.  If the networks' kernels average to the limit, each t follows a
Student t distribution with S - 1 degrees of freedom (the standard error is estimated from the
same S draws).  The tolerance is the two-sided quantile at the family-wise level ``level``
(default 1%) over the m entries, Bonferroni: P(|t| > tolerance) = level / m.  The kernel
passes when max |t| <= tolerance, so that a correct kernel fails at most 1% of the time, and a
fail is evidence that the mean of finite networks differs from the limit: a wrong kernel, or,
with many samples, a finite-width bias (O(1/width)) larger than the Monte Carlo error.

>>> round(t_tail(2.0, 1e9), 6), round(t_tail(12.706205, 1), 6)     # normal, Cauchy
(0.0455, 0.05)
>>> round(tolerance(entries=1, samples=6, level=0.05), 3)          # t_{5, 0.975}
2.571
"""

from __future__ import annotations

import math

import numpy as np

LEVEL = 0.01


def t_tail(t, dof):
    """P(|T| > t) for Student's t with ``dof`` degrees of freedom (exact finite series for
    integer dof up to 1e5 (Abramowitz & Stegun 26.7.3-4), the normal tail above)."""
    t = abs(float(t))
    if dof > 100000:
        return math.erfc(t / math.sqrt(2.0))
    dof = int(dof)
    theta = math.atan(t / math.sqrt(dof))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if dof % 2 == 1:
        term, total = math.cos(theta), 0.0
        for k in range(1, (dof - 1) // 2 + 1):      # cos + (2/3)cos^3 + (2*4/(3*5))cos^5 ...
            total += term
            term *= c2 * (2 * k) / (2 * k + 1)
        inside = (2.0 / math.pi) * (theta + s * total) if dof > 1 else 2.0 * theta / math.pi
    else:
        term, total = 1.0, 0.0
        for k in range(1, dof // 2 + 1):            # 1 + (1/2)cos^2 + (1*3/(2*4))cos^4 ...
            total += term
            term *= c2 * (2 * k - 1) / (2 * k)
        inside = s * total
    return max(0.0, 1.0 - inside)


def tolerance(entries, samples, level=LEVEL):
    """The largest |t| a correct kernel shows with probability 1 - ``level`` over ``entries``
    entries (Bonferroni, Student t with ``samples`` - 1 degrees of freedom); None for fewer
    than 2 samples."""
    if samples < 2:
        return None
    target, dof = level / max(int(entries), 1), samples - 1
    lo, hi = 0.0, 1.0
    while t_tail(hi, dof) > target:
        hi *= 2.0
        if hi > 1e12:
            return math.inf
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_tail(mid, dof) > target else (lo, mid)
    return hi


def compare_with_limit(mean, stderr, limit, samples, symmetric=True, level=LEVEL):
    """The comparison of one kernel: a dict with ``max_abs_dev`` (largest |mean - K|),
    ``max_dev_in_stderr`` (largest |t|), ``entry`` (where), ``entries`` (m), ``tolerance``
    and ``pass`` (None without a standard error, i.e. one sample).

    >>> K = np.array([[2.0, 1.0], [1.0, 2.0]])
    >>> r = compare_with_limit(K + 0.01, np.full((2, 2), 0.01), K, samples=16)
    >>> round(r["max_dev_in_stderr"], 9), r["entries"], round(r["tolerance"], 2), r["pass"]
    (1.0, 3, 3.48, True)
    """
    mean, stderr, limit = (np.asarray(a, dtype=np.float64) for a in (mean, stderr, limit))
    dev = np.abs(mean - limit)
    if symmetric and dev.ndim == 2 and dev.shape[0] == dev.shape[1]:
        mask = np.triu(np.ones(dev.shape, dtype=bool))
    else:
        mask = np.ones(dev.shape, dtype=bool)
    scale = float(np.abs(limit).max()) or 1.0
    tiny = 1e-12 * scale
    # an entry without spread (the same in every network) must equal the limit to rounding
    z = np.where(stderr > tiny, dev / np.maximum(stderr, tiny),
                 np.where(dev <= 1e-9 * scale, 0.0, np.inf))
    z = np.where(mask, z, -1.0)
    at = np.unravel_index(int(np.argmax(z)), z.shape)
    m = int(mask.sum())
    tol = tolerance(m, samples, level)
    zmax = float(z[at])
    return {"max_abs_dev": float(dev[mask].max()), "max_dev_in_stderr": zmax,
            "entry": [int(i) for i in at], "entries": m, "samples": int(samples),
            "level": level, "tolerance": tol,
            "pass": None if tol is None else bool(zmax <= tol)}


def verdict(results):
    """``(verdict, tolerance, note)`` for a dict {kind: :func:`compare_with_limit` result}:
    ``"pass"``, ``"fail"`` or ``"undetermined"`` (one sample), the rule in words, and what a
    fail may mean ("" otherwise).

    >>> v = verdict({"ntk": {"pass": True, "tolerance": 3.9, "entries": 3, "level": 0.01,
    ...                      "samples": 16}})
    >>> v[0]
    'pass'
    >>> v[1]
    '|mean - K| <= 3.9 standard errors (family-wise 1% over 3 entries, Student t, 15 d.o.f.)'
    """
    if any(r["pass"] is None for r in results.values()):
        return ("undetermined", "none: --samples 1 gives no standard error",
                "use 2 or more samples")
    r0 = next(iter(results.values()))
    tols = sorted({f"{r['tolerance']:.3g}" for r in results.values()}, key=float)
    rule = (f"|mean - K| <= {' / '.join(tols)} standard errors (family-wise "
            f"{100 * r0['level']:g}% over {r0['entries']} entries, Student t, "
            f"{r0['samples'] - 1} d.o.f.)")
    failed = [k for k, r in results.items() if not r["pass"]]
    if not failed:
        return "pass", rule, ""
    return ("fail", rule, f"{', '.join(failed)} outside: a wrong kernel, or (many samples) a "
            "finite-width bias above the Monte Carlo error")


def compare_summary(result, limits, level=LEVEL):
    """The ``empirical --compare`` part of a summary, for an
    :class:`~ntksym.empirical.montecarlo.EmpiricalResult` and {kind: analytic K(X, X)}:
    ``compare`` (a :class:`~ntksym.report.Table`, one row per kernel), ``verdict`` ("pass",
    "fail" or "undetermined"), ``tolerance`` (the rule) and, on a fail, ``note``
    (:func:`verdict`).

    >>> from ntksym.empirical.montecarlo import statistics
    >>> K = np.eye(2)
    >>> E = statistics({"ntk": [K + 0.01, K - 0.01, K + 0.02, K]}, width=8, seed=0)
    >>> s = compare_summary(E, {"ntk": K})
    >>> s["verdict"], s["compare"].records()[0]["pass"]
    ('pass', True)
    """
    from ntksym.report import Table
    n = len(next(iter(result.samples.values())))
    results = {k: compare_with_limit(result.mean[k], result.stderr[k], limits[k], n,
                                     level=level) for k in limits}
    table = Table(["kernel", "max_abs_dev", "max_dev_in_stderr", "entry", "tolerance", "pass"],
                  [[k, r["max_abs_dev"], r["max_dev_in_stderr"], r["entry"], r["tolerance"],
                    r["pass"]] for k, r in results.items()],
                  title="Monte Carlo mean vs the infinite-width kernel (deviations in "
                        "standard errors of the mean):")
    word, rule, note = verdict(results)
    out = {"compare": table, "verdict": word, "tolerance": rule}
    if note:
        out["note"] = note
    return out
