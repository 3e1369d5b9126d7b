"""Record every shipped spec's kernels on fixed inputs, before the one-pipeline redesign (#13).

Run once, on main at cf5a0c6 (before any module moved):

    PYTHONPATH=. python tests/reference/make_kernel_reference.py

It writes tests/reference/kernels_before_redesign.npz: for each spec/NAME.toml, the analytic
kernels (nngp, ntk and the per-layer NTK terms) of X vs X and X vs X2, and the empirical
kernels of two small finite networks (width 16, seeds 0 and 1).  Per-layer NTK terms of the
depth-11/21 image programs failed to compile on main at cf5a0c6 with numba 0.68 ("Calling a
closure with *args is unsupported"); for those only the totals are recorded.
tests/oracles/test_reference_kernels.py compares today's code against these numbers (1e-15
relative analytic, 1e-12 empirical).

Deliberate updates (a method changed the numbers beyond the old one's error) re-record the
analytic kernels of named specs only, keeping every other array:

    PYTHONPATH=. python tests/reference/make_kernel_reference.py --update NAME [NAME ...]

Done once so far, for the Hermite-series duals (issue 16): clb_huberized_relu (max change
5.3e-13 of the largest entry: the series is truncated at a tail bound of 1e-12 of
sqrt(E[phi(u)^2] E[phi(v)^2]), the old 48-node quadrature of this piecewise polynomial was
accurate to ~1e-15) and custom_expression (max 1e-14: its softplus is now evaluated in the
overflow-free form and by the series).
"""

import sys
from pathlib import Path

import numpy as np

import ntksym

ROOT = Path(__file__).resolve().parents[2]


def inputs(shape, n, seed):
    """n examples of the spec's input shape (free time axis: T = 5)."""
    shape = [5 if s == -1 else s for s in shape]
    return np.random.default_rng(seed).standard_normal((n, *shape)) * 0.5


def main(out=ROOT / "tests" / "reference" / "kernels_before_redesign.npz"):
    rec = {}
    for spec in sorted((ROOT / "spec").glob("*.toml")):
        arch = ntksym.load_spec(spec)
        X, X2 = inputs(arch.input_shape, 3, 0), inputs(arch.input_shape, 2, 1)
        name = spec.stem
        for tag, args in (("xx", (X,)), ("xy", (X, X2))):
            try:
                K = ntksym.kernel(arch, *args, kind="both", per_layer=True)
            except Exception as e:      # per-layer terms of deep image programs: see below
                print(f"  {name}: per_layer failed ({type(e).__name__}); totals only")
                K = ntksym.kernel(arch, *args, kind="both")
            for k, v in K.items():
                rec[f"{name}|kernel|{tag}|{k}"] = v
        E = ntksym.empirical_kernel(arch, X, X2, width=16, samples=2, seed=0, per_layer=True)
        for k, v in E.samples.items():
            rec[f"{name}|empirical|xy|{k}"] = v
        print(name, flush=True)
    np.savez_compressed(out, **rec)
    print(f"wrote {out} ({len(rec)} arrays)")


def update(names, out=ROOT / "tests" / "reference" / "kernels_before_redesign.npz"):
    """Re-record the analytic kernels of the specs ``names`` in ``out``, keeping the rest."""
    with np.load(out) as z:
        rec = {k: z[k] for k in z.files}
    for name in names:
        arch = ntksym.load_spec(ROOT / "spec" / f"{name}.toml")
        X, X2 = inputs(arch.input_shape, 3, 0), inputs(arch.input_shape, 2, 1)
        for tag, args in (("xx", (X,)), ("xy", (X, X2))):
            prefix = f"{name}|kernel|{tag}|"
            per_layer = any(k.startswith(prefix + "ntk[") for k in rec)
            K = ntksym.kernel(arch, *args, kind="both", per_layer=per_layer)
            assert {prefix + k for k in K} == {k for k in rec if k.startswith(prefix)}, name
            for k, v in K.items():
                rec[prefix + k] = v
        print("updated", name, flush=True)
    np.savez_compressed(out, **rec)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--update"]:
        sys.exit(update(sys.argv[2:]))
    sys.exit(main())
