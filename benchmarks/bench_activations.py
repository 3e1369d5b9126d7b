"""MLP NTK with activations without closed-form duals (Hermite-series duals, issue 16) against
the ReLU MLP of the same shape: L = 3 hidden layers, n = 2000, d = 64, float64.

Every activation's spec is the same MLP (dense + activation, three times, then the dense
readout); all kernels are computed on the same inputs, alternating round by round (relu, tanh,
swish, gelu-expr, ..., relu, tanh, ...), after one warm-up call each (compilation or the
on-disk cache).  Prints one JSON object: per activation the warm wall-clock times, their
minimum and median, and the ratio of the medians to ReLU's.

    python benchmarks/bench_activations.py [--n 2000] [--d 64] [--rounds 5] [--threads T]

Target (docs/activations.md): tanh / swish / GELU-expr at most 3x the ReLU MLP.
"""

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

ACTIVATIONS = {
    "relu": 'activation = "relu"',
    "tanh": 'activation = "tanh"',
    "swish": 'activation = "swish(1.0)"',
    "gelu_expr": "activation = 'activation(\"z*(1+erf(z/sqrt(2)))/2\")'",
    "softplus_expr": "activation = 'activation(\"log(1+exp(z))\")'",
    "gelu_closed": 'activation = "gelu"',
}


def spec(name, line, d, depth):
    return (f'name = "bench-{name}"\ninput = {{ shape = [{d}] }}\n[defaults]\nbias_var = 0.1\n'
            + f'[[layer]]\nkind = "dense"\n{line}\n' * depth + '[[layer]]\nkind = "dense"\n')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--only", nargs="*", default=None, help="activations to time (relu always)")
    args = ap.parse_args()
    import ntksym
    names = [k for k in ACTIVATIONS if args.only is None or k in args.only or k == "relu"]
    archs = {k: ntksym.loads_spec(spec(k, ACTIVATIONS[k], args.d, args.depth)) for k in names}
    X = np.random.default_rng(0).standard_normal((args.n, args.d))
    first = {}
    for k in names:                          # warm-up: JIT or the disk cache, then tiny pages
        t = time.perf_counter()
        ntksym.kernel(archs[k], X, threads=args.threads)
        first[k] = round(time.perf_counter() - t, 3)
    times = {k: [] for k in names}
    for _ in range(args.rounds):
        for k in names:
            t = time.perf_counter()
            ntksym.kernel(archs[k], X, threads=args.threads)
            times[k].append(time.perf_counter() - t)
    relu = statistics.median(times["relu"])
    out = {"n": args.n, "d": args.d, "L": args.depth, "kernel": "ntk", "dtype": "float64",
           "rounds": args.rounds, "threads": args.threads or "numba default",
           "results": {k: {"first_call_s": first[k],
                           "warm_s": [round(x, 4) for x in times[k]],
                           "min_s": round(min(times[k]), 4),
                           "median_s": round(statistics.median(times[k]), 4),
                           "ratio_to_relu": round(statistics.median(times[k]) / relu, 2)}
                       for k in names},
           "load_average": [round(x, 2) for x in os.getloadavg()],
           "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
