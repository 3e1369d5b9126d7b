"""The named activations with closed-form duals added for issue 18 (gelu, gaussian, cos, exp,
sign): each against the quadrature path to 1e-10, against sympy's own algebra (diagonal rules,
Price's theorem), against its finite network, and printed by `ntksym derive`."""

import math
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import ntksym
from ntksym.duals.activations import get_activation
from ntksym.ir.functions import Z
from ntksym.ir.gaussian import gaussian_expectation

A, B, C = sp.symbols("a b c", positive=True)
NAMED = ["gelu", "gaussian", "cos", "exp", "sign"]

# (a, b, rho): variances over decades, rho over [-1, 1] with the ends
POINTS = [(1.0, 1.0, 0.3), (0.5, 2.0, -0.7), (2.0, 0.7, 0.999999), (1.3, 1.3, 1.0),
          (0.8, 1.5, -1.0), (0.01, 3.0, 0.5), (0.2, 0.4, 0.0), (4.0, 0.05, -0.95)]


def _np_fn(expr):
    f = sp.lambdify(Z, expr, ["scipy", "numpy"])      # scipy: a vectorized erf
    return lambda x: np.asarray(f(x), dtype=float) * np.ones_like(x)


def _value(expr, a, b, c):
    return float(expr.subs({A: a, B: b, C: c}).evalf(30))


@pytest.mark.parametrize("kind", NAMED)
def test_closed_form_matches_quadrature(kind):
    """Error relative to sqrt(E[phi(u)^2] E[phi(v)^2]), the natural scale of E[phi(u) phi(v)]
    (Cauchy-Schwarz); a 48-node Gauss-Legendre rule with the activation's kinks as breakpoints
    is accurate to ~1e-14 at these variances."""
    act = get_activation(kind)
    assert act.method == "closed"
    for which, expr, dual, diag in (("phi", act.phi, act.dual(A, B, C), act.dual_diag),
                                    ("dphi", act.dphi, act.dual_prime(A, B, C),
                                     act.dual_prime_diag)):
        f = _np_fn(expr)
        for a, b, rho in POINTS:
            c = rho * math.sqrt(a * b)
            q = gaussian_expectation(f, f, a, b, c, breakpoints=act.breakpoints)
            scale = math.sqrt(float(diag(a)) * float(diag(b))) or 1.0
            assert abs(_value(dual, a, b, c) - q) <= 1e-10 * scale, (kind, which, a, b, rho)
        for a in (0.01, 0.5, 3.0):
            q = gaussian_expectation(f, f, a, a, a, breakpoints=act.breakpoints)
            assert abs(float(diag(a).evalf(30)) - q) <= 1e-10 * max(abs(q), 1e-300) + 1e-300


@pytest.mark.parametrize("kind", NAMED)
def test_diagonal_rules_and_price_theorem(kind):
    act = get_activation(kind)
    dual, dprime = act.dual(A, B, C), act.dual_prime(A, B, C)
    for a in (0.1, 1.0, 5.0):
        assert abs(_value(dual, a, a, a) - float(act.dual_diag(a))) < 1e-13 * math.exp(2 * a)
        assert abs(_value(dprime, a, a, a) - float(act.dual_prime_diag(a))) < 1e-13 * math.exp(
            2 * a)
    if kind != "sign":       # Price: d/dc E[phi(u) phi(v)] = E[phi'(u) phi'(v)] (sign: a delta)
        free = dual.replace(lambda e: e.func.__name__ == "ClippedCorrelation",
                            lambda e: e.args[0] / sp.sqrt(e.args[1] * e.args[2]))
        for a, b, rho in POINTS[:3]:
            c = rho * math.sqrt(a * b)
            assert abs(_value(sp.diff(free, C), a, b, c) - _value(dprime, a, b, c)) < 1e-12


def test_conventions():
    sign = sp.lambdify(Z, get_activation("sign").phi, "math")
    assert (sign(-2.0), sign(0.0), sign(3.0)) == (-1, 0, 1)
    gauss = sp.lambdify(Z, get_activation("gaussian").phi, "math")
    assert abs(gauss(1.5) - math.exp(-1.125)) < 1e-15
    gelu = sp.lambdify(Z, get_activation("gelu").phi, "math")
    assert abs(gelu(0.7) - 0.7 * 0.5 * (1 + math.erf(0.7 / math.sqrt(2)))) < 1e-15
    assert get_activation("sign").dual_prime(A, B, C) == 0


def _spec(act, wvar):
    return (f'name = "mc-{act}"\ninput = {{ shape = [5] }}\n[defaults]\nweight_var = {wvar}\n'
            f'bias_var = 0.1\n'
            + f'[[layer]]\nkind = "dense"\nactivation = "{act}"\n' * 2
            + '[[layer]]\nkind = "dense"\n')


# exp: small weights, so that exp(u) stays light-tailed enough for a Monte Carlo mean
WEIGHT_VAR = {"gelu": 1.5, "gaussian": 1.5, "cos": 1.0, "exp": 0.2, "sign": 1.0}


@pytest.mark.parametrize("kind", NAMED)
def test_finite_network_agrees_within_4_standard_errors(kind):
    X = np.random.default_rng(11).standard_normal((3, 5))
    arch = ntksym.loads_spec(_spec(kind, WEIGHT_VAR[kind]))
    analytic = ntksym.kernel(arch, X, kind="both")
    E = ntksym.empirical_kernel(arch, X, width=256, samples=16, seed=1)
    for k in ("nngp", "ntk"):
        dev = np.abs(E.mean[k] - analytic[k])
        assert np.all(dev <= 4 * E.stderr[k] + 1e-12), (kind, k, dev / E.stderr[k])
        assert np.all(E.stderr[k] < 0.1 * np.abs(analytic[k]).max())


def test_derive_prints_each(tmp_path):
    text = ('name = "named"\ninput = { shape = [4] }\n'
            + "".join(f'[[layer]]\nkind = "dense"\nactivation = "{k}"\n' for k in NAMED)
            + '[[layer]]\nkind = "dense"\n')
    path = tmp_path / "named.toml"
    path.write_text(text)
    r = subprocess.run([sys.executable, "cli.py", "derive", str(path)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    for k, shown in (("gelu", "asin"), ("gaussian", "sqrt"), ("cos", "cosh"), ("exp", "exp("),
                     ("sign", "asin")):
        assert f": {k}: phi(z) = " in r.stdout, k
        assert shown in r.stdout
    assert "closed form" in r.stdout and "E_GL" not in r.stdout
