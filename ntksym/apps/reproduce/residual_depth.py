"""Kernel correlation against depth: a plain deep ReLU MLP degenerates, a residual one scaled by
1/sqrt(L) does not (issue 14's depth plot; ``spec/residual_mlp_depth50.toml`` is the L = 50
member of the scaled family).

For each depth L the three networks below are written as spec text (:func:`spec_text`), parsed
with :func:`ntksym.loads_spec` and evaluated by :func:`ntksym.kernel` on two fixed inputs (two
scikit-learn digits, pixels / 16: the first "0" and the first "1" of the dataset); the output is

    rho(x, x') = K(x, x') / sqrt(K(x, x) K(x', x'))

of the NNGP and of the NTK.  All three start with a dense stem y_0 = W_0 x and end with
relu -> dense readout; ntk parameterization, weight_var = 2 (He), no bias:

* ``plain``:    y_l = W_l relu(y_{l-1})                     (l = 1..L)
* ``residual``: y_l = y_{l-1} + W_l relu(y_{l-1}) / sqrt(L)  (Hayou et al. 2021, "Stable ResNet")
* ``residual (scale 1)``: y_l = y_{l-1} + W_l relu(y_{l-1})   (unscaled shortcut sum)

The plain network's correlation map has the fixed point rho = 1 and every pair of inputs
converges to it with depth, so the deep kernel forgets its inputs.  The 1/sqrt(L) residual
network converges as L grows to a kernel whose correlation stays away from 1; the unscaled one
also tends to 1, more slowly than the plain one.

The default depths are a grid of 1..50 (:data:`DEPTHS`), not every depth: each depth is a new
program (compiled once and cached on disk by its hash): 5-15 s of Numba compilation for a small
one, about 30 s for a 50-block residual one, on one core.

>>> print(spec_text("residual", 2).split("[[layer]]")[0].splitlines()[1])
input = { shape = [64] }
>>> "scales = [1.0, 0.7071067811865475]" in spec_text("residual", 2)
True
"""

from __future__ import annotations

import math
import pathlib
import time

import numpy as np

from ntksym.apps.reproduce import register
from ntksym.apps.reproduce.common import plot, write_csv
from ntksym.progress import track
from ntksym.report import Table

DEPTHS = (1, 2, 3, 4, 6, 8, 10, 15, 20, 30, 40, 50)
QUICK_DEPTHS = (2,)       # 3 programs: compiled in ~15 s each on a cold cache
FAMILIES = ("plain", "residual", "residual (scale 1)")
INPUT_DIGITS = (0, 1)       # the first image of each of these digits


def branch_scale(family, depth):
    """The multiplier of the residual branch: 1/sqrt(L) for ``residual``, 1 for scale 1."""
    return 1.0 / math.sqrt(depth) if family == "residual" else 1.0


def spec_text(family, depth, d_in=64):
    """Spec text of one network of :data:`FAMILIES` with ``depth`` blocks (TOML)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    head = (f'name = "depth-{family.split()[0]}-{depth}"\ninput = {{ shape = [{d_in}] }}\n'
            '[defaults]\nparameterization = "ntk"\nweight_var = 2.0\nbias_var = 0.0\n')
    stem = '[[layer]]\nkind = "dense"\nid = "stem"\n'
    tail = '[[layer]]\nkind = "relu"\n[[layer]]\nkind = "dense"\n'
    if family == "plain":
        body = ('[[layer]]\nkind = "relu"\n[[layer]]\nkind = "dense"\n') * depth
        return head + stem + body + tail
    block = ('[[block]]\nname = "res"\n[[block.layer]]\nkind = "relu"\n'
             '[[block.layer]]\nkind = "dense"\nid = "branch"\n'
             '[[block.layer]]\nkind = "add"\ninputs = ["block_input", "branch"]\n'
             f'scales = [1.0, {branch_scale(family, depth)!r}]\n')
    return head + block + stem + f'[[layer]]\nblock = "res"\nrepeat = {depth}\n' + tail


def two_digits():
    """The two fixed inputs: (2, 64), the first image of each digit in :data:`INPUT_DIGITS`."""
    from ntksym.data import load_dataset
    ds = load_dataset("digits")
    y = np.asarray(ds.y)
    return np.stack([ds.X[np.flatnonzero(y == d)[0]] for d in INPUT_DIGITS])


def correlations(family, depth, X):
    """{"nngp": rho, "ntk": rho} of the output kernel of ``family`` at ``depth`` on X (2 rows)."""
    import ntksym
    K = ntksym.kernel(ntksym.loads_spec(spec_text(family, depth, X.shape[1])), X, kind="both")
    return {k: float(K[k][0, 1] / math.sqrt(K[k][0, 0] * K[k][1, 1])) for k in ("nngp", "ntk")}


@register("residual-depth", "kernel correlation rho(x, x') vs depth 1..50: plain deep ReLU MLP "
          "vs residual MLP with 1/sqrt(L) branch scaling (and unscaled), NNGP and NTK",
          outputs=["residual_depth.csv", "residual_depth.png"])
def run(out_dir, quick=False, depths=None):
    """Writes ``residual_depth.csv`` and ``residual_depth.png``; returns a summary dict."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    depths = tuple(depths or (QUICK_DEPTHS if quick else DEPTHS))
    X = two_digits()
    rho0 = float(X[0] @ X[1] / math.sqrt((X[0] @ X[0]) * (X[1] @ X[1])))
    rho, rows = {}, []
    t_all = time.perf_counter()
    grid = [(family, L) for family in FAMILIES for L in depths]
    for family, L in track(grid, "networks"):
        t0 = time.perf_counter()
        rho[(family, L)] = correlations(family, L, X)
        rows.append([family, L, f"{branch_scale(family, L):.6g}" if family != "plain"
                     else "", f"{rho[(family, L)]['nngp']:.10f}",
                     f"{rho[(family, L)]['ntk']:.10f}", f"{time.perf_counter() - t0:.1f}"])
    seconds = time.perf_counter() - t_all
    csv_path = out_dir / "residual_depth.csv"
    write_csv(csv_path, ["network", "blocks", "branch_scale", "rho_nngp", "rho_ntk", "seconds"],
              rows)
    table = Table(["blocks"] + [f"{f} {k}" for f in FAMILIES for k in ("nngp", "ntk")],
                  [[L] + [round(rho[(f, L)][k], 6) for f in FAMILIES for k in ("nngp", "ntk")]
                   for L in depths], digits=6,
                  title=f"rho(x, x') of the output kernel; inputs: the first digits "
                        f"{INPUT_DIGITS[0]} and {INPUT_DIGITS[1]} (input cosine {rho0:.4f})")

    def draw(ax):
        styles = {"plain": "C3", "residual": "C0", "residual (scale 1)": "C2"}
        labels = {"plain": "plain ReLU MLP", "residual": "residual, branch / sqrt(L)",
                  "residual (scale 1)": "residual, branch x 1"}
        for f in FAMILIES:
            for k, ls, mk in (("nngp", "-", "o"), ("ntk", "--", "s")):
                ax.plot(depths, [rho[(f, L)][k] for L in depths], ls, marker=mk, ms=3,
                        color=styles[f], label=f"{labels[f]}, {k.upper()}")
        ax.axhline(rho0, color="0.5", lw=0.8, ls=":", label=f"input cosine {rho0:.3f}")
        ax.axhline(1.0, color="k", lw=0.6)
        ax.set_xlabel("depth L (blocks / hidden layers)")
        ax.set_ylabel("rho(x, x') = K(x, x') / sqrt(K(x, x) K(x', x'))")
        ax.set_title("output kernel correlation of two digits vs depth")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))

    png = out_dir / "residual_depth.png"
    plot(png, draw, figsize=(9.0, 4.6))
    return {"rho": table, "csv": str(csv_path), "png": str(png), "depths": list(depths),
            "input_cosine": round(rho0, 6),
            "rho_at_max_depth": {f: {k: round(v, 6) for k, v in rho[(f, depths[-1])].items()}
                                 for f in FAMILIES},
            "seconds": round(seconds, 1)}
