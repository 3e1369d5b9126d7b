"""RNN NTK (ReLU Elman, NTK parameterization, biases) for n = 2000 sequences of length 20, d = 16:
one and two layers, last and mean readouts, float64.

Reports per case: the first call in this process (JIT or disk-cache load), the best warm call,
its CPU time (all threads: on a loaded machine the wall time overstates the cost, the
CPU time divided by the threads does not), and the process's peak RSS (a high-water mark: it
only grows across cases, so run one case per process with --case for a clean number).  The
machine's cores are shared: timings are noisy.

    python benchmarks/bench_rnn.py [--n 2000] [--T 20] [--d 16] [--repeat 2] [--case 1-last]

Cost model: "last" walks only the diagonal through (T, T') of each pair (O(L T) per pair);
"mean" needs every (t, t') (O(L T^2) per pair), i.e. about T times the work of "last".
"""

import argparse
import json
import platform
import resource
import time

import numpy as np

import ntksym

CASES = ("1-last", "1-mean", "2-last", "2-mean")


def spec(layers, readout, T, d):
    lower = '''
[[layer]]
kind = "rnn"
weight_var = 2.0
bias_var = 0.1
readout = "all"
''' if layers == 2 else ""
    return f'''
name = "bench-rnn-{layers}-{readout}"
input = {{ shape = [{T}, {d}] }}
{lower}
[[layer]]
kind = "rnn"
weight_var = 2.0
bias_var = 0.1
readout = "{readout}"
[[layer]]
kind = "dense"
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--T", type=int, default=20)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--case", action="append", choices=CASES)
    ap.add_argument("--threads", type=int)
    a = ap.parse_args()
    X = np.random.default_rng(0).standard_normal((a.n, a.T, a.d)) / np.sqrt(a.d)
    rows = []
    for case in a.case or CASES:
        layers, readout = int(case[0]), case[2:]
        arch = ntksym.loads_spec(spec(layers, readout, a.T, a.d))
        t = time.perf_counter()
        ntksym.kernel(arch, X[:8], kind="ntk", threads=a.threads)   # compile / cache load
        first = time.perf_counter() - t
        warm, cpu = [], []
        for _ in range(a.repeat):
            t, c = time.perf_counter(), time.process_time()
            K = ntksym.kernel(arch, X, kind="ntk", threads=a.threads)
            warm.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows.append({"case": case, "n": a.n, "T": a.T, "d": a.d, "first_call_s": round(first, 2),
                     "warm_s": round(min(warm), 3),
                     "warm_cpu_s": round(min(cpu), 3), "peak_rss_mib": round(rss, 1),
                     "checksum": float(K.trace())})
        print(json.dumps(rows[-1]), flush=True)
    import numba
    print(json.dumps({"machine": platform.processor() or platform.machine(),
                      "threads": numba.get_num_threads()}))


if __name__ == "__main__":
    main()
