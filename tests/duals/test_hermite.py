"""The Hermite-series duals (issue 16): accuracy against 30-digit mpmath references, the tail
bound, the generated Numba code against the Python reference, the per-example hoisting of the
coefficients in vector programs, and what `derive` prints."""

import json
import math

import numpy as np
import pytest
import sympy as sp

import ntksym
from ntksym.codegen.cache import load_module
from ntksym.codegen.common import quadrature_source
from ntksym.codegen.printer import NumbaPrinter
from ntksym.codegen.vector import generate_vector_source
from ntksym.duals.activations import get_activation
from ntksym.ir.functions import Z
from ntksym.ir.gaussian import gaussian_expectation
from ntksym.ir.hermite import (
    HERMITE_K,
    HERMITE_TOL,
    correlation,
    hermite_coefficients,
    hermite_series,
)
from testkit import ROOT

REFERENCE = json.loads((ROOT / "tests" / "reference" / "duals_mpmath.json").read_text())

# the reference's names (tests/reference/make_dual_reference.py) -> registry kinds
ACTIVATIONS = {
    "tanh": ("tanh", {}),
    "swish(h=1.0)": ("swish", {"h": 1.0}),
    "huberized_relu(h=0.5)": ("huberized_relu", {"h": 0.5}),
    "activation(expr='z*(1+erf(z/sqrt(2)))/2')": ("activation",
                                                  {"expr": "z*(1+erf(z/sqrt(2)))/2"}),
    "activation(expr='log(1+exp(z))')": ("activation", {"expr": "log(1+exp(z))"}),
}

#: the accuracy asked of every dual, relative to sqrt(E[phi(u)^2] E[phi(v)^2])
TOL = 1e-10


def _points(name):
    """(a, b, rho, E_phi, E_dphi) of the reference points certified to 1e-12."""
    return [p[:5] for p in REFERENCE[name]["points"] if max(p[5], p[6]) < 1e-12]


def _diag(name):
    return {d[0]: (d[1], d[2]) for d in REFERENCE[name]["diag"]}


def test_reference_covers_the_activations():
    assert set(REFERENCE) == set(ACTIVATIONS)
    for name in REFERENCE:
        pts = _points(name)
        assert len(pts) >= 40, name
        assert {p[0] for p in pts} >= {1e-3, 1.0, 1e2, 1e4}
        assert {p[2] for p in pts} >= {-1.0, -0.9, 0.0, 0.9, 1.0}
        if "erf" not in name:       # GELU near rho = 1: its closed form, test below
            assert {p[2] for p in pts} >= {0.99, -0.9999}


def _fn(expr):
    return sp.lambdify(Z, expr + 0 * Z, "numpy")


def _classes(act):
    """The expectation classes of phi and phi' (sympy evaluates a call with float arguments at
    once, so the classes come from a symbolic call)."""
    a, b, c = sp.symbols("a b c", positive=True)
    return type(act.dual(a, b, c)), type(act.dual_prime(a, b, c))


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_python_reference_against_mpmath(name):
    """ntksym.ir.hermite (series where the bound holds, quadrature elsewhere) to 1e-10."""
    kind, params = ACTIVATIONS[name]
    act = get_activation(kind, **params)
    assert act.method == "mehler"
    diag = _diag(name)
    E, dE = _classes(act)
    for a, b, rho, v, dv in _points(name):
        c = rho * math.sqrt(a * b)
        for j, (cls, want) in enumerate(((E, v), (dE, dv))):
            scale = math.sqrt(diag[a][j] * diag[b][j])
            got = cls.numeric(a, b, c)
            assert abs(got - want) <= TOL * scale, (name, j, a, b, rho, got, want)
    for a, (e, de) in diag.items():
        assert abs(E.numeric(a) - e) <= 1e-13 * e
        assert abs(dE.numeric(a) - de) <= 1e-13 * de


def test_gelu_expression_against_the_closed_form_near_one():
    """The GELU expression by series / quadrature against the closed-form gelu (evaluated by
    sympy at 30 digits) where the series cannot reach: rho near +-1, large variances."""
    act = get_activation("activation", expr="z*(1+erf(z/sqrt(2)))/2")
    gelu = get_activation("gelu")
    A, B, C = sp.symbols("a b c", positive=True)
    E, dE = _classes(act)
    exact = (gelu.dual(A, B, C), gelu.dual_prime(A, B, C))
    for a, b in ((1e-3, 1e-3), (1.0, 1.0), (1.0, 1e4), (1e4, 1e4)):
        scale = [math.sqrt(float(d(a).evalf(30)) * float(d(b).evalf(30)))
                 for d in (gelu.dual_diag, gelu.dual_prime_diag)]
        for rho in (-0.9999, 0.99, 0.999999):
            c = rho * math.sqrt(a * b)
            for j, cls in enumerate((E, dE)):
                want = float(exact[j].subs({A: a, B: b, C: c}).evalf(30))
                assert abs(cls.numeric(a, b, c) - want) <= TOL * scale[j], (a, b, rho, j)


@pytest.fixture(scope="module")
def generated():
    """One module with the generated duals of every activation (non-hoisted: the ``_full``
    entries, as images and sequences call them) and ``grid(A, B, C, out)``."""
    a, b, c = sp.symbols("a b c", real=True)
    printer = NumbaPrinter()
    body = []
    for k, (kind, params) in enumerate(ACTIVATIONS.values()):
        act = get_activation(kind, **params)
        for q, e in enumerate((act.dual(a, b, c), act.dual_prime(a, b, c), act.dual_diag(a),
                               act.dual_prime_diag(a))):
            body.append(f"        out[{k}, {q}, i] = {printer.doprint(e)}")
    src = ("import math\n\nimport numpy as np\nfrom numba import njit\n"
           + quadrature_source(printer)
           + "\n\n@njit(cache=True)\ndef grid(A, B, C, out):\n"
           + "    for i in range(A.shape[0]):\n        a = A[i]\n        b = B[i]\n"
           + "        c = C[i]\n" + "\n".join(body) + "\n")
    assert "_full(a, b, c)" in src
    return load_module(src, "test_hermite_duals")


def test_generated_code_against_mpmath(generated):
    for k, name in enumerate(ACTIVATIONS):
        pts = np.array(_points(name))
        A, B, R = pts[:, 0], pts[:, 1], pts[:, 2]
        out = np.empty((len(ACTIVATIONS), 4, len(pts)))
        generated.grid(A, B, R * np.sqrt(A * B), out)
        diag = _diag(name)
        for j in (0, 1):
            scale = np.sqrt([diag[x][j] * diag[y][j] for x, y in zip(A, B)])
            err = np.abs(out[k, j] - pts[:, 3 + j]) / scale
            assert err.max() <= TOL, (name, j, pts[err.argmax()], err.max())
            want = np.array([diag[x][j] for x in A])
            assert np.max(np.abs(out[k, 2 + j] - want) / want) <= 1e-13, name


@pytest.mark.parametrize("name", ["tanh", "huberized_relu(h=0.5)"])
def test_tail_bound_holds(name):
    """Where the series stops, its distance to an accurate quadrature is within the stated
    bound HERMITE_TOL * sqrt(E_a E_b), at random variances and correlations."""
    kind, params = ACTIVATIONS[name]
    act = get_activation(kind, **params)
    f = _fn(act.phi)
    rng = np.random.default_rng(5)
    used = 0
    for _ in range(40):
        a, b = 10 ** rng.uniform(-3, 4, size=2)
        rho = rng.uniform(-1, 1)
        hx, tx = hermite_coefficients(f, a, act.breakpoints, act.soft)
        hy, ty = hermite_coefficients(f, b, act.breakpoints, act.soft)
        v = hermite_series(hx, tx, hy, ty, rho)
        if v is None:
            continue
        used += 1
        q = gaussian_expectation(f, f, a, b, rho * math.sqrt(a * b), act.breakpoints,
                                 soft=act.soft)
        Ea, Eb = (_classes(act)[0].numeric(x) for x in (a, b))
        assert abs(v - q) <= HERMITE_TOL * math.sqrt(Ea * Eb) + 1e-15 * math.sqrt(Ea * Eb)
    assert used >= 15


def test_series_stops_early_at_small_correlations():
    f = _fn(get_activation("tanh").phi)
    h, t = hermite_coefficients(f, 1.0, (), ((0.0, math.pi / 2),))
    assert len(h) == HERMITE_K + 1
    assert hermite_series(h, t, h, t, 0.1) is not None
    assert hermite_series(h, t, h, t, 0.999) is not None     # unit variance: tail at round-off
    h, t = hermite_coefficients(f, 100.0, (), ((0.0, math.pi / 2),))
    assert hermite_series(h, t, h, t, 0.7) is not None
    assert hermite_series(h, t, h, t, 0.9) is None       # bound fails: quadrature instead
    h, t = hermite_coefficients(f, 1.0, (), ((0.0, math.pi / 2),))
    # exact at rho = 0 (only h_0 h_0) and for a zero variance
    assert hermite_series(h, t, h, t, 0.0) == h[0] * h[0]
    h0, t0 = hermite_coefficients(f, 0.0)
    assert h0[0] == 0.0 and not h0[1:].any() and correlation(0.0, 1.0, 0.0) == 0.0


def _mlp(act, depth=3):
    """A depth-`depth` MLP; `act` is an activation name or ``expr:...`` (an activation layer)."""
    if act.startswith("expr:"):
        hidden = f'[[layer]]\nkind = "dense"\n[[layer]]\nkind = "activation"\nexpr = "{act[5:]}"\n'
    else:
        hidden = f'[[layer]]\nkind = "dense"\nactivation = "{act}"\n'
    return ntksym.loads_spec(
        'name = "h"\ninput = { shape = [6] }\n[defaults]\nbias_var = 0.1\n'
        + hidden * depth + '[[layer]]\nkind = "dense"\n')


def test_vector_code_hoists_coefficients_per_example():
    src = generate_vector_source(_mlp("tanh").derive())
    diag = src[src.index("def diag_state"):src.index("def pair(")]
    pair = src[src.index("def pair("):src.index("def diagonal(")]
    assert diag.count("_coef(") == 3                   # phi and phi' together, per layer
    assert "_coef(" not in pair and "_full(" not in pair and "_quad(" not in pair
    assert pair.count("Dx, ix, Dy, iy, _H") == 6       # 3 layers x (phi, phi')


def test_vector_kernel_equals_per_pair_evaluation():
    """The hoisted kernel equals the program evaluated pair by pair in Python (the trace)."""
    from ntksym.engine.trace import trace_pair
    arch = _mlp("expr:z*(1+erf(z/sqrt(2)))/2")
    X = np.random.default_rng(2).standard_normal((4, 6)) * np.array([[0.3], [1.0], [3.0], [30]])
    K = ntksym.kernel(arch, X, kind="ntk")
    prog = arch.derive()
    for i, j in ((0, 1), (1, 2), (2, 3), (0, 3)):
        last = list(trace_pair(prog, X[i], X[j]))[-1]
        want = float(next(v for k, v in last.values.items() if k.startswith("Theta")))
        assert abs(K[i, j] - want) <= 1e-10 * abs(K).max()


def test_derive_prints_method_K_and_bound():
    text = str(_mlp("tanh", 1).derive())
    assert "E_H%d[tanh]" % HERMITE_K in text
    assert "Hermite series" in text and "K <= %d" % HERMITE_K in text
    assert "%g" % HERMITE_TOL in text and "tail bound" in text
    latex = _mlp("tanh", 1).derive().latex()
    assert r"\mathbb{E}^{\mathrm{H}%d}" % HERMITE_K in latex


def test_image_program_calls_the_per_pair_form():
    """Image programs compute both coefficient vectors per pixel pair (``_full``): the kernel
    of a tiny tanh CNN equals its pair-by-pair replay in Python."""
    from ntksym.codegen.image import generate_image_source
    from ntksym.engine.trace import trace_pair
    arch = ntksym.loads_spec('name = "c"\ninput = { shape = [2, 2, 1] }\n'
                             '[[layer]]\nkind = "conv"\nactivation = "tanh"\n'
                             '[[layer]]\nkind = "global_avg_pool"\n[[layer]]\nkind = "dense"\n')
    prog = arch.derive()
    assert "_full(" in generate_image_source(prog)
    X = np.random.default_rng(4).standard_normal((2, 2, 2, 1))
    K = ntksym.kernel(arch, X, kind="ntk")
    last = list(trace_pair(prog, X[0], X[1]))[-1]
    want = float(np.asarray(next(v for k, v in last.values.items()
                                 if k.startswith("Theta"))).ravel()[0])
    assert abs(K[0, 1] - want) <= 1e-10 * abs(K).max()
