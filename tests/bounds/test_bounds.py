"""Bounds: values at hand-computed points, solve inverts evaluate, flagged corrections."""

import math

import numpy as np
import pytest
import sympy as sp

from ntksym.bounds import all_bounds, arora, get
from ntksym.bounds import allen_zhu_li_song as azls
from ntksym.bounds import chatterji_long_bartlett as clb
from ntksym.bounds import qian_klabjan as qk
from ntksym.bounds import yang_wang as yw
from ntksym.errors import NtksymError


def test_registry_complete_and_documented():
    bounds = all_bounds()
    assert len(bounds) >= 50
    for name, b in bounds.items():
        assert name == b.name and "." in name
        assert b.status in ("explicit", "unspecified-constants", "corrected")
        assert b.source and b.lhs.meaning
        for k in b.args:
            assert b.symbols[k].meaning, (name, k)
        if b.status != "explicit":
            assert b.note, name
    for required in ["yang_wang.theorem_3_5_width", "yang_wang.theorem_9_8_width",
                     "yang_wang.crossover_eps", "qian_klabjan.theorem_1_error",
                     "qian_klabjan.theorem_2_probability", "qian_klabjan.theorem_3_alpha_max",
                     "qian_klabjan.theorem_1_alpha_min", "qian_klabjan.lemma_1_mean",
                     "qian_klabjan.lemma_3_spectral_norm", "qian_klabjan.lemma_4_latala",
                     "qian_klabjan.lemma_6_balls_in_bins", "arora.theorem_3_1_width",
                     "arora.theorem_b_1_width", "arora.theorem_b_2_width",
                     "arora.lemma_c_1_prediction", "chatterji_long_bartlett.theorem_3_1_h_max",
                     "chatterji_long_bartlett.theorem_3_3_T_stage1",
                     "chatterji_long_bartlett.lemma_b_18_alignment",
                     "allen_zhu_li_song.sgd_step_size", "allen_zhu_li_song.lemma_b_3_h_upper"]:
        assert required in bounds


def test_get_did_you_mean():
    assert get("theorem_3_5_width") is yw.theorem_3_5_width
    with pytest.raises(NtksymError, match="did you mean"):
        get("yang_wang.theorem_3_5_widht")


# ---------------------------------------------------------------- Yang & Wang
def test_yang_wang_theorem_3_5_by_hand():
    # alpha=1/2, L=2, eps=1/2: L^6/(alpha eps^4) = 64/(1/2 * 1/16) = 2048,
    # L^2/(alpha^2 eps^2) = 4/(1/4 * 1/4) = 64 -> max 2048 (C = 1)
    b = yw.theorem_3_5_width
    assert b.evaluate(alpha=0.5, L=2, eps=0.5) == pytest.approx(2048, rel=1e-15)
    assert b.evaluate(alpha=0.5, L=2, eps=0.5, C=3) == pytest.approx(6144)
    # above eps* = L^2 sqrt(alpha) = 2.83 the 1/alpha^2 term wins: at eps = 4: first
    # 64/(1/2*256) = 0.5, second 4/(1/4*16) = 1 -> 1/alpha^2 term wins
    assert b.evaluate(alpha=0.5, L=2, eps=4) == pytest.approx(1.0)
    assert b.solve("eps", d=2048, alpha=0.5, L=2) == pytest.approx(0.5, rel=1e-12)
    assert b.solve("alpha", d=2048, L=2, eps=0.5) == pytest.approx(0.5, rel=1e-12)
    # alpha = 1 reduces to Arora et al.'s L^6/eps^4: 64 * 16 = 1024
    assert b.evaluate(alpha=1, L=2, eps=0.5) == pytest.approx(1024)


def test_yang_wang_crossover():
    # eps* = L^2 sqrt(alpha) = 9 * 0.5 = 4.5 at L=3, alpha=1/4; the terms are equal there
    assert yw.crossover_eps.evaluate(L=3, alpha=0.25) == pytest.approx(4.5)
    t1 = 3**6 / (0.25 * 4.5**4)
    t2 = 3**2 / (0.25**2 * 4.5**2)
    assert t1 == pytest.approx(t2)
    assert yw.crossover_eps.solve("alpha", eps_star=4.5, L=3) == pytest.approx(0.25)


def test_yang_wang_theorem_9_8_by_hand():
    # alpha=1, L=1, eps=1, delta=1/2, d_next=1, S_all=1, S_before=1:
    # terms log(2), log(2), L^4/(alpha eps^2) log(2*1*1*1/(0.5/5)) = log(20) -> log 20
    b = yw.theorem_9_8_width
    v = b.evaluate(alpha=1, L=1, eps=1, delta=0.5, d_next=1, S_all=1, S_before=1)
    assert v == pytest.approx(math.log(20))
    assert b.status == "corrected" and "d'_h" in b.note
    d = yw.min_equal_width(0.5, 2, 0.1, 0.05)
    # the fixed point satisfies the Thm 9.8 condition with equality at h = L
    assert b.evaluate(alpha=0.5, L=2, eps=0.1, delta=0.05, d_next=d, S_all=d,
                      S_before=d) == pytest.approx(d, rel=1e-9)


def test_yang_wang_chernoff_correction():
    from scipy.stats import binom
    p, m, e = 0.01, 100_000, 0.1
    mu = p * m
    exact = binom.cdf(math.ceil(mu * (1 - e)) - 1, m, p) + binom.sf(math.floor(mu * (1 + e)) - 1,
                                                                    m, p)
    printed = float(yw.theorem_9_1_chernoff_as_printed.subs({sp.Symbol("eps", positive=True): e,
                                                              sp.Symbol("p"): p,
                                                              sp.Symbol("m"): m}))
    assert printed < exact          # the printed bound is violated
    corrected = yw.theorem_9_1_chernoff.evaluate(eps=e, p=p, m=m)
    assert corrected >= exact       # 2 exp(-0.1^2 * 1000 / 3) = 2 e^(-10/3) = 0.0713
    assert corrected == pytest.approx(2 * math.exp(-10 / 3))


# ---------------------------------------------------------------- Qian & Klabjan
def test_qk_theorem_1_by_hand():
    # l=3, d=256, alpha=1/2, L_prod=1, c_0=2: (2^1 - 1) * 256^-0.5 * 1 * 2^2 = 4/16 = 0.25
    assert qk.theorem_1_error.evaluate(l=3, d=256, alpha=0.5, L_prod=1, c_0=2) == 0.25
    # width: l=3, eps=0.25, delta=0.5, K=1, c_0=2, delta_0=1/4, C_lat=1, alpha=1/2:
    # C_1^(1/a) = (1/2)^2 = 0.25; (C_2/eps)^2 = (4/0.25)^2 = 256;
    # C_3 = 7 (2 sqrt 2 + 24^(1/4)) = 7 * 5.041 = 35.29, (C_3/0.5)^2 = 4982.2;
    # C_4 + C_5 log 2 = log 7 + log 2 = 2.639 -> max = (14 (2 sqrt2 + 24^.25))^2
    c3 = 7 * (2 * math.sqrt(2) + 24**0.25)
    w = qk.theorem_1_width.evaluate(l=3, alpha=0.5, eps=0.25, delta=0.5, K=1, c_0=2,
                                    delta_0=0.25, L_prod=1)
    assert w == pytest.approx((c3 / 0.5) ** 2)
    # the inverse: at d = w the smallest admissible alpha is 1/2
    a = qk.theorem_1_alpha_min.evaluate(l=3, d=w, eps=0.25, delta=0.5, K=1, c_0=2,
                                        delta_0=0.25, L_prod=1)
    assert a == pytest.approx(0.5)
    assert qk.theorem_1_width.solve("alpha", d=w, l=3, eps=0.25, delta=0.5, K=1, c_0=2,
                                    delta_0=0.25, L_prod=1) == pytest.approx(0.5)


def test_qk_probability_by_hand():
    # Thm 1: l=3, d=100, alpha=1/2, K=1, C_lat=1, delta_0=0.01:
    # e^(-4) = 0.0183156; c_2 = 2 sqrt2 + 24^(1/4) = 5.04154; c_2 d^-alpha = 0.504154
    # (1 - 2*0.0183156)(1 - 0.504154 - 4*0.0183156) = 0.963369 * 0.422584
    e4 = math.exp(-4)
    c2 = 2 * math.sqrt(2) + 24**0.25
    want = (1 - 2 * e4) * (1 - c2 / 10 - 4 * e4)
    got = qk.theorem_1_probability.evaluate(l=3, d=100, alpha=0.5, K=1, c_0=1, delta_0=0.01)
    assert got == pytest.approx(want, rel=1e-14)
    # Thm 2: l=3, d=1000, alpha=0.4, K_1=K_2=1, c_1=1, delta_l=0, S_delta=0:
    # (1 - 0.1)^2 * (1 - (2 sqrt3 + 1) * 1000^-0.1) = 0.81 * (1 - 4.4641/1.99526)
    want2 = 0.81 * (1 - (2 * math.sqrt(3) + 1) / 1000**0.1)
    got2 = qk.theorem_2_probability.evaluate(l=3, d=1000, alpha=0.4, K_1=1, K_2=1,
                                             delta_l=0, S_delta=0)
    assert got2 == pytest.approx(want2)


def test_qk_theorem_2_alpha_sign_correction():
    # d=1024 square: corrected 1 - (log 1025 + log log 1024)/(2 log 1024) = 0.3603 (notes' table)
    assert qk.theorem_2_alpha_condition.evaluate(d_k=1024, d_km1=1024) == pytest.approx(
        0.3603, abs=5e-4)
    s = {x.name: x for x in qk.theorem_2_alpha_condition_as_printed.free_symbols}
    printed = float(qk.theorem_2_alpha_condition_as_printed.subs({s["d_k"]: 1024,
                                                                   s["d_km1"]: 1024}))
    assert printed == pytest.approx(0.640, abs=5e-4)
    # the corrected condition is what makes floor(D^(1-alpha)) >= d log d hold
    for d in (64, 256, 1024):
        a = qk.theorem_2_alpha_condition.evaluate(d_k=d, d_km1=d)
        assert math.floor(d ** (2 * (1 - a))) >= d * math.log(d)
        assert (d * d) ** (1 - printed) < d * math.log(d) or d != 1024


def test_qk_theorem_3_alpha_max_paper_values():
    # the paper's own examples: d=128 -> 0.6729, d=1024 -> 0.7205
    assert qk.theorem_3_alpha_max.evaluate(d=128) == pytest.approx(0.6729, abs=5e-5)
    assert qk.theorem_3_alpha_max.evaluate(d=1024) == pytest.approx(0.7205, abs=5e-5)
    # l=3: error = p^-2b1 d^-b2 L p_in sqrt(d) ... with p=16, b1=1/2, b2=1/4, d=16, L=1, p_in=1:
    # p^-b1 L^2 sqrt(d) [p^-b1 (p^-b1 + d^-b2) - p^-2b1] = 1/4 * 4 * [1/4 * (1/4+1/2) - 1/16]
    # = 1 * (3/16 - 1/16) = 1/8
    assert qk.theorem_3_error.evaluate(p=16, beta_1=0.5, beta_2=0.25, L_lip=1, l=3, p_in=1,
                                       d=16) == pytest.approx(0.125)


def test_qk_lemma_1_against_exact_and_mc():
    # n=3, r=2, a=1: E X_(2) = 2*3/(4*5) = 0.3; E X_(2)^2 = 2*3*4*5/(4*5*6*7) = 1/7
    assert qk.lemma_1_mean.evaluate(a=1, n=3, r=2) == pytest.approx(0.3)
    assert qk.lemma_1_second_moment.evaluate(a=1, n=3, r=2) == pytest.approx(1 / 7)
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(-1, 1, size=(200_000, 3)) ** 2, axis=1)[:, 1]
    assert x.mean() == pytest.approx(0.3, abs=3e-3)


def test_qk_lemma_3_delta0_matches_table2():
    # Table 2 row n=32: delta_0 = ln(2/0.05)/128 = 3.689/128 = 0.0288 -> printed 0.029
    for q, printed in [(0.95, 0.029), (0.99, 0.041), (0.999, 0.059), (0.9999, 0.077)]:
        assert round(qk.lemma_3_delta_0.evaluate(q=q, n=32), 3) == printed
    assert qk.lemma_3_delta_0.solve("q", delta_0=math.log(40) / 128, n=32) == pytest.approx(0.95)


def test_qk_lemma_6_correction_and_mc():
    # corrected exponent 3 ln 3 - 3 = 0.2958 < 1/3 (the printed one is too optimistic)
    n = 32
    corrected = qk.lemma_6_balls_in_bins.evaluate(n=n, N=n * math.log(n))
    assert corrected == pytest.approx(1 - n ** -(3 * math.log(3) - 3))
    assert corrected < float(qk.lemma_6_as_printed.subs(
        {next(iter(qk.lemma_6_as_printed.free_symbols)): n}))
    rng = np.random.default_rng(1)
    N = math.ceil(n * math.log(n))
    loads = np.stack([np.bincount(rng.integers(0, n, N), minlength=n) for _ in range(2000)])
    assert (loads.max(axis=1) <= 3 * N / n).mean() >= corrected


def test_qk_largest_pruning():
    vals = dict(l=3, K=1, c_0=1.17, delta_0=0.005, L_prod=1, C_lat=0.63)
    r = qk.largest_pruning(1, d=2**20, eps=0.1, delta=0.1, **vals)
    # alpha_min = log(C_3/delta)/log d with C_3 = 7*0.63*(2 sqrt2 + 24^.25) = 22.23
    c3 = 7 * 0.63 * (2 * math.sqrt(2) + 24**0.25)
    assert r["alpha_min"] == pytest.approx(math.log(c3 / 0.1) / math.log(2**20))
    assert r["feasible"] and r["pruned"] == math.floor((2.0**40) ** (1 - r["alpha_min"]))
    # too narrow: the alpha-free condition d >= C_4 + C_5 log(1/delta) = 50 log 7 + 50 log 10 fails
    assert not qk.largest_pruning(1, d=200, eps=0.1, delta=0.1, **vals)["feasible"]


# ---------------------------------------------------------------- Arora et al.
def test_arora_widths_by_hand():
    # B.1: L=2, eps=1/2, delta=1/4: 4 log(64) / (1/4) = 16 log 64
    assert arora.theorem_b_1_width.evaluate(L=2, eps=0.5, delta=0.25) == pytest.approx(
        16 * math.log(64))
    # B.2: L=2, eps=1/2, delta=1/4: 4 log 8 / (1/16) = 64 log 8
    assert arora.theorem_b_2_width.evaluate(L=2, eps=0.5, delta=0.25) == pytest.approx(
        64 * math.log(8))
    assert arora.theorem_b_2_width.solve("eps", d_min=64 * math.log(8), L=2,
                                         delta=0.25) == pytest.approx(0.5)
    # 3.1 via B.2 at eps' = eps/(4L(L+1)): L=1, eps=1 -> eps' = 1/8: 1*log(1/delta)*8^4
    assert arora.theorem_3_1_width.evaluate(L=1, eps=1, delta=math.exp(-1)) == pytest.approx(
        256 * 16)
    assert not arora.theorem_b_1_width.assumptions_hold(L=2, eps=0.9, delta=0.1)


def test_arora_lemma_c_1_by_hand():
    # n=4, lam_0=2, eps_init=0.1, eps_test=0.2, eps_H=0.5, kappa=1:
    # 0.1 + 2/2*0.2 + 2/4*log(4/(0.5*2*1))*0.5 = 0.3 + 0.25 log 4
    b = arora.lemma_c_1_prediction
    v = b.evaluate(n=4, lam_0=2, eps_init=0.1, eps_test=0.2, eps_H=0.5, kappa=1)
    assert v == pytest.approx(0.3 + 0.25 * math.log(4))
    assert b.assumptions_hold(lam_0=2, eps_H=0.5) and not b.assumptions_hold(lam_0=2, eps_H=1.5)


# ---------------------------------------------------------------- Chatterji, Long & Bartlett
def test_clb_theorem_3_1_by_hand():
    # L=2, p=4, J_1=e^-8, N_1=2: h_max = min(2^-2 * 8/(24*2*4), 1) = 2/192 = 1/96
    assert clb.theorem_3_1_h_max.evaluate(L=2, p=4, J_1=math.exp(-8),
                                          N_1=2) == pytest.approx(1 / 96)
    # Q_tilde(alpha=1): 2 (2.75)^2 e^-8 8^(1) / (2.5 * 4) = 2*7.5625*8/10 e^-8 = 12.1 e^-8
    assert clb.theorem_3_1_Q_tilde.evaluate(L=2, alpha=1, J_1=math.exp(-8),
                                            N_1=2) == pytest.approx(12.1 * math.exp(-8))
    # alpha_max(h=1/96): first h/(1024*9*4*e^-8*2^11) = e^8/(96*1024*36*2048),
    # second 2.5*4/(4*7.5625*e^-8*8) = e^8 * 10/242 -> first is smaller
    want = math.exp(8) / (96 * 1024 * 36 * 2048)
    assert clb.theorem_3_1_alpha_max.evaluate(L=2, p=4, J_1=math.exp(-8), N_1=2,
                                              h=1 / 96) == pytest.approx(want)
    # rate: J_1/(Q (t-1) + 1) = 1/(0.5*2+1) = 1/2
    assert clb.theorem_3_1_rate.evaluate(J_1=1, Q=0.5, t=3) == 0.5
    assert clb.theorem_3_1_rate.solve("t", J_t=0.5, J_1=1, Q=0.5) == pytest.approx(3)


def test_clb_threshold_underflow_is_precise():
    v = clb.theorem_3_1_loss_threshold.evaluate(n=100, L=10)   # 100^-241 = 1e-482
    assert isinstance(v, sp.Float) and abs(v / sp.Float("1e-482", 30) - 1) < 1e-25
    # Lemma B.5 needs exp(2e-482) - 1 without cancellation: sqrt(11) (482 ln 10 - ln 2)^(1/11)
    want = math.sqrt(11) * (482 * math.log(10) - math.log(2)) ** (1 / 11)
    assert clb.lemma_b_5_norm.evaluate(n=100, L=10) == pytest.approx(want, rel=1e-12)


def test_clb_theorem_3_3_by_hand():
    # h_NT at L=1, n=3, p=6: (1+24) log 3/(6 * 36^1 * 1) = 25 log 3/216
    assert clb.theorem_3_3_h_NT.evaluate(L=1, n=3, p=6) == pytest.approx(25 * math.log(3) / 216)
    # the paper's chain h_NT <= L^(L/2-3)(1+24L) log n/(24 sqrt p (6pL)^(L/2)) fails by 2 sqrt6/3
    L, p, n = sp.symbols("L p n", positive=True)
    middle = (L ** (L / 2 - 3) * (1 + 24 * L) * sp.log(n)
              / (24 * sp.sqrt(p) * sp.sqrt(6 * p * L) ** L))
    hnt = clb.theorem_3_3_h_NT.expr.subs({s: {"L": L, "p": p, "n": n}[s.name]
                                          for s in clb.theorem_3_3_h_NT.expr.free_symbols})
    ratio = sp.simplify(sp.powsimp(hnt / middle, force=True).subs(L, 2))
    assert float(ratio) == pytest.approx(2 * math.sqrt(6) / 3)
    # T: L=1, rho=1, n=3, p=1, c_NT=1: ceil(3*2*1*3^26*1*1/2) = 3^27
    assert clb.theorem_3_3_T_stage1.evaluate(L=1, rho=1, n=3, p=1) == 3**27
    # stage 2: L=1, p=1, n=3, t=12, T=1: 50 * 1 * 4 * 6^7/(3^25 * 10)
    assert clb.theorem_3_3_stage2_rate.evaluate(L=1, p=1, n=3, t=12, T=1) == pytest.approx(
        20 * 6**7 / 3**25)
    assert clb.theorem_3_3_rho.status == "corrected"


# ---------------------------------------------------------------- Allen-Zhu, Li & Song
def test_azls_by_hand_and_sgd_misprint():
    # rho = n L d log m: 2 * 3 * 4 * log(e^2) = 48
    assert azls.rho.evaluate(n=2, L=3, d=4, m=math.e**2) == pytest.approx(48)
    # varrho = n L d log(m/eps)/delta = 24 * log(e^2/ (1/e)) / 0.5 = 24 * 3 * 2 = 144
    assert azls.varrho.evaluate(n=2, L=3, d=4, m=math.e**2, eps=1 / math.e,
                                delta=0.5) == pytest.approx(144)
    # GD: eta = delta/(rho^44 m) with rho=2, delta=1/2, m=8: 1/(2^45 * 8) = 2^-48
    assert azls.gd_step_size.evaluate(delta=0.5, rho=2, m=8) == 2.0**-48
    assert azls.gd_step_size.solve("rho", eta=2.0**-48, delta=0.5, m=8) == pytest.approx(2)
    # SGD misprint: the window's lower end rho^57/delta^2 log(1/eps) must equal
    # rho^15/(eta delta m) log(1/eps); this holds for rho^42, not for the printed rho^12
    rho, delta, m, eps = sp.symbols("rho delta m eps", positive=True)
    sub = {s: {"rho": rho, "delta": delta, "m": m, "eps": eps}[s.name]
           for s in (azls.sgd_step_size.expr.free_symbols
                     | azls.sgd_iterations_min.expr.free_symbols)}
    lower = azls.sgd_iterations_min.expr.xreplace(sub)
    for eta, ok in [(azls.sgd_step_size.expr.xreplace(sub), True),
                    (azls.sgd_step_size_as_printed.xreplace(sub), False)]:
        implied = rho**15 / (eta * delta * m) * sp.log(1 / eps)
        assert (sp.simplify(implied - lower) == 0) is ok
    assert azls.sgd_step_size.status == "corrected"
    # GD: same identity with rho^44 and rho^59
    eta_gd = azls.gd_step_size.expr.xreplace(sub)
    assert sp.simplify(rho**15 / (eta_gd * delta * m) * sp.log(1 / eps)
                       - azls.gd_iterations_min.expr.xreplace(sub)) == 0


def test_azls_lemma_b_3():
    # L=4, ell=2: (1 - 1/16)^2 = 225/256; upper 2*2+4 = 8; g upper 16
    assert azls.lemma_b_3_h_lower.evaluate(L=4, ell=2) == pytest.approx(225 / 256)
    assert azls.lemma_b_3_h_upper.evaluate(ell=2) == 8
    assert azls.lemma_b_3_g_upper.evaluate(ell=2) == 16
    assert not azls.lemma_b_3_h_lower.assumptions_hold(L=4, ell=5)


# ---------------------------------------------------------------- the Bound machinery
def test_solve_inverts_evaluate_everywhere_it_can():
    """For every bound: pick a point, evaluate, then solve back each symbol (monotone ones)."""
    rng = np.random.default_rng(0)
    checked = 0
    for name, b in all_bounds().items():
        vals = {}
        for k in b.args:
            info = b.symbols[k]
            lo = float(info.domain.inf) if info.domain.inf.is_finite else 0.0
            hi = float(info.domain.sup) if info.domain.sup.is_finite else lo + 10.0
            v = lo + (hi - lo) * rng.uniform(0.3, 0.7)
            vals[k] = float(round(v)) if info.integer else v
        try:
            val = b.evaluate(**vals)
        except NtksymError:
            continue
        if not isinstance(val, float) or not math.isfinite(val) or val == 0 \
                or val not in b.lhs.domain or b.expr.has(sp.ceiling):
            continue
        for k in b.args:
            if b.symbols[k].integer:
                continue
            others = {j: vals[j] for j in b.args if j != k}
            try:
                moved = b.evaluate(**others, **{k: vals[k] * 1.001})
            except NtksymError:
                continue
            # on a plateau (min(J, 1) at J >= 1, an inactive term of a max) the point is not
            # identifiable from the value; skip those variables
            if moved == pytest.approx(val, rel=1e-9):
                continue
            roots = b.solve_all(k, **others, **{b.lhs.name: val})
            assert roots, (name, k)
            for r in roots:   # every root reproduces the value ...
                assert b.evaluate(**others, **{k: r}) == pytest.approx(val, rel=1e-9), (name, k)
            # ... and the original point is one of them (loosely: some inversions, such as a
            # ratio 1 - 1e-9, are ill-conditioned)
            assert any(r == pytest.approx(vals[k], rel=1e-4) for r in roots), (name, k, roots)
            checked += 1
    assert checked >= 80


def test_bound_errors_and_helpers():
    b = yw.theorem_3_5_width
    with pytest.raises(NtksymError, match="did you mean 'alpha'"):
        b.evaluate(alpah=0.5, L=2, eps=0.1)
    with pytest.raises(NtksymError, match="outside the domain"):
        b.evaluate(alpha=1.5, L=2, eps=0.1)
    with pytest.raises(NtksymError, match="missing"):
        b.evaluate(alpha=0.5, L=2)
    with pytest.raises(NtksymError, match="integer"):
        b.evaluate(alpha=0.5, L=2.5, eps=0.1)
    with pytest.raises(NtksymError, match="no value"):
        # eps* = sqrt(alpha) <= 1 for L=1, alpha in (0,1]: 100 is out of reach
        yw.crossover_eps.solve("alpha", eps_star=100, L=1)
    assert b.holds(d=2049, alpha=0.5, L=2, eps=0.5) and not b.holds(d=2047, alpha=0.5, L=2,
                                                                     eps=0.5)
    f = b.as_function()
    np.testing.assert_allclose(f(alpha=np.array([0.5, 1.0]), L=2, eps=0.5), [2048, 1024])
    assert b.latex().startswith("d \\geq C \\max")
    d = b.to_dict()
    assert d["status"] == "unspecified-constants" and "alpha" in d["symbols"]
    assert "theorem_3_5_width" in b.describe()


def test_cli_bounds(root):
    import json as _json
    import subprocess
    import sys

    from click.testing import CliRunner

    from ntksym.bounds.commands import bounds_group
    run = CliRunner().invoke
    r = run(bounds_group, ["list"])
    # per paper: name and status, then the relation itself (not "d >= ..."), within 100 columns
    assert r.exit_code == 0 and "\nyang_wang\n" in r.output
    assert "  theorem_3_5_width  " in r.output and "..." not in r.output
    assert "    d >= C*Max(L**2/(alpha**2*eps**2), L**6/(alpha*eps**4))\n" in r.output
    assert max(map(len, r.output.splitlines())) <= 100
    r = run(bounds_group, ["list", "--json"])
    assert set(_json.loads(r.output)) == set(all_bounds())
    # numbers for reading: 6 significant digits, not 14579999.999999996 (--json keeps them all)
    r = run(bounds_group, ["eval", "yang_wang.theorem_3_5_width", "alpha=0.5", "L=3", "eps=0.1"])
    assert r.output.splitlines()[0] == "d >= 1.458e7    [unspecified-constants]"
    r = run(bounds_group, ["solve", "yang_wang.theorem_3_5_width", "eps", "d=1e6", "alpha=0.5",
                           "L=3"])
    assert r.output == "eps = 0.195407\n"
    r = run(bounds_group, ["eval", "yang_wang.theorem_3_5_width", "alpha=0.5", "L=2", "eps=0.5",
                           "--json"])
    assert r.exit_code == 0 and _json.loads(r.output)["value"] == pytest.approx(2048)
    r = run(bounds_group, ["solve", "yang_wang.theorem_3_5_width", "eps", "d=2048", "alpha=0.5",
                           "L=2", "--json"])
    assert _json.loads(r.output)["solutions"] == [pytest.approx(0.5)]
    r = run(bounds_group, ["show", "qian_klabjan.theorem_3_alpha_max", "--latex"])
    assert r.output.startswith("\\alpha \\leq")
    # user errors: exit status 2 with one line through cli.main
    p = subprocess.run([sys.executable, str(root / "cli.py"), "bounds", "eval",
                        "arora.theorem_b_2_width", "L=2", "eps=0.1", "delta=2"],
                       capture_output=True, text=True, cwd=root)
    assert p.returncode == 2 and "outside the domain" in p.stderr
