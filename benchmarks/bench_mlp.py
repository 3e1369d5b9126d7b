"""ReLU MLP NTK (the CNTK paper's MLP, L = 5, float64) for n = 4000, d = 784.

Reports: first call in a fresh process (JIT or disk-cache load), warm calls, the BLAS Gram
matrix X @ X.T of the same inputs timed alternately with them in the same process (medians, and
the ratio kernel / Gram: the Gram matrix is the part no kernel of this family can avoid), the
same for float32 output, the load average, peak memory (RSS high-water mark), and, when
neural-tangents is importable, the same kernel there with the ratio.

    python benchmarks/bench_mlp.py [--n 4000] [--d 784] [--repeat 3]

Run it twice: the second process shows the disk cache (no JIT).  With --nt and neural-tangents
importable here, the same kernel there, jitted as its docs recommend (median of warm calls).
neural-tangents usually lives in a separate environment (shared notes/peers.md): the
side-by-side comparison, alternating processes on the same inputs, is
``NTKSYM_NT_PYTHON=nt-env/bin/python python benchmarks/run_benchmarks.py --cases mlp-relu``.
"""

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def mlp_spec(d):
    text = (ROOT / "spec" / "cntk_mlp_depth5.toml").read_text()
    return text.replace("shape = [64]", f"shape = [{d}]").replace(
        'name = "cntk-mlp-depth5"', f'name = "cntk-mlp-depth5-d{d}"')


def neural_tangents_seconds(X, repeat):
    """Median warm seconds of the same kernel in neural-tangents, as its docs recommend:
    float64 and ``jax.jit(kernel_fn, static_argnames="get")`` (the first call, which traces and
    compiles, is not timed).  The stax network is run_benchmarks.nt_network's, which that
    script checks against this spec to 1e-10 before timing.  Needs neural-tangents in this
    Python; the side-by-side comparison across two environments is
    ``NTKSYM_NT_PYTHON=... python benchmarks/run_benchmarks.py --cases mlp-relu``."""
    import statistics

    import jax
    jax.config.update("jax_enable_x64", True)
    from neural_tangents import stax
    from run_benchmarks import nt_network
    kernel_fn = jax.jit(nt_network("mlp-relu", {"d": X.shape[1], "L": 5}, stax),
                        static_argnames="get")
    np.asarray(kernel_fn(X, None, get="ntk"))            # trace and compile: not timed
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        np.asarray(kernel_fn(X, None, get="ntk"))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--d", type=int, default=784)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nt", action="store_true", help="also time neural-tangents (if importable)")
    args = ap.parse_args()
    import ntksym
    arch = ntksym.loads_spec(mlp_spec(args.d))
    X = np.random.default_rng(0).standard_normal((args.n, args.d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    t = time.perf_counter()
    K = ntksym.kernel(arch, X)
    first = time.perf_counter() - t
    ntksym.kernel(arch, X[:10], dtype="float32")     # compile the float32 path
    warm, warm32, gram = [], [], []
    for _ in range(args.repeat):                     # alternating: the same load for each
        t = time.perf_counter()
        _ = X @ X.T
        gram.append(time.perf_counter() - t)
        del _
        t = time.perf_counter()
        K = ntksym.kernel(arch, X)
        warm.append(time.perf_counter() - t)
        t = time.perf_counter()
        K32 = ntksym.kernel(arch, X, dtype="float32")
        warm32.append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in (("k", warm), ("k32", warm32), ("g", gram))}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"n": args.n, "d": args.d, "L": 5, "dtype": "float64",
           "first_call_s": round(first, 3), "warm_median_s": round(med["k"], 3),
           "warm_float32_median_s": round(med["k32"], 3),
           "blas_gram_median_s": round(med["g"], 3),
           "ratio_to_gram": round(med["k"] / med["g"], 2),
           "ratio_to_gram_float32": round(med["k32"] / med["g"], 2),
           "float32_vs_float64_max_rel": float(np.abs(K32 - K).max() / np.abs(K).max()),
           "peak_rss_MB": round(rss, 1), "output_MB": round(K.nbytes / 2**20, 1),
           "diag_error": float(np.abs(np.diag(K) - 6.0).max()),
           "load_average": [round(v, 2) for v in os.getloadavg()],
           "threads": __import__("numba").get_num_threads(),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "date": time.strftime("%Y-%m-%d")}
    if args.nt:
        try:
            nt = neural_tangents_seconds(X, args.repeat)
            out["neural_tangents_jit_warm_median_s"] = round(nt, 3)
            out["speedup_vs_jit_median"] = round(nt / med["k"], 2)
        except ImportError as e:
            out["neural_tangents"] = f"not importable ({e})"
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
