"""Per-width cost of ``ntksym reproduce yang-wang-fig1`` and an extrapolated full-scale time.

The full run draws 64 (full, pruned) pairs at each width 32 .. 8192.  This script times
``--reps`` pairs per width (after one warm-up draw that compiles the Numba kernels) and
multiplies by 64.  The extrapolation is labelled as such; on a shared machine the numbers are
noisy, so the load average is printed beside them.

Example::

    PYTHONPATH=. python benchmarks/bench_yang_wang_fig1.py --reps 2
"""

import argparse
import os
import time

from ntksym.apps.reproduce.yang_wang import sample_pair, two_inputs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--max-width", type=int, default=8192)
    a = ap.parse_args()
    X = two_inputs(0)
    sample_pair(X, 32, 0.5, seed=(0, 0, 0))          # warm-up: Numba compilation
    total = 0.0
    w = 32
    while w <= a.max_width:
        t0 = time.perf_counter()
        for s in range(a.reps):
            sample_pair(X, w, 0.5, seed=(0, w, s))
        per = (time.perf_counter() - t0) / a.reps
        total += 64 * per
        print(f"width {w:5d}: {per:8.3f} s per (full, pruned) pair; x64 = {64 * per:8.1f} s; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        w *= 2
    print(f"extrapolated full run (64 samples per width, sampling only): {total:.0f} s")


if __name__ == "__main__":
    main()
