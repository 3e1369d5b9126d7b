"""Scale benchmark: a big tiled kernel into a memmap (peak memory vs output size), the
``--dry-run`` estimate vs the measured time, and 1 vs 2 Dask workers on the digits.

    PYTHONPATH=. python benchmarks/bench_scale.py                    # n = 20000 (3.2 GB), ~10 min
    PYTHONPATH=. python benchmarks/bench_scale.py --n 5000 --skip-dask
    PYTHONPATH=. python benchmarks/bench_scale.py --skip-memmap --dask-spec spec/SOME.toml
    PYTHONPATH=. python benchmarks/bench_scale.py --skip-memmap --dask-n 200 --dask-tile 64

Every measured run is a separate ``ntksym kernel`` process (what a user runs), so its peak
memory is that process's RSS high-water mark (``os.wait4`` rusage, which counts the output
memmap's resident pages too) and its time includes start-up.  Data for the MLP run: n standard
Gaussian vectors of dimension 64 (the digits have only 1797 examples).

The Dask part uses the first ``spec/cntk_gap*digits*.toml`` (the CNTK-GAP for 8x8 digits) when
one exists, else the ReLU MLP, on all 1797 digits; ``--dask-spec`` chooses another.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MLP_SPEC = ROOT / "spec" / "cntk_mlp_depth5.toml"


def run_cli(args, env=None):
    """Run ``cli.py kernel ARGS``; return (wall seconds, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, str(ROOT / "cli.py"), "kernel", *map(str, args)],
                       cwd=ROOT, capture_output=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"ntksym kernel {' '.join(map(str, args))} failed:\n{p.stderr.decode()}")
    return time.perf_counter() - t0, p.stdout.decode()


def run_cli_rss(args, env=None):
    """Run ``cli.py kernel ARGS``; return (wall seconds, the child's own peak RSS in bytes,
    stdout).  posix_spawn + wait4: the rusage is that one process's, not all children's."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        pid = os.posix_spawn(sys.executable, [sys.executable, str(ROOT / "cli.py"), "kernel",
                                              *map(str, args)],
                             env or os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, fo.fileno(), 1),
                                           (os.POSIX_SPAWN_DUP2, fe.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - t0
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read().decode(), fe.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ntksym kernel {' '.join(map(str, args))} failed:\n{err}")
    return seconds, usage.ru_maxrss * 1024, out


def bench_memmap(n, tile, workdir, d=64):
    X = np.random.default_rng(0).normal(size=(n, d))
    xpath = Path(workdir) / f"X_{n}.npy"
    np.save(xpath, X)
    del X
    out = Path(workdir) / f"K_{n}.npy"
    _, _, dry = run_cli_rss([MLP_SPEC, "--x", xpath, "--tile", tile, "--dry-run", "--json"])
    dry = json.loads(dry)
    seconds, rss, _ = run_cli_rss([MLP_SPEC, "--x", xpath, "--tile", tile, "-o", out, "--force",
                                   "--quiet", "--json"])
    out_bytes = out.stat().st_size
    K = np.load(out, mmap_mode="r")
    # spot check: the exact diagonal of this spec is (L + 1) |x|^2 with L = 5
    X = np.load(xpath)
    idx = np.random.default_rng(1).choice(n, 5, replace=False)
    diag_err = float(np.max(np.abs(K[idx, idx] - 6 * np.einsum("ij,ij->i", X[idx], X[idx]))
                            / (6 * np.einsum("ij,ij->i", X[idx], X[idx]))))
    sym_err = float(np.max(np.abs(K[idx[0], :] - K[:, idx[0]])))
    res = {"benchmark": "memmap", "spec": MLP_SPEC.name, "n": n, "tile": tile,
           "output_bytes": out_bytes, "peak_rss_bytes": rss,
           "peak_rss_over_output": round(rss / out_bytes, 3),
           "dry_run_estimated_seconds": dry["estimated_seconds"],
           "dry_run_peak_rss_estimate_bytes": dry["peak_rss_estimate_bytes"],
           "measured_seconds": round(seconds, 1),
           "estimate_over_measured": round(dry["estimated_seconds"] / seconds, 3),
           "diag_rel_err": diag_err, "symmetry_err": sym_err}
    del K
    out.unlink()
    Path(str(out) + ".manifest.json").unlink()
    xpath.unlink()
    return res


def bench_dask(spec, workdir, workers=(1, 2), tile=None, n=None, local=True, emit=print):
    """The same kernel on the digits with 1 and 2 local Dask workers (processes), and threaded
    in one process (``local``).  For every case: that case's own ``--dry-run`` estimate (run
    with the same options, so a ``--workers`` dry run starts its LocalCluster and its estimate
    covers process start-up, cluster start-up, kernel load, the tiles and the mirror), the
    measured wall time of the command doing the run, and their ratio.  ``emit`` gets each
    case's dict as soon as it is measured (a long benchmark interrupted keeps what it had)."""
    import ntksym
    from ntksym.data import load_dataset
    arch = ntksym.load_spec(spec)
    X = load_dataset("digits").X
    if len(arch.input_shape) == 3 and X.ndim == 2:
        X = X.reshape(-1, *arch.input_shape)
    if n:
        X = X[:n]
    xpath = Path(workdir) / "digits.npy"
    np.save(xpath, X)
    tile = tile or 128
    res = {"benchmark": "dask", "spec": Path(spec).name, "n": int(X.shape[0]), "tile": tile,
           "cases": []}
    outputs = {}
    cases = [("dask", w) for w in workers] + ([("threaded", None)] if local else [])
    for backend, w in cases:
        opts = ["--workers", w] if w else []
        _, dry = run_cli([spec, "--x", xpath, "--tile", tile, *opts, "--dry-run", "--json"])
        est = json.loads(dry)["estimated_seconds"]
        out = Path(workdir) / f"K_{backend}_{w or 0}.npy"
        seconds, summary = run_cli([spec, "--x", xpath, "--tile", tile, *opts, "-o", out,
                                    "--force", "--quiet", "--json"])
        case = {"backend": backend, "workers": w, "dry_run_estimated_seconds": est,
                "measured_seconds": round(seconds, 1),
                "tile_seconds": json.loads(summary)["seconds"],
                "estimate_over_measured": round(est / seconds, 3)}
        res["cases"].append(case)
        outputs[(backend, w)] = out
        emit({"benchmark": "dask-case", "spec": res["spec"], "n": res["n"], "tile": tile,
              **case})
    ref = np.load(outputs[cases[0]])
    res["results_equal"] = all(np.array_equal(ref, np.load(p)) for p in outputs.values())
    secs = {c["workers"]: c["tile_seconds"] for c in res["cases"] if c["backend"] == "dask"}
    w0, w1 = workers[0], workers[-1]
    res["speedup_tile_seconds"] = round(secs[w0] / secs[w1], 3)
    wall = {c["workers"]: c["measured_seconds"] for c in res["cases"] if c["backend"] == "dask"}
    res["speedup_wall"] = round(wall[w0] / wall[w1], 3)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--tile", type=int, default=2048)
    ap.add_argument("--workdir", default=None, help="where the big output goes (default: tmp)")
    ap.add_argument("--skip-memmap", action="store_true")
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--dask-spec", default=None, help="spec for the 1-vs-2-worker run")
    ap.add_argument("--dask-tile", type=int, default=128, help="tile of the digits runs")
    ap.add_argument("--dask-n", type=int, default=None, help="first N digits (default: all)")
    ap.add_argument("--skip-local", action="store_true",
                    help="digits: only the Dask cases, not the threaded one")
    args = ap.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="ntksym_bench_")
    results = []
    if not args.skip_memmap:
        results.append(bench_memmap(args.n, args.tile, workdir))
        print(json.dumps(results[-1]), flush=True)
    if not args.skip_dask:
        gap = sorted(glob.glob(str(ROOT / "spec" / "cntk_gap*digits*.toml")))
        spec = args.dask_spec or (gap[0] if gap else str(MLP_SPEC))
        results.append(bench_dask(spec, workdir, tile=args.dask_tile, n=args.dask_n,
                                  local=not args.skip_local,
                                  emit=lambda d: print(json.dumps(d), flush=True)))
        print(json.dumps(results[-1]), flush=True)


if __name__ == "__main__":
    main()
