"""Dual kernels of the activation registry against quadrature, Monte Carlo and each other."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

from ntksym.duals.activations import ACTIVATION_KINDS, get_activation, parse_shorthand
from ntksym.duals.closed import arccos_J
from ntksym.duals.quadrature import (
    NUMBA_QUADRATURE_SOURCE,
    gaussian_expectation,
    numba_quadrature_wrapper,
)
from ntksym.errors import SpecError
from ntksym.ir.functions import HermiteExpectationBase, QuadratureExpectationBase, Z
from ntksym.ir.hermite import HERMITE_K

A, B, C = sp.symbols("a b c", positive=True)

CLOSED = [("relu", {}), ("leaky_relu", {"slope": 0.1}), ("leaky_relu", {"slope": -0.5}),
          ("abs", {}), ("erf", {}), ("identity", {}), ("step", {}), ("relu_power", {"k": 1}),
          ("relu_power", {"k": 2}), ("relu_power", {"k": 3}), ("sin", {})]

# (a, b, rho): generic points, rho = +-1 and near them
POINTS = [(1.0, 1.0, 0.3), (0.5, 2.0, -0.7), (2.0, 0.7, 0.999999), (1.3, 1.3, 1.0),
          (0.8, 1.5, -1.0), (1.0, 3.0, -0.9999999999), (0.2, 0.4, 0.0)]


def _num(expr, a, b, c):
    return float(expr.subs({A: a, B: b, C: c}).evalf(30))


def _np_fn(expr):
    return sp.lambdify(Z, expr, ["scipy", "numpy"])  # scipy: a vectorized erf


def _quad(act, which, a, b, c):
    e = act.phi if which == "phi" else act.dphi
    f = _np_fn(e)
    fv = lambda x: np.asarray(f(x), dtype=float) * np.ones_like(x)  # noqa: E731 (constants)
    return gaussian_expectation(fv, fv, a, b, c, breakpoints=act.breakpoints)


@pytest.mark.parametrize("kind,params", CLOSED)
def test_closed_forms_match_quadrature(kind, params):
    act = get_activation(kind, **params)
    assert act.method == "closed"
    dual, dprime = act.dual(A, B, C), act.dual_prime(A, B, C)
    for a, b, rho in POINTS:
        c = rho * math.sqrt(a * b)
        scale = max(1.0, a * b) ** (params.get("k", 1))
        q = _quad(act, "phi", a, b, c)
        assert abs(_num(dual, a, b, c) - q) <= 1e-9 * scale, (a, b, rho)
        q = _quad(act, "dphi", a, b, c)
        assert abs(_num(dprime, a, b, c) - q) <= 1e-9 * scale, (a, b, rho)
    for a in (0.3, 1.0, 2.5):
        assert abs(float(act.dual_diag(a).evalf(30)) - _quad(act, "phi", a, a, a)) < 1e-9 * a ** 3
        assert abs(float(act.dual_prime_diag(a).evalf(30)) - _quad(act, "dphi", a, a, a)) < 1e-9


@pytest.mark.parametrize("kind,params", CLOSED)
def test_diag_rules_equal_cross_rules(kind, params):
    act = get_activation(kind, **params)
    for a in (0.25, 1.0, 3.0):
        assert abs(_num(act.dual(A, B, C), a, a, a)
                   - float(act.dual_diag(a).evalf(30))) < 1e-12 * a ** 3
        assert abs(_num(act.dual_prime(A, B, C), a, a, a)
                   - float(act.dual_prime_diag(a).evalf(30))) < 1e-12 * max(1, a) ** 3


@pytest.mark.parametrize("kind,params", [("relu", {}), ("erf", {}), ("sin", {}),
                                         ("leaky_relu", {"slope": 0.2})])
def test_monte_carlo_sanity(kind, params):
    act = get_activation(kind, **params)
    rng = np.random.default_rng(0)
    a, b, c = 1.2, 0.8, 0.5
    n = 400_000
    L = np.linalg.cholesky(np.array([[a, c], [c, b]]))
    uv = rng.standard_normal((n, 2)) @ L.T
    for expr, dual in ((act.phi, act.dual(A, B, C)), (act.dphi, act.dual_prime(A, B, C))):
        f = _np_fn(expr)
        prod = np.asarray(f(uv[:, 0]), dtype=float) * np.asarray(f(uv[:, 1]), dtype=float)
        tol = 6 * prod.std() / math.sqrt(n) + 1e-12
        assert abs(prod.mean() - _num(dual, a, b, c)) < tol


def test_relu_formula_is_the_stated_compact_form():
    relu = get_activation("relu")
    assert relu.dual_diag(A) == A / 2 and relu.dual_prime_diag(A) == sp.Rational(1, 2)
    assert relu.dual(A, B, C).has(sp.acos)


def test_quadrature_relu_matches_closed_form_on_a_grid():
    relu = lambda x: np.maximum(x, 0.0)  # noqa: E731
    dual = get_activation("relu").dual(A, B, C)
    clipped = {"ClippedCorrelation": lambda c, a, b: max(-1.0, min(1.0, c / math.sqrt(a * b)))}
    f = sp.lambdify((A, B, C), dual, modules=[clipped, "math"])
    worst = 0.0
    for a, b in [(1.0, 1.0), (0.3, 2.5), (4.0, 0.01)]:
        for rho in [-1, -1 + 1e-12, -1 + 1e-8, -1 + 1e-4, -0.6, 0.0, 0.4, 1 - 1e-6, 1 - 1e-10, 1]:
            c = rho * math.sqrt(a * b)
            err = abs(gaussian_expectation(relu, relu, a, b, c, (0.0,)) - f(a, b, c))
            worst = max(worst, err / math.sqrt(a * b))
    assert worst < 1e-10


def test_relu_power_one_is_relu_and_J_forms():
    relu, rp1 = get_activation("relu"), get_activation("relu_power", k=1)
    for a, b, rho in POINTS:
        c = rho * math.sqrt(a * b)
        assert abs(_num(relu.dual(A, B, C), a, b, c) - _num(rp1.dual(A, B, C), a, b, c)) < 1e-14
        assert abs(_num(relu.dual_prime(A, B, C), a, b, c)
                   - _num(rp1.dual_prime(A, B, C), a, b, c)) < 1e-14
    J2, rho = arccos_J(2)  # Cho & Saul: J_2 = 3 sin cos + (pi - theta)(1 + 2 cos^2)
    th = 0.7
    ref = 3 * math.sin(th) * math.cos(th) + (math.pi - th) * (1 + 2 * math.cos(th) ** 2)
    assert abs(float(J2.subs(rho, math.cos(th))) - ref) < 1e-13


@pytest.mark.parametrize("text", ["z**3 - z", "z**2", "0.5*z**4 - 2*z + 1", "z"])
def test_hermite_duals_exact(text):
    act = get_activation("activation", expr=text)
    assert act.method == "hermite"
    for fn in (act.dual(A, B, C), act.dual_prime(A, B, C)):
        assert not fn.has(sp.sqrt(A)) and fn.is_polynomial(A, B, C)
    for a, b, rho in POINTS:
        c = rho * math.sqrt(a * b)
        scale = max(1.0, a * b) ** 4
        assert abs(_num(act.dual(A, B, C), a, b, c) - _quad(act, "phi", a, b, c)) < 1e-12 * scale
        assert abs(_num(act.dual_prime(A, B, C), a, b, c)
                   - _quad(act, "dphi", a, b, c)) < 1e-12 * scale
    assert sp.expand(act.dual(A, A, A) - act.dual_diag(A)) == 0
    assert sp.expand(act.dual_prime(A, A, A) - act.dual_prime_diag(A)) == 0


def test_hermite_known_value():
    # E[(u^3 - u)(v^3 - v)] for unit variances: 6 c^3 (He_3 coefficient 1) at a = b = 1
    act = get_activation("activation", expr="z**3 - z")
    assert sp.expand(act.dual(1, 1, C) - (6 * C**3 + 4 * C)) == 0


@pytest.mark.parametrize("kind,params,bps", [
    ("tanh", {}, ()), ("huberized_relu", {"h": 0.5}, (0.0, 0.5)), ("swish", {"h": 1.0}, ()),
    ("activation", {"expr": "abs(z - 1) + sin(z)"}, (1.0,)),
    ("activation", {"expr": "relu(z) * exp(-z**2)"}, (0.0,))])
def test_numerical_kinds(kind, params, bps):
    act = get_activation(kind, **params)
    assert act.method == "mehler" and act.breakpoints == bps
    e = act.dual(A, B, C)
    assert isinstance(e, HermiteExpectationBase)   # a QuadratureExpectationBase: its fallback
    assert isinstance(e, QuadratureExpectationBase)
    assert isinstance(act.dual_diag(A), HermiteExpectationBase)
    val = float(act.dual(1.0, 0.5, 0.3).evalf())  # via HermiteExpectationBase.numeric
    assert abs(val - _quad(act, "phi", 1.0, 0.5, 0.3)) < 1e-12
    # phi and phi' are math-printable (no Heaviside/sign/DiracDelta) and phi' is the derivative
    for ex in (act.phi, act.dphi):
        assert not ex.has(sp.Heaviside, sp.sign, sp.DiracDelta)
    f, df = sp.lambdify(Z, act.phi, "math"), sp.lambdify(Z, act.dphi, "math")
    for z in (-1.7, 0.3, 2.2):
        assert abs((f(z + 1e-6) - f(z - 1e-6)) / 2e-6 - df(z)) < 1e-6


def test_huberized_and_swish_definitions():
    hub = sp.lambdify(Z, get_activation("huberized_relu", h=0.5).phi, "math")
    assert hub(-1) == 0 and abs(hub(0.25) - 0.0625) < 1e-15 and abs(hub(2) - 1.75) < 1e-15
    sw = sp.lambdify(Z, get_activation("swish", h=2.0).phi, "math")
    for z in (-3.0, 0.5, 4.0):
        assert abs(sw(z) - z / (1.1 * (1 + math.exp(-2 * z / 2.0)))) < 1e-14
    assert sw(-1e4) == 0.0 or abs(sw(-1e4)) < 1e-300  # no overflow


def test_registry_errors_and_shorthand():
    with pytest.raises(ValueError, match="valid"):
        get_activation("rellu")
    with pytest.raises(SpecError, match="no parameter"):
        get_activation("relu", slope=1)
    with pytest.raises(SpecError, match="needs parameter"):
        get_activation("leaky_relu")
    with pytest.raises(SpecError):
        get_activation("relu_power", k=1.5)
    with pytest.raises(SpecError):
        get_activation("huberized_relu", h=-1)
    assert parse_shorthand("relu") == ("relu", {})
    assert parse_shorthand("leaky_relu(0.1)") == ("leaky_relu", {"slope": 0.1})
    assert parse_shorthand("leaky_relu(slope=0.1)") == ("leaky_relu", {"slope": 0.1})
    assert parse_shorthand("relu_power(2)") == ("relu_power", {"k": 2})
    assert parse_shorthand("huberized_relu(h=0.5)") == ("huberized_relu", {"h": 0.5})
    assert parse_shorthand("swish(1.0)") == ("swish", {"h": 1.0})
    assert parse_shorthand('activation("z**3 - z")') == ("activation", {"expr": "z**3 - z"})
    for bad in ("relu(1)", "leaky_relu(x)", "os.system('x')", "relu(", "leaky_relu(0.1, 2)"):
        with pytest.raises(SpecError):
            parse_shorthand(bad)
    assert get_activation("leaky_relu", slope=0.1).name == "leaky_relu(slope=0.1)"
    for kind, spec in ACTIVATION_KINDS.items():
        assert spec["doc"]


def test_descriptions_name_the_path():
    assert "closed form" in get_activation("relu").description()
    assert "Hermite" in get_activation("activation", expr="z**2").description()
    tanh = get_activation("tanh").description()
    assert "Hermite series" in tanh and "K <= %d" % HERMITE_K in tanh and "1e-12" in tanh
    assert "else Gauss-Legendre quadrature, order 48" in tanh


def test_numba_quadrature_source_compiles_caches_and_matches(tmp_path):
    src = NUMBA_QUADRATURE_SOURCE + '''

@numba.njit(cache=True)
def f_relu(z):
    return z if z > 0.0 else 0.0


@numba.njit(cache=True)
def f_hub(z):
    if z < 0.0:
        return 0.0
    if z <= 0.5:
        return z * z / 1.0
    return z - 0.25


''' + numba_quadrature_wrapper("E_relu", "f_relu", "f_relu", (0.0,)) + "\n\n" + \
        numba_quadrature_wrapper("E_hub", "f_hub", "f_relu", (0.0, 0.5), (0.0,)) + '''

@numba.njit(cache=True)
def grid(a, b, c):
    out = np.empty((a.shape[0], 3))
    for i in range(a.shape[0]):
        out[i, 0] = E_relu(a[i], b[i], c[i])
        out[i, 1] = E_hub(a[i], b[i], c[i])
        out[i, 2] = E_relu_diag(a[i])
    return out
'''
    path = tmp_path / "ntksym_quadmod_test.py"
    path.write_text(src)
    pts = [(1.0, 1.0, 0.3), (0.5, 2.0, -1.0), (2.0, 0.7, 0.999999), (0.0, 1.0, 0.0),
           (1.0, 0.0, 0.0), (0.0, 0.0, 0.0), (1.5, 1.5, 1.5)]
    a = np.array([p[0] for p in pts])
    b = np.array([p[1] for p in pts])
    c = np.array([p[2] * math.sqrt(p[0] * p[1]) for p in pts])
    # Numba reads NUMBA_CACHE_DIR once, when first imported: this process imported it long
    # ago under whatever the user has set, so the compile-and-cache check runs in a child
    # with a cache directory of its own (and leaves the user's cache alone).
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
    env["NUMBA_CACHE_DIR"] = str(cache)
    np.save(tmp_path / "abc.npy", np.stack([a, b, c]))
    r = subprocess.run([sys.executable, "-c", _QUADMOD_CHILD, str(tmp_path)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr      # a "cannot cache" NumbaWarning fails the child
    out = np.load(tmp_path / "out.npy")
    relu = lambda x: max(x, 0.0)  # noqa: E731
    hub = lambda x: 0.0 if x < 0 else (x * x if x <= 0.5 else x - 0.25)  # noqa: E731
    for i, (x, y, z) in enumerate(zip(a, b, c)):
        assert abs(out[i, 0] - gaussian_expectation(relu, relu, x, y, z, (0.0,))) < 1e-13
        assert abs(out[i, 1] - gaussian_expectation(hub, relu, x, y, z, (0.0, 0.5),
                                                    breakpoints_g=(0.0,))) < 1e-13
        assert abs(out[i, 2] - x / 2) < 1e-13
    assert any(cache.rglob("ntksym_quadmod_test*.nbi")), sorted(tmp_path.rglob("*"))


# Imports tmp_path/ntksym_quadmod_test.py, evaluates grid on tmp_path/abc.npy (compiling and
# caching it) with every warning an error, saves tmp_path/out.npy.
_QUADMOD_CHILD = """
import sys
import warnings
import numpy as np
sys.path.insert(0, sys.argv[1])
import ntksym_quadmod_test as mod
a, b, c = np.load(sys.argv[1] + "/abc.npy")
with warnings.catch_warnings():
    warnings.simplefilter("error")
    out = mod.grid(a, b, c)
np.save(sys.argv[1] + "/out.npy", out)
"""
