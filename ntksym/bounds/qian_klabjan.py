"""Qian & Klabjan (2021), "A Probabilistic Approach to Neural Network Pruning" (ICML).

Error bounds, success probabilities and width requirements for pruning a depth-``l`` network
(layers 2..l-1 pruned, ``floor(D^(1-alpha))`` of the ``D = d_k d_{k-1}`` weights per layer for
FCNs, ``floor(d^(2-alpha))`` filters per layer for CNNs), plus the lemmas the proofs use.  The
constants ``C_1..C_5`` of Thm 1/2 are written out as the proofs define them (App. B); the
universal constants they contain (Latala's ``C_lat``, Lemma 3's ``c_0``, ``delta_0``) are symbols:
Tables 2-3 give empirical values (``ntksym reproduce qian-klabjan-table2|table3``).

Convention: a *smaller* ``alpha`` prunes *more*; "the largest pruning for a width" is the smallest
admissible ``alpha`` (``theorem_1_alpha_min``, ``theorem_2_alpha_min``, :func:`largest_pruning`).

>>> from ntksym.bounds import qian_klabjan as qk
>>> round(qk.theorem_3_alpha_max.evaluate(d=128), 4)
0.6729
>>> round(qk.lemma_3_delta_0.evaluate(q=0.95, n=32), 4)
0.0288
"""

from __future__ import annotations

import math

import sympy as sp

from ntksym.bounds.core import Assumption, Bound, make_registry, sym
from ntksym.errors import NtksymError

PAPER = "Qian & Klabjan 2021 (ICML, arXiv 2105.10065)"

(l, d, alpha, eps, delta, K, c_0, delta_0, C_lat, L_prod, N_prod, N_min, K_1, K_2, c_1,
 delta_res, delta_l, S_delta, p, q, beta_1, beta_2, p_in, L_lip, M_1, M_2, C_5, a, n, r, N,
 C_RV, c_RV) = sp.symbols(
    "l d alpha eps delta K c_0 delta_0 C_lat L_prod N_prod N_min K_1 K_2 c_1 delta_res delta_l "
    "S_delta p q beta_1 beta_2 p_in L_lip M_1 M_2 C_5 a n r N C_RV c_RV", positive=True)

_S = {
    "l": sym("depth (number of weight layers); layers 2..l-1 are pruned", sp.Interval(3, sp.oo),
             integer=True),
    "d": sym("d = min(d_1..d_{l-1}) >= max(d_0, d_l) (Thm 3: common channel count)",
             sp.Interval(2, sp.oo)),
    "alpha": sym("pruning exponent: floor(D^(1-alpha)) weights pruned per layer (smaller "
                 "alpha = more pruning)", "unit"),
    "eps": sym("target error sup_x ||f(x) - F(x)||_2", "positive"),
    "delta": sym("failure probability", "unit"),
    "K": sym("weights U[-K/sqrt(max(d_k,d_{k-1})), +K/sqrt(max(d_k,d_{k-1}))]", "positive"),
    "c_0": sym("Lemma 3 constant: ||W_k*||_2 <= c_0 w.p. >= 1-2exp(-4 delta_0 d) "
               "(empirically about 1.17 for K=1, Table 2)", "positive"),
    "delta_0": sym("Lemma 3 rate constant (Table 2: ln(2/(1-q))/(4n))", "positive"),
    "C_lat": sym("Latala's universal constant (Lemma 4; unspecified, Table 3 gives empirical "
                 "lower estimates about 0.6)", "positive", default=1.0),
    "L_prod": sym("L_{1:(l-1)} = product of the Lipschitz constants L_1..L_{l-1}", "positive"),
    "N_prod": sym("N_{1:l} = product of the norm bounds N_1..N_l (each N_k >= 1)",
                  sp.Interval(1, sp.oo)),
    "N_min": sym("min_k N_k over the pruned layers 2..l-1 (N_k >= 1)", sp.Interval(1, sp.oo)),
    "K_1": sym("second-moment constant: E|W_ij|^2 <= K_1/max(d_k, d_{k-1})", "positive"),
    "K_2": sym("fourth-moment constant: E|W_ij|^4 <= K_2/max(d_k, d_{k-1})^2", "positive"),
    "c_1": sym("Latala's universal constant as named in Thm 2's proof (unspecified)",
               "positive", default=1.0),
    "delta_res": sym("Thm 2 residual budget delta - [delta_l + sum_{i<l}(l-i) delta_i] (the "
                     "paper's delta_0 of condition (5); not Lemma 3's)", "unit"),
    "delta_l": sym("failure probability of ||W_l*|| <= N_l", sp.Interval.Ropen(0, 1)),
    "S_delta": sym("sum_{i=1}^{l-1} (l-i) delta_i", sp.Interval.Ropen(0, 1)),
    "p": sym("spatial size p of the feature maps (p x p, circular padding)",
             sp.Interval(1, sp.oo)),
    "q": sym("kernel size q (q x q filters)", sp.Interval(1, sp.oo), integer=True),
    "beta_1": sym("free exponent: ||W_k*||_2 <= p^-beta_1", "unit"),
    "beta_2": sym("free exponent in (0, alpha/4): residual norm <= d^-beta_2", "positive"),
    "p_in": sym("input size p_0 (input in the unit cube of R^(p_0^2 d_0); the paper's p_0)",
                sp.Interval(1, sp.oo)),
    "L_lip": sym("Lipschitz constant L of the activation (sigma(0)=0)", "positive"),
    "M_1": sym("Thm 3 moment constant (paper's C_1): E|X|^2 <= C_1/(p^2 d)", "positive"),
    "M_2": sym("Thm 3 moment constant (paper's C_2): E|X|^4 <= C_2/(p^4 d^2)", "positive"),
    "C_5": sym("Thm 3 constant for the last layer: never given in the paper", "positive",
               default=1.0),
}


def _pick(*names):
    return {k: _S[k] for k in names}


_FCN = ["each sigma_k is L_k-Lipschitz with sigma_k(0) = 0",
        Assumption("d = min hidden width >= max(d_0, d_l)"),
        Assumption("depth l >= 3", l >= 3),
        Assumption("alpha in (0,1)", sp.And(alpha > 0, alpha < 1)),
        "inputs in the unit ball B_{d_0}; layers 1 and l are never pruned"]

# ---------------------------------------------------------------- Theorem 1 (magnitude pruning)
c_2_thm1 = C_lat * K * (2 * sp.sqrt(2) + sp.Rational(24) ** sp.Rational(1, 4))
_T1 = _FCN + ["entries of W_k* i.i.d. U[-K/sqrt(max(d_k,d_{k-1})), K/sqrt(max(d_k,d_{k-1}))]",
              "magnitude pruning of the floor(D_k^(1-alpha)) smallest entries, 1 < k < l",
              "c_0, delta_0: Lemma 3 constants, max/min over layers (footnote 10)"]
_T1_SRC = f"{PAPER}, Theorem 1 and its proof (App. B.2, eqs. 28-35)"

theorem_1_error = Bound(
    name="qian_klabjan.theorem_1_error",
    expr=(2 ** (l - 2) - 1) * d**-alpha * L_prod * c_0 ** (l - 1),
    symbols=_pick("l", "d", "alpha", "L_prod", "c_0"),
    lhs=sym("sup_{||x||<=1} ||f(x) - F(x)||_2 on the success event", "nonnegative", name="err"),
    relation="<=", assumptions=_T1, source=_T1_SRC, status="explicit",
    note="the error the induction (II) gives at k = l-1 times ||W_l*|| <= c_0; with "
         "c_0 from Table 2 this is an empirical, not rigorous, number.")

theorem_1_probability = Bound(
    name="qian_klabjan.theorem_1_probability",
    expr=(1 - 2 * sp.exp(-4 * delta_0 * d))
    * (1 - (l - 2) * c_2_thm1 * d**-alpha - (l + 1) * (l - 2) * sp.exp(-4 * delta_0 * d)),
    symbols=_pick("l", "d", "alpha", "K", "c_0", "delta_0", "C_lat"),
    lhs=sym("probability of the success event", "unit-closed-right", name="P"),
    relation=">=", assumptions=_T1, source=_T1_SRC + " (p_0 in the proof)",
    status="unspecified-constants",
    note="c_2 = C_lat K (2 sqrt 2 + 24^(1/4)) with Latala's unspecified constant C_lat "
         "(default 1). The proof also lower-bounds this by "
         "1-(l-2)c_2 d^-alpha-(l^2-l)e^(-4 delta_0 d).")

_C1 = 1 / c_0
_C2 = (2 ** (l - 2) - 1) * L_prod * c_0 ** (l - 1)
_C3 = (l**2 - 2) * c_2_thm1
_C4 = sp.log(l**2 - 2) / (4 * delta_0)
_C5 = 1 / (4 * delta_0)

theorem_1_width = Bound(
    name="qian_klabjan.theorem_1_width",
    expr=sp.Max(_C1 ** (1 / alpha), (_C2 / eps) ** (1 / alpha), (_C3 / delta) ** (1 / alpha),
                _C4 + _C5 * sp.log(1 / delta)),
    symbols=_pick("l", "alpha", "eps", "delta", "K", "c_0", "delta_0", "C_lat", "L_prod"),
    lhs=sym("min hidden width d", sp.Interval(1, sp.oo), name="d"),
    relation=">=", assumptions=_T1, source=_T1_SRC + " (the statement's C_1..C_5)",
    status="unspecified-constants",
    note="C_1 = 1/c_0, C_2 = (2^(l-2)-1) L_{1:(l-1)} c_0^(l-1), C_3 = (l^2-2) c_2, "
         "C_4 = log(l^2-2)/(4 delta_0), C_5 = 1/(4 delta_0), read off eqs. (33)-(35); they also "
         "depend on K, c_0, delta_0 and Latala's C_lat (unspecified, default 1), not only on l "
         "and the L_k as the statement says.")

theorem_1_alpha_min = Bound(
    name="qian_klabjan.theorem_1_alpha_min",
    expr=sp.Max(sp.log(_C1), sp.log(_C2 / eps), sp.log(_C3 / delta)) / sp.log(d),
    symbols=_pick("l", "d", "eps", "delta", "K", "c_0", "delta_0", "C_lat", "L_prod"),
    lhs=sym("pruning exponent alpha (floor(D^(1-alpha)) pruned; smallest alpha = most pruning)",
            "unit", name="alpha"),
    relation=">=",
    assumptions=_T1[:3] + ["inputs in the unit ball; layers 1 and l never pruned",
                           Assumption("d >= C_4 + C_5 log(1/delta) (the alpha-free condition)",
                                      d >= _C4 + _C5 * sp.log(1 / delta))],
    source=_T1_SRC + ": theorem_1_width solved for alpha",
    status="unspecified-constants",
    note="inverse of theorem_1_width: d >= X^(1/alpha) <=> alpha >= log X / log d for each of "
         "the three alpha-dependent terms. The most pruning the theorem certifies at width d is "
         "floor(D^(1 - alpha_min)) weights per layer (if alpha_min < 1). C_lat default 1.")

# ---------------------------------------------------------------- Theorem 2 (random pruning)
c_2_thm2 = c_1 * (2 * sp.sqrt(3 * K_1) + K_2 ** sp.Rational(1, 4))
_T2 = _FCN + ["entries independent, mean 0, E|X|^2 <= K_1/max(d_k,d_{k-1}), "
              "E|X|^4 <= K_2/max(d_k,d_{k-1})^2",
              "||W_k*||_2 <= N_k w.p. >= 1 - delta_k, N_k >= 1",
              "random pruning of floor(D_k^(1-alpha)) entries with replacement, 1 < k < l",
              Assumption("alpha satisfies the balls-into-bins condition (3)-(4), see "
                         "theorem_2_alpha_condition"),
              Assumption("delta_res = delta - [delta_l + sum (l-i) delta_i] > 0 (condition 5)")]
_T2_SRC = f"{PAPER}, Theorem 2 and its proof (App. B.1, eqs. 15-27)"

theorem_2_error = Bound(
    name="qian_klabjan.theorem_2_error",
    expr=(2 ** (l - 2) - 1) * d ** (-alpha / 4) * L_prod * N_prod,
    symbols=_pick("l", "d", "alpha", "L_prod", "N_prod"),
    lhs=sym("sup_{||x||<=1} ||f(x) - F(x)||_2 on the success event", "nonnegative", name="err"),
    relation="<=", assumptions=_T2, source=_T2_SRC, status="explicit",
    note="Markov at t = d^(-alpha/4) is why the exponent is alpha/4: the bound decays very "
         "slowly with width.")

theorem_2_probability = Bound(
    name="qian_klabjan.theorem_2_probability",
    expr=(1 - d ** sp.Rational(-1, 3)) ** (2 * (l - 2)) * (1 - delta_l)
    * (1 - (l - 2) * c_2_thm2 * d ** (-alpha / 4) - S_delta),
    symbols=_pick("l", "d", "alpha", "K_1", "K_2", "c_1", "delta_l", "S_delta"),
    lhs=sym("probability over masks and weights of eps-closeness", "unit-closed-right",
            name="P"),
    relation=">=", assumptions=_T2, source=_T2_SRC + " (statement's p_0)",
    status="unspecified-constants",
    note="c_2 = c_1 (2 sqrt(3 K_1) + K_2^(1/4)) with Latala's unspecified c_1 (default 1). The "
         "statement prints the inequality as '1 - delta >= (...)', reversed; the proof shows "
         "p_0 >= 1 - delta. The factor (1-d^(-1/3))^(2(l-2)) assumes row and column events "
         "independent (doubtful; a union bound gives 1 - 2(l-2) d^(-1/3)).")

_D1 = 1 / N_min
_D2 = (2 ** (l - 2) - 1) * L_prod * N_prod
_D3 = 3 * (l - 2)
_D4 = 3 * c_2_thm2 * (l - 2)

theorem_2_width = Bound(
    name="qian_klabjan.theorem_2_width",
    expr=sp.Max(_D1 ** (4 / alpha), (_D2 / eps) ** (4 / alpha), (_D3 / delta_res) ** 3,
                (_D4 / delta_res) ** (4 / alpha)),
    symbols=_pick("l", "alpha", "eps", "delta_res", "L_prod", "N_prod", "N_min", "K_1", "K_2",
                  "c_1"),
    lhs=sym("min hidden width d", sp.Interval(1, sp.oo), name="d"),
    relation=">=", assumptions=_T2, source=_T2_SRC + " (statement's C_1..C_4, eqs. 25-27)",
    status="unspecified-constants",
    note="C_1 = max_k 1/N_k, C_2 = (2^(l-2)-1) L_{1:l-1} N_{1:l}, C_3 = 3(l-2), "
         "C_4 = 3 c_2 (l-2) with c_2 = c_1(2 sqrt(3K_1) + K_2^(1/4)); c_1 is Latala's "
         "unspecified constant (default 1).")

theorem_2_alpha_min = Bound(
    name="qian_klabjan.theorem_2_alpha_min",
    expr=4 * sp.Max(sp.log(_D1), sp.log(_D2 / eps), sp.log(_D4 / delta_res)) / sp.log(d),
    symbols=_pick("l", "d", "eps", "delta_res", "L_prod", "N_prod", "N_min", "K_1", "K_2",
                  "c_1"),
    lhs=sym("pruning exponent alpha (smallest alpha = most pruning)", "unit", name="alpha"),
    relation=">=",
    assumptions=_T2[:3] + [Assumption("d >= (3(l-2)/delta_res)^3 (the alpha-free condition)",
                                      d >= (_D3 / delta_res) ** 3),
                           "alpha must also satisfy theorem_2_alpha_condition (an upper bound)"],
    source=_T2_SRC + ": theorem_2_width solved for alpha",
    status="unspecified-constants",
    note="inverse of theorem_2_width: d >= X^(4/alpha) <=> alpha >= 4 log X / log d. Together "
         "with theorem_2_alpha_condition (alpha <= ...) this gives the admissible window; "
         "c_1 default 1.")

_dk = sp.Symbol("d_k", positive=True)
_dkm = sp.Symbol("d_km1", positive=True)
theorem_2_alpha_condition = Bound(
    name="qian_klabjan.theorem_2_alpha_condition",
    expr=1 - (sp.log(sp.Max(_dk, _dkm) + 1) + sp.log(sp.log(sp.Max(_dk, _dkm))))
    / (sp.log(_dk) + sp.log(_dkm)),
    symbols={"d_k": sym("width d_k of pruned layer k (rows of W_k)", sp.Interval.open(1, sp.oo)),
             "d_km1": sym("width d_{k-1} (columns of W_k)", sp.Interval.open(1, sp.oo))},
    lhs=sym("pruning exponent alpha", "unit", name="alpha"),
    relation="<=",
    assumptions=["one condition per pruned layer k = 2..l-1"],
    source=f"{PAPER}, Theorem 2, conditions (3)-(4)",
    status="corrected",
    note="printed as alpha <= 1 - (log(d_{k+1}+1) - log log d_{k+1})/(log d_{k+1} + log d_k) "
         "and the same with d_k. The proof needs floor(D_k^(1-alpha)) >= d log d for rows and "
         "columns (Lemma 6), which requires a PLUS sign and D_k = d_k d_{k-1}: "
         "alpha <= 1 - (log(d+1) + log log d)/log D_k for d in {d_k, d_{k-1}} (the max binds). "
         "Thm 3's analogous condition uses '+', and its printed numbers match '+'. For square "
         "layers d=1024: 0.360 (corrected) vs 0.640 (printed).")

theorem_2_alpha_condition_as_printed = 1 - (sp.log(_dk + 1) - sp.log(sp.log(_dk))) \
    / (sp.log(_dk) + sp.log(_dkm))

# ---------------------------------------------------------------- Theorem 3 (CNN filter pruning)
_T3 = ["sigma is L-Lipschitz with sigma(0) = 0",
       "circular (wrap-around) padding, stride 1, equal channels d and sizes p in layers 1..l-1",
       "filters independent, mean 0, E|X|^2 <= C_1/(p^2 d), E|X|^4 <= C_2/(p^4 d^2); the same "
       "for the dense last layer W_l*",
       "floor(d^(2-alpha)) filters pruned per layer 1 < k < l, with replacement",
       Assumption("depth l >= 3", l >= 3),
       Assumption("0 < alpha <= 2 - (log(d+1) + log log d)/log d (theorem_3_alpha_max)",
                  sp.And(alpha > 0, alpha <= 2 - (sp.log(d + 1) + sp.log(sp.log(d))) / sp.log(d))),
       Assumption("beta_1 in (0,1)", sp.And(beta_1 > 0, beta_1 < 1)),
       Assumption("beta_2 in (0, alpha/4)", sp.And(beta_2 > 0, beta_2 < alpha / 4))]
_T3_SRC = f"{PAPER}, Theorem 3 and its proof (App. B.3, eqs. 36-38)"

theorem_3_alpha_max = Bound(
    name="qian_klabjan.theorem_3_alpha_max",
    expr=2 - (sp.log(d + 1) + sp.log(sp.log(d))) / sp.log(d),
    symbols=_pick("d"),
    lhs=sym("filter pruning exponent alpha (floor(d^(2-alpha)) filters pruned)",
            sp.Interval.open(0, 2), name="alpha"),
    relation="<=", assumptions=["ensures floor(d^(2-alpha)) >= d log d (Lemma 6)"],
    source=f"{PAPER}, Theorem 3 (condition on alpha; examples d=128 -> 0.6729, "
           "d=1024 -> 0.7205)",
    status="explicit")

theorem_3_error = Bound(
    name="qian_klabjan.theorem_3_error",
    expr=p**-beta_1 * L_lip ** (l - 1) * p_in * sp.sqrt(d)
    * (p**-beta_1 * (p**-beta_1 + d**-beta_2) ** (l - 2) - p ** (-(l - 1) * beta_1)),
    symbols=_pick("p", "beta_1", "beta_2", "L_lip", "l", "p_in", "d"),
    lhs=sym("sup over the input cube of ||f(x) - F(x)||_2", "nonnegative", name="err"),
    relation="<=", assumptions=_T3, source=_T3_SRC + ", eq. (11)", status="explicit",
    note="the induction has sqrt(d_0) where the statement has sqrt(d) (looser since d >= d_0). "
         "The leading p^-beta_1 is the claimed bound on ||W_l*||, which is doubtful for a dense "
         "last layer with variance C_1/(p^2 d) (its norm is O(sqrt(C_1)), not small).")

_C3t = C_lat * (2 * sp.sqrt(M_1) + M_2 ** sp.Rational(1, 4))
_C4t = C_lat * (2 * sp.sqrt(3 * M_1) + M_2 ** sp.Rational(1, 4))
theorem_3_probability = Bound(
    name="qian_klabjan.theorem_3_probability",
    expr=(1 - d ** sp.Rational(-1, 3)) ** (2 * (l - 2))
    * (1 - (l - 2) * _C4t * q**2 / p * d ** (-alpha / 4 + beta_2)
       - (l**2 - l - 2) / 2 * _C3t * q**2 / p ** (1 - beta_1) - C_5 / p ** (1 - beta_1)),
    symbols=_pick("d", "l", "alpha", "beta_1", "beta_2", "p", "q", "M_1", "M_2", "C_lat",
                  "C_5"),
    lhs=sym("probability (masks and weights) that eq. (11) holds", "unit-closed-right",
            name="P"),
    relation=">=", assumptions=_T3, source=_T3_SRC + " ((1-d^(-1/3))^(2(l-2)) p-bar)",
    status="unspecified-constants",
    note="C_3 = C(2 sqrt(C_1) + C_2^(1/4)) and C_4 = C(2 sqrt(3 C_1) + C_2^(1/4)) with "
         "Latala's unspecified C = C_lat (default 1); the moment constants C_1, C_2 are M_1, "
         "M_2 here. C_5 is claimed to exist but never given (default 1). Vacuous at p = 32.")

# ---------------------------------------------------------------- Lemmas
lemma_1_mean = Bound(
    name="qian_klabjan.lemma_1_mean",
    expr=a**2 * r * (r + 1) / ((n + 1) * (n + 2)),
    symbols={"a": sym("half-width of U[-a, a]", "positive"),
             "n": sym("number of i.i.d. draws", sp.Interval(1, sp.oo), integer=True),
             "r": sym("order index r <= n (r-th smallest of the squares)",
                      sp.Interval(1, sp.oo), integer=True)},
    lhs=sym("E X_(r), X_i = U_i^2, U_i ~ U[-a, a]", "positive", name="E_X_r"),
    relation="=", assumptions=[Assumption("r <= n", r <= n)],
    source=f"{PAPER}, Lemma 1 (App. A)", status="explicit",
    note="the general moment is E X_(r)^k = (r+2k-1)! n! / ((r-1)! (n+2k)!) a^(2k).")

lemma_1_second_moment = Bound(
    name="qian_klabjan.lemma_1_second_moment",
    expr=a**4 * r * (r + 1) * (r + 2) * (r + 3) / ((n + 1) * (n + 2) * (n + 3) * (n + 4)),
    symbols=dict(lemma_1_mean.symbols),
    lhs=sym("E X_(r)^2, X_i = U_i^2, U_i ~ U[-a, a]", "positive", name="E_X_r_sq"),
    relation="=", assumptions=[Assumption("r <= n", r <= n)],
    source=f"{PAPER}, Lemma 1 (App. A)", status="explicit")

lemma_3_spectral_norm = Bound(
    name="qian_klabjan.lemma_3_spectral_norm",
    expr=2 * K / sp.sqrt(3) * (C_RV + 1),
    symbols={"K": _S["K"],
             "C_RV": sym("Rudelson-Vershynin universal constant C of Lemma 2 (unspecified)",
                         "positive", default=1.0)},
    lhs=sym("c_0 with P(||B||_2 <= c_0) >= 1 - 2 exp(-4 delta_0 n) for B (n_1 x n_2) i.i.d. "
            "U[-K/sqrt n, K/sqrt n], n = max(n_1, n_2)", "positive", name="c_0"),
    relation="=", assumptions=["entries i.i.d. uniform; delta_0 = c of Lemma 2 (unspecified)"],
    source=f"{PAPER}, Lemma 3 and proof (t = 2 sqrt n in Lemma 2)",
    status="unspecified-constants",
    note="C_RV unspecified (default 1); Table 2 shows the empirical c_0 is about "
         "(K/sqrt 3)(1 + sqrt(n_min/n_max)), e.g. 1.16 for K=1, square.")

lemma_3_probability = Bound(
    name="qian_klabjan.lemma_3_probability",
    expr=1 - 2 * sp.exp(-4 * delta_0 * n),
    symbols={"delta_0": _S["delta_0"],
             "n": sym("n = max(n_1, n_2)", sp.Interval(1, sp.oo), integer=True)},
    lhs=sym("P(||B||_2 <= c_0)", "unit-closed-right", name="P"),
    relation=">=", assumptions=["B as in lemma_3_spectral_norm"],
    source=f"{PAPER}, Lemma 3", status="explicit")

lemma_3_delta_0 = Bound(
    name="qian_klabjan.lemma_3_delta_0",
    expr=sp.log(2 / (1 - q)) / (4 * n),
    symbols={"q": sym("quantile level, P(||B|| <= c_0) = q", "unit"),
             "n": sym("n = max(n_1, n_2)", sp.Interval(1, sp.oo), integer=True)},
    lhs=sym("delta_0 solving 1 - 2 exp(-4 delta_0 n) = q", "positive", name="delta_0"),
    relation="=", assumptions=[],
    source=f"{PAPER}, App. D.3 / Table 2 (how delta_0 is tabulated)", status="explicit",
    note="Table 2's delta_0 columns are this deterministic function of (q, n); c_0 is the "
         "empirical q-quantile of ||B||_2.")

_rowcol, _fourth = sp.symbols("R_max Q_4", positive=True)
lemma_4_latala = Bound(
    name="qian_klabjan.lemma_4_latala",
    expr=C_lat * (2 * _rowcol + _fourth),
    symbols={"C_lat": _S["C_lat"],
             "R_max": sym("max(max_i (sum_j E A_ij^2)^(1/2), max_j (sum_i E A_ij^2)^(1/2)); the "
                          "two row/column terms are each bounded by it", "positive"),
             "Q_4": sym("(sum_ij E A_ij^4)^(1/4)", "positive")},
    lhs=sym("E ||A||_2 for A with independent mean-0 entries", "positive", name="E_norm"),
    relation="<=", assumptions=["independent mean-zero entries with finite fourth moment"],
    source=f"{PAPER}, Lemma 4 (Latala 2005, Thm 2), eq. (13)/(42)",
    status="unspecified-constants",
    note="C_lat is universal but unspecified (default 1); Table 3 estimates the smallest C "
         "that works for its distributions (about 0.54-0.63), a lower bound on C_lat. Written "
         "with one R_max for the row and column maxima (an upper bound on the paper's form).")

lemma_6_balls_in_bins = Bound(
    name="qian_klabjan.lemma_6_balls_in_bins",
    expr=1 - n ** (3 - 3 * sp.log(3)),
    symbols={"n": sym("number of bins", sp.Interval(2, sp.oo), integer=True),
             "N": sym("number of balls, N >= n log n", "positive")},
    lhs=sym("P(max bin load <= 3N/n)", "unit-closed-right", name="P"),
    relation=">=", assumptions=[Assumption("N >= n log n", N >= n * sp.log(n))],
    source=f"{PAPER}, Lemma 6 (via Lemma 5 with delta = 2)",
    status="corrected",
    note="printed as 1 - n^(-1/3), from Lemma 5's exp(-delta^2 mu/(1+delta)), which is not a "
         "valid Chernoff bound (too strong at delta = 2: rate 4/3 vs the exact 3 ln 3 - 2 = "
         "1.2958). With the exact rate P(X_j >= 3 mu) <= exp(-(3 ln 3 - 2) mu) <= "
         "n^-(3 ln 3 - 2), and the union bound over n bins gives 1 - n^-(3 ln 3 - 3) = "
         "1 - n^-0.2958.")

lemma_6_as_printed = 1 - n ** sp.Rational(-1, 3)


def largest_pruning(theorem, d, eps, delta=None, **constants):
    """The most pruning Thm 1 or Thm 2 certifies at width ``d`` (square hidden layers).

    Returns a dict with ``alpha_min`` (the smallest admissible exponent), ``pruned`` =
    floor(D^(1-alpha_min)) weights per pruned layer with D = d^2, the pruned ``fraction``, and
    ``feasible`` (False when the alpha-free width condition fails, alpha_min >= 1, or, for
    Thm 2, alpha_min exceeds the corrected balls-into-bins limit).  Constants as in
    ``theorem_1_alpha_min`` / ``theorem_2_alpha_min`` (``delta_res`` for Thm 2).

    >>> r = largest_pruning(1, d=2**20, eps=0.1, delta=0.1, l=3, K=1, c_0=1.17,
    ...                     delta_0=0.005, L_prod=1, C_lat=0.63)
    >>> round(r["alpha_min"], 3), r["feasible"]
    (0.39, True)
    """
    if theorem == 1:
        b, vals = theorem_1_alpha_min, dict(d=d, eps=eps, delta=delta, **constants)
    elif theorem == 2:
        b, vals = theorem_2_alpha_min, dict(d=d, eps=eps, **constants)
        if delta is not None:
            raise NtksymError("theorem 2 takes delta_res (the residual budget), not delta")
    else:
        raise NtksymError(f"largest_pruning: theorem must be 1 or 2, got {theorem!r} (Thm 3 "
                          "prunes filters; see theorem_3_alpha_max)")
    alpha_min = max(float(b.evaluate(**vals)), 0.0)
    width_ok = all(ok is not False for _, ok in b.assumption_report(**vals))
    alpha_hi = 1.0
    if theorem == 2:
        alpha_hi = theorem_2_alpha_condition.evaluate(d_k=d, d_km1=d)
    feasible = bool(width_ok and 0 < alpha_min < alpha_hi)
    D = float(d) ** 2
    pruned = math.floor(D ** (1 - alpha_min)) if alpha_min < 1 else 0
    return {"alpha_min": alpha_min, "alpha_max": alpha_hi, "pruned": pruned,
            "fraction": pruned / D, "feasible": feasible}


BOUNDS = make_registry("qian_klabjan", globals())
