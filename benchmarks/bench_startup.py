"""Start-up: the time before ntksym does anything, the first kernel of a new spec, --dry-run.

Measures, alternating the commands within each round (so that load on the machine hits them
alike), medians over the rounds:

1. ``python -c "import numpy"`` (the yardstick) against ``ntksym --help`` and
   ``ntksym check|graph|derive SPEC`` (issue 16's target: --help and check in at most 1.5x),
   SPEC the depth-5 ReLU MLP, and ``ntksym check`` of other kinds of spec (``CHECK_SPECS``:
   erf, a masked CNN, an RNN, a Hermite-series activation, and a user expression, which
   loads sympy to parse it), so that the ratio is not that of the easiest spec alone;
2. the first ``ntksym kernel`` of a new depth-5 MLP spec on 100 inputs with empty ntksym and
   Numba caches (a new spec name each round; target: at most 3 s on an idle machine), with
   the engine it chose, and with ``--cold-compile`` the same forced to ``--engine compiled``;
3. ``--dry-run`` of a never-compiled spec (its estimate comes from the NumPy tier) against
   the compiled program's measured time on the same data: how accurate the estimate is;
4. per shipped spec, seconds per pair of the NumPy tier and of the compiled program on one
   thread, and their ratio (the speed-ups ntksym.engine.numpy_tier.COMPILED_SPEEDUP uses).

Commands run as ``python cli.py ...`` from the repository root (the console script without
its launcher).  Besides wall times it records each process's CPU time (user + system), which
load from other jobs inflates far less: on an idle machine the wall time of these
single-threaded start-ups is close to their CPU time.  It also records whether Python may
write bytecode (``PYTHONDONTWRITEBYTECODE`` unset): when it may not, every command compiles
ntksym's modules from source at each start, while numpy's were compiled when it was
installed -- a handicap for ntksym that an installed copy does not have.  Output: JSON
(stdout, or -o FILE) with the machine, ``uptime`` before and after, and every measurement.

    python benchmarks/bench_startup.py [--rounds 7] [--quick] [--cold-compile] [-o out.json]
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
MLP5 = ROOT / "spec" / "cntk_mlp_depth5.toml"
#: ``ntksym check`` of these too (part 1): closed-form erf, a CNN with bernoulli masks, an
#: RNN, the Hermite series of a Huberized ReLU, and a user expression (parsed by sympy)
CHECK_SPECS = ("erf_mlp_bias", "vgg_small_bernoulli", "rntk_last", "clb_huberized_relu",
               "custom_expression")


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine():
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpu": cpu, "cores": os.cpu_count()}


def timed(cmd, env=None):
    """(wall seconds, the finished process); ``timed.cpu``: its user + system CPU seconds, which
    other jobs on a shared machine inflate far less than the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    timed.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{r.stderr}")
    return dt, r


def fresh_env(tmp):
    return dict(os.environ, NTKSYM_CACHE_DIR=str(Path(tmp) / "ntksym"),
                NUMBA_CACHE_DIR=str(Path(tmp) / "numba"), NUMBA_NUM_THREADS="1")


def new_mlp_spec(folder, name):
    path = Path(folder) / f"{name}.toml"
    path.write_text(MLP5.read_text().replace('name = "cntk-mlp-depth5"', f'name = "{name}"'))
    return path


# ----------------------------------------------------------------------------- 1. commands

def commands_vs_numpy(rounds, spec, check_specs=CHECK_SPECS):
    cmds = {
        "python -c 'import numpy'": [PY, "-c", "import numpy"],
        "ntksym --help": [PY, "cli.py", "--help"],
        "ntksym check": [PY, "cli.py", "check", spec],
        "ntksym graph": [PY, "cli.py", "graph", spec],
        "ntksym derive": [PY, "cli.py", "derive", spec],
    }
    for name in check_specs:
        cmds[f"ntksym check {name}"] = [PY, "cli.py", "check", str(ROOT / "spec" / f"{name}.toml")]
    times = {k: [] for k in cmds}
    cpu = {k: [] for k in cmds}
    for _ in range(rounds):
        for k, c in cmds.items():
            times[k].append(timed(c)[0])
            cpu[k].append(timed.cpu)
    base = statistics.median(times["python -c 'import numpy'"])
    base_cpu = statistics.median(cpu["python -c 'import numpy'"])
    return {k: {"median_s": round(statistics.median(v), 4), "min_s": round(min(v), 4),
                "ratio_to_numpy": round(statistics.median(v) / base, 2),
                "median_cpu_s": round(statistics.median(cpu[k]), 4),
                "cpu_ratio_to_numpy": round(statistics.median(cpu[k]) / base_cpu, 2)}
            for k, v in times.items()}


# ----------------------------------------------------------------------------- 2. first kernel

def first_kernel(rounds, n, engine="auto"):
    import numpy as np
    out = []
    with tempfile.TemporaryDirectory() as data:
        x = Path(data) / "x.npy"
        np.save(x, np.random.default_rng(0).standard_normal((n, 64)))
        for r in range(rounds):
            with tempfile.TemporaryDirectory() as tmp:
                spec = new_mlp_spec(tmp, f"bench-mlp5-{os.getpid()}-{r}-{time.time_ns()}")
                dt, res = timed([PY, "cli.py", "kernel", spec, "--x", x, "--engine", engine,
                                 "--json", "--progress"], env=fresh_env(tmp))
                summary = json.loads(res.stdout)
                out.append({"seconds": round(dt, 3), "cpu_seconds": round(timed.cpu, 3),
                            "engine": summary["engine"],
                            "kernel_seconds": summary["seconds"],
                            "stderr": res.stderr.strip().splitlines()[:2]})
    return {"n": n, "engine_option": engine,
            "median_s": round(statistics.median(o["seconds"] for o in out), 3),
            "median_cpu_s": round(statistics.median(o["cpu_seconds"] for o in out), 3),
            "runs": out}


# ----------------------------------------------------------------------------- 3. dry run

DRY_CASES = [("cntk_mlp_depth5", 3000, None), ("erf_mlp_bias", 3000, None),
             ("cntk_gap_digits_depth4", 150, None), ("vgg_small_bernoulli", 150, None),
             ("cntk_v_depth3", 40, None)]


def dry_run_accuracy(cases):
    """The dry run's estimate in a fresh cache (NumPy tier, nothing compiled) against the
    compiled program timed in this process (compiled once, Numba's default cache)."""
    import numpy as np

    import ntksym
    from ntksym.engine.common import check_data
    from ntksym.engine.dispatch import evaluate
    rows = []
    for name, n, shape in cases:
        arch = ntksym.load_spec(ROOT / "spec" / f"{name}.toml")
        if shape:
            arch = arch.with_input_shape(shape)
        X = np.random.default_rng(0).standard_normal((n, *arch.input_shape)) * 0.5
        with tempfile.TemporaryDirectory() as tmp:
            x = Path(tmp) / "x.npy"
            np.save(x, X)
            t_dry, res = timed([PY, "cli.py", "kernel", ROOT / "spec" / f"{name}.toml", "--x", x,
                                "--tile", str(n), "--dry-run", "--json"], env=fresh_env(tmp))
        plan = json.loads(res.stdout)
        Xc = check_data(X, arch.input_shape)
        evaluate(arch, Xc[:2], None, ["ntk"], engine="compiled", progress=False)   # compile
        t = time.perf_counter()
        evaluate(arch, Xc, None, ["ntk"], engine="compiled", progress=False)
        measured = time.perf_counter() - t
        spp = measured / (n * (n + 1) // 2)
        rows.append({"spec": name, "n": n, "dry_run_seconds": round(t_dry, 2),
                     "estimate": plan["estimate"],
                     "estimated_seconds_per_pair": plan["seconds_per_pair"],
                     "measured_seconds_per_pair": float(f"{spp:.4g}"),
                     "estimate_over_measured": round(plan["seconds_per_pair"] / spp, 2)})
    return rows


# ----------------------------------------------------------------------------- 4. speed-ups

RATIO_CASES = [("cntk_mlp_depth1", 600, 2000), ("cntk_mlp_depth5", 600, 2000),
               ("erf_mlp_bias", 600, 2000), ("yang_wang_mlp", 600, 2000),
               ("clb_huberized_relu", 4, 40), ("custom_expression", 4, 40),
               ("cntk_gap_digits_depth4", 24, 200), ("vgg_small_bernoulli", 24, 200),
               ("cntk_gap_depth3", 3, 20), ("cntk_v_depth3", 40, 40)]


def speedups(cases):
    import numpy as np

    import ntksym
    from ntksym.engine.common import check_data, program
    from ntksym.engine.dispatch import evaluate
    from ntksym.engine.numpy_tier import numpy_kernel, numpy_seconds

    def best(f, k):
        ts = []
        for _ in range(k):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        return min(ts)

    rows = []
    for name, n_np, n_c in cases:
        arch = ntksym.load_spec(ROOT / "spec" / f"{name}.toml")
        prog = program(arch)
        X = check_data(np.random.default_rng(0).standard_normal(
            (max(n_np, n_c), *arch.input_shape)) * 0.5, arch.input_shape)
        A, B = X[:n_np // 2], X[n_np // 2:n_np]
        numpy_kernel(prog, A[:1], B[:1], ["ntk"])
        t_np = best(lambda: numpy_kernel(prog, A, B, ["ntk"]), 2)
        model = numpy_seconds(prog, arch.input_shape, len(A), len(B), False)
        A2, B2 = X[:n_c // 2], X[n_c // 2:n_c]
        evaluate(arch, A2[:2], B2[:2], ["ntk"], engine="compiled", progress=False)
        t_c = best(lambda: evaluate(arch, A2, B2, ["ntk"], engine="compiled",
                                    progress=False), 3)
        spp_np, spp_c = t_np / (len(A) * len(B)), t_c / (len(A2) * len(B2))
        rows.append({"spec": name, "numpy_seconds_per_pair": float(f"{spp_np:.4g}"),
                     "compiled_seconds_per_pair": float(f"{spp_c:.4g}"),
                     "speedup": round(spp_np / spp_c, 2),
                     "cost_model_over_measured": round(model / t_np, 2)})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--quick", action="store_true",
                    help="commands and first kernel only (no dry-run accuracy, no speed-ups)")
    ap.add_argument("--cold-compile", action="store_true",
                    help="also time the first kernel forced to --engine compiled (15-60 s)")
    ap.add_argument("-o", "--output", help="write the JSON here (default: stdout)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    result = {"benchmark": "startup", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "machine": machine(), "uptime_before": uptime(), "rounds": args.rounds,
              "bytecode_written": not sys.flags.dont_write_bytecode}
    result["commands"] = commands_vs_numpy(args.rounds, str(MLP5))
    result["first_kernel"] = first_kernel(max(3, args.rounds // 2), 100)
    if args.cold_compile:
        result["first_kernel_compiled"] = first_kernel(1, 100, engine="compiled")
    if not args.quick:
        result["dry_run"] = dry_run_accuracy(DRY_CASES)
        result["speedups"] = speedups(RATIO_CASES)
    result["uptime_after"] = uptime()
    text = json.dumps(result, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
