"""GPU backend: agreement with the CPU on a few hundred pairs, then timings (needs a real GPU).

    PYTHONPATH=. python benchmarks/bench_gpu.py [--n 50000] [--d 3072] [--gap-n 64]
        [--json OUT.json]

1. Agreement: for the ReLU (CNTK paper), erf-with-bias and leaky-ReLU MLP specs, K(X, X) on
   24 examples (276 off-diagonal pairs) and K(X, X2) on 20 x 15 (300 pairs), GPU vs CPU
   float64: max relative error (to max |K|) must be <= 1e-12 in fp64 and <= 1e-5 in fp32.
   The same for the CNTK-GAP and CNTK-V depth-4 specs on 8 x 8 x 3 images (the CPU reference
   stays cheap), and CNTK-GAP depth 4 on 4 images of 32 x 32 x 3 (6 pairs, 4 x 3 cross).
2. MLP NTK of the CNTK paper (ReLU, L = 5) on n examples of dimension d (default 50000 x 3072,
   i.e. CIFAR-10-sized vectors): the full symmetric K(X, X) in fp32 and fp64, after a warm-up
   call that pays the JIT; reported as ms per pair (upper-triangle pairs, copies to the host
   included) and pairs per second.
3. CNTK-GAP (``spec/cntk_gap_depthD.toml``, every layer trained) on gap-n random images of
   32 x 32 x 3 at depths 4, 11, 21, fp32 and fp64: the full symmetric K(X, X), NTK, after a
   warm-up call on 2 images that pays the JIT; ms per pair = seconds / (gap-n (gap-n - 1) / 2)
   (the per-image diagonal pass and the copies included).

Without a GPU (or under NUMBA_ENABLE_CUDASIM=1, whose timings mean nothing) it exits with
status 2 and one message.  Nothing here has been run on a GPU yet: see docs/gpu.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ntksym  # noqa: E402
from ntksym.errors import DeviceError  # noqa: E402

AGREE_SPECS = ["cntk_mlp_depth3", "erf_mlp_bias", "leaky_relu_mlp"]
#: image specs and the input shape of their agreement check
AGREE_IMAGE = [("cntk_gap_depth4", (8, 8, 3)), ("cntk_v_depth4", (8, 8, 3)),
               ("cntk_gap_depth4", (32, 32, 3))]
TOL = {"float64": 1e-12, "float32": 1e-5}


def rel_err(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


def _cases(sizes=(24, 20, 15), image_sizes=((24, 20, 15), (24, 20, 15), (4, 4, 3))):
    """(label, arch, X, Xa, Xb) of every agreement case."""
    rng = np.random.default_rng(0)
    for name in AGREE_SPECS:
        arch = ntksym.load_spec(ROOT / "spec" / f"{name}.toml")
        yield (name, arch) + tuple(rng.standard_normal((n,) + tuple(arch.input_shape))
                                   for n in sizes)
    for (name, shape), ns in zip(AGREE_IMAGE, image_sizes):
        arch = ntksym.load_spec(ROOT / "spec" / f"{name}.toml").with_input_shape(shape)
        label = f"{name} {'x'.join(map(str, shape))}"
        yield (label, arch) + tuple(rng.standard_normal((n,) + shape) for n in ns)


def agreement(cases=None):
    rows, ok = [], True
    for name, arch, X, Xa, Xb in (cases if cases is not None else _cases()):
        cpu = {"sym": ntksym.kernel(arch, X, kind="both", progress=False),
               "cross": ntksym.kernel(arch, Xa, Xb, kind="both", progress=False)}
        for dtype in ("float64", "float32"):
            gpu = {"sym": ntksym.kernel(arch, X, kind="both", device="gpu", dtype=dtype),
                   "cross": ntksym.kernel(arch, Xa, Xb, kind="both", device="gpu", dtype=dtype)}
            for block in ("sym", "cross"):
                for k in ("nngp", "ntk"):
                    e = rel_err(gpu[block][k], cpu[block][k])
                    good = e <= TOL[dtype]
                    ok &= good
                    rows.append({"spec": name, "dtype": dtype, "block": block, "kernel": k,
                                 "max_rel_err": e, "ok": good})
                    print(f"  {name:26s} {dtype} {block:5s} {k:4s} max rel err {e:.2e} "
                          f"{'ok' if good else 'FAIL'}")
    return rows, ok


def mlp_timing(n, d, dtype):
    text = (ROOT / "spec" / "cntk_mlp_depth5.toml").read_text()
    arch = ntksym.loads_spec(text).with_input_shape([d])
    X = np.random.default_rng(1).standard_normal((n, d))
    ntksym.kernel(arch, X[:64], device="gpu", dtype=dtype)           # JIT
    t0 = time.perf_counter()
    K = ntksym.kernel(arch, X, device="gpu", dtype=dtype)
    sec = time.perf_counter() - t0
    pairs = n * (n - 1) // 2
    del K
    return {"n": n, "d": d, "dtype": dtype, "seconds": sec, "pairs": pairs,
            "ms_per_pair": 1e3 * sec / pairs, "pairs_per_second": pairs / sec}


def cntk_gap(depth, dtype, n, shape=(32, 32, 3)):
    arch = ntksym.load_spec(ROOT / "spec" / f"cntk_gap_depth{depth}.toml")
    arch = arch.with_input_shape(list(shape))
    X = np.random.default_rng(2).standard_normal((n,) + tuple(shape))
    ntksym.kernel(arch, X[:2], device="gpu", dtype=dtype)            # JIT
    t0 = time.perf_counter()
    K = ntksym.kernel(arch, X, device="gpu", dtype=dtype)
    sec = time.perf_counter() - t0
    pairs = n * (n - 1) // 2
    assert np.isfinite(K).all()
    return {"depth": depth, "dtype": dtype, "n": n, "shape": list(shape), "seconds": sec,
            "pairs": pairs, "ms_per_pair": 1e3 * sec / pairs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50000, help="examples for the MLP timing")
    ap.add_argument("--d", type=int, default=3072, help="input dimension for the MLP timing")
    ap.add_argument("--gap-n", type=int, default=64,
                    help="images for the CNTK-GAP timings (gap-n (gap-n - 1) / 2 pairs)")
    ap.add_argument("--json", help="write the results to this JSON file")
    args = ap.parse_args()
    from ntksym.engine.gpu import cuda_module, simulator_enabled
    if simulator_enabled():
        print("bench_gpu: NUMBA_ENABLE_CUDASIM=1 is set; simulator timings mean nothing. "
              "Unset it and run on a GPU.", file=sys.stderr)
        return 2
    try:
        cuda = cuda_module()
    except DeviceError as e:
        print(f"bench_gpu: {e}", file=sys.stderr)
        return 2
    dev = cuda.get_current_device()
    result = {"device": dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name),
              "python": platform.python_version(), "numba": __import__("numba").__version__}
    print(f"device: {result['device']}")
    print("1. GPU vs CPU agreement")
    result["agreement"], ok = agreement()
    print(f"2. MLP NTK (CNTK paper, L = 5), n = {args.n}, d = {args.d}")
    result["mlp"] = []
    for dtype in ("float32", "float64"):
        r = mlp_timing(args.n, args.d, dtype)
        result["mlp"].append(r)
        print(f"  {dtype}: {r['seconds']:.2f} s for {r['pairs']} pairs: "
              f"{r['ms_per_pair']:.3e} ms per pair ({r['pairs_per_second']:.3e} pairs/s)")
    print(f"3. CNTK-GAP on 32x32x3, n = {args.gap_n}")
    result["cntk_gap"] = []
    for depth in (4, 11, 21):
        for dtype in ("float32", "float64"):
            r = cntk_gap(depth, dtype, args.gap_n)
            result["cntk_gap"].append(r)
            print(f"  depth {depth:2d} {dtype}: {r['seconds']:.2f} s for {r['pairs']} pairs: "
                  f"{r['ms_per_pair']:.3e} ms per pair")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
