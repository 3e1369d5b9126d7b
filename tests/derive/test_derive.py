"""`ntksym derive` prints the recursion; its sympy source reproduces the generated code's
numbers."""

import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import ntksym
from ntksym.ir.printing import python_namespace

SPECS = ["cntk_mlp_depth2.toml", "erf_mlp_bias.toml", "custom_expression.toml",
         "clb_huberized_relu.toml", "leaky_relu_mlp.toml"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize("fmt", ["text", "latex", "python"])
def test_derive_prints(spec_dir, fmt):
    r = run_cli("derive", str(spec_dir / "cntk_mlp_depth2.toml"), "--format", fmt)
    assert r.returncode == 0, r.stderr
    if fmt == "latex":
        assert r.stdout.startswith("\\begin{align*}") and "\\Theta_{5}(x, x')" in r.stdout
        assert r.stdout.count("\\\\") >= 10
    elif fmt == "text":
        assert "rho_1 = rho(Sigma_1(x, x'); Sigma_1(x, x), Sigma_1(x', x'))" in r.stdout
        assert "Theta_3(x, x') = 2*Sigma_2(x, x') + 2*Theta_2(x, x')" in r.stdout
    else:
        assert "Sigma_1 = 64*Sigma_0" in r.stdout


def _evaluate_python_source(program, x, y):
    """Run the printed sympy source line by line for one pair and return the outputs."""
    ns = python_namespace(program)
    d = program.input_scale
    ns.update(Sigma_0=sp.Float(float(x @ y) / d, 30), Sigma_0_xx=sp.Float(float(x @ x) / d, 30),
              Sigma_0_yy=sp.Float(float(y @ y) / d, 30))
    for line in program.python().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, expr = line.split(" = ", 1)
        value = sp.sympify(expr, locals=ns)
        ns[name] = sp.N(value, 30) if not value.free_symbols else value
    return {k: float(ns["out_" + k]) for k in program.outputs}


@pytest.mark.parametrize("spec", SPECS)
def test_printed_sympy_source_matches_generated_code(spec_dir, spec):
    arch = ntksym.load_spec(spec_dir / spec)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 64)) * 0.5
    K = ntksym.kernel(arch, X, kind="both")
    got = _evaluate_python_source(arch.derive(), X[0], X[1])
    for k in ("nngp", "ntk"):
        assert got[k] == pytest.approx(K[k][0, 1], rel=1e-10)


def test_latex_compiles_back_to_the_same_expressions(spec_dir):
    """Each LaTeX row is printed from a sympy expression; the python format prints the same
    expressions, so parsing that source gives back exactly the program's expressions."""
    arch = ntksym.load_spec(spec_dir / "erf_mlp_bias.toml")
    p = arch.derive()
    ns = python_namespace(p)
    from ntksym.codegen.printer import identifier
    lines = dict(l.split(" = ", 1) for l in p.python().splitlines() if " = " in l and
                 not l.startswith("#"))
    for a in p.cross_assignments():
        back = sp.sympify(lines[identifier(a.target.name)], locals=ns)
        orig = a.expr.xreplace({s: sp.Symbol(identifier(s.name)) for s in a.expr.free_symbols})
        assert sp.simplify(back - orig) == 0
        assert sp.latex(orig)          # the latex printer accepts every expression


def test_derive_nngp_only(spec_dir):
    r = run_cli("derive", str(spec_dir / "cntk_mlp_depth1.toml"), "--kernel", "nngp")
    assert r.returncode == 0 and "Theta" not in r.stdout and "Sigma_3(x, x')" in r.stdout


@pytest.mark.parametrize("spec", ["rntk_last", "allen_zhu_rnn", "yang_wang_mlp"])
def test_per_layer_output_does_not_depend_on_the_hash_seed(spec_dir, spec):
    """The per-layer terms come out in graph order: no set iteration (whose order follows
    PYTHONHASHSEED) decides what `derive --per-layer` prints."""
    import os
    outs = set()
    for seed in ("1", "2", "3"):
        r = subprocess.run([sys.executable, "cli.py", "derive", "--per-layer",
                            str(spec_dir / f"{spec}.toml")], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed})
        assert r.returncode == 0, r.stderr
        outs.add(r.stdout)
    assert len(outs) == 1
