"""Allen-Zhu, Li & Song (2019), RNN convergence: forward norms at initialization.

``allen-zhu-forward-norms``: the paper's network (spec/allen_zhu_rnn.toml: h_0 = 0,
h_l = relu(W h_(l-1) + A x_l), W, A ~ N(0, 2/m)) at width m = 1000 over L = 50 steps, on unit-norm
tokens (x_1 with last coordinate 1/sqrt(2), the paper's bias emulation).  It reports

* Lemma B.3: (1 - 1/(4L))^l <= |h_(l+1)| <= 2l + 4 for l = 0..L-1 (checked at every step);
* the kernel prediction |h_l| = sqrt(Sigma(x, x; l)) from the same spec's derived recursion
  (for ReLU and W ~ N(0, 2/m): |h_l|^2 = |h_(l-1)|^2 + |x_l|^2, i.e. sqrt(l) for unit tokens);
* the recurrent-variance regimes, W ~ N(0, c/m) for c = 1, 2, 3: the recursion
  |h_l|^2 = (c/2) |h_(l-1)|^2 + |x_l|^2 saturates for c < 2 (at 2/(2 - c)), grows like l at the
  edge c = 2, and explodes like (c/2)^l for c > 2; the finite network follows it.

Run: ``ntksym reproduce allen-zhu-forward-norms`` or
``python -m ntksym.reproduce.allen_zhu_li_song OUT_DIR [--quick]``.
"""

from __future__ import annotations

import csv
import os
import pathlib
import time

import numpy as np

from ntksym.reproduce import register

SPEC = pathlib.Path(__file__).resolve().parents[2] / "spec" / "allen_zhu_rnn.toml"
VARIANCES = (1.0, 2.0, 3.0)


def tokens(n, L, d, rng):
    """n sequences of L unit-norm tokens in R^d; x_1's last coordinate is 1/sqrt(2)."""
    X = rng.standard_normal((n, L, d))
    X /= np.linalg.norm(X, axis=2, keepdims=True)
    first = X[:, 0, :-1]
    X[:, 0, :-1] = first / np.linalg.norm(first, axis=1, keepdims=True) / np.sqrt(2)
    X[:, 0, -1] = 1 / np.sqrt(2)
    return X


def _arch(c, L, d):
    import ntksym
    text = SPEC.read_text()
    text = text.replace("weight_var = 2.0          # W", f"weight_var = {c!r}          # W")
    text = text.replace("input = { shape = [6, 4] }", f"input = {{ shape = [{L}, {d}] }}")
    return ntksym.loads_spec(text)


def forward_norms(c, m, L, X, seed):
    """(finite |h_l| (n, L), kernel prediction (n, L)) for W ~ N(0, c/m)."""
    from ntksym.codegen import compile_program
    from ntksym.empirical_sequence import FiniteSequenceNetwork
    arch = _arch(c, L, X.shape[2])
    net = FiniteSequenceNetwork(arch.finite_graph(m), seed=seed)
    node = "rnn_0"
    _, caches = net.forward(X, np.full(len(X), L, np.int64))
    H = caches[node][1][:, 1:]                       # h~_l = sqrt(m) h_l, l = 1..L
    finite = np.linalg.norm(H, axis=2) / np.sqrt(m)
    prog = arch.derive()
    mod = compile_program(prog)
    D = mod.diagonals(np.ascontiguousarray(X), np.full(len(X), L, np.int64))
    from ntksym.codegen_sequence import split_phases
    cols = []
    for s in split_phases(prog)[0]:
        cols += [a.target.name for a in s.params["diag"]] if hasattr(s, "params") else []
    col = 1 + cols.index("Sigma_1_xx")               # column 0 is Sigma_0_xx
    return finite, np.sqrt(D[:, :, col])


@register("allen-zhu-forward-norms", "Allen-Zhu, Li & Song 2019 Lemma B.3 forward norms at "
          "m = 1000, L = 50, and the recurrent-variance regimes W ~ N(0, c/m), c = 1, 2, 3")
def run(out_dir, quick=False, seed=0):
    """Write ``allen_zhu_forward_norms.csv`` into ``out_dir``; return the summary."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    m, L, d, n = (300, 20, 8, 3) if quick else (1000, 50, 10, 4)
    rng = np.random.default_rng(seed)
    X = tokens(n, L, d, rng)
    t0 = time.perf_counter()
    rows, summary = [], {"m": m, "L": L, "n": n}
    for c in VARIANCES:
        finite, pred = forward_norms(c, m, L, X, seed)
        l = np.arange(L)                              # |h_(l+1)| is column l
        lower, upper = (1 - 1 / (4 * L)) ** l, 2 * l + 4
        within = (finite >= lower) & (finite <= upper)
        for i in range(n):
            for j in range(L):
                rows.append([c, i, j + 1, finite[i, j], pred[i, j], lower[j], upper[j],
                             bool(within[i, j])])
        key = f"c={c:g}"
        summary[key] = {
            "norm_at": {str(t): round(float(finite[:, t - 1].mean()), 3)
                        for t in (1, L // 5, L // 2, L)},
            "kernel_at": {str(t): round(float(pred[:, t - 1].mean()), 3)
                          for t in (1, L // 5, L // 2, L)},
            "max_rel_dev_from_kernel": float(np.max(np.abs(finite / pred - 1))),
            "lemma_b3_holds": bool(within.all())}
    s1, s3 = summary["c=1"]["norm_at"], summary["c=3"]["norm_at"]
    summary["regimes"] = {
        "c=1 saturates (|h_L| / |h_(L/2)|)": round(s1[str(L)] / s1[str(L // 2)], 3),
        "c=2 grows like sqrt(l) (|h_L| / sqrt(L))":
            round(summary["c=2"]["norm_at"][str(L)] / np.sqrt(L), 3),
        "c=3 explodes (|h_L| / |h_(L/2)|)": round(s3[str(L)] / s3[str(L // 2)], 1)}
    path = out_dir / "allen_zhu_forward_norms.csv"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["c", "sequence", "l", "norm_h_l", "kernel_sqrt_sigma", "lemma_b3_lower",
                    "lemma_b3_upper", "within_lemma_b3"])
        w.writerows(rows)
    os.replace(tmp, path)
    summary["csv"] = str(path)
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
