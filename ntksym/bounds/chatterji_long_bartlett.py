"""Chatterji, Long & Bartlett (2021), "When Does Gradient Descent with Logistic Loss Interpolate
Using Deep Networks with Smoothed ReLU Activations?".

Bias-free width-``p`` MLP with ``L`` hidden layers, all ``L+1`` layers trained by full-batch GD on
the logistic loss ``J``; ``N_1 = ||V^(1)||`` is the collective Frobenius norm of the initial
weights.  Thm 3.1 is deterministic and fully explicit; Thm 3.3 hides ``r(n, L, delta)``, ``c_1``
and the Theta-constant of ``alpha_NT`` (symbols ``r``, ``c_1``, ``c_NT``).  Numerical check of
Thm 3.1 on a finite network: :func:`ntksym.bounds.clb_check.check_theorem_3_1`.

>>> from ntksym.bounds import chatterji_long_bartlett as clb
>>> clb.theorem_3_1_loss_threshold.evaluate(n=3, L=1) == 3.0 ** -25
True
"""

from __future__ import annotations

import sympy as sp

from ntksym.bounds.core import Assumption, Bound, make_registry, sym

PAPER = "Chatterji, Long & Bartlett 2021 (JMLR, arXiv 2102.04998)"

L, p, n, J_1, N_1, h, alpha, Q, t, J, N, T = sp.symbols("L p n J_1 N_1 h alpha Q t J N T",
                                                        positive=True)
gamma, delta, c_1, c_NT, r, rho, G, G_yf = sp.symbols("gamma delta c_1 c_NT r rho G G_yf",
                                                      positive=True)

_S = {
    "L": sym("number of hidden layers", sp.Interval(1, sp.oo), integer=True),
    "p": sym("width = input dimension", sp.Interval(1, sp.oo), integer=True),
    "n": sym("number of training examples", sp.Interval(3, sp.oo), integer=True),
    "J_1": sym("initial training loss J(V^(1)) (logistic, averaged)", "positive"),
    "N_1": sym("||V^(1)||, collective Frobenius norm of the initial weights", "positive"),
    "h": sym("smoothing parameter of the h-smoothly-approximately-ReLU activation",
             "positive"),
    "alpha": sym("constant step size", "positive"),
    "Q": sym("rate constant, 0 < Q <= Q_tilde(alpha)", "positive"),
    "t": sym("GD step index (t = 1 is the initialization)", sp.Interval(1, sp.oo),
             integer=True),
    "J": sym("loss J(V) at the current weights", "positive"),
    "N": sym("||V||, collective Frobenius norm of the current weights", "positive"),
    "gamma": sym("NTK margin of Assumption 3.2", sp.Interval.Lopen(0, 1)),
    "delta": sym("failure probability", "unit"),
    "c_1": sym("unspecified 'large enough' absolute constant in rho (eq. 4)", "positive",
               default=1.0),
    "c_NT": sym("unspecified constant of alpha_NT = Theta(1/(p L^5))", "positive",
                default=1.0),
    "r": sym("unspecified r(n, L, delta) = poly(L, log(n/delta))", "positive", default=1.0),
    "rho": sym("NTK-stage radius rho of eq. (4) (see theorem_3_3_rho)", "positive"),
    "T": sym("stage-1 step count", sp.Interval(1, sp.oo), integer=True),
    "G": sym("(1/n) sum_s g_s with g_s = 1/(1+exp(y_s f(x_s)))", "positive"),
    "G_yf": sym("(1/n) sum_s g_s y_s f(x_s)", "real"),
}


def _pick(*names):
    return {k: _S[k] for k in names}


_T31 = ["any h-smoothly approximately ReLU activation (Def. 2.1)",
        "inputs on the unit sphere S^(p-1), labels in {-1, +1}",
        Assumption("L >= 1, n >= 3, p >= 1", sp.And(L >= 1, n >= 3, p >= 1))]
_SRC31 = f"{PAPER}, Theorem 3.1, eqs. (3a)-(3c)"
_logJ1 = sp.log(1 / J_1)

theorem_3_1_loss_threshold = Bound(
    name="chatterji_long_bartlett.theorem_3_1_loss_threshold",
    expr=n ** (-(1 + 24 * L)),
    symbols=_pick("n", "L"),
    lhs=sym("initial loss J_1", "positive", name="J_1"), relation="<",
    assumptions=_T31, source=_SRC31, status="explicit",
    note="forces every margin y_s f(x_s) > 24 L log n - log 2; underflows float64 once "
         "(1+24L) log10 n > 307 (values then come back as sympy.Float).")

theorem_3_1_h_max = Bound(
    name="chatterji_long_bartlett.theorem_3_1_h_max",
    expr=sp.Min(L ** (L / 2 - 3) * _logJ1 / (24 * sp.sqrt(p) * N_1**L), 1),
    symbols=_pick("L", "p", "J_1", "N_1"),
    lhs=sym("smoothing parameter h", "positive", name="h"), relation="<",
    assumptions=_T31 + [Assumption("J_1 < n^-(1+24L)", J_1 < n ** (-(1 + 24 * L)))],
    source=_SRC31 + " (3a)", status="explicit",
    note="the L^(L/2-3) factor rests on Lemma B.6(1), which needs ||V||^2 >= e L; Lemma B.5 "
         "guarantees that only for L up to about 11-15 (depending on n).")

theorem_3_1_alpha_max = Bound(
    name="chatterji_long_bartlett.theorem_3_1_alpha_max",
    expr=sp.Min(h / (1024 * (L + 1) ** 2 * p * J_1 * N_1 ** (3 * L + 5)),
                (L + sp.Rational(1, 2)) * N_1**2
                / (2 * L * (L + sp.Rational(3, 4)) ** 2 * J_1 * _logJ1 ** (2 / L))),
    symbols=_pick("L", "p", "J_1", "N_1", "h"),
    lhs=sym("constant step size alpha", "positive", name="alpha"), relation="<=",
    assumptions=_T31 + [Assumption("J_1 < n^-(1+24L)", J_1 < n ** (-(1 + 24 * L)))],
    source=_SRC31 + " (3b)", status="explicit",
    note="(3b) and invariant I3 use p; Lemma 4.4 and the end of Lemma 4.8 use sqrt(p). Since "
         "p >= 1 the p version (encoded) implies the sqrt(p) one.")

theorem_3_1_Q_tilde = Bound(
    name="chatterji_long_bartlett.theorem_3_1_Q_tilde",
    expr=L * (L + sp.Rational(3, 4)) ** 2 * alpha * J_1 * _logJ1 ** (2 / L)
    / ((L + sp.Rational(1, 2)) * N_1**2),
    symbols=_pick("L", "alpha", "J_1", "N_1"),
    lhs=sym("rate constant Q", "positive", name="Q"), relation="<=",
    assumptions=_T31, source=_SRC31 + " (3c)", status="explicit")

theorem_3_1_rate = Bound(
    name="chatterji_long_bartlett.theorem_3_1_rate",
    expr=J_1 / (Q * (t - 1) + 1),
    symbols=_pick("J_1", "Q", "t"),
    lhs=sym("loss J_t after t-1 GD steps", "positive", name="J_t"), relation="<=",
    assumptions=_T31 + ["h < h_max, 0 < alpha <= alpha_max(h), 0 < Q <= Q_tilde(alpha), "
                        "J_1 < n^-(1+24L)"],
    source=f"{PAPER}, Theorem 3.1", status="explicit",
    note="numerically vacuous on feasible horizons: Q_tilde is tiny (e.g. 1e-23), so 1/Q "
         "steps are needed before the bound halves.")

_V = sym("||V|| >= sqrt(L + 1/2)", "positive")
lemma_4_2_smoothness = Bound(
    name="chatterji_long_bartlett.lemma_4_2_smoothness",
    expr=256 * (L + 1) * sp.sqrt(p) * N ** (3 * L + 5) * J / h,
    symbols=_pick("L", "p", "N", "J", "h"),
    lhs=sym("local Lipschitz constant Lip(grad_V J(V))", "nonnegative", name="Lip"),
    relation="<=",
    assumptions=[Assumption("h <= 1", h <= 1),
                 Assumption("||V|| >= sqrt(L + 1/2)", N >= sp.sqrt(L + sp.Rational(1, 2)))],
    source=f"{PAPER}, Lemma 4.2", status="explicit")

lemma_4_3_gradient_upper = Bound(
    name="chatterji_long_bartlett.lemma_4_3_gradient_upper",
    expr=sp.sqrt((L + 1) * p) * N ** (L + 1) * sp.Min(J, 1),
    symbols=_pick("L", "p", "N", "J"),
    lhs=sym("||grad_V J(V)||", "nonnegative", name="grad_norm"), relation="<=",
    assumptions=[Assumption("||V|| >= sqrt(L + 1/2)", N >= sp.sqrt(L + sp.Rational(1, 2)))],
    source=f"{PAPER}, Lemma 4.3", status="explicit")

lemma_4_4_step = Bound(
    name="chatterji_long_bartlett.lemma_4_4_step",
    expr=h / (1024 * (L + 1) ** 2 * sp.sqrt(p) * N ** (3 * L + 5) * J),
    symbols=_pick("L", "p", "N", "J", "h"),
    lhs=sym("step size alpha for which J_{t+1} <= J_t - alpha L ||grad J_t||^2/(L+1/2)",
            "positive", name="alpha"),
    relation="<=",
    assumptions=[Assumption("h <= 1", h <= 1), "J_t < n^-(1+24L)"],
    source=f"{PAPER}, Lemma 4.4", status="explicit",
    note="stated with sqrt(p); (3b) and I3 use p (stronger).")

lemma_4_5_gradient_lower = Bound(
    name="chatterji_long_bartlett.lemma_4_5_gradient_lower",
    expr=(L + sp.Rational(3, 4)) * J * sp.log(1 / J) / N,
    symbols=_pick("L", "J", "N"),
    lhs=sym("||grad J_t||", "nonnegative", name="grad_norm"), relation=">=",
    assumptions=["h <= h_max, J_t < n^-(1+24L)",
                 "||V^(t)||^L <= log(1/J_t) ||V^(1)||^L / log(1/J_1) (invariant I2)"],
    source=f"{PAPER}, Lemma 4.5, eq. (6)", status="explicit")

lemma_b_5_norm = Bound(
    name="chatterji_long_bartlett.lemma_b_5_norm",
    expr=sp.sqrt(L + 1) * sp.log(1 / (sp.exp(2 * n ** (-(1 + 24 * L))) - 1)) ** (1 / (L + 1)),
    symbols=_pick("L", "n"),
    lhs=sym("||V||", "positive", name="N"), relation=">",
    assumptions=[Assumption("J(V) <= 2/n^(1+24L)"), Assumption("n >= 3", n >= 3)],
    source=f"{PAPER}, Lemma B.5", status="explicit",
    note="small losses force large weights; the lemma's weaker forms are "
         "sqrt(L+1) log^(1/(L+1))(n^(1+24L)/4) > sqrt(L+1).")

lemma_b_18_alignment = Bound(
    name="chatterji_long_bartlett.lemma_b_18_alignment",
    expr=G_yf - G * sp.sqrt(p) * h * N**L / (2 * L ** (L / 2 - 1)),
    symbols=_pick("G_yf", "G", "p", "h", "N", "L"),
    lhs=sym("grad_{V_l} J_t . (-V_l^(t)) for a hidden layer l in [L]", "real",
            name="align"),
    relation=">=",
    assumptions=["||V|| > sqrt(L+1) (Lemma B.6(1); needs ||V||^2 >= e L to be valid)"],
    source=f"{PAPER}, Lemma B.18",
    status="explicit",
    note="written with G = (1/n) sum g_s and G_yf = (1/n) sum g_s y_s f(x_s); for the output "
         "layer the identity grad_{V_{L+1}} J . (-V_{L+1}) = G_yf is exact.")

lemma_e_12_init_norm = Bound(
    name="chatterji_long_bartlett.lemma_e_12_init_norm",
    expr=sp.sqrt(5 * p * L),
    symbols=_pick("p", "L"),
    lhs=sym("||V^(1)|| at the random initialization", "positive", name="N_1"),
    relation="<=",
    assumptions=["hidden layers N(0, 2/p), output layer N(0, 1)",
                 "p >= poly(L, log(1/delta)); holds w.p. 1 - delta"],
    source=f"{PAPER}, Lemma E.12", status="explicit")

_SRC33 = f"{PAPER}, Theorem 3.3"
theorem_3_3_rho = Bound(
    name="chatterji_long_bartlett.theorem_3_3_rho",
    expr=c_1 / (sp.sqrt(p) * gamma) * (sp.sqrt(sp.log(n / delta))
                                       + sp.log(6 * n ** (2 + 24 * L))),
    symbols=_pick("c_1", "p", "gamma", "n", "delta", "L"),
    lhs=sym("NTK-stage radius rho", "positive", name="rho"), relation="=",
    assumptions=["Assumption 3.2 with margin gamma in (0, 1]", "Huberized ReLU"],
    source=_SRC33 + ", eq. (4)", status="corrected",
    note="OCR shows c_1/sqrt(p gamma); Lemma D.9 and Assumption 3.2 make it c_1/(sqrt(p) "
         "gamma). c_1 is an unspecified 'large enough' constant (default 1).")

theorem_3_3_h_NT = Bound(
    name="chatterji_long_bartlett.theorem_3_3_h_NT",
    expr=(1 + 24 * L) * sp.log(n) / (6 * (6 * p) ** ((L + 1) / 2) * L**3),
    symbols=_pick("L", "n", "p"),
    lhs=sym("smoothing parameter h used in Thm 3.3", "positive", name="h"), relation="=",
    assumptions=["Huberized ReLU"],
    source=_SRC33 + ", eq. (5)", status="explicit",
    note="(the proof of D.3 once writes (6n)^((L+1)/2); eq. (5) has (6p).) The proof's step "
         "h_NT <= L^(L/2-3)(1+24L) log n/(24 sqrt p (sqrt(6pL))^L) is false by the factor "
         "2 sqrt(6)/3 = 1.633; use h = min(h_NT, h_max) to stay inside Thm 3.1.")

theorem_3_3_alpha_NT = Bound(
    name="chatterji_long_bartlett.theorem_3_3_alpha_NT",
    expr=c_NT / (p * L**5),
    symbols=_pick("c_NT", "p", "L"),
    lhs=sym("stage-1 step size", "positive", name="alpha_NT"), relation="=",
    assumptions=["Huberized ReLU, h = h_NT"],
    source=_SRC33 + " (alpha_NT = Theta(1/(p L^5)))", status="unspecified-constants",
    note="the Theta constant is c_NT (default 1).")

theorem_3_3_T_stage1 = Bound(
    name="chatterji_long_bartlett.theorem_3_3_T_stage1",
    expr=sp.ceiling(3 * (L + 1) * rho**2 * n ** (2 + 24 * L) * p * L**5 / (2 * c_NT)),
    symbols=_pick("L", "rho", "n", "p", "c_NT"),
    lhs=sym("stage-1 step count T", sp.Interval(1, sp.oo), name="T"), relation="=",
    assumptions=["alpha_NT = c_NT/(p L^5)"],
    source=_SRC33 + ": T = ceil(3(L+1) rho^2 n^(2+24L)/(2 alpha_NT))",
    status="unspecified-constants",
    note="inherits c_1 through rho and the Theta constant c_NT of alpha_NT (default 1). After "
         "T steps min_t J_t < n^-(1+24L) (the proof gives n^-(2+24L)).")

theorem_3_3_width = Bound(
    name="chatterji_long_bartlett.theorem_3_3_width",
    expr=r / gamma**2,
    symbols=_pick("r", "gamma"),
    lhs=sym("width p", sp.Interval(1, sp.oo), name="p"), relation=">=",
    assumptions=["Huberized ReLU, h = h_NT, Assumption 3.2"],
    source=_SRC33, status="unspecified-constants",
    note="r(n, L, delta) = poly(L, log(n/delta)) is never given (default 1). The proof's "
         "Lemma D.8 condition tau <= c/((p log p)^(3/8) L^(15/4)) with tau proportional to "
         "1/(sqrt(p) gamma) seems to need p of order gamma^-8 (up to logs), not r/gamma^2.")

theorem_3_3_stage2_rate = Bound(
    name="chatterji_long_bartlett.theorem_3_3_stage2_rate",
    expr=50 * L ** ((3 * L + 7) / 2) * (L + 1) ** 2 * (6 * p) ** (2 * L + 5)
    / (n ** (1 + 24 * L) * (t - T - 1)),
    symbols=_pick("L", "p", "n", "t", "T"),
    lhs=sym("loss J_t in stage 2", "positive", name="J_t"), relation="<",
    assumptions=[Assumption("t > T + 1", t > T + 1),
                 "stage 2 restarts at the best stage-1 iterate with alpha = alpha_max(h)"],
    source=_SRC33 + " (explicit form from the proof, App. D.3)", status="explicit",
    note="the statement gives O(L^((3L+11)/2)(6p)^(2L+5)/(n^(1+24L)(t-T-1))); the proof's "
         "explicit constant is 50 L^((3L+7)/2)(L+1)^2.")

BOUNDS = make_registry("chatterji_long_bartlett", globals())
