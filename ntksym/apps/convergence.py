"""How finite networks approach their infinite-width kernel: ``ntksym converge``.

For each width n in a list, :func:`convergence_study` draws ``samples`` independent finite
networks from the spec's graph (:func:`ntksym.empirical_kernel`; network s has seed
``seed + s``) and compares each network's kernel matrix K_s on the inputs X with the analytic
limit K (:func:`ntksym.kernel`).  Per width it reports

* ``mean_abs_dev``: the mean over networks of the single-network deviation
  d_s = mean_{ij} |K_s[i, j] - K[i, j]| (all n_x² entries), with its standard error
  std_s(d_s) / sqrt(samples);
* ``mean_rel_dev``: the same divided by mean_{ij} |K[i, j]| (a scale-free version), with its
  standard error;
* ``mc_mean_abs_dev``: mean_{ij} |mean_s K_s[i, j] - K[i, j]|, the deviation of the Monte
  Carlo average (smaller: it also averages the fluctuations away);
* ``max_abs_dev``: the largest |K_s[i, j] - K[i, j]| over networks and entries.

A single network's kernel fluctuates around the limit by O(1/sqrt(n)) (Arora et al. 2019,
Thm 3.1; Hanin & Nica 2020), and its mean is off by O(1/n), so log(mean_abs_dev) against
log(width) has slope about -1/2.  The slope is fitted by weighted least squares (weights
1/var of log(mean_abs_dev), the variance from the standard error by the delta method); its
standard error is the weighted fit's, inflated by sqrt(chi²/dof) when the points scatter more
than their error bars say.

>>> import numpy as np, ntksym
>>> arch = ntksym.load_spec("spec/cntk_mlp_depth1.toml")
>>> X = np.random.default_rng(0).random((4, 64))
>>> r = convergence_study(arch, X, [64, 1024], samples=4, seed=0)
>>> [row["width"] for row in r.rows], r.rows[0]["mean_abs_dev"] > r.rows[1]["mean_abs_dev"]
([64, 1024], True)
"""

from __future__ import annotations

import csv
import dataclasses
import time

import numpy as np

from ntksym.errors import DataError
from ntksym.io import atomic_write
from ntksym.progress import track

__all__ = ["ConvergenceResult", "convergence_study", "fit_slope", "parse_widths",
           "write_csv", "plot_convergence", "convergence_figure", "drop_crowded_ticklabels",
           "CSV_COLUMNS"]

CSV_COLUMNS = ("width", "samples", "mean_abs_dev", "mean_abs_dev_se", "mean_rel_dev",
               "mean_rel_dev_se", "mc_mean_abs_dev", "max_abs_dev", "seconds")


@dataclasses.dataclass
class ConvergenceResult:
    """One row per width (dicts with the keys of :data:`CSV_COLUMNS`), the fitted line
    log(mean_abs_dev) = intercept + slope·log(width) with the slope's standard error, the
    mean |K| of the analytic kernel, and the setup."""

    spec: str
    kind: str
    n: int
    samples: int
    seed: int
    rows: list
    slope: float
    slope_se: float
    intercept: float
    analytic_mean_abs: float

    def text(self) -> str:
        """The table ``ntksym converge`` prints: setup, one row per width, fitted slope."""
        lines = [f"{self.spec}: empirical vs infinite-width {self.kind} on {self.n} inputs, "
                 f"{self.samples} networks per width (seeds {self.seed}.."
                 f"{self.seed + self.samples - 1}); mean |K| = {self.analytic_mean_abs:.4g}",
                 f"{'width':>8} {'mean|Kn-K|':>12} {'s.e.':>10} {'relative':>10} "
                 f"{'|avg Kn-K|':>11} {'max|Kn-K|':>10} {'seconds':>8}"]
        lines += [f"{row['width']:>8d} {row['mean_abs_dev']:>12.4g} "
                  f"{row['mean_abs_dev_se']:>10.2g} {row['mean_rel_dev']:>10.4g} "
                  f"{row['mc_mean_abs_dev']:>11.4g} {row['max_abs_dev']:>10.4g} "
                  f"{row['seconds']:>8.2f}" for row in self.rows]
        lines.append(f"slope of log mean|Kn-K| vs log width: {self.slope:.3f} +- "
                     f"{self.slope_se:.3f} (expected about -0.5)")
        return "\n".join(lines)

    def summary(self) -> dict:
        """A JSON-ready summary (what ``ntksym converge`` prints)."""
        return {"spec": self.spec, "kernel": self.kind, "n": self.n, "samples": self.samples,
                "seed": self.seed, "widths": [r["width"] for r in self.rows],
                "mean_abs_dev": [r["mean_abs_dev"] for r in self.rows],
                "mean_abs_dev_se": [r["mean_abs_dev_se"] for r in self.rows],
                "mean_rel_dev": [r["mean_rel_dev"] for r in self.rows],
                "slope": self.slope, "slope_se": self.slope_se}


def parse_widths(text) -> list:
    """``"64,256,1024"`` -> ``[64, 256, 1024]``; at least two distinct positive widths.

    >>> parse_widths("64, 256,1024")
    [64, 256, 1024]
    """
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
    else:
        parts = list(text)
    try:
        widths = [int(p) for p in parts]
    except (TypeError, ValueError):
        raise DataError(f"--widths must be a comma-separated list of integers, got {text!r}")\
            from None
    if any(w < 1 for w in widths) or len(set(widths)) < 2:
        raise DataError(f"--widths needs at least two distinct widths >= 1 (to fit a slope), "
                        f"got {text!r}")
    return sorted(set(widths))


def fit_slope(widths, dev, dev_se=None):
    """``(slope, slope_se, intercept)`` of the line log(dev) = intercept + slope·log(width).

    Weighted least squares with weights 1/(dev_se/dev)² when every standard error is positive,
    else ordinary least squares; the standard error is scaled by sqrt(chi²/dof) when that is
    above 1 (needs 3 or more points), and is ``nan`` for ordinary least squares on 2 points.

    >>> s, se, c = fit_slope([1, 4, 16], [1.0, 0.5, 0.25])
    >>> round(s, 12), round(se, 12), round(c, 12)
    (-0.5, 0.0, 0.0)
    """
    x, y = np.log(np.asarray(widths, float)), np.log(np.asarray(dev, float))
    se = None if dev_se is None else np.asarray(dev_se, float)
    if se is not None and np.all(se > 0):
        w = (np.asarray(dev, float) / se) ** 2
        weighted = True
    else:
        w = np.ones_like(x)
        weighted = False
    xm = np.sum(w * x) / np.sum(w)
    sxx = np.sum(w * (x - xm) ** 2)
    slope = float(np.sum(w * (x - xm) * (y - np.sum(w * y) / np.sum(w))) / sxx)
    intercept = float(np.sum(w * y) / np.sum(w) - slope * xm)
    resid = y - (intercept + slope * x)
    dof = len(x) - 2
    chi2 = float(np.sum(w * resid ** 2))
    if weighted:
        scale = max(1.0, chi2 / dof) if dof > 0 else 1.0
        slope_se = float(np.sqrt(scale / sxx))
    else:
        slope_se = float(np.sqrt(chi2 / dof / sxx)) if dof > 0 else float("nan")
    return slope, slope_se, intercept


def convergence_study(arch, X, widths, samples: int = 8, seed: int = 0,
                      kind: str = "ntk") -> ConvergenceResult:
    """Analytic vs empirical kernels of ``arch`` on ``X`` over ``widths`` (see module doc).

    ``kind`` is ``"ntk"`` (empirical NTK of each network) or ``"nngp"`` (E[f f'] over each
    network's readout weights).  ``samples`` >= 2 networks per width give standard errors.

    Example: ``convergence_study(arch, X, [64, 256, 1024], samples=8).slope`` (about -0.5).
    """
    import ntksym

    if kind not in ("ntk", "nngp"):
        raise DataError(f"unknown kernel kind {kind!r}; valid: ntk, nngp")
    widths = parse_widths(widths)
    if int(samples) < 2:
        raise DataError(f"--samples must be >= 2 (standard errors need two networks), got "
                        f"{samples}")
    samples = int(samples)
    A = np.asarray(ntksym.kernel(arch, X, kind=kind))
    scale = float(np.mean(np.abs(A)))
    if not scale > 0:
        raise DataError(f"the analytic {kind} kernel is zero on these inputs; nothing to "
                        f"compare with")
    rows = []
    for width in track(widths, "widths"):
        t0 = time.perf_counter()
        E = ntksym.empirical_kernel(arch, X, width=width, samples=samples, seed=seed, kind=kind)
        draws = E.samples[kind]                           # (samples, n, n)
        d = np.abs(draws - A).mean(axis=(1, 2))           # one deviation per network
        se = float(d.std(ddof=1) / np.sqrt(samples))
        rows.append({
            "width": int(width), "samples": samples,
            "mean_abs_dev": float(d.mean()), "mean_abs_dev_se": se,
            "mean_rel_dev": float(d.mean()) / scale, "mean_rel_dev_se": se / scale,
            "mc_mean_abs_dev": float(np.abs(E.mean[kind] - A).mean()),
            "max_abs_dev": float(np.abs(draws - A).max()),
            "seconds": time.perf_counter() - t0,
        })
    slope, slope_se, intercept = fit_slope([r["width"] for r in rows],
                                           [r["mean_abs_dev"] for r in rows],
                                           [r["mean_abs_dev_se"] for r in rows])
    return ConvergenceResult(spec=arch.name, kind=kind, n=int(np.shape(X)[0]), samples=samples,
                             seed=int(seed), rows=rows, slope=slope, slope_se=slope_se,
                             intercept=intercept, analytic_mean_abs=scale)


def write_csv(result: ConvergenceResult, path) -> None:
    """Write the per-width table (columns :data:`CSV_COLUMNS`) to ``path``, atomically."""
    with atomic_write(path, newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in result.rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def plot_convergence(result: ConvergenceResult, path) -> None:
    """Log-log plot of the deviations against width, with the fitted and the -1/2 slopes,
    written to ``path`` (PNG, atomically)."""
    import matplotlib.pyplot as plt
    fig = convergence_figure(result)
    try:
        with atomic_write(path, "wb") as fh:
            fig.savefig(fh, dpi=110, format="png")
    finally:
        plt.close(fig)


def convergence_figure(result: ConvergenceResult):
    """The matplotlib figure of :func:`plot_convergence`: widths labelled as plain numbers at
    the measured widths, deviations at 1-2-5 steps (fewer over many decades), and any tick label
    that would touch its neighbour left out."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    w = np.array([r["width"] for r in result.rows], float)
    d = np.array([r["mean_abs_dev"] for r in result.rows])
    se = np.array([r["mean_abs_dev_se"] for r in result.rows])
    mc = np.array([r["mc_mean_abs_dev"] for r in result.rows])
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    ax.errorbar(w, d, yerr=se, fmt="o", capsize=3, color="C0",
                label="single network: mean |K_n - K| (± s.e.)")
    ax.plot(w, np.exp(result.intercept + result.slope * np.log(w)), "-", color="C0",
            label=f"fit: slope {result.slope:.3f} ± {result.slope_se:.3f}")
    ax.plot(w, d[0] * (w / w[0]) ** -0.5, ":", color="gray", label="slope -1/2")
    ax.plot(w, mc, "s", color="C1", alpha=0.7,
            label=f"mean of {result.samples} networks: mean |avg K_n - K|")
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_locator(FixedLocator(w))
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(NullFormatter())
    lo, hi = ax.get_ylim()
    decades = np.log10(hi / lo)
    subs = (1.0, 2.0, 5.0) if decades <= 2 else (1.0, 3.0) if decades <= 4 else (1.0,)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("width n")
    ax.set_ylabel(f"mean absolute deviation of the {result.kind.upper()}")
    ax.set_title(f"{result.spec}: empirical vs infinite-width {result.kind.upper()}\n"
                 f"{result.n} inputs, {result.samples} networks per width, seed {result.seed}",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    drop_crowded_ticklabels(fig, ax)
    return fig


def drop_crowded_ticklabels(fig, ax, pad=4.0):
    """Hide every major tick label of ``ax`` that would overlap (with ``pad`` pixels) the
    last one kept before it along its axis; returns the number hidden."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    hidden = 0
    for axis, lo, hi in ((ax.xaxis, "x0", "x1"), (ax.yaxis, "y0", "y1")):
        shown = [t for t in axis.get_major_ticks() if t.label1.get_visible()
                 and t.label1.get_text()]
        boxes = sorted(((t.label1.get_window_extent(renderer), t) for t in shown),
                       key=lambda bt: getattr(bt[0], lo))
        last = None
        for box, t in boxes:
            if last is not None and getattr(box, lo) < getattr(last, hi) + pad:
                t.label1.set_visible(False)
                hidden += 1
            else:
                last = box
    return hidden
