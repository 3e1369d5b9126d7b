"""Arora, Du, Hu, Li, Salakhutdinov, Wang (2019), "On Exact Computation with an Infinitely Wide
Neural Net" (the CNTK paper): width requirements for the finite ReLU MLP's NTK at initialization
to be within eps of the limit (Thm 3.1, B.1, B.2) and the kernel-to-prediction perturbation
Lemma C.1.  Thm 3.1's ``poly(L, 1/eps)`` is never given; ``c_1``, ``c_2`` of B.1/B.2 and the
``O(.)`` of C.1 are unspecified constants (symbols, default 1).

>>> from ntksym.bounds import arora
>>> round(arora.theorem_b_2_width.evaluate(L=2, eps=0.1, delta=0.2), 6)
92103.40372
"""

from __future__ import annotations

import sympy as sp

from ntksym.bounds.core import Assumption, Bound, make_registry, sym

PAPER = "Arora et al. 2019 (NeurIPS, arXiv 1904.11955)"

L, eps, delta, c_1 = sp.symbols("L eps delta c_1", positive=True)
n, lam_0, eps_init, eps_test, eps_H, kappa, C = sp.symbols(
    "n lam_0 eps_init eps_test eps_H kappa C", positive=True)

_S = {
    "L": sym("number of hidden layers", sp.Interval(1, sp.oo), integer=True),
    "eps": sym("accuracy", "positive"),
    "delta": sym("failure probability", "unit"),
    "c_1": sym("unspecified absolute constant c_1 of the theorem", "positive", default=1.0),
}
_RELU = ["sigma = ReLU, weights i.i.d. N(0,1), NTK parameterization (sqrt(c_sigma/d_h))",
         "fixed inputs with ||x||, ||x'|| <= 1",
         Assumption("delta in (0,1)", sp.And(delta > 0, delta < 1))]
_D = sym("min_{h in [L]} d_h (smallest hidden width)", sp.Interval(1, sp.oo), name="d_min")

theorem_b_1_width = Bound(
    name="arora.theorem_b_1_width",
    expr=c_1 * L**2 * sp.log(8 * L / delta) / eps**2,
    symbols=dict(_S), lhs=_D, relation=">=",
    assumptions=_RELU + [Assumption("eps <= min(c_2, 1/L) (c_2 unspecified)", eps <= 1 / L)],
    source=f"{PAPER}, Theorem B.1 (= Daniely et al. 2016, Cor. 16)",
    status="unspecified-constants",
    note="c_1, c_2 unspecified (c_1 default 1). Conclusion: |g^(h)(x)^T g^(h)(x') - "
         "Sigma^(h)(x,x')| <= eps for all h and the three pairs. The restatement in App. B.2 "
         "uses log(1/delta_1) instead of log(8L/delta).")

theorem_b_2_width = Bound(
    name="arora.theorem_b_2_width",
    expr=c_1 * L**2 * sp.log(L / delta) / eps**4,
    symbols=dict(_S), lhs=_D, relation=">=",
    assumptions=_RELU + [Assumption("eps <= c_2/L (c_2 unspecified; checked with c_2 = 1)",
                                    eps <= 1 / L)],
    source=f"{PAPER}, Theorem B.2",
    status="unspecified-constants",
    note="c_1, c_2 unspecified (c_1 default 1). Conclusion: forward errors <= eps^2/2 and "
         "backward errors |<b^(h), b'^(h)> - prod Sigma-dot| < 3 L eps. The restatement in the "
         "proof writes eps_1^2 and eps^2/8; the statement's eps^-4 is the consistent one (the "
         "proof applies Thm B.1 with eps_1 = eps^2/8).")

theorem_3_1_width = Bound(
    name="arora.theorem_3_1_width",
    expr=c_1 * 256 * L**6 * (L + 1) ** 4 * sp.log(L / delta) / eps**4,
    symbols=dict(_S), lhs=_D, relation=">=",
    assumptions=_RELU + ["eps' = eps/(4L(L+1)) must satisfy Thm B.2's eps' <= c_2/L"],
    source=f"{PAPER}, Theorem 3.1 (poly(L, 1/eps) log(L/delta)) via Theorem B.2 (App. B.2)",
    status="unspecified-constants",
    note="the statement only says min_h d_h >= poly(L, 1/eps) log(L/delta). This expression "
         "is Thm B.2 at eps' = eps/(4L(L+1)) (per-layer error <= 3L eps' + eps'^2/2 + cross "
         "terms <= 4L eps', summed over L+1 layers), i.e. a derived instance of the poly, not "
         "a printed formula; indicative only (Thm B.2's own restatement is inconsistent). "
         "c_1 default 1.")

lemma_c_1_prediction = Bound(
    name="arora.lemma_c_1_prediction",
    expr=C * (eps_init + sp.sqrt(n) / lam_0 * eps_test
              + sp.sqrt(n) / lam_0**2 * sp.log(n / (eps_H * lam_0 * kappa)) * eps_H),
    symbols={"C": sym("unspecified constant of the O(.)", "positive", default=1.0),
             "n": sym("number of training points", sp.Interval(1, sp.oo), integer=True),
             "lam_0": sym("lambda_0 = smallest eigenvalue of the NTK Gram matrix H*",
                          "positive"),
             "eps_init": sym("bound on |f_nn(theta(0), x)| at training and test points",
                             "nonnegative"),
             "eps_test": sym("sup_t ||ker_ntk(x_te, X) - ker_t(x_te, X)||_2", "nonnegative"),
             "eps_H": sym("sup_t ||H* - H(t)||_2", "positive"),
             "kappa": sym("output scale kappa of f_nn = kappa f", "positive")},
    lhs=sym("|f_ntk(x_te) - f_nn(x_te)|", "nonnegative", name="pred_err"),
    relation="<=",
    assumptions=[Assumption("eps_H <= lambda_0 / 2", eps_H <= lam_0 / 2),
                 "||u_nn(0) - y||_2 = O(sqrt n)",
                 "the kernel bounds hold for all t >= 0 along gradient flow"],
    source=f"{PAPER}, Lemma C.1",
    status="unspecified-constants",
    note="the O(.) constant is the symbol C (default 1). The proof's kappa^2 bookkeeping is "
         "inconsistent between displays; the statement is encoded as printed.")

lemma_b_4_output = Bound(
    name="arora.lemma_b_4_output",
    expr=2 * sp.sqrt(sp.log(4 / sp.Symbol("delta_3", positive=True))),
    symbols={"delta_3": sym("failure probability", "unit")},
    lhs=sym("|f(theta, x)| and |f(theta, x')| at initialization", "nonnegative", name="f_abs"),
    relation="<=",
    assumptions=["forward event A^L(eps_1^2/2) with eps_1 in [0,1] (||g^(L)||^2 <= 2)"],
    source=f"{PAPER}, Lemma B.4", status="explicit")

lemma_b_9_trace = Bound(
    name="arora.lemma_b_9_trace",
    expr=sp.sqrt(2 * sp.log(2 / delta) / sp.Symbol("d_h", positive=True)),
    symbols={"delta": _S["delta"], "d_h": sym("width of layer h", sp.Interval(1, sp.oo))},
    lhs=sym("|2 tr(D)/d_h - t_sigma-dot(G^(h))|", "nonnegative", name="dev"),
    relation="<",
    assumptions=["probability 1 - delta over W^(h+1) (Hoeffding)"],
    source=f"{PAPER}, Lemma B.9", status="explicit")

BOUNDS = make_registry("arora", globals())
