"""Allen-Zhu, Li & Song (2019), RNN convergence: forward norms at initialization.

``allen-zhu-forward-norms`` runs the paper's network (spec/allen_zhu_rnn.toml: h_0 = 0,
h_l = relu(W h_(l-1) + A x_l), W, A ~ N(0, 2/m), no bias) at width m = 1000 over L = 50 steps,
for ``seeds`` independent networks and ``n`` sequences each.  Inputs follow the paper's Sec. 2.1
normalization: every token has |x_l| = 1 (the paper asks |x_l| <= 1; unit tokens are the worst
case for the upper bound) and x_1's last coordinate is 1/sqrt(2) (the paper's bias emulation).

**Lemma B.3** (App. B.1), with probability >= 1 - exp(-Omega(m / L^2)) over W, A, for every
sequence: (1 - 1/(4L))^l <= |h_(l+1)| <= 2l + 4 for l = 0..L-1.  The statement's lower bound is
one step ahead of its proof: the base case proves only |h_1| >= 1 - 1/(4L) and the proof ends
with |h_l| >= (1 - 1/(4L))^l, so we check the proved form

    lower(l) = (1 - 1/(4L))^l  <=  |h_l|  <=  upper(l) = 2(l - 1) + 4 = 2l + 2,   l = 1..L

(the upper bound in the statement's stricter indexing).  The lemma is an m >> L^2 statement:
|h_1|^2 = |relu(A x_1)|^2 has mean exactly 1 and standard deviation sqrt(5/m) (0.07 at
m = 1000), while the margin at l = 1 is 1/(4L) = 0.005, so at m = 1000, L = 50 about half of the
networks dip below the lower bound at l = 1 (the probability bound exp(-Omega(m/L^2)) with
m/L^2 = 0.4 promises nothing there).  The experiment therefore reports the bound per network
(min/max over l, sequences and seeds against lower/upper; the upper bound and the lower bound
for l >= 2 hold for every network, with wide margins), the fraction of networks below the bound
at l = 1, and a width sweep of |h_1| alone (only A matters at l = 1, so m up to 4e5 is cheap)
showing that fraction go to zero once m >> 20 L^2.

**Variance regimes**: W ~ N(0, c/m) for c = 1, 2, 3.  The infinite-width recursion (the spec's
derived NNGP diagonal, |h_l|^2 -> Sigma_l(x, x) = (c/2) Sigma_(l-1) + |x_l|^2) saturates at
2/(2 - c) for c < 2 (without inputs after step 1 it would vanish like (c/2)^(l/2)), grows like
sqrt(l) at the edge c = 2, and explodes like (c/2)^(l/2) for c > 2.  The finite network follows
the three regimes; at the edge, with W shared over 50 steps, single networks at m = 1000 scatter
widely around sqrt(l) (|h_50| from about 4 to 40 over seeds), so the report gives the median
and the spread over networks next to the kernel value.

Outputs: ``allen_zhu_forward_norms.csv`` (one row per c, seed, sequence, l) and
``allen_zhu_forward_norms.png`` (left: the bound band at c = 2; right: the three regimes).

Run: ``ntksym reproduce allen-zhu-forward-norms [--quick]`` or
``python -m ntksym.apps.reproduce.allen_zhu_li_song OUT_DIR [--quick]``.

>>> X = tokens(2, 3, 4, np.random.default_rng(0))
>>> np.allclose(np.linalg.norm(X, axis=2), 1.0), np.allclose(X[:, 0, -1], 2 ** -0.5)
(True, True)
"""

from __future__ import annotations

import pathlib
import time

import numpy as np

from ntksym.apps.reproduce import register
from ntksym.apps.reproduce.common import save_figure, write_csv
from ntksym.progress import track

SPEC = pathlib.Path(__file__).resolve().parents[3] / "spec" / "allen_zhu_rnn.toml"
VARIANCES = (1.0, 2.0, 3.0)


def tokens(n, L, d, rng):
    """n sequences of L unit-norm tokens in R^d; x_1's last coordinate is 1/sqrt(2)."""
    X = rng.standard_normal((n, L, d))
    X /= np.linalg.norm(X, axis=2, keepdims=True)
    first = X[:, 0, :-1]
    X[:, 0, :-1] = first / np.linalg.norm(first, axis=1, keepdims=True) / np.sqrt(2)
    X[:, 0, -1] = 1 / np.sqrt(2)
    return X


def lemma_b3_bounds(L):
    """(lower, upper) arrays over l = 1..L (see the module docstring for the indexing)."""
    l = np.arange(1, L + 1)
    return (1 - 1 / (4 * L)) ** l, 2.0 * l + 2


def _arch(c, L, d):
    import ntksym
    text = SPEC.read_text()
    text = text.replace("weight_var = 2.0          # W", f"weight_var = {c!r}          # W")
    text = text.replace("input = { shape = [6, 4] }", f"input = {{ shape = [{L}, {d}] }}")
    return ntksym.loads_spec(text)


def kernel_norms(arch, X):
    """sqrt(Sigma_l(x, x)), l = 1..L, (n, L): the spec's derived infinite-width recursion."""
    from ntksym.codegen.generate import compile_program
    from ntksym.codegen.sequence import split_phases
    prog = arch.derive()
    L = X.shape[1]
    D = compile_program(prog).diagonals(np.ascontiguousarray(X), np.full(len(X), L, np.int64))
    cols = []
    for s in split_phases(prog)[0]:
        cols += [a.target.name for a in s.op.diag] if hasattr(s, "op") else []
    return np.sqrt(D[:, :, 1 + cols.index("Sigma_1_xx")])   # column 0 is Sigma_0_xx


def finite_norms(arch, m, X, seed):
    """|h_l|, l = 1..L, (n, L) of one random network of width m."""
    from ntksym.empirical.network import FiniteNetwork
    L = X.shape[1]
    net = FiniteNetwork(arch.finite_graph(m), seed=seed)
    _, caches = net.forward(X, np.full(len(X), L, np.int64))
    H = caches["rnn_0"][1][:, 1:]                   # h~_l = sqrt(m) h_l (spec convention)
    return np.linalg.norm(H, axis=2) / np.sqrt(m)


def first_step_sweep(widths, draws, L, d, rng):
    """Lemma B.3 at l = 1 against the width: |h_1| = |relu(A x_1)|, A ~ N(0, 2/m), |x_1| = 1.

    Returns {m: (std of |h_1|, fraction below 1 - 1/(4L))} over ``draws`` matrices A; the
    fraction goes to 0 once sqrt(5/m)/2 << 1/(4L), i.e. m >> 20 L^2 (the lemma's m >> L^2)."""
    x = tokens(1, 1, d, rng)[0, 0]
    out = {}
    for m, k in zip(widths, draws):
        h1 = np.array([np.linalg.norm(np.maximum(
            (rng.standard_normal((m, d)) @ x) * np.sqrt(2 / m), 0)) for _ in range(k)])
        out[m] = (float(h1.std()), float((h1 < 1 - 1 / (4 * L)).mean()))
    return out


def _plot(path, L, res, lower, upper):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    l = np.arange(1, L + 1)
    F, K = res[2.0]
    flat = F.reshape(-1, L)
    a1.fill_between(l, flat.min(0), flat.max(0), alpha=0.3, label="finite: min..max over nets")
    a1.plot(l, np.median(flat, 0), label="finite: median")
    a1.plot(l, K[0], "k--", label="kernel sqrt(Sigma_l)")
    a1.plot(l, lower, "r:", label="Lemma B.3 lower (1-1/4L)^l")
    a1.plot(l, upper, "r-.", label="Lemma B.3 upper 2l+2")
    a1.set_yscale("log")
    a1.set_xlabel("step l")
    a1.set_ylabel("|h_l|")
    a1.set_title("W ~ N(0, 2/m)")
    a1.legend(fontsize=7)
    for c, (F, K) in res.items():
        line, = a2.plot(l, np.median(F.reshape(-1, L), 0), label=f"c = {c:g}: finite median")
        a2.plot(l, K[0], "--", color=line.get_color(), label=f"c = {c:g}: kernel")
    a2.set_yscale("log")
    a2.set_xlabel("step l")
    a2.set_title("W ~ N(0, c/m): saturate / edge / explode")
    a2.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


@register("allen-zhu-forward-norms", "Allen-Zhu, Li & Song 2019 Lemma B.3 forward norms at "
          "m = 1000, L = 50 over seeds, and the recurrent-variance regimes W ~ N(0, c/m), "
          "c = 1, 2, 3",
          outputs=["allen_zhu_forward_norms.csv", "allen_zhu_forward_norms.png"])
def run(out_dir, quick=False, seed=0):
    """Write the CSV and PNG into ``out_dir``; return the summary (see the module docstring)."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    m, L, d, n, seeds = (300, 20, 8, 3, 4) if quick else (1000, 50, 10, 4, 10)
    X = tokens(n, L, d, np.random.default_rng(seed))
    lower, upper = lemma_b3_bounds(L)
    t0 = time.perf_counter()
    res = {}
    for c in track(VARIANCES, "variances"):
        arch = _arch(c, L, d)
        F = np.stack([finite_norms(arch, m, X, seed + 1000 * s) for s in range(seeds)])
        res[c] = (F, kernel_norms(arch, X))        # (seeds, n, L), (n, L)
    F = res[2.0][0]
    flat = F.reshape(-1, L)
    mean = flat.mean(0)
    below, above = flat < lower, flat > upper
    summary = {"m": m, "L": L, "n": n, "seeds": seeds, "d": d}
    summary["lemma_b3"] = {
        "bounds": "(1 - 1/(4L))^l <= |h_l| <= 2l + 2, l = 1..L (W, A ~ N(0, 2/m))",
        "min_norm": round(float(flat.min()), 4),
        "min_norm_over_lower": round(float((flat / lower).min()), 4),
        "max_norm": round(float(flat.max()), 3),
        "max_norm_over_upper": round(float((flat / upper).max()), 4),
        "upper_holds_every_network": bool(not above.any()),
        "lower_holds_every_network_for_l_ge_2": bool(not below[:, 1:].any()),
        "fraction_below_lower_at_l_1": round(float(below[:, 0].mean()), 3),
        "std_norm_h1_predicted": round(float(np.sqrt(5 / m) / 2), 4),
        "lower_margin_at_l_1": round(1 / (4 * L), 4),
        "mean_norm_h1": round(float(mean[0]), 4)}
    widths, draws = ((300, 3000, 30000), (30, 30, 30)) if quick else \
        ((1000, 10000, 100000, 400000), (40, 40, 40, 20))
    sweep = first_step_sweep(widths, draws, L, d, np.random.default_rng(seed + 7))
    summary["lemma_b3"]["l_1_vs_width"] = {
        str(w): {"std_norm_h1": round(sd, 4), "fraction_below_lower": round(fr, 3)}
        for w, (sd, fr) in sweep.items()}
    ls = sorted({1, L // 5, L // 2, L})
    regimes = {}
    for c, (Fc, K) in res.items():
        fl = Fc.reshape(-1, L)
        med = np.median(fl, 0)
        regimes[f"c={c:g}"] = {
            "median_norm_at": {str(t): round(float(med[t - 1]), 3) for t in ls},
            "min_max_norm_at_L": [round(float(fl[:, -1].min()), 3),
                                  round(float(fl[:, -1].max()), 3)],
            "kernel_at": {str(t): round(float(K[0, t - 1]), 3) for t in ls},
            "median_over_kernel_at_L": round(float(med[-1] / K[0, -1]), 3),
            "growth_second_half (|h_L| / |h_(L/2)|, median)":
                round(float(med[-1] / med[L // 2 - 1]), 3)}
    summary["regimes"] = regimes
    path = out_dir / "allen_zhu_forward_norms.csv"
    write_csv(path, ["c", "m", "seed", "sequence", "l", "norm_h_l", "kernel_sqrt_sigma",
                     "lemma_b3_lower", "lemma_b3_upper"],
              ([c, m, seed + 1000 * s, i, j + 1, f"{Fc[s, i, j]:.6g}", f"{K[i, j]:.6g}",
                f"{lower[j]:.6g}", f"{upper[j]:.6g}"]
               for c, (Fc, K) in res.items() for s in range(seeds) for i in range(n)
               for j in range(L)))
    png = out_dir / "allen_zhu_forward_norms.png"
    _plot(png, L, res, lower, upper)
    summary["csv"], summary["png"] = str(path), str(png)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary


if __name__ == "__main__":
    import argparse
    import json
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    print(json.dumps(run(a.out_dir, quick=a.quick), indent=2))
