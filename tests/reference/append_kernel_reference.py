"""Add the specs that tests/reference/kernels_before_redesign.npz lacks (specs shipped after
the redesign, e.g. the graph specs of issue 14), leaving every recorded array as it is.

    PYTHONPATH=. python tests/reference/append_kernel_reference.py

Same inputs and records as make_kernel_reference.py (analytic kernels with per-layer NTK terms,
X vs X and X vs X2; empirical kernels of two width-16 networks), computed by today's code: for
these specs the file is a regression reference from the day they were added, not a record from
before the redesign.  Idempotent: a spec already recorded is skipped, so it can be re-run after
merging branches that each added specs.
"""

import sys
import time
from pathlib import Path

import numpy as np

import ntksym

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_kernel_reference import inputs  # noqa: E402


def main(path=ROOT / "tests" / "reference" / "kernels_before_redesign.npz"):
    with np.load(path) as z:
        rec = {k: z[k] for k in z.files}
    recorded = {k.split("|")[0] for k in rec}
    added = []
    for spec in sorted((ROOT / "spec").glob("*.toml")):
        name = spec.stem
        if name in recorded:
            continue
        t0 = time.perf_counter()
        arch = ntksym.load_spec(spec)
        X, X2 = inputs(arch.input_shape, 3, 0), inputs(arch.input_shape, 2, 1)
        for tag, args in (("xx", (X,)), ("xy", (X, X2))):
            for k, v in ntksym.kernel(arch, *args, kind="both", per_layer=True).items():
                rec[f"{name}|kernel|{tag}|{k}"] = v
        E = ntksym.empirical_kernel(arch, X, X2, width=16, samples=2, seed=0, per_layer=True)
        for k, v in E.samples.items():
            rec[f"{name}|empirical|xy|{k}"] = v
        added.append(name)
        print(f"{name} ({time.perf_counter() - t0:.0f} s)", flush=True)
    if added:
        np.savez_compressed(path, **rec)
    print(f"added {len(added)} specs to {path} ({len(rec)} arrays)")


if __name__ == "__main__":
    sys.exit(main())
