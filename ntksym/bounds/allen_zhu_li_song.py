"""Allen-Zhu, Li & Song (2018/2019), "On the Convergence Rate of Training Recurrent Neural
Networks" (NeurIPS 2019): the explicit exponents of the GD/SGD theorems (App. H, I) and the
forward-norm bounds at initialization (Lemma B.3) for an Elman ReLU RNN with only ``W`` trained.

``rho = n L d log m`` and ``varrho = n L d log(m/eps)/delta``; the width condition
``m >= C varrho^C`` has an unspecified absolute constant ``C`` and every ``O``/``Omega`` hides one
too (symbol ``C_0``, default 1).

>>> from ntksym.bounds import allen_zhu_li_song as azls
>>> azls.rho.evaluate(n=2, L=3, d=4, m=float(__import__("math").e))
24.0
"""

from __future__ import annotations

import sympy as sp

from ntksym.bounds.core import Assumption, Bound, make_registry, sym

PAPER = "Allen-Zhu, Li & Song 2019 (NeurIPS, arXiv 1810.12065)"

n, L, d, m, eps, delta, C_0, ell = sp.symbols("n L d m eps delta C_0 ell", positive=True)
rho_s, varrho_s = sp.symbols("rho varrho", positive=True)

_S = {
    "n": sym("number of training sequences", sp.Interval(1, sp.oo), integer=True),
    "L": sym("sequence length (number of RNN steps)", sp.Interval(2, sp.oo), integer=True),
    "d": sym("output dimension", sp.Interval(1, sp.oo), integer=True),
    "m": sym("hidden width (number of neurons)", sp.Interval.open(1, sp.oo)),
    "eps": sym("target objective value", sp.Interval.Lopen(0, 1)),
    "delta": sym("separation ||x_i1 - x_j1|| >= delta of first tokens (Assumption 2.1)",
                 sp.Interval.Lopen(0, 1)),
    "rho": sym("rho = n L d log m", "positive"),
    "varrho": sym("varrho = n L d log(m/eps)/delta", "positive"),
    "C_0": sym("unspecified constant of the O(.)/Omega(.)", "positive", default=1.0),
    "ell": sym("time step index ell in {0, ..., L-1}", sp.Interval(0, sp.oo), integer=True),
}


def _pick(*names):
    return {k: _S[k] for k in names}


_SETUP = ["Elman ReLU RNN h_l = relu(W h_{l-1} + A x_l), y_l = B h_l; only W trained",
          "W, A ~ N(0, 2/m), B ~ N(0, 1/d) (variances)",
          "||x_{i,l}|| <= 1, ||x_{i,1}|| = 1 with last coordinate 1/sqrt(2)",
          "m >= C varrho^C for an unspecified absolute constant C > 1"]
_H = f"{PAPER}, App. H, Theorem 1 (GD, restated)"
_I = f"{PAPER}, App. I, Theorem 2 (SGD)"

rho = Bound(
    name="allen_zhu_li_song.rho", expr=n * L * d * sp.log(m),
    symbols=_pick("n", "L", "d", "m"),
    lhs=sym("rho", "positive", name="rho"), relation="=", assumptions=_SETUP[:1],
    source=f"{PAPER}, Sec. 2 / App. H", status="explicit")

varrho = Bound(
    name="allen_zhu_li_song.varrho", expr=n * L * d * sp.log(m / eps) / delta,
    symbols=_pick("n", "L", "d", "m", "eps", "delta"),
    lhs=sym("varrho", "positive", name="varrho"), relation="=", assumptions=_SETUP[:1],
    source=f"{PAPER}, Sec. 2 / App. H", status="explicit")

gd_step_size = Bound(
    name="allen_zhu_li_song.gd_step_size", expr=delta / (rho_s**44 * m),
    symbols=_pick("delta", "rho", "m"),
    lhs=sym("GD learning rate eta", "positive", name="eta"), relation="=",
    assumptions=_SETUP, source=_H, status="explicit",
    note="the main text's eta = Theta-tilde(delta poly(n,d,L)/m) has the poly in the "
         "denominator: 1/rho^44.")

gd_iterations_min = Bound(
    name="allen_zhu_li_song.gd_iterations_min",
    expr=rho_s**59 / delta**2 * sp.log(1 / eps),
    symbols=_pick("rho", "delta", "eps"),
    lhs=sym("number of GD iterations T (f(W^(T)) <= eps for T in the window)", "positive",
            name="T"),
    relation=">=", assumptions=_SETUP, source=_H, status="explicit",
    note="lower end of the window [rho^59/delta^2 log(1/eps), rho^59 varrho^28/delta^2 "
         "log(1/eps)]; equals rho^15/(eta delta m) log(1/eps) at eta = delta/(rho^44 m).")

gd_iterations_max = Bound(
    name="allen_zhu_li_song.gd_iterations_max",
    expr=rho_s**59 * varrho_s**28 / delta**2 * sp.log(1 / eps),
    symbols=_pick("rho", "varrho", "delta", "eps"),
    lhs=sym("number of GD iterations T", "positive", name="T"), relation="<=",
    assumptions=_SETUP, source=_H, status="explicit",
    note="upper end of the window (iterates must stay in the varrho^50/sqrt(m) ball).")

sgd_step_size = Bound(
    name="allen_zhu_li_song.sgd_step_size", expr=delta / (rho_s**42 * m),
    symbols=_pick("delta", "rho", "m"),
    lhs=sym("SGD learning rate eta", "positive", name="eta"), relation="=",
    assumptions=_SETUP + ["update W <- W - eta (n/|S_t|) sum_{i in S_t} grad f_i(W)"],
    source=_I, status="corrected",
    note="the statement prints eta = delta/(rho^12 m). The proof says it used "
         "eta <= O(delta/(rho^42 m)), and the window's lower end rho^57/delta^2 equals "
         "rho^15/(eta delta m) only for rho^42. (Step 3 of (I.2) reuses the GD argument, which "
         "strictly needs rho^44.)")

sgd_step_size_as_printed = delta / (rho_s**12 * m)

sgd_iterations_min = Bound(
    name="allen_zhu_li_song.sgd_iterations_min",
    expr=rho_s**57 / delta**2 * sp.log(1 / eps),
    symbols=_pick("rho", "delta", "eps"),
    lhs=sym("number of SGD iterations T", "positive", name="T"), relation=">=",
    assumptions=_SETUP, source=_I, status="explicit")

sgd_iterations_max = Bound(
    name="allen_zhu_li_song.sgd_iterations_max",
    expr=rho_s**57 * varrho_s**28 / delta**2 * sp.log(1 / eps),
    symbols=_pick("rho", "varrho", "delta", "eps"),
    lhs=sym("number of SGD iterations T", "positive", name="T"), relation="<=",
    assumptions=_SETUP, source=_I, status="explicit")

_eta = sp.Symbol("eta", positive=True)
contraction_factor = Bound(
    name="allen_zhu_li_song.contraction_factor",
    expr=1 - C_0 * _eta * delta * m / rho_s**15,
    symbols={**_pick("delta", "m", "rho", "C_0"), "eta": sym("learning rate", "positive")},
    lhs=sym("per-step ratio f(W^(t+1))/f(W^(t)) (expected ratio for SGD)", "positive",
            name="ratio"),
    relation="<=", assumptions=_SETUP + ["iterates within varrho^50/sqrt(m) of W^(0)"],
    source=f"{PAPER}, App. H proof of Thm 1 and App. I (I.2)", status="unspecified-constants",
    note="1 - Omega(eta delta m/rho^15): the Omega constant is C_0 (default 1). (I.2) prints "
         "eta delta/(rho^15 m), a typo for eta delta m/rho^15.")

initial_loss = Bound(
    name="allen_zhu_li_song.initial_loss",
    expr=C_0 * n * rho_s**2 * L**3,
    symbols=_pick("C_0", "n", "rho", "L"),
    lhs=sym("objective f(W^(0)) at initialization", "nonnegative", name="f_0"),
    relation="<=",
    assumptions=_SETUP + ["labels y* implicitly O(1)-bounded (never stated in the paper)"],
    source=f"{PAPER}, App. H (proof of Thm 1)", status="unspecified-constants",
    note="f(W^(0)) <= O(n rho^2 L^3); the O constant is C_0 (default 1).")

_lemma_b3 = ["probability >= 1 - exp(-Omega(m/L^2)) over the initialization, all i"]
lemma_b_3_h_lower = Bound(
    name="allen_zhu_li_song.lemma_b_3_h_lower",
    expr=(1 - 1 / (4 * L)) ** ell,
    symbols=_pick("L", "ell"),
    lhs=sym("||h_{i,ell+1}||_2", "nonnegative", name="h_norm"), relation=">=",
    assumptions=_lemma_b3 + [Assumption("ell <= L-1", ell <= L - 1)],
    source=f"{PAPER}, Lemma B.3", status="explicit",
    note="(1 - 1/(4L))^L >= 3/4, so the forward norms never vanish.")

lemma_b_3_h_upper = Bound(
    name="allen_zhu_li_song.lemma_b_3_h_upper",
    expr=2 * ell + 4, symbols=_pick("ell"),
    lhs=sym("||h_{i,ell+1}||_2", "nonnegative", name="h_norm"), relation="<=",
    assumptions=_lemma_b3, source=f"{PAPER}, Lemma B.3", status="explicit")

lemma_b_3_g_upper = Bound(
    name="allen_zhu_li_song.lemma_b_3_g_upper",
    expr=4 * ell + 8, symbols=_pick("ell"),
    lhs=sym("||g_{i,ell+1}||_2 (pre-activation)", "nonnegative", name="g_norm"),
    relation="<=", assumptions=_lemma_b3, source=f"{PAPER}, Lemma B.3", status="explicit")

lemma_b_6_fresh = Bound(
    name="allen_zhu_li_song.lemma_b_6_fresh",
    expr=1 / (2 * 10**6 * L**2 * sp.log(m) ** 3),
    symbols=_pick("L", "m"),
    lhs=sym("||(I - U_ell U_ell^T) h_{i,ell+1}|| (fresh randomness)", "nonnegative",
            name="fresh"),
    relation=">=", assumptions=["probability >= 1 - exp(-Omega(sqrt m))"],
    source=f"{PAPER}, Lemma B.6", status="explicit")

BOUNDS = make_registry("allen_zhu_li_song", globals())
