"""The benchmark table of issue 16: ntksym against neural-tangents (jit), side by side.

One entry point for the whole table.  Each case runs ntksym in a worker process of this Python
and, when a neural-tangents environment is given (``--nt-python`` or the environment variable
``NTKSYM_NT_PYTHON``; neural-tangents 0.6.5, jax 0.4.26), neural-tangents in a worker process of
that Python, as its documentation recommends: float64 (``jax_enable_x64``),
``jax.jit(kernel_fn, static_argnames="get")``, and ``nt.batch(kernel_fn, batch_size=2)`` (which
jits internally) for the 32x32x3 CNTK.  The inputs are generated once here and saved as .npy
files that both workers load.  Before timing, both workers evaluate the NTK on the first few
inputs and the run stops (exit 1) unless the two agree to 1e-10 relative to the largest entry:
the ntksym spec and the stax network are the same network.  Each worker then makes one call
that is not timed (compilation, jit tracing, disk caches), and the timed calls alternate
between the two processes round by round (ntksym first in odd rounds, neural-tangents first in
even rounds), each after a pause of ``--settle`` seconds where two processes alternate (0.3:
the previous call's idle threads, OpenBLAS's or XLA's, spin for up to 0.1 s and would otherwise
share the two cores with the next call of the other tool); reported: the median over
``--rounds`` rounds, min and max, wall clock (time.perf_counter) and the worker's CPU time
(time.process_time, all threads).

Cases (``--cases``, comma-separated; default all):

* ``mlp-relu``: ReLU MLP NTK, 5 hidden layers (spec/cntk_mlp_depth5.toml), n = 4000, d = 784,
  unit-norm rows, and the BLAS Gram matrix ``X @ X.T`` of the same inputs in the same ntksym
  process, alternating with the kernel (the ratio kernel / Gram);
* ``mlp-erf``: erf MLP with bias (spec/erf_mlp_bias.toml with 3 hidden layers), n = 3000,
  d = 100;
* ``cntk-digits``: CNTK-GAP depth 4 (spec/cntk_gap_depth4.toml, every layer trained) on the
  first 50 scikit-learn digits as 8x8x1 images;
* ``cntk-cifar``: the same on 10 random 32x32x3 images (neural-tangents ``nt.batch(2)``), with
  the CPU time per pair and its fraction of the machine's FMA peak (see :func:`fma_peak` and
  :func:`flops_per_pair` for how both are estimated);
* ``activations``: tanh / swish / GELU-as-expression MLP NTK (3 hidden layers, n = 2000,
  d = 64; benchmarks/bench_activations.py's specs) against the ReLU MLP of the same shape, in
  one process, alternating, ``--activation-rounds`` rounds (at least 15: calls of 20-80 ms);
  ntksym only.  ReLU and these three always run on all n inputs;
  another activation whose full-size call would take longer than ``--activation-budget``
  seconds is timed on fewer inputs and compared per pair (reported as such);
* ``startup``: ``ntksym --help``, ``ntksym check SPEC`` against ``python -c "import numpy"``,
  and the first ``ntksym kernel`` of a new depth-5 MLP spec on 100 inputs with empty ntksym and
  Numba caches (benchmarks/bench_startup.py, medians).

Output: ``--out DIR`` receives results.json and table.md (the markdown table with the machine,
date, load average before and after, versions); ``--update-docs`` also replaces the block
between ``<!-- benchmarks:begin -->`` and ``<!-- benchmarks:end -->`` in docs/benchmarks.md
(``--docs`` names another file) and the same block of README.md with a short table of the
neural-tangents cases (``--readme``).  ``--quick``: tiny sizes, a smoke test of the machinery.

    NTKSYM_NT_PYTHON=/path/to/nt-env/bin/python \\
        python benchmarks/run_benchmarks.py [--cases mlp-relu,cntk-digits] [--rounds 5]
                                            [--quick] [--out DIR] [--update-docs]

Only the standard library and NumPy are imported at module level: the neural-tangents worker
runs this file under the other environment's Python.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"
AGREEMENT_RTOL = 1e-10
DIAGONAL_RTOL = 1e-7           # neural-tangents' arccos near correlation 1: see check_agreement
CHECK_N = 4                    # inputs of the agreement check (the first rows of the case's)

# -------------------------------------------------------------------------------- the cases

FULL = {
    "mlp-relu": {"n": 4000, "d": 784, "L": 5},
    "mlp-erf": {"n": 3000, "d": 100, "L": 3, "weight_var": 1.5, "bias_var": 0.1},
    "cntk-digits": {"n": 50, "shape": [8, 8, 1]},
    "cntk-cifar": {"n": 10, "shape": [32, 32, 3], "batch_size": 2},
    "activations": {"n": 2000, "d": 64, "L": 3},
    "startup": {"n": 100},
}
QUICK = {
    "mlp-relu": {"n": 60, "d": 32, "L": 5},
    "mlp-erf": {"n": 60, "d": 10, "L": 3, "weight_var": 1.5, "bias_var": 0.1},
    "cntk-digits": {"n": 5, "shape": [8, 8, 1]},
    "cntk-cifar": {"n": 4, "shape": [8, 8, 3], "batch_size": 2},
    "activations": {"n": 40, "d": 8, "L": 3},
    "startup": {"n": 20},
}
LABELS = {
    "mlp-relu": "ReLU MLP NTK, L = {L}, n = {n}, d = {d}",
    "mlp-erf": "erf MLP with bias, L = {L}, n = {n}, d = {d}",
    "cntk-digits": "CNTK-GAP depth 4, {n} digits {shape[0]}x{shape[1]}x{shape[2]}",
    "cntk-cifar": "CNTK-GAP depth 4, {n} images {shape[0]}x{shape[1]}x{shape[2]} "
                  "(neural-tangents `nt.batch({batch_size})`)",
    "activations": "MLP NTK, L = {L}, n = {n}, d = {d}",
    "startup": "start-up",
}
NT_CASES = ("mlp-relu", "mlp-erf", "cntk-digits", "cntk-cifar")
#: the issue's activations (bench_activations.py's names) and the closed-form GELU beside them
ACTIVATION_NAMES = ("relu", "tanh", "swish", "gelu_expr", "gelu_closed")
GOAL_ACTIVATIONS = ("tanh", "swish", "gelu_expr")
#: inputs of the probe calls that estimate a non-goal activation's full-size time
PROBE_N = 200


def make_inputs(case, p, folder):
    """Generate the case's inputs once (seeded) and save them as X.npy in ``folder``."""
    rng = np.random.default_rng(0)
    if case == "mlp-relu":
        X = rng.standard_normal((p["n"], p["d"]))
        X /= np.linalg.norm(X, axis=1, keepdims=True)
    elif case in ("mlp-erf", "activations"):
        X = rng.standard_normal((p["n"], p["d"]))
    elif case == "cntk-digits":
        from ntksym.data import load_dataset
        X = np.asarray(load_dataset(f"digits-images:{p['n']}").X, dtype=np.float64)
    elif case == "cntk-cifar":
        X = rng.standard_normal((p["n"], *p["shape"]))
    else:
        raise ValueError(case)
    path = Path(folder) / f"{case}-X.npy"
    np.save(path, X)
    np.save(Path(folder) / f"{case}-check.npy", X[:CHECK_N])
    return str(path)


# ------------------------------------------------------------------- ntksym side (worker)

def ntksym_arch(case, p):
    """The ntksym architecture of a case, from the shipped spec files."""
    import ntksym
    sys.path.insert(0, str(HERE))
    if case == "mlp-relu":
        from bench_mlp import mlp_spec
        return ntksym.loads_spec(mlp_spec(p["d"]))
    if case == "mlp-erf":
        text = (ROOT / "spec" / "erf_mlp_bias.toml").read_text()
        assert "repeat = 2" in text and "shape = [64]" in text
        text = text.replace("repeat = 2", f"repeat = {p['L']}").replace(
            "shape = [64]", f"shape = [{p['d']}]").replace(
            'name = "erf-mlp-bias"', f'name = "erf-mlp-bias-L{p["L"]}-d{p["d"]}"')
        return ntksym.loads_spec(text)
    if case in ("cntk-digits", "cntk-cifar"):
        return ntksym.load_spec(ROOT / "spec" / "cntk_gap_depth4.toml").with_input_shape(
            p["shape"])
    raise ValueError(case)


def activation_specs(d, depth):
    """name -> spec text of benchmarks/bench_activations.py (branch duals), for the names in
    ACTIVATION_NAMES; until that file is on this branch, the same specs built here."""
    try:
        from bench_activations import ACTIVATIONS, spec
    except ImportError:          # bench_activations.py arrives with the Hermite duals
        ACTIVATIONS = {"relu": 'activation = "relu"', "tanh": 'activation = "tanh"',
                       "swish": 'activation = "swish(1.0)"',
                       "gelu_expr": "activation = 'activation(\"z*(1+erf(z/sqrt(2)))/2\")'",
                       "gelu_closed": 'activation = "gelu"'}

        def spec(name, line, d, depth):
            return (f'name = "bench-{name}"\ninput = {{ shape = [{d}] }}\n[defaults]\n'
                    'bias_var = 0.1\n' + f'[[layer]]\nkind = "dense"\n{line}\n' * depth
                    + '[[layer]]\nkind = "dense"\n')
    return {k: spec(k, ACTIVATIONS[k], d, depth) for k in ACTIVATION_NAMES if k in ACTIVATIONS}


def engine_choice(arch, n, engine="auto"):
    from ntksym.engine.common import program
    from ntksym.engine.numpy_tier import choose_engine
    c = choose_engine(arch, program(arch), n, n, True, engine=engine)
    return f"{c.engine} ({c.reason})"


def ntksym_ops(case, p, X, budget, engine="auto"):
    """(ops, info): the timed callables of the ntksym worker and what to report about them."""
    import ntksym
    sys.path.insert(0, str(HERE))
    if case == "activations":
        return activation_ops(p, X, budget, engine)
    arch = ntksym_arch(case, p)
    ops = {"kernel": lambda: ntksym.kernel(arch, X, kind="ntk", engine=engine, progress=False)}
    info = {"spec": arch.name, "engine": engine_choice(arch, len(X), engine)}
    if case == "mlp-relu":
        ops["gram"] = lambda: X @ X.T
    if case == "cntk-cifar":
        from bench_cntk import work_per_pair
        info["work_per_pair"] = work_per_pair(arch.derive())
    return ops, info


def activation_ops(p, X, budget, engine="auto"):
    """Each activation's kernel.  ReLU and the issue's activations (GOAL_ACTIVATIONS) always run
    on all n inputs: the done-when ratio is at the issue's shape.  Another one whose full-size
    call would exceed ``budget`` seconds gets fewer inputs, n_used, and is compared per pair;
    the estimate times two compiled calls (PROBE_N / 2 and PROBE_N inputs) and scales the
    per-example part (the diagonal pass, linear in n) and the per-pair part separately (a
    per-pair rate from a few inputs alone counts the diagonal pass as pair work: it shrank
    n = 2000 to ~780)."""
    import ntksym
    ops, info = {}, {}
    n = len(X)
    for name, text in activation_specs(p["d"], p["L"]).items():
        arch = ntksym.loads_spec(text)
        n_used = n
        if name != "relu" and name not in GOAL_ACTIVATIONS:
            t = {}
            m2 = min(n, PROBE_N)
            for m in (max(1, m2 // 2), m2):
                probe = X[:m]
                ntksym.kernel(arch, probe, engine="compiled", progress=False)  # compile
                t0 = time.perf_counter()
                ntksym.kernel(arch, probe, engine="compiled", progress=False)
                t[m] = time.perf_counter() - t0
            m1 = max(1, m2 // 2)
            t1, t2 = t[m1], t[m2]
            pairs = {m: m * (m + 1) / 2 for m in (m1, m2, n)}
            per_pair = max((t2 - t1) / max(pairs[m2] - pairs[m1], 1.0), 0.0)
            per_example = max(t1 - per_pair * pairs[m1], 0.0) / max(m1, 1)
            if per_pair * pairs[n] + per_example * n > budget and per_pair > 0.0:
                n_used = max(m2, int((2 * budget / 4 / per_pair) ** 0.5))
        Xa = X[:n_used]
        eng = engine if n_used == n else "compiled"
        ops[name] = (lambda arch=arch, Xa=Xa, eng=eng:
                     ntksym.kernel(arch, Xa, engine=eng, progress=False))
        info[name] = {"spec": arch.name, "n_used": n_used,
                      "engine": engine_choice(arch, n_used, engine) if n_used == n
                      else "compiled (asked: n reduced)"}
    return ops, {"activations": info}


def ntksym_check(case, p, Xc, engine="auto"):
    """The NTK on the check inputs, by the engine the timed calls use at the case's size."""
    import ntksym
    from ntksym.engine.common import program
    from ntksym.engine.numpy_tier import choose_engine
    arch = ntksym_arch(case, p)
    engine = choose_engine(arch, program(arch), p["n"], p["n"], True, engine=engine).engine
    return np.asarray(ntksym.kernel(arch, Xc, kind="ntk", engine=engine, progress=False),
                      dtype=np.float64)


def ntksym_versions():
    import numba
    import sympy

    import ntksym
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return {"ntksym": f"{ntksym.__version__} ({rev}{', modified' if dirty else ''})",
            "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "sympy": sympy.__version__,
            "numba_threads": numba.get_num_threads()}


# -------------------------------------------------------------- neural-tangents side (worker)

def nt_network(case, p, stax):
    """The stax network equal to the case's ntksym spec (checked before timing): its
    ``W_std**2`` is ntksym's weight_var (times fan_in where the spec says normalize = false),
    ``b_std**2`` its bias_var, parameterization 'ntk', width irrelevant (infinite limit)."""
    def dense(w, b=0.0, width=512):
        return stax.Dense(width, W_std=np.sqrt(w), b_std=np.sqrt(b) if b else None,
                          parameterization="ntk")
    if case == "mlp-relu":                     # first layer unnormalized: weight_var 1 x d
        layers = [dense(p["d"]), stax.Relu()]
        layers += [dense(2.0), stax.Relu()] * (p["L"] - 1)
        layers += [dense(2.0, width=1)]
    elif case == "mlp-erf":
        w, b = p["weight_var"], p["bias_var"]
        layers = [dense(w, b), stax.Erf()] * p["L"] + [dense(w, b, width=1)]
    elif case in ("cntk-digits", "cntk-cifar"):
        C = p["shape"][2]

        def conv(w):
            return stax.Conv(512, (3, 3), padding="SAME", W_std=np.sqrt(w), b_std=None,
                             parameterization="ntk")
        layers = [conv(C * 9.0), stax.Relu(), conv(2.0), stax.Relu(), conv(2.0), stax.Relu(),
                  stax.GlobalAvgPool(), dense(2.0 / 9, width=1)]
    else:
        raise ValueError(case)
    return stax.serial(*layers)[2]


def nt_setup(case, p):
    """The kernel function as neural-tangents' documentation recommends."""
    import jax
    jax.config.update("jax_enable_x64", True)
    import neural_tangents as nt
    from neural_tangents import stax
    kernel_fn = nt_network(case, p, stax)
    if p.get("batch_size"):
        # nt.batch jits internally; its docs advise against jitting the batched function
        fn = nt.batch(kernel_fn, batch_size=p["batch_size"])
        how = f"nt.batch(kernel_fn, batch_size={p['batch_size']})"
    else:
        fn = jax.jit(kernel_fn, static_argnames="get")
        how = 'jax.jit(kernel_fn, static_argnames="get")'
    return fn, {"call": how, "x64": bool(jax.config.jax_enable_x64)}


def nt_versions():
    import jax
    import jaxlib
    import neural_tangents as nt
    return {"neural_tangents": nt.__version__, "jax": jax.__version__,
            "jaxlib": jaxlib.__version__, "python": platform.python_version(),
            "numpy": np.__version__, "jax_devices": [str(d) for d in jax.devices()]}


# ---------------------------------------------------------------------------- the worker loop

def worker(side):
    """Answer JSON commands, one per stdin line, with one '@@ '-prefixed JSON line each."""
    ops, X = {}, None

    def reply(obj):
        sys.stdout.write("@@ " + json.dumps(obj) + "\n")
        sys.stdout.flush()

    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg["cmd"]
        try:
            if cmd == "setup":
                case, p = msg["case"], msg["params"]
                X = np.load(msg["x"]) if msg.get("x") else None
                if side == "ntksym":
                    ops, info = ntksym_ops(case, p, X, msg.get("budget", 60.0),
                                           msg.get("engine", "auto"))
                    info["versions"] = ntksym_versions()
                else:
                    fn, info = nt_setup(case, p)
                    ops = {"kernel": lambda fn=fn: np.asarray(fn(X, None, get="ntk"))}
                    info["versions"] = nt_versions()
                reply({"ok": True, "ops": list(ops), **info})
            elif cmd == "check":
                Xc = np.load(msg["x"])
                if side == "ntksym":
                    K = ntksym_check(msg["case"], msg["params"], Xc, msg.get("engine", "auto"))
                else:
                    fn, _ = nt_setup(msg["case"], msg["params"])
                    K = np.asarray(fn(Xc, None, get="ntk"), dtype=np.float64)
                np.save(msg["out"], K)
                reply({"ok": True})
            elif cmd == "time":
                t, c = time.perf_counter(), time.process_time()
                out = ops[msg["op"]]()
                out = np.asarray(out)      # neural-tangents: wait for the device result
                wall, cpu = time.perf_counter() - t, time.process_time() - c
                reply({"ok": True, "wall_s": wall, "cpu_s": cpu, "shape": list(out.shape),
                       "checksum": float(np.sum(out, dtype=np.float64))})
                del out
            elif cmd == "quit":
                reply({"ok": True})
                return
        except Exception as e:          # noqa: BLE001 - reported to the driver, which stops
            import traceback
            reply({"ok": False, "error": f"{type(e).__name__}: {e}",
                   "traceback": traceback.format_exc()})


class Worker:
    """A worker process (this file with --worker SIDE) under ``python``."""

    def __init__(self, side, python, log_dir):
        self.side = side
        self.log = open(Path(log_dir) / f"{side}-{time.time_ns()}.log", "w+")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(ROOT)] + ([os.environ["PYTHONPATH"]] if side == "ntksym"
                           and os.environ.get("PYTHONPATH") else [])))
        if side == "nt":                # keep the project's paths out of the other Python
            env["PYTHONPATH"] = ""
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        me = str(Path(__file__).resolve())
        # the ntksym worker imports ntksym before numpy, as the CLI does, so that OpenBLAS's
        # idle threads spin less (ntksym/__init__.py: OPENBLAS_THREAD_TIMEOUT)
        cmd = ([python, "-c", "import ntksym, runpy, sys; sys.argv = [sys.argv[1], '--worker', "
                "'ntksym']; runpy.run_path(sys.argv[0], run_name='__main__')", me]
               if side == "ntksym" else [python, me, "--worker", side])
        self.proc = subprocess.Popen(cmd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, cwd=ROOT, env=env)

    def __call__(self, **msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith("@@ "):
                r = json.loads(line[3:])
                if not r.get("ok"):
                    raise SystemExit(f"{self.side} worker, {msg['cmd']}: {r.get('error')}\n"
                                     f"{r.get('traceback', '')}")
                return r
        self.log.seek(0)
        raise SystemExit(f"{self.side} worker died during {msg['cmd']}:\n"
                         + self.log.read()[-3000:])

    def close(self):
        try:
            self(cmd="quit")
        except SystemExit:
            pass
        self.proc.wait(timeout=60)
        self.log.close()


# --------------------------------------------------------------------------- the driver side

def summary(times):
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "runs_s": [round(t, 4) for t in times]}


def check_agreement(case, p, workers, folder, engine="auto"):
    """Both workers' NTK on the first CHECK_N inputs; exit 1 unless the off-diagonal entries
    agree to AGREEMENT_RTOL relative to the largest entry, and the diagonal to DIAGONAL_RTOL:
    neural-tangents computes the diagonal through arccos of a correlation rounded just below 1,
    which costs it about sqrt(machine epsilon) = 1.5e-8 there (ntksym uses the exact diagonal
    rule), so a tighter diagonal test would fail on neural-tangents' rounding, not on a
    different network.  Returns the two relative errors."""
    x = str(Path(folder) / f"{case}-check.npy")
    K = {}
    for side, w in workers.items():
        out = str(Path(folder) / f"{case}-check-{side}.npy")
        w(cmd="check", case=case, params=p, x=x, out=out, engine=engine)
        K[side] = np.load(out)
    scale = np.abs(K["nt"]).max()
    diff = np.abs(K["ntksym"] - K["nt"]) / scale
    off = float((diff - np.diag(np.diag(diff))).max())
    diag = float(np.diag(diff).max())
    if not (off <= AGREEMENT_RTOL and diag <= DIAGONAL_RTOL):
        sys.exit(f"{case}: ntksym and neural-tangents disagree on {CHECK_N} inputs: "
                 f"max |dK| / max |K| = {off:.3e} off the diagonal (limit {AGREEMENT_RTOL:g}), "
                 f"{diag:.3e} on it (limit {DIAGONAL_RTOL:g}): the spec and the stax network "
                 f"are not the same network\nntksym:\n{K['ntksym']}\nnt:\n{K['nt']}")
    return {"off_diagonal": off, "diagonal": diag}


def run_pair_case(case, p, args, folder):
    """Time a case: ntksym (and neural-tangents) workers, alternating round by round."""
    x = make_inputs(case, p, folder)
    sides = {"ntksym": sys.executable}
    if args.nt_python and case in NT_CASES:
        sides["nt"] = args.nt_python
    load_before = os.getloadavg()
    workers = {s: Worker(s, py, folder) for s, py in sides.items()}
    try:
        info = {s: w(cmd="setup", case=case, params=p, x=x, budget=args.activation_budget,
                     engine=args.engine) for s, w in workers.items()}
        agreement = (check_agreement(case, p, workers, folder, args.engine)
                     if "nt" in workers else None)
        ops = [(s, op) for s, w in workers.items() for op in info[s]["ops"]]
        first = {}
        for s, op in ops:                            # not timed: compilation, caches, tracing
            first[f"{s}:{op}"] = workers[s](cmd="time", op=op)["wall_s"]
        walls = {f"{s}:{op}": [] for s, op in ops}
        cpus = {f"{s}:{op}": [] for s, op in ops}
        rounds = {"cntk-cifar": args.cifar_rounds,
                  "activations": args.activation_rounds}.get(case, args.rounds)
        for r in range(rounds):
            for s, op in (ops if r % 2 == 0 else ops[::-1]):
                # each timed call starts on a quiet machine: the other process's idle threads
                # (OpenBLAS spins 0.1 s after a call by default, XLA's pool too) have slept.
                # One process alone (the activations case) needs no pause: ntksym's threads
                # sleep after 1 ms, and a pause lets the clock drop before a 20 ms call
                if len(workers) > 1:
                    time.sleep(args.settle)
                t = workers[s](cmd="time", op=op)
                walls[f"{s}:{op}"].append(t["wall_s"])
                cpus[f"{s}:{op}"].append(t["cpu_s"])
            print(f"  {case} round {r + 1}/{rounds}: " + ", ".join(
                f"{k} {v[-1]:.3f} s" for k, v in walls.items()), flush=True)
    finally:
        for w in workers.values():
            w.close()
    out = {"case": case, "params": p, "label": LABELS[case].format(**p), "rounds": rounds,
           "load_before": load_before, "load_after": os.getloadavg(),
           "agreement_rel": agreement, "setup": info, "first_call_s": first,
           "wall": {k: summary(v) for k, v in walls.items()},
           "cpu": {k: summary(v) for k, v in cpus.items()}}
    return out


def run_startup(p, args):
    sys.path.insert(0, str(HERE))
    import bench_startup
    load_before = os.getloadavg()
    commands = bench_startup.commands_vs_numpy(args.rounds, str(bench_startup.MLP5))
    first = bench_startup.first_kernel(max(3, args.rounds // 2 + 1), p["n"])
    return {"case": "startup", "params": p, "label": LABELS["startup"], "rounds": args.rounds,
            "load_before": load_before, "load_after": os.getloadavg(),
            "commands": commands, "first_kernel": first}


# -------------------------------------------------------------------------- machine and peak

def machine():
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "mhz": None, "flags": []}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = line.partition(":")
            key, val = key.strip(), val.strip()
            if key == "model name" and info["cpu"] in ("", platform.machine()):
                info["cpu"] = val
            elif key == "cpu MHz" and info["mhz"] is None:
                info["mhz"] = float(val)
            elif key == "flags" and not info["flags"]:
                info["flags"] = [f for f in ("avx", "avx2", "fma", "avx512f") if f in val.split()]
    except OSError:
        pass
    info["platform"] = platform.platform()
    return info


def fma_peak(m):
    """Double-precision FMA peak per core and for the machine (flop/s), with its assumptions:
    GHz = /proc/cpuinfo's 'cpu MHz' (the nominal clock a VM reports; boost not counted),
    SIMD width 8 doubles with avx512f, 4 with avx2 (or avx), else 2 (SSE2); 2 FMA units per
    core (Zen 2/3/4, Skylake and later; one FMA = 2 flops)."""
    ghz = (m["mhz"] or 0) / 1000
    simd = 8 if "avx512f" in m["flags"] else 4 if {"avx2", "avx"} & set(m["flags"]) else 2
    fma_units = 2
    per_core = ghz * 1e9 * fma_units * 2 * simd
    return {"ghz": ghz, "simd_doubles": simd, "fma_per_cycle": fma_units,
            "per_core_gflops": per_core / 1e9, "machine_gflops": per_core * m["cores"] / 1e9,
            "formula": f"{m['cores']} cores x {ghz:.3f} GHz x {fma_units} FMA/cycle x 2 flops "
                       f"x {simd} doubles"}


def acos_flops():
    """Flops of the vectorized acos of generated image loops (ntksym/codegen/fastmath.py): a
    Horner chain of ACOS_NODES - 1 FMAs (2 flops each) plus abs, 2a - 1, 1 - a, the product
    with the square root and the reflection: 2 (ACOS_NODES - 1) + 6; its sqrt counts 1."""
    from ntksym.codegen.fastmath import ACOS_NODES
    return 2 * (ACOS_NODES - 1) + 6


def flops_per_pair(work):
    """Flops per image pair: benchmarks/bench_cntk.py's work_per_pair counts the arithmetic
    of every step of the derived program times the pixel-pair entries the slice schedule
    visits (input Gram products, patch sums, cross expressions); its transcendental calls are
    added here at acos_flops() per acos and 1 per sqrt (other calls: 1)."""
    fl = work["flops"]
    trans = work.get("transcendental", {})
    extra = sum(c * (acos_flops() if name == "acos" else 1) for name, c in trans.items())
    return {"arithmetic": fl, "with_transcendentals": fl + extra, "transcendental_calls": trans}


def cifar_derived(res, peak):
    """Per-pair CPU time, its flop rate and fraction of the FMA peak (per core: CPU time is
    summed over threads)."""
    n = res["params"]["n"]
    pairs = n * (n + 1) // 2
    work = res["setup"]["ntksym"]["work_per_pair"]
    fl = flops_per_pair(work)
    out = {"pairs": pairs, "flops_per_pair": fl}
    for side in ("ntksym", "nt"):
        key = f"{side}:kernel"
        if key not in res["cpu"]:
            continue
        cpu_pair = res["cpu"][key]["median_s"] / pairs
        rate = fl["with_transcendentals"] / cpu_pair
        out[side] = {"cpu_s_per_pair": cpu_pair, "gflops_per_cpu_s": rate / 1e9,
                     "fraction_of_core_peak": rate / (peak["per_core_gflops"] * 1e9)}
    return out


# ------------------------------------------------------------------------------ goals, table

def ratio(res, a, b):
    w = res["wall"]
    return w[a]["median_s"] / w[b]["median_s"] if a in w and b in w else None


def goals(results):
    """The issue's done-when numbers, evaluated on these measurements: (goal, value, met)."""
    out = []
    r = results.get("mlp-relu")
    if r:
        out.append(("ReLU MLP: kernel <= 1.5x the BLAS Gram (same process)",
                    ratio(r, "ntksym:kernel", "ntksym:gram"), lambda v: v <= 1.5, "x"))
        out.append(("ReLU MLP: >= 5x neural-tangents (jit)", ratio(r, "nt:kernel",
                                                               "ntksym:kernel"),
                    lambda v: v >= 5, "x faster"))
    r = results.get("mlp-erf")
    if r:
        out.append(("erf MLP: >= 5x neural-tangents (jit)", ratio(r, "nt:kernel",
                                                              "ntksym:kernel"),
                    lambda v: v >= 5, "x faster"))
    r = results.get("cntk-digits")
    if r:
        out.append((f"CNTK-GAP 8x8x1: >= 10x neural-tangents (median of {r['rounds']})",
                    ratio(r, "nt:kernel", "ntksym:kernel"), lambda v: v >= 10, "x faster"))
    r = results.get("activations")
    if r:
        for name in GOAL_ACTIVATIONS:
            v = r.get("per_pair_ratio", {}).get(name)
            out.append((f"{name} MLP: <= 3x the ReLU MLP", v, lambda v: v <= 3, "x"))
    r = results.get("startup")
    if r:
        c = r["commands"]
        for k in ("ntksym --help", "ntksym check"):
            out.append((f"`{k}` <= 1.5x `python -c 'import numpy'`",
                        c[k]["ratio_to_numpy"], lambda v: v <= 1.5, "x"))
        out.append(("first `ntksym kernel`, new depth-5 MLP spec, 100 inputs, empty cache "
                    "<= 3 s (idle machine)", r["first_kernel"]["median_s"],
                    lambda v: v <= 3, " s"))
    return [{"goal": g, "value": v, "unit": u, "met": None if v is None else bool(f(v))}
            for g, v, f, u in out]


def fmt_s(s):
    return f"{s['median_s']:.3g} s ({s['min_s']:.3g}-{s['max_s']:.3g})"


def load_str(a, b):
    return f"{a[0]:.2f} -> {b[0]:.2f}"


def markdown(doc):
    m, v = doc["machine"], doc["versions"]
    nt = v.get("nt")
    lines = [
        f"Measured {doc['date']} by `{doc['command']}`.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores (os.cpu_count), {m['mhz']} MHz nominal, "
        f"{'/'.join(m['flags'])}; {m['platform']}. Load average (1 min) before -> after the "
        f"run: {load_str(doc['load_before'], doc['load_after'])} "
        f"(5 min: {doc['load_before'][1]:.2f} -> {doc['load_after'][1]:.2f}).",
        "",
        f"ntksym {v['ntksym']['ntksym']}, Python {v['ntksym']['python']}, NumPy "
        f"{v['ntksym']['numpy']}, Numba {v['ntksym']['numba']} "
        f"({v['ntksym']['numba_threads']} threads). "
        + (f"neural-tangents {nt['neural_tangents']}, jax {nt['jax']} (jaxlib {nt['jaxlib']}, "
           f"{', '.join(nt['jax_devices'])}), Python {nt['python']}, float64 (x64), "
           '`jax.jit(kernel_fn, static_argnames="get")`; `nt.batch` where noted.'
           if nt else "neural-tangents: not run (no NTKSYM_NT_PYTHON)."),
        "",
        "Warm calls (the first call of each process excluded), both tools alternating "
        "round by round on the same inputs, each call after a pause of "
        f"{doc.get('settle_s', 0)} s where two processes alternate (so that the other "
        "process's idle threads, which spin for up to 0.1 s, have gone to sleep); "
        "median (min-max) wall-clock seconds; the ratio is "
        "neural-tangents / ntksym (medians). The ntksym worker imports ntksym before numpy, as "
        "the CLI does (then OpenBLAS's idle threads spin for about 1 ms instead of 0.1 s after "
        "each call, docs/usage.md). ntksym engine: what `engine=" + repr(doc.get(
            "engine", "auto")) + "` chose (`auto`, the default, evaluates with NumPy without "
        "compiling when its cost model puts the call below the cost of compiling). "
        "Agreement, checked before timing: max "
        f"|K_ntksym - K_nt| / max |K| on the first {CHECK_N} inputs, off the diagonal (must be "
        f"<= {AGREEMENT_RTOL:g}) / on it (<= {DIAGONAL_RTOL:g}: neural-tangents takes arccos "
        "of a correlation rounded below 1 there, about 1.5e-8 relative; ntksym's diagonal "
        "rule is exact).",
        "",
        "| case | rounds | ntksym | ntksym engine | neural-tangents | ratio | agreement | "
        "load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    res = doc["results"]
    for case in NT_CASES:
        r = res.get(case)
        if not r:
            continue
        w = r["wall"]
        nts = fmt_s(w["nt:kernel"]) if "nt:kernel" in w else "not run"
        rt = ratio(r, "nt:kernel", "ntksym:kernel")
        a = r["agreement_rel"]
        agree = f"{a['off_diagonal']:.0e} / {a['diagonal']:.0e}" if a else "-"
        eng = r["setup"]["ntksym"].get("engine", "")
        lines.append(f"| {r['label']} | {r['rounds']} | {fmt_s(w['ntksym:kernel'])} | {eng} | "
                     f"{nts} | "
                     f"{f'{rt:.1f}x' if rt else '-'} | {agree} | "
                     f"{load_str(r['load_before'], r['load_after'])} |")
        if case == "mlp-relu":
            g = ratio(r, "ntksym:kernel", "ntksym:gram")
            lines.append(f"| BLAS Gram `X @ X.T` of the same inputs, same ntksym process | "
                         f"{r['rounds']} | {fmt_s(w['ntksym:gram'])} | NumPy (BLAS) | | "
                         f"kernel / Gram {g:.2f} | | |")
    r = res.get("cntk-cifar")
    if r and "derived" in r:
        d, pk = r["derived"], doc["peak"]
        fl = d["flops_per_pair"]
        lines += ["", f"CNTK-GAP depth 4 on {r['label'].split(', ', 1)[1]}: per pair "
                  f"(n (n + 1) / 2 = {d['pairs']} pairs, the diagonal counted as pairs), median "
                  "CPU time of the worker process (all threads):", "",
                  "| tool | CPU s per pair | GFLOP/s per CPU s | fraction of one core's FMA "
                  "peak |", "|---|---|---|---|"]
        for side, name in (("ntksym", "ntksym"), ("nt", "neural-tangents")):
            if side in d:
                s = d[side]
                lines.append(f"| {name} | {s['cpu_s_per_pair']:.4g} | "
                             f"{s['gflops_per_cpu_s']:.2f} | "
                             f"{100 * s['fraction_of_core_peak']:.1f} % |")
        lines += ["", f"Flops per pair: {fl['with_transcendentals']:.3g} = "
                  f"{fl['arithmetic']:.3g} counted from ntksym's derived program "
                  "(`bench_cntk.work_per_pair`: the arithmetic of each step times the pixel "
                  "pairs its slice schedule visits) + "
                  + ", ".join(f"{c:.3g} {k}" for k, c in fl["transcendental_calls"].items())
                  + f" calls (acos as its {acos_flops()}-flop vectorized polynomial, sqrt as "
                  "1 flop); the same count is used for neural-tangents (the work of the "
                  "mathematical kernel, not of its algorithm). Peak: "
                  f"{pk['formula']} = {pk['machine_gflops']:.1f} GFLOP/s "
                  f"({pk['per_core_gflops']:.1f} per core); assumptions: nominal clock from "
                  "/proc/cpuinfo (no boost), 2 FMA units per core, SIMD width from the CPU "
                  "flags."]
    r = res.get("activations")
    if r:
        a = r["setup"]["ntksym"]["activations"]
        lines += ["", f"Activations, ntksym only ({r['label']}, bias_var 0.1, same run, "
                  f"alternating, {r['rounds']} rounds; load "
                  f"{load_str(r['load_before'], r['load_after'])}). ReLU and "
                  f"{', '.join(GOAL_ACTIVATIONS)} run on all n inputs; another activation "
                  "whose full-size call would exceed the budget is timed on n_used inputs and "
                  "compared per pair:", "",
                  "| activation | n_used | engine | median (min-max) | s per pair | "
                  "ratio to ReLU (per pair) |", "|---|---|---|---|---|---|"]
        for name, i in a.items():
            w = r["wall"][f"ntksym:{name}"]
            lines.append(f"| {name} | {i['n_used']} | {i['engine']} | {fmt_s(w)} | "
                         f"{r['per_pair'][name]:.3g} | {r['per_pair_ratio'][name]:.3g}x |")
    r = res.get("startup")
    if r:
        lines += ["", f"Start-up ({r['rounds']} alternating rounds, medians; "
                  "`python cli.py ...` from the repository root; load "
                  f"{load_str(r['load_before'], r['load_after'])}):", "",
                  "| command | median wall | ratio to `import numpy` | median CPU |",
                  "|---|---|---|---|"]
        for k, c in r["commands"].items():
            lines.append(f"| `{k}` | {c['median_s']:.3f} s | {c['ratio_to_numpy']:.2f}x | "
                         f"{c['median_cpu_s']:.3f} s |")
        f = r["first_kernel"]
        engines = sorted({x["engine"] for x in f["runs"]})
        lines.append(f"| first `ntksym kernel` of a new depth-5 MLP spec, {f['n']} inputs, "
                     f"empty caches ({len(f['runs'])} runs, engine {'/'.join(engines)}) | "
                     f"{f['median_s']:.3f} s | | {f['median_cpu_s']:.3f} s |")
    lines += ["", "Issue 16's done-when numbers on these measurements:", "",
              "| goal | measured | met |", "|---|---|---|"]
    for g in doc["goals"]:
        val = "not measured" if g["value"] is None else f"{g['value']:.3g}{g['unit']}"
        lines.append(f"| {g['goal']} | {val} | "
                     f"{'-' if g['met'] is None else 'yes' if g['met'] else '**no**'} |")
    return "\n".join(lines) + "\n"


def readme_table(doc):
    """The README's short table: the peer cases (medians and ratios) and where the rest is."""
    m, res = doc["machine"], doc["results"]
    lines = [f"Measured {doc['date']} by `python benchmarks/run_benchmarks.py --update-docs` on "
             f"{m['cpu']}, {m['cores']} cores, load average "
             f"{load_str(doc['load_before'], doc['load_after'])}; warm calls, medians, "
             "both tools alternating on the same inputs, neural-tangents 0.6.5 under "
             "`jax.jit` as its docs recommend:", "",
             "| case | ntksym | neural-tangents (jit) | ratio |", "|---|---|---|---|"]
    for case in NT_CASES:
        r = res.get(case)
        if not r or "nt:kernel" not in r["wall"]:
            continue
        w, rt = r["wall"], ratio(r, "nt:kernel", "ntksym:kernel")
        lines.append(f"| {r['label']} | {w['ntksym:kernel']['median_s']:.3g} s | "
                     f"{w['nt:kernel']['median_s']:.3g} s | {rt:.1f}x |")
    r = res.get("activations")
    if r:
        ratios = ", ".join(f"{k} {v:.2g}x" for k, v in r["per_pair_ratio"].items()
                           if k != "relu")
        lines += ["", f"Other activations, per pair against the ReLU MLP of "
                  f"the same shape ({r['label']}): {ratios}."]
    lines += ["", "All cases, CPU per pair, start-up and the issue's goals: "
              "[benchmarks.md](docs/benchmarks.md)."]
    return "\n".join(lines) + "\n"


def update_docs(path, table):
    path = Path(path)
    if not path.exists():
        path.write_text("# Benchmarks\n\nThe table below is written by "
                        "`python benchmarks/run_benchmarks.py --update-docs` "
                        "(see its docstring); do not edit it by hand.\n\n"
                        f"{BEGIN}\n{END}\n")
    text = path.read_text()
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        sys.exit(f"{path}: expected one {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    path.write_text(f"{head}{BEGIN}\n{table}{END}{tail}")


# ----------------------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(FULL),
                    help=f"comma-separated, of {', '.join(FULL)} (default: all)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per case (default 5)")
    ap.add_argument("--activation-rounds", type=int, default=None,
                    help="rounds of the activations case (default: --rounds, at least 15: "
                         "its calls take 20-80 ms, whose medians over 5 rounds moved by 30%% "
                         "between runs)")
    ap.add_argument("--settle", type=float, default=None,
                    help="seconds of pause before each timed call of a case with two processes, "
                         "so that the previous call's idle threads (either tool's) have gone "
                         "to sleep (default 0.3; --quick 0)")
    ap.add_argument("--cifar-rounds", type=int, default=None,
                    help="rounds of cntk-cifar (default: --rounds, at most 3: "
                         "neural-tangents takes about 30 s a call there)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    ap.add_argument("--out", default=None, help="folder for results.json and table.md")
    ap.add_argument("--update-docs", action="store_true",
                    help="replace the benchmarks block of --docs with the table")
    ap.add_argument("--docs", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--readme", default=None,
                    help="file whose benchmarks block gets the short table with "
                         "--update-docs (default: README.md when --docs is the default, "
                         "else none; '' for none)")
    ap.add_argument("--nt-python", default=os.environ.get("NTKSYM_NT_PYTHON") or None,
                    help="Python of an environment with neural-tangents 0.6.5 "
                         "(default: $NTKSYM_NT_PYTHON; unset: ntksym only)")
    ap.add_argument("--activation-budget", type=float, default=None,
                    help="seconds one activation call may take at full size before it is "
                         "timed on fewer inputs (default 20; --quick 2)")
    ap.add_argument("--engine", choices=["auto", "compiled", "numpy"], default="compiled",
                    help="ntksym's engine for the timed calls (default compiled: the warm calls "
                         "of a cached module, what repeated use costs; 'auto' picks NumPy for "
                         "one-shot work below the compile cost, whatever the later calls)")
    ap.add_argument("--from-json", metavar="FILE",
                    help="no measuring: write the table (and --update-docs) from a results.json")
    ap.add_argument("--worker", choices=["ntksym", "nt"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.readme is None:     # another --docs (a test, a draft): leave the README alone
        default_docs = Path(ap.get_default("docs")).resolve()
        args.readme = (str(ROOT / "README.md") if Path(args.docs).resolve() == default_docs
                       else "")
    if args.worker:
        return worker(args.worker)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - set(FULL)
    if unknown:
        ap.error(f"unknown cases {sorted(unknown)}; known: {', '.join(FULL)}")
    if args.cifar_rounds is None:
        args.cifar_rounds = min(args.rounds, 3) if not args.quick else args.rounds
    if args.activation_budget is None:
        args.activation_budget = 2.0 if args.quick else 20.0
    if args.activation_rounds is None:
        args.activation_rounds = args.rounds if args.quick else max(args.rounds, 15)
    if args.settle is None:
        args.settle = 0.0 if args.quick else 0.3
    if args.nt_python and not Path(args.nt_python).exists():
        ap.error(f"--nt-python {args.nt_python} does not exist")
    sizes = QUICK if args.quick else FULL
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(HERE))
    m = machine()
    if args.from_json:
        doc = json.loads(Path(args.from_json).read_text())
        return publish(doc, args)
    doc = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "engine": args.engine,
           "command": "python benchmarks/run_benchmarks.py " + " ".join(
               a for a in (argv if argv is not None else sys.argv[1:])),
           "quick": args.quick, "settle_s": args.settle, "machine": m, "peak": fma_peak(m),
           "load_before": os.getloadavg(), "versions": {}, "results": {}}
    with tempfile.TemporaryDirectory(prefix="ntksym-bench-") as folder:
        for case in cases:
            p = dict(sizes[case])
            print(f"{case}: {LABELS[case].format(**p)}", flush=True)
            if case == "startup":
                doc["results"][case] = run_startup(p, args)
                continue
            r = run_pair_case(case, p, args, folder)
            for side, info in r["setup"].items():
                doc["versions"].setdefault(side, info.pop("versions"))
            if case == "cntk-cifar":
                r["derived"] = cifar_derived(r, doc["peak"])
            if case == "activations":
                a = r["setup"]["ntksym"]["activations"]
                per_pair = {k: r["wall"][f"ntksym:{k}"]["median_s"]
                            / (i["n_used"] * (i["n_used"] + 1) / 2) for k, i in a.items()}
                r["per_pair"] = per_pair
                r["per_pair_ratio"] = {k: v / per_pair["relu"] for k, v in per_pair.items()}
            doc["results"][case] = r
    if "ntksym" not in doc["versions"]:
        doc["versions"]["ntksym"] = ntksym_versions()
    doc["load_after"] = os.getloadavg()
    return publish(doc, args)


def publish(doc, args):
    """Print the table; write results.json and table.md to --out, the docs block."""
    doc["goals"] = goals(doc["results"])
    table = markdown(doc)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
        (out / "table.md").write_text(table)
        print(f"wrote {out / 'results.json'} and {out / 'table.md'}")
    if args.update_docs:
        update_docs(args.docs, table)
        print(f"updated {args.docs}")
        if args.readme:
            update_docs(args.readme, readme_table(doc))
            print(f"updated {args.readme}")
    return doc


if __name__ == "__main__":
    main()
