"""Shankar et al. 2020 ("Neural Kernels Without Tangents"): the Myrtle CNN kernels at CPU scale
on scikit-learn's digits (8x8x1 images, pixels / 16) instead of CIFAR-10, beside the CNTK paper's
CNTK-GAP and ReLU MLP on the same splits.

* Myrtle-5/7/10 = ``spec/myrtle{5,7,10}_digits.toml``: the paper's conv/relu groups (layer
  factors [2, 1, 1], [2, 2, 2], [3, 3, 3]) with the pooling adapted to 8x8 (one 2x2 stride-2 pool
  after each stage, 8 -> 4 -> 2 -> 1, no trailing pools); weight_var = 2 (W_std = sqrt(2)), no
  bias, every layer trained.  The 32x32 originals are ``spec/myrtle{5,7,10}.toml``.
* CNTK-GAP = ``spec/cntk_gap_digits_depth4.toml`` (Arora et al. 2019, depth 4, first and last
  layer fixed); MLP = ``spec/cntk_mlp_depth3.toml`` (Arora et al. 2019, 3 hidden ReLU layers,
  on the 64 pixels), as in the README's digits results.
* Classification as in the CNTK paper and ``ntksym regress``: targets -0.1 + e_c, unregularized
  kernel regression (:func:`ntksym.apps.predict.kernel_classify`), argmax; only the train-train
  (upper triangle) and test-train blocks are computed.  Both the NTK (the trained infinite
  network) and the NNGP (the GP posterior mean, the kernel Shankar et al. mostly study) are
  scored from one evaluation (``kind = "both"``).
* Splits: :func:`ntksym.data.split_dataset` of all 1797 digits with seeds :data:`SEEDS`,
  :data:`SPLIT` = 400 train / 300 test each (the same split for every kernel).

The paper's own numbers are CIFAR-10 accuracies of the 32x32 networks with 50000 training
images (and ZCA preprocessing and flip augmentation for its best results); nothing here is
comparable to them, so none are printed.

>>> sorted(KERNELS)
['CNTK-GAP', 'MLP', 'Myrtle-10', 'Myrtle-5', 'Myrtle-7']
>>> SPLIT, SEEDS
((400, 300), (0, 1, 2))
"""

from __future__ import annotations

import pathlib
import time

import numpy as np

from ntksym.apps.reproduce import register
from ntksym.apps.reproduce.common import plot, write_csv
from ntksym.progress import track
from ntksym.report import Table

SPEC_DIR = pathlib.Path(__file__).resolve().parents[3] / "spec"
#: name -> (spec file stem, input layout)
KERNELS = {
    "Myrtle-5": ("myrtle5_digits", "image"),
    "Myrtle-7": ("myrtle7_digits", "image"),
    "Myrtle-10": ("myrtle10_digits", "image"),
    "CNTK-GAP": ("cntk_gap_digits_depth4", "image"),
    "MLP": ("cntk_mlp_depth3", "vector"),
}
ORDER = ("Myrtle-5", "Myrtle-7", "Myrtle-10", "CNTK-GAP", "MLP")
SPLIT = (400, 300)
SEEDS = (0, 1, 2)
QUICK = dict(split=(40, 30), seeds=(0,), kernels=("Myrtle-5", "CNTK-GAP", "MLP"))


def _digits(n_train, n_test, seed):
    """(Xtr, ytr, Xte, yte): flat 64-pixel rows of a seeded split of all 1797 digits."""
    from ntksym.data import load_dataset, split_dataset
    train, test = split_dataset(load_dataset("digits"), int(n_train), int(n_test), seed=seed)
    return train.X, np.asarray(train.y), test.X, np.asarray(test.y)


def scores(name, Xtr, ytr, Xte, yte):
    """{"ntk": accuracy, "nngp": accuracy, "ntk_cond": ..., "nngp_cond": ..., "seconds": s}
    of unregularized kernel classification with kernel ``name`` of :data:`KERNELS`."""
    import ntksym
    from ntksym.apps.predict import kernel_classify
    stem, layout = KERNELS[name]
    arch = ntksym.load_spec(SPEC_DIR / f"{stem}.toml")
    if layout == "image":
        Xtr, Xte = Xtr.reshape(-1, 8, 8, 1), Xte.reshape(-1, 8, 8, 1)
    t0 = time.perf_counter()
    K = ntksym.kernel(arch, Xtr, kind="both")
    Ks = ntksym.kernel(arch, Xte, Xtr, kind="both")
    out = {"seconds": time.perf_counter() - t0}
    for k in ("ntk", "nngp"):
        A = np.asarray(K[k], dtype=np.float64)
        out[k] = float(np.mean(kernel_classify(A, ytr, np.asarray(Ks[k])) == yte))
        out[f"{k}_cond"] = float(np.linalg.cond(A))
    return out


@register("myrtle-digits", "Shankar et al. 2020 Myrtle-5/7/10 kernels (8x8 adaptation) on "
          "digits beside CNTK-GAP and the CNTK paper's MLP: NTK and NNGP kernel regression "
          "accuracy, 400/300 splits, 3 seeds",
          outputs=["myrtle_digits.csv", "myrtle_digits.png"])
def run(out_dir, quick=False, n_train=None, n_test=None, seeds=None, kernels=None):
    """Writes ``myrtle_digits.csv`` and ``myrtle_digits.png``; returns a summary dict."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    split = QUICK["split"] if quick else SPLIT
    n_train, n_test = int(n_train or split[0]), int(n_test or split[1])
    seeds = tuple(seeds or (QUICK["seeds"] if quick else SEEDS))
    kernels = tuple(kernels or (QUICK["kernels"] if quick else ORDER))
    unknown = [k for k in kernels if k not in KERNELS]
    if unknown:
        from ntksym.errors import DataError
        raise DataError(f"unknown kernel {unknown[0]!r}; valid: {', '.join(ORDER)}")
    res, rows = {}, []
    t_all = time.perf_counter()
    for seed in seeds:
        Xtr, ytr, Xte, yte = _digits(n_train, n_test, seed)
        for name in track(kernels, f"kernels, split seed {seed}"):
            r = res[(name, seed)] = scores(name, Xtr, ytr, Xte, yte)
            for k in ("ntk", "nngp"):
                rows.append([name, KERNELS[name][0], k.upper(), n_train, n_test, seed,
                             f"{r[k]:.4f}", f"{r[f'{k}_cond']:.3e}", f"{r['seconds']:.1f}"])
    seconds = time.perf_counter() - t_all
    csv_path = out_dir / "myrtle_digits.csv"
    write_csv(csv_path, ["kernel", "spec", "kind", "n_train", "n_test", "split_seed",
                          "accuracy", "condition_number", "kernel_seconds_both_blocks"], rows)
    mean = {(name, k): float(np.mean([res[(name, s)][k] for s in seeds]))
            for name in kernels for k in ("ntk", "nngp")}
    head = ["kernel"] + [f"{k} seed {s}" for k in ("NTK", "NNGP") for s in seeds] + \
        ["NTK mean", "NNGP mean", "kernel s"]
    table = [[name] + [f"{100 * res[(name, s)][k]:.2f}%" for k in ("ntk", "nngp") for s in seeds]
             + [f"{100 * mean[(name, 'ntk')]:.2f}%", f"{100 * mean[(name, 'nngp')]:.2f}%",
                f"{sum(res[(name, s)]['seconds'] for s in seeds):.0f}"] for name in kernels]
    table = Table(head, table, title=f"digits, {n_train} train / {n_test} test, split seeds "
                  f"{list(seeds)}: test accuracy (unregularized kernel regression, argmax)")

    def draw(ax):
        x = np.arange(len(kernels))
        for j, (k, c) in enumerate((("ntk", "C0"), ("nngp", "C1"))):
            ax.bar(x + (j - 0.5) * 0.38, [mean[(n, k)] for n in kernels], 0.38, color=c,
                   label=f"{k.upper()} (mean of {len(seeds)} split{'s' * (len(seeds) > 1)})")
            for i, n in enumerate(kernels):
                ax.plot([i + (j - 0.5) * 0.38] * len(seeds), [res[(n, s)][k] for s in seeds],
                        "k.", ms=4)
        lo = min(res[(n, s)][k] for n in kernels for s in seeds for k in ("ntk", "nngp"))
        ax.set_ylim(max(0.0, lo - 0.03), 1.0)
        ax.set_xticks(x)
        ax.set_xticklabels(kernels)
        ax.set_ylabel("test accuracy")
        ax.set_title(f"digits {n_train} train / {n_test} test: kernel regression")
        ax.legend(fontsize=8, loc="lower left")

    png = out_dir / "myrtle_digits.png"
    plot(png, draw)
    return {"table": table, "csv": str(csv_path), "png": str(png), "n_train": n_train,
            "n_test": n_test, "split_seeds": list(seeds),
            "mean_accuracy": {f"{n} {k.upper()}": round(mean[(n, k)], 4)
                              for n in kernels for k in ("ntk", "nngp")},
            "kernel_seconds": {n: round(sum(res[(n, s)]["seconds"] for s in seeds), 1)
                               for n in kernels},
            "seconds": round(seconds, 1)}
