"""Exact CNTK (Arora et al. 2019) speed and memory: CNTK-GAP and CNTK-V depth 4.

Cases (each float64 and float32, each in a fresh process so that the RSS high-water mark is its
own):

* ``gap-cifar``:   spec/cntk_gap_depth4.toml on n = 20 random 32x32x3 images (NTK, K(X, X));
* ``v-cifar``:     spec/cntk_v_depth4.toml on the same images;
* ``gap-digits``:  spec/cntk_gap_digits_depth4.toml on 500 scikit-learn digits (8x8x1).

Reported per case: first call in a fresh process (JIT or disk-cache load included), warm wall
time (best of --repeat), warm CPU time (time.process_time, all threads), peak RSS, the work
per pair counted from the generated program (flops and transcendental calls: sqrt, acos ...),
and the achieved fraction of the machine's arithmetic limit (cores x clock x 16 double flops per
cycle, AVX2 + 2 FMA pipes) and of its scalar acos/sqrt throughput (measured here).

    python benchmarks/bench_cntk.py [--cases gap-cifar,v-cifar,gap-digits] [--repeat 2]
                                    [--threads 2] [-o results.json]

The machine is shared: wall times are noisy (the load average is recorded); CPU time is the
steadier figure.  neural-tangents 0.6.5 (2-core machine of this kind, float64, from
the shared notes on peers): CNTK-GAP depth 4, 32x32x3, unbatched asks 27 GB and fails at
n = 20; with nt.batch(batch_size=2) n = 10 takes 39 s and n = 20 228 s.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = {
    "gap-cifar": ("spec/cntk_gap_depth4.toml", "random", 20),
    "v-cifar": ("spec/cntk_v_depth4.toml", "random", 20),
    "gap-digits": ("spec/cntk_gap_digits_depth4.toml", "digits", 500),
}
NEURAL_TANGENTS = {"gap-cifar": {"n=20, nt.batch(2)": 228.0, "n=10, nt.batch(2)": 39.0,
                                 "n=20, unbatched": "fails (asks 27 GB)"}}
FLOPS_PER_CYCLE = 16      # double precision: 2 FMA pipes x 4 lanes x 2 flops (AVX2)


def data(kind, n):
    if kind == "digits":
        from ntksym.data import load_dataset
        return load_dataset(f"digits-images:{n}").X
    return np.random.default_rng(0).standard_normal((n, 32, 32, 3))


# ------------------------------------------------------------------------- work per pair

def work_per_pair(program):
    """{flops, transcendental: {name: calls}, entries} per image pair, counted from the program
    and the schedule its generated code uses (the slice schedule visits sum_d |rect_d| entries
    per layer, the full schedule P^2)."""
    import sympy as sp

    from ntksym.codegen.common import lower_clipped as _lower
    from ntksym.codegen.slices import slice_plan
    from ntksym.ir.ops import PatchSum
    from ntksym.ir.program import Structural
    plan = slice_plan(program)

    def entries(hw):
        H, W = hw
        if plan is None:
            return (H * W) ** 2
        Hf, Wf = plan["final_hw"]
        if plan["circular"]:
            return (H * W) * (Hf * Wf if plan["op"] == "global_avg" else 1)
        if plan["op"] == "flatten":
            return H * W
        rows = sum(min(H, H - d) - max(0, -d) for d in range(-(Hf - 1), Hf))
        cols = sum(min(W, W - d) - max(0, -d) for d in range(-(Wf - 1), Wf))
        return rows * cols

    flops, trans, total_entries = 0, {}, 0
    s0 = program.input_cross.name
    e0 = entries(program.shapes[s0])
    flops += 2 * program.input_scale * e0          # the input Gram products
    for step in program.steps:
        if isinstance(step, Structural):
            n_in = sum(1 for b in step.outputs if not b.name.endswith("_xx"))
            if isinstance(step.op, PatchSum):
                qh, qw = step.op.filter
                flops += n_in * (qh + qw) * entries(step.op.out_hw)
            else:
                flops += n_in * entries(step.op.in_hw)
            continue
        if not step.cross:
            continue
        n = entries(program.shapes[step.cross[0].target.name])
        total_entries += n
        repl, exprs = sp.cse([_lower(a.expr) for a in step.cross], optimizations="basic")
        ops = sp.Integer(0)
        for e in [r for _, r in repl] + exprs:
            ops += sp.count_ops(e, visual=True)
        for sym, cnt in ops.as_coefficients_dict().items():
            name = str(sym)
            if name in ("ADD", "SUB", "MUL", "DIV", "NEG"):
                flops += int(cnt) * n
            elif name in ("POW",):
                flops += int(cnt) * n
            elif name != "CLIP1" and name != "1":
                trans[name.lower()] = trans.get(name.lower(), 0) + int(cnt) * n
    return {"flops": int(flops), "transcendental": trans, "elementwise_entries": total_entries}


def scalar_throughput():
    """Scalar libm acos and sqrt calls per second on one core of this machine."""
    import math

    import numba

    @numba.njit(cache=False)
    def loop(x, which):
        acc = 0.0
        for k in range(x.shape[0]):
            acc += math.acos(x[k]) if which == 0 else math.sqrt(x[k])
        return acc

    x = np.random.default_rng(1).uniform(-1, 1, 2_000_000)
    out = {}
    for which, name in ((0, "acos"), (1, "sqrt")):
        loop(x[:10], which)
        best = 1e9
        for _ in range(3):
            t = time.process_time()
            loop(np.abs(x) if which else x, which)
            best = min(best, time.process_time() - t)
        out[name] = x.shape[0] / best
    return out


# --------------------------------------------------------------------------- one case

def run_one(case, dtype, repeat, threads):
    import numba

    import ntksym
    numba.set_num_threads(threads)
    spec, kind, n = CASES[case]
    arch = ntksym.load_spec(str(ROOT / spec))
    X = data(kind, n)
    t = time.perf_counter()
    K = ntksym.kernel(arch, X, kind="ntk", dtype=dtype, progress=False)
    first = time.perf_counter() - t
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        K = ntksym.kernel(arch, X, kind="ntk", dtype=dtype, progress=False)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    program = arch.derive()
    from ntksym.codegen.image import compile_image_program
    work = work_per_pair(program)
    pairs = n * (n + 1) // 2                     # upper triangle and the diagonal
    return {"case": case, "spec": spec, "n": n, "image": list(X.shape[1:]), "dtype": dtype,
            "threads": threads, "schedule": compile_image_program(program).SCHEDULE,
            "first_call_s": round(first, 3), "warm_wall_s": round(min(walls), 3),
            "warm_cpu_s": round(min(cpus), 3), "peak_rss_MB": round(rss, 1),
            "pairs": pairs, "work_per_pair": work,
            "K_checksum": float(np.asarray(K, dtype=np.float64).sum())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("-o", "--output", help="also write the JSON here")
    ap.add_argument("--one", help=argparse.SUPPRESS)      # case:dtype, in a child process
    args = ap.parse_args()
    if args.one:
        case, dtype = args.one.split(":")
        print(json.dumps(run_one(case, dtype, args.repeat, args.threads)))
        return
    freq = None
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("cpu MHz"):
                freq = float(line.split(":")[1]) / 1000
                break
    except OSError:
        pass
    cores = os.cpu_count()
    peak = cores * (freq or 0) * 1e9 * FLOPS_PER_CYCLE
    tput = scalar_throughput()
    results = []
    for case in args.cases.split(","):
        for dtype in args.dtypes.split(","):
            proc = subprocess.run([sys.executable, __file__, "--one", f"{case}:{dtype}",
                                   "--repeat", str(args.repeat), "--threads", str(args.threads)],
                                  capture_output=True, text=True, cwd=ROOT)
            if proc.returncode:
                sys.stderr.write(proc.stderr)
                raise SystemExit(f"{case} {dtype} failed")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            w = r["work_per_pair"]
            total_flops = w["flops"] * r["pairs"]
            calls = sum(w["transcendental"].values()) * r["pairs"]
            cpu = r["warm_cpu_s"]
            r["gflops_per_cpu_s"] = round(total_flops / cpu / 1e9, 3)
            r["fraction_of_peak_flops"] = round(total_flops / cpu / (peak / cores), 4) \
                if peak else None
            # the transcendental calls are scalar libm calls: how close to their throughput
            t_floor = sum(c * r["pairs"] / tput.get(name, tput["sqrt"])
                          for name, c in w["transcendental"].items())
            r["transcendental_calls"] = calls
            r["fraction_of_libm_bound"] = round(t_floor / cpu, 3)
            if case in NEURAL_TANGENTS:
                r["neural_tangents_0.6.5_s"] = NEURAL_TANGENTS[case]
                if dtype == "float64":
                    r["speedup_vs_nt_batch2"] = round(228.0 / r["warm_wall_s"], 1)
            results.append(r)
            print(f"{case:11s} {dtype:8s} first {r['first_call_s']:7.2f} s  warm wall "
                  f"{r['warm_wall_s']:7.2f} s  cpu {cpu:7.2f} s  rss {r['peak_rss_MB']:7.1f} MB  "
                  f"{r['gflops_per_cpu_s']:.2f} GF/cpu-s "
                  f"({100 * (r['fraction_of_peak_flops'] or 0):.1f}% "
                  f"of peak)  libm-bound {100 * r['fraction_of_libm_bound']:.0f}%", flush=True)
    out = {"machine": f"{platform.processor() or platform.machine()}, {cores} cores, "
                      f"{freq} GHz", "peak_gflops": round(peak / 1e9, 1),
           "scalar_calls_per_s_one_core": {k: round(v / 1e6, 1) for k, v in tput.items()},
           "loadavg": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M"),
           "results": results,
           "neural_tangents_note": "neural-tangents 0.6.5, same kind of 2-core machine, float64: "
                                   "CNTK-GAP depth 4 n=20 unbatched fails (27 GB); nt.batch(2): "
                                   "n=10 39 s, n=20 228 s (shared/notes/peers.md)"}
    text = json.dumps(out, indent=1)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")


if __name__ == "__main__":
    main()
