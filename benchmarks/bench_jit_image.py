"""Cold Numba compile time of image (CNN) programs as a function of depth.

For each (variant, depth) a fresh process with an empty ``NTKSYM_CACHE_DIR`` (so that neither
ntksym's source cache nor Numba's ``cache=True`` files exist) builds
``ntksym.apps.reproduce.arora.digits_arch(variant, depth)`` (8x8x1 digits), derives the program,
generates its source and times the first ``ntksym.kernel(arch, X[:4])`` (the JIT of every
function the module needs, plus a negligible 4-image kernel), then a second call (warm).

    python benchmarks/bench_jit_image.py [--variants CNTK-GAP,CNTK-V] [--depths 3,6,11,21]
                                         [-o results.json]

Reported per case (JSON lines, then a summary): derive and codegen seconds (sympy), first-call
wall and CPU seconds (process_time of the whole process: the JIT is single-threaded, so CPU is
the steadier figure on a shared machine), warm wall seconds, the generated source's line count
and number of ``@njit`` functions, and the load average at the start.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, sys, time
import numpy as np
t0 = time.perf_counter()
import ntksym
from ntksym.codegen.image import generate_image_source
from ntksym.apps.reproduce.arora import digits_arch
from sklearn.datasets import load_digits
variant, depth = sys.argv[1], int(sys.argv[2])
X = load_digits().images[:4, :, :, None] / 16.0
arch = digits_arch(variant, depth)
t1 = time.perf_counter()
program = arch.derive()
t2 = time.perf_counter()
src = generate_image_source(program)
t3 = time.perf_counter()
c0, w0 = time.process_time(), time.perf_counter()
ntksym.kernel(arch, X, progress=False)
c1, w1 = time.process_time(), time.perf_counter()
ntksym.kernel(arch, X, progress=False)
w2 = time.perf_counter()
print(json.dumps({"variant": variant, "depth": depth, "import_s": round(t1 - t0, 2),
                  "derive_s": round(t2 - t1, 2), "codegen_s": round(t3 - t2, 2),
                  "first_call_wall_s": round(w1 - w0, 2), "first_call_cpu_s": round(c1 - c0, 2),
                  "warm_wall_s": round(w2 - w1, 4), "source_lines": src.count("\n"),
                  "njit_functions": src.count("@njit")}))
"""


def run_case(variant, depth):
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NTKSYM_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        r = subprocess.run([sys.executable, "-c", _CHILD, variant, str(depth)], env=env,
                           capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="CNTK-GAP")
    ap.add_argument("--depths", default="3,6,11,21")
    ap.add_argument("-o", "--output")
    args = ap.parse_args()
    rows = []
    for variant in args.variants.split(","):
        for depth in (int(d) for d in args.depths.split(",")):
            load = os.getloadavg()[0]
            row = run_case(variant, depth)
            row["loadavg_start"] = load
            rows.append(row)
            print(json.dumps(row), flush=True)
    total = {"sum_first_call_wall_s": round(sum(r["first_call_wall_s"] for r in rows), 1),
             "sum_first_call_cpu_s": round(sum(r["first_call_cpu_s"] for r in rows), 1)}
    print(json.dumps(total))
    if args.output:
        Path(args.output).write_text(json.dumps({"cases": rows, **total}, indent=1))


if __name__ == "__main__":
    main()
