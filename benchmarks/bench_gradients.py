"""Cost of the kernel's hyperparameter gradients (issue #17, done-when 3): one fused pass that
computes K and every dK/dtheta, against the kernel alone, on the same machine in the same run.

The target is a ratio of at most 1 + (number of hyperparameters): what K plus one finite
difference per hyperparameter would cost (and half of what central differences cost).

Cases (learnable constants in brackets):

* ``mlp-shared``:   ReLU MLP, 3 hidden layers, on 1000 diabetes-sized vectors (10 features)
                    [weight_var, bias_var from [defaults]: 2];
* ``mlp-layers``:   the same MLP with per-layer weight_var and bias_var [8];
* ``mlp-tanh``:     tanh MLP, 2 hidden layers (Hermite-series duals and tangents), on 400
                    vectors [2];
* ``mlp-tanh-layers``: the same with per-layer weight_var and bias_var [6];
* ``cnn-gap``:      CNN, 3 ReLU convs 3x3 + global average pool, on 40 digits (8x8x1) [2];
* ``rnn``:          erf rnn (readout last) on 300 sequences of length 20 [4].

Each case computes nngp and ntk (``kind="both"``): "kernel" is the program of the spec,
"gradient" the same program with the tangents of every learnable constant (outputs: K and all
dK/dtheta).  Both are compiled first (not timed; the values of learnable constants are run-time
arguments, so nothing recompiles), then timed alternately, best of --repeat.

    python benchmarks/bench_gradients.py [--cases mlp-shared,cnn-gap] [--repeat 3]
                                         [--threads 1] [-o results.json]
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LEARN_W = "{ value = 2.0, learn = true }"
LEARN_B = "{ value = 0.1, learn = true }"


def _mlp(per_layer, act="relu", depth=3, d=10):
    if per_layer:
        layer = (f'[[layer]]\nkind = "dense"\nactivation = "{act}"\n'
                 f"weight_var = {LEARN_W}\nbias_var = {LEARN_B}\n")
        return (f'name = "bench-mlp-layers-{act}"\ninput = {{ shape = [{d}] }}\n' + layer * depth +
                f'[[layer]]\nkind = "dense"\nweight_var = {LEARN_W}\nbias_var = {LEARN_B}\n')
    return (f'name = "bench-mlp-{act}"\ninput = {{ shape = [{d}] }}\n[defaults]\n'
            f"weight_var = {LEARN_W}\nbias_var = {LEARN_B}\n"
            f'[[layer]]\nkind = "dense"\nactivation = "{act}"\nrepeat = {depth}\n'
            '[[layer]]\nkind = "dense"\n')


CNN = f'''name = "bench-cnn-gap"
input = {{ shape = [8, 8, 1] }}
[defaults]
weight_var = {LEARN_W}
bias_var = {LEARN_B}
[[layer]]
kind = "conv"
filter = [3, 3]
padding = "same"
activation = "relu"
repeat = 3
[[layer]]
kind = "global_avg_pool"
[[layer]]
kind = "dense"
'''

RNN = f'''name = "bench-rnn"
input = {{ shape = [20, 4] }}
[[layer]]
kind = "rnn"
activation = "erf"
weight_var = {{ value = 1.5, learn = true }}
input_var = {{ value = 1.0, learn = true }}
bias_var = {LEARN_B}
[[layer]]
kind = "dense"
weight_var = {{ value = 1.0, learn = true }}
'''


def _vectors(n, d=10):
    return np.random.default_rng(0).standard_normal((n, d))


CASES = {
    "mlp-shared": (lambda: _mlp(False), lambda: _vectors(1000)),
    "mlp-layers": (lambda: _mlp(True), lambda: _vectors(1000)),
    "mlp-tanh": (lambda: _mlp(False, "tanh", 2), lambda: _vectors(400)),
    "mlp-tanh-layers": (lambda: _mlp(True, "tanh", 2), lambda: _vectors(400)),
    "cnn-gap": (lambda: CNN, lambda: __import__("ntksym.data", fromlist=["x"]).load_dataset(
        "digits-images:40").X),
    "rnn": (lambda: RNN, lambda: np.random.default_rng(0).standard_normal((300, 20, 4))),
}


def run_case(name, repeat):
    import ntksym
    text, data = CASES[name]
    arch = ntksym.loads_spec(text())
    X = data()
    k = len(arch.hyperparameters)
    t0 = time.perf_counter()
    K = ntksym.kernel(arch, X, kind="both")
    compile_kernel = time.perf_counter() - t0
    t0 = time.perf_counter()
    G = ntksym.kernel(arch, X, kind="both", gradient=True)
    compile_gradient = time.perf_counter() - t0
    assert np.allclose(G["ntk"], K["ntk"], rtol=1e-12, atol=0)
    best = {"kernel": np.inf, "gradient": np.inf}
    for _ in range(repeat):                       # alternate: the same machine state for both
        for what, grad in (("kernel", False), ("gradient", True)):
            t0 = time.perf_counter()
            ntksym.kernel(arch, X, kind="both", gradient=grad)
            best[what] = min(best[what], time.perf_counter() - t0)
    ratio = best["gradient"] / best["kernel"]
    return {"case": name, "n": len(X), "hyperparameters": k,
            "outputs_gradient": len(G), "kernel_s": best["kernel"],
            "gradient_s": best["gradient"], "ratio": ratio, "bound": 1 + k,
            "within_bound": bool(ratio <= 1 + k),
            "first_call_kernel_s": compile_kernel, "first_call_gradient_s": compile_gradient}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--output")
    args = ap.parse_args(argv)
    import numba
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    results = []
    print(f"{'case':12s} {'n':>5s} {'k':>3s} {'kernel s':>9s} {'K+dK s':>9s} {'ratio':>6s} "
          f"{'1+k':>4s}")
    for name in args.cases.split(","):
        r = run_case(name, args.repeat)
        results.append(r)
        print(f"{name:12s} {r['n']:5d} {r['hyperparameters']:3d} {r['kernel_s']:9.3f} "
              f"{r['gradient_s']:9.3f} {r['ratio']:6.2f} {r['bound']:4d}"
              f"{'' if r['within_bound'] else '  (over the bound)'}", flush=True)
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "threads": numba.get_num_threads(), "load_average": os.getloadavg(),
            "python": platform.python_version(), "numba": numba.__version__}
    if args.output:
        Path(args.output).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main()
