"""Yang & Wang (2023), "On the Neural Tangent Kernel Analysis of Randomly Pruned Neural Networks".

Width requirements for the empirical NTK of a randomly pruned ReLU MLP (every layer but the input
pruned with keep-probability ``alpha``, masks rescaled by ``1/sqrt(alpha)``, N(0,1) weights) to be
within ``(L+1) eps`` of the limiting NTK with probability ``1 - delta`` (paper: Thm 3.5, Thm 9.8).
The ``Omega`` constants are never given: they are the symbol ``C`` (default 1), so a value is the
requirement up to that constant.  Thm 3.5's tilde-Omega also hides log factors.

>>> from ntksym.bounds import yang_wang
>>> round(yang_wang.theorem_3_5_width.evaluate(alpha=0.5, L=3, eps=0.1))
14580000
>>> yang_wang.crossover_eps.evaluate(alpha=0.25, L=2)
2.0
"""

from __future__ import annotations

import sympy as sp

from ntksym.bounds.core import Assumption, Bound, make_registry, sym
from ntksym.errors import NtksymError

PAPER = "Yang & Wang 2023 (arXiv 2203.14328)"

alpha, L, eps, delta, C = sp.symbols("alpha L eps delta C", positive=True)
d_next, S_all, S_before = sp.symbols("d_next S_all S_before", positive=True)
delta_2, h = sp.symbols("delta_2 h", positive=True)

_S = {
    "alpha": sym("keep probability of each weight (pruning probability 1-alpha)",
                 "unit-closed-right"),
    "L": sym("number of hidden layers", sp.Interval(1, sp.oo), integer=True),
    "eps": sym("accuracy: the NTK error is (L+1)*eps", "positive"),
    "delta": sym("failure probability", "unit"),
    "C": sym("unspecified absolute constant of the Omega(.)", "positive", default=1.0),
    "d_next": sym("width d_{h+1} of the next layer (d_{L+1} = 1)", sp.Interval(1, sp.oo)),
    "S_all": sym("sum_{h'=1}^{L-1} d_{h'} (all hidden widths but the last)",
                 sp.Interval(1, sp.oo)),
    "S_before": sym("sum_{h'=1}^{h-1} d_{h'} (widths before layer h)", sp.Interval(1, sp.oo)),
    "delta_2": sym("failure probability of the backward step", "unit"),
}


def _pick(*names):
    return {k: _S[k] for k in names}


_COMMON = [
    "L-hidden-layer fully connected ReLU network, scalar output, no biases",
    "weights i.i.d. N(0,1); every layer except the input pruned independently with probability "
    "1-alpha and rescaled by 1/sqrt(alpha) (no fresh-copy assumption)",
    "inputs with ||x||_2 <= 1, ||x'||_2 <= 1",
    "eps 'sufficiently small' (unspecified)",
    Assumption("delta in (0,1)", sp.And(delta > 0, delta < 1)),
    Assumption("alpha in (0,1]", sp.And(alpha > 0, alpha <= 1)),
]

theorem_3_5_width = Bound(
    name="yang_wang.theorem_3_5_width",
    expr=C * sp.Max(L**6 / (alpha * eps**4), L**2 / (alpha**2 * eps**2)),
    symbols=_pick("alpha", "L", "eps", "delta", "C"),
    lhs=sym("common hidden width d = d_1 = ... = d_L", sp.Interval(1, sp.oo), name="d"),
    relation=">=",
    assumptions=_COMMON + ["all hidden widths equal: d_1 = ... = d_L = d"],
    source=f"{PAPER}, Theorem 3.5, eq. (4)",
    status="unspecified-constants",
    note="tilde-Omega: the absolute constant is the symbol C (default 1) and the log factors "
         "(in L, d and 1/delta; see theorem_9_8_width) are dropped. The 1/alpha term comes from "
         "the forward pass, the 1/alpha^2 term from the backward pass; Thm 9.8's third term "
         "L^4/(alpha eps^2) is dominated by the first when eps <= L. With alpha = 1 it reduces "
         "to Arora et al.'s L^6/eps^4 (Remark 3.6).",
)

crossover_eps = Bound(
    name="yang_wang.crossover_eps",
    expr=L**2 * sp.sqrt(alpha),
    symbols=_pick("alpha", "L"),
    lhs=sym("accuracy at which the two terms of Thm 3.5 are equal; for eps < eps_star the "
            "1/alpha term L^6/(alpha eps^4) dominates", "positive", name="eps_star"),
    relation="=",
    assumptions=["same setting as theorem_3_5_width"],
    source=f"{PAPER}, Theorem 3.5, eq. (4): solving L^6/(alpha eps^4) = L^2/(alpha^2 eps^2)",
    status="explicit",
    note="derived (not printed in the paper): the ratio of the two terms is L^4 alpha/eps^2, so "
         "the 1/alpha term dominates exactly when eps < L^2 sqrt(alpha). This is the regime of "
         "the paper's 'asymptotically linear in 1/alpha' claim.",
)

_log1 = sp.log(L * d_next / delta)
_log2 = sp.log(L * d_next * S_all / delta)
_log3 = sp.log(2 * L * d_next * S_before / (delta / 5))

theorem_9_8_width = Bound(
    name="yang_wang.theorem_9_8_width",
    expr=C * sp.Max(L**6 / (alpha * eps**4) * _log1, L**2 / (alpha**2 * eps**2) * _log2,
                    L**4 / (alpha * eps**2) * _log3),
    symbols=_pick("alpha", "L", "eps", "delta", "C", "d_next", "S_all", "S_before"),
    lhs=sym("width d_h of hidden layer h (the condition holds for every h in [L])",
            sp.Interval(1, sp.oo), name="d_h"),
    relation=">=",
    assumptions=_COMMON + [
        "the condition holds for every h in [L], with d_{L+1} = 1",
        "for h = 1 the sum in the third log is empty; use S_before >= 1 (the term is then a "
        "weak requirement) or skip it",
    ],
    source=f"{PAPER}, Theorem 9.8 (full version of Thm 3.5)",
    status="corrected",
    note="the third log is printed as log(2 L d_{h+1} sum_{h'=1}^{h-1} d'_h / delta_3): the "
         "summand d'_h is read as d_{h'} and delta_3 = delta/5 is taken from the proof "
         "(Thm 9.10's event budget). The Omega constant is the symbol C (default 1). "
         "The proof is Thm 9.10 with eps := eps/L, consistent with these exponents.",
)

theorem_9_10_width = Bound(
    name="yang_wang.theorem_9_10_width",
    expr=C * sp.Max(L**2 / (alpha * eps**4) * _log1, 1 / (alpha**2 * eps**2) * _log2,
                    L**2 / (alpha * eps**2) * _log3),
    symbols=_pick("alpha", "L", "eps", "delta", "C", "d_next", "S_all", "S_before"),
    lhs=sym("width d_h of hidden layer h (for every h in [L])", sp.Interval(1, sp.oo),
            name="d_h"),
    relation=">=",
    assumptions=_COMMON + ["eps <= c/L for an unspecified constant c"],
    source=f"{PAPER}, Theorem 9.10",
    status="corrected",
    note="same reading of the third log as theorem_9_8_width (d'_h -> d_{h'}, delta_3 = "
         "delta/5). Conclusion: forward errors <= eps^2/2 and backward errors < 3 L eps. The "
         "Omega constant is C (default 1).",
)

theorem_9_11_width = Bound(
    name="yang_wang.theorem_9_11_width",
    expr=C * L**2 / (alpha * eps**2) * sp.log(18 * d_next * L / delta),
    symbols=_pick("alpha", "L", "eps", "delta", "C", "d_next"),
    lhs=sym("width d_h of hidden layer h (for every h in [L])", sp.Interval(1, sp.oo),
            name="d_h"),
    relation=">=",
    assumptions=_COMMON + [Assumption("eps <= 1/L (and eps <= c, c unspecified)",
                                      eps <= 1 / L)],
    source=f"{PAPER}, Theorem 9.11 (= Thm 5.1, forward propagation)",
    status="unspecified-constants",
    note="the Omega constant is C (default 1); the extra condition eps <= min(c, 1/L) has an "
         "unspecified c. Conclusion: every masked and unmasked forward inner product is within "
         "eps of Sigma^(h).",
)

lemma_9_14_width = Bound(
    name="yang_wang.lemma_9_14_width",
    expr=8 / alpha * sp.log(6 / delta_2),
    symbols=_pick("alpha", "delta_2"),
    lhs=sym("width d_h of hidden layer h", sp.Interval(1, sp.oo), name="d_h"),
    relation=">=",
    assumptions=[Assumption("delta_2 in (0,1)", sp.And(delta_2 > 0, delta_2 < 1))],
    source=f"{PAPER}, Lemma 9.14 (and Prop. 9.20's '<= 6' step)",
    status="explicit",
    note="the one explicit width condition of the backward analysis.",
)

theorem_9_1_chernoff = Bound(
    name="yang_wang.theorem_9_1_chernoff",
    expr=2 * sp.exp(-eps**2 * sp.Symbol("p") * sp.Symbol("m") / 3),
    symbols={"eps": sym("relative deviation", sp.Interval.open(0, 1)),
             "p": sym("Bernoulli success probability", "unit"),
             "m": sym("number of trials", sp.Interval(1, sp.oo), integer=True)},
    lhs=sym("P[|sum X_i - p m| >= eps p m] for i.i.d. Bernoulli(p) X_1..X_m", "unit",
            name="P"),
    relation="<=",
    assumptions=[Assumption("eps in (0,1)", sp.And(eps > 0, eps < 1))],
    source=f"{PAPER}, Theorem 9.1 (multiplicative Chernoff bound)",
    status="corrected",
    note="printed as 2 exp(-min(eps^2, eps) p m), which is false (p=0.01, m=1e5, eps=0.1: "
         "exact tail 1.6e-3 > printed 9.1e-5). Replaced by the standard two-sided form "
         "2 exp(-eps^2 p m / 3) for eps in (0,1).",
)

theorem_9_1_chernoff_as_printed = 2 * sp.exp(-sp.Min(eps**2, eps) * sp.Symbol("p")
                                             * sp.Symbol("m"))


def min_equal_width(alpha, L, eps, delta, C=1.0):
    """Smallest common width d satisfying Thm 9.8 when d_1 = ... = d_L = d.

    The logs contain d itself, so this solves the fixed point d = rhs(d) with the worst case
    over h of every log argument (d_{h+1} <= d, sum_{h'<h} d_{h'} <= (L-1) d; for L = 1 the
    sums are taken as 1).  Returns a float; the requirement is up to the constant ``C``.

    >>> round(min_equal_width(0.5, 2, 0.1, 0.05) / 1e6, 3)
    26.605
    """
    import math

    from scipy.optimize import brentq
    for k, v in dict(alpha=alpha, L=L, eps=eps, delta=delta, C=C).items():
        if not v > 0:
            raise NtksymError(f"min_equal_width: {k} must be positive, got {v}")
    if not (alpha <= 1 and delta < 1):
        raise NtksymError("min_equal_width: need alpha in (0,1] and delta in (0,1)")

    def rhs(d):
        s = max((L - 1) * d, 1.0)
        return C * max(L**6 / (alpha * eps**4) * math.log(L * d / delta),
                       L**2 / (alpha**2 * eps**2) * math.log(L * d * s / delta),
                       L**4 / (alpha * eps**2) * math.log(2 * L * d * s / (delta / 5)))

    lo, hi = 1.0, 2.0
    while hi - rhs(hi) < 0:   # d - rhs(d) grows like d for large d: bracket it
        lo, hi = hi, hi * 4
    return brentq(lambda d: d - rhs(d), lo, hi, rtol=1e-14)


BOUNDS = make_registry("yang_wang", globals())
