"""The tangents of Hermite duals as Hermite series (issue 17, done-when 3): d/dc E[f(u) f(v)] =
E[f'(u) f'(v)], d/da = E[f''(u) f(v)] / 2, d/db = E[f(u) f''(v)] / 2 by mixed series of the
family extended by f'', f''' (coefficients once per example), instead of a per-pair
two-dimensional quadrature.

* the mixed series (Python reference, quadrature where its tail bound fails) against the GELU
  closed form differentiated by sympy at 30 digits, and against the quadrature of the same
  integrands for tanh and swish, over rho in [-1, 1] and variances 1e-3 .. 1e4, to 1e-10 of
  sqrt(E[f_i(u)^2] E[f_j(v)^2]);
* dK/dtheta of tanh, swish and GELU-expression MLPs (a shared weight_var, per-layer bias_var,
  a readout weight_var of its own) against central finite differences (1e-7 relative) and
  against the tangents of the quadrature (Price's theorem per pair, as before) to 1e-10;
* the generated pair calls no quadrature but through a series' fallback; one coefficient
  vector per example and layer serves the dual and its tangents; printing names the members.
"""

import math

import numpy as np
import pytest
import sympy as sp

import ntksym
from ntksym.duals.activations import get_activation
from ntksym.engine import common
from ntksym.ir import functions
from ntksym.ir.functions import Z, _callable, hermite_member
from ntksym.ir.gaussian import gaussian_expectation
from ntksym.ir.hermite import HERMITE_K, TANGENT_K, hermite_coefficients, hermite_series

GELU_EXPR = "z*(1+erf(z/sqrt(2)))/2"
ACTS = {"tanh": ("tanh", {}), "swish": ("swish", {"h": 1.0}),
        "gelu_expr": ("activation", {"expr": GELU_EXPR})}
TOL = 1e-10
A, B, C = sp.symbols("a b c", positive=True)


def _classes(act):
    return type(act.dual(A, B, C)), type(act.dual_prime(A, B, C))


def test_extended_family_and_members():
    E, dE = _classes(get_activation("tanh"))
    M = hermite_member(E, 2, 0)
    assert M.family[0] == ("tanh", "tanh'", "tanh''", "tanh'''")
    assert M.hermite_k == TANGENT_K and E.hermite_k == HERMITE_K
    assert (M.member, M.member_y, M.label) == (2, 0, "tanh''|tanh")
    assert hermite_member(E, 1, 1) is hermite_member(dE, 0, 0)     # E[f' f'] = the NTK dual
    assert hermite_member(dE, 0, 2).label == "tanh'|tanh'''"
    assert sp.simplify(M.f - sp.diff(sp.tanh(Z), Z, 2)) == 0


@pytest.mark.parametrize("dx, dy, which", [(2, 0, 0), (0, 2, 0), (1, 1, 0), (2, 0, 1),
                                           (0, 2, 1), (1, 1, 1)])
def test_gelu_mixed_series_against_the_closed_form(dx, dy, which):
    """E[f^(dx)(u) f^(dy)(v)] of the GELU expression = the derivative of gelu's closed-form
    dual (Price): d/da -> (2, 0) / 2, d/db -> (0, 2) / 2, d/dc -> (1, 1); at 30 digits."""
    act, gelu = get_activation("activation", expr=GELU_EXPR), get_activation("gelu")
    M = hermite_member(_classes(act)[which], dx, dy)
    exact = (gelu.dual, gelu.dual_prime)[which](A, B, C)
    want_expr = {(2, 0): 2 * sp.diff(exact, A), (0, 2): 2 * sp.diff(exact, B),
                 (1, 1): sp.diff(exact, C)}[(dx, dy)]
    fam = functions.hermite_family(M.family[0], M.members, M.breakpoints, M.soft,
                                   M.hermite_k)
    j = M.member if M.member_y is None else M.member_y
    series = 0
    for a, b in ((1e-3, 1e-3), (1e-3, 1e4), (1.0, 1.0), (1.0, 100.0), (1e4, 1e4)):
        scale = math.sqrt(fam[M.member].numeric(a) * fam[j].numeric(b))
        fi, fj = _callable(M.f), _callable(M.g)
        hx, tx = hermite_coefficients(fi, a, M.breakpoints, M.soft, M.hermite_k)
        hy, ty = hermite_coefficients(fj, b, M.breakpoints, M.soft, M.hermite_k)
        for rho in (-0.9999, -0.9, -0.5, 0.0, 0.3, 0.7, 0.99, 0.999999):
            c = rho * math.sqrt(a * b)
            want = float(want_expr.subs({A: a, B: b, C: c}).evalf(30))
            got = M.numeric(a, b, c)
            assert abs(got - want) <= TOL * scale, (M.label, a, b, rho, got, want)
            series += hermite_series(hx, tx, hy, ty, rho) is not None
    assert series >= 15                 # most points by the series itself


@pytest.mark.parametrize("name", ["tanh", "swish"])
def test_mixed_series_against_the_quadrature(name):
    """Where the mixed series stops, it is within 1e-10 sqrt(E_i E_j) of the two-dimensional
    quadrature of the same integrands (rho in [-1, 1], variances 1e-3 .. 1e4)."""
    kind, params = ACTS[name]
    E, dE = _classes(get_activation(kind, **params))
    used = 0
    for base, (dx, dy) in ((E, (2, 0)), (E, (0, 2)), (dE, (2, 0)), (dE, (1, 1))):
        M = hermite_member(base, dx, dy)
        fam = functions.hermite_family(M.family[0], M.members, M.breakpoints, M.soft,
                                   M.hermite_k)
        j = M.member if M.member_y is None else M.member_y
        fi, fj = _callable(M.f), _callable(M.g)
        for a, b in ((1e-3, 1e-3), (1.0, 1e4), (1e4, 1.0), (3.0, 0.2)):
            scale = math.sqrt(fam[M.member].numeric(a) * fam[j].numeric(b))
            hx, tx = hermite_coefficients(fi, a, M.breakpoints, M.soft, M.hermite_k)
            hy, ty = hermite_coefficients(fj, b, M.breakpoints, M.soft, M.hermite_k)
            for rho in (-1.0, -0.9, -0.4, 0.0, 0.5, 0.9, 1.0):
                v = hermite_series(hx, tx, hy, ty, rho)
                if v is None:
                    continue
                used += 1
                q = gaussian_expectation(fi, fj, a, b, rho * math.sqrt(a * b),
                                         breakpoints=M.breakpoints, soft=M.soft)
                assert abs(v - q) <= TOL * scale, (M.label, a, b, rho, v, q)
    assert used >= 40


MLP = '''name = "ht-{act}"
input = {{ shape = [3] }}
[defaults]
weight_var = {{ value = 1.6, learn = true }}
[[layer]]
kind = "dense"
bias_var = {{ value = 0.1, learn = true }}
{hidden}
[[layer]]
kind = "dense"
bias_var = {{ value = 0.05, learn = true, name = "b2" }}
{hidden}
[[layer]]
kind = "dense"
weight_var = {{ value = 1.2, learn = true, name = "w_out" }}
'''


def _spec(name):
    kind, params = ACTS[name]
    if kind == "activation":
        hidden = f'[[layer]]\nkind = "activation"\nexpr = "{params["expr"]}"'
    elif params:
        hidden = (f'[[layer]]\nkind = "{kind}"\n'
                  + "".join(f"{k} = {v}\n" for k, v in params.items()))
    else:
        hidden = f'[[layer]]\nkind = "{kind}"'
    return MLP.format(act=name, hidden=hidden)


def _quadrature_tangents(monkeypatch, text, X, X2):
    """The gradient as before: the Hermite duals' tangents by the per-pair quadrature."""
    monkeypatch.setattr(functions.HermiteExpectationBase, "fdiff",
                        functions.QuadratureExpectationBase.fdiff)
    for memo in ("_PROGRAMS", "_MODULES", "_SOURCES"):
        monkeypatch.setattr(common, memo, {})
    sp.core.cache.clear_cache()
    try:
        return ntksym.kernel(ntksym.loads_spec(text), X, X2, kind="both", gradient=True)
    finally:
        sp.core.cache.clear_cache()


def _inputs():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((5, 3)) * np.array([[0.05], [0.5], [1.0], [3.0], [20.0]])
    return X, rng.standard_normal((2, 3))


# each activation compiles two programs (with and without tangents), 1.5-2 minutes cold on 2
# cores: tanh by default, swish and the GELU expression with -m slow (CI time, README)
@pytest.mark.parametrize("name", [n if n == "tanh" else pytest.param(n, marks=pytest.mark.slow)
                                  for n in ACTS])
def test_gradient_against_finite_differences(name):
    text = _spec(name)
    arch = ntksym.loads_spec(text)
    hypers = arch.hyperparameters
    assert len(hypers) == 4
    X, X2 = _inputs()
    for args in ((X, None), (X, X2)):
        G = ntksym.kernel(arch, *args, kind="both", gradient=True)
        for h, v in hypers.items():
            step = 1e-4 * v
            # K from the same compiled program (its K equals the plain program's, tested
            # elsewhere); the differences are of K only, independent of the tangent code
            plus = ntksym.kernel(arch.with_hyperparameters({h: v + step}), *args, kind="both",
                                 gradient=True)
            minus = ntksym.kernel(arch.with_hyperparameters({h: v - step}), *args, kind="both",
                                  gradient=True)
            for k in ("nngp", "ntk"):
                g = G[f"d{k}/d[{h}]"]
                fd = (plus[k] - minus[k]) / (2 * step)
                assert np.isfinite(g).all()
                err = np.abs(fd - g).max() / np.abs(g).max()
                assert err < 1e-7, (name, h, k, err)


# compiling the old quadrature-tangent programs costs minutes cold: -m slow only (the default
# run checks the series tangents against central differences above)
@pytest.mark.slow
@pytest.mark.parametrize("name", list(ACTS))
def test_gradient_equals_the_quadrature_tangents(name, monkeypatch):
    text = _spec(name)
    X, _ = _inputs()
    got = ntksym.kernel(ntksym.loads_spec(text), X, kind="both", gradient=True)
    old = _quadrature_tangents(monkeypatch, text, X, None)
    for key, want in old.items():
        assert np.abs(got[key] - want).max() <= 1e-10 * np.abs(want).max(), key


def test_pair_code_calls_series_only():
    from ntksym.codegen.vector import generate_vector_source
    prog = ntksym.loads_spec(_spec("tanh")).derive(gradient=True)
    src = generate_vector_source(prog)
    diag = src[src.index("def diag_state"):src.index("def pair(")]
    pair = src[src.index("def pair("):src.index("def diagonal(")]
    assert "_quad" not in pair and "_full(" not in pair and "_coef(" not in pair
    assert diag.count("_coef(") == 2                   # one vector per tanh layer
    assert pair.count("_m2_0(") == 2 and pair.count("_m0_2(") == 2     # d/da, d/db of phi
    assert pair.count("_m3_1(") == 2 and pair.count("_m1_3(") == 2     # ... of phi'
    assert "def _h_series_xy_k%d(" % TANGENT_K in src
    # the quadrature fallback of a mixed member integrates the same functions
    assert "return _herm_0_m2_0_quad(a, b, c)" in src


def test_programs_without_tangents_are_unchanged():
    from ntksym.codegen.vector import generate_vector_source
    plain = ntksym.loads_spec(_spec("tanh")).derive()
    src = generate_vector_source(plain)
    assert "_h_series_xy" not in src and "_m2_0" not in src and "_herm_0_m3" not in src


def test_derive_names_the_mixed_members():
    prog = ntksym.loads_spec(_spec("tanh")).derive(gradient=True)
    text = str(prog)
    for label in ("tanh''|tanh", "tanh|tanh''", "tanh'''|tanh'", "tanh'|tanh'''", "tanh''"):
        assert "E_H%d[%s](" % (TANGENT_K, label) in text, label
    assert r"\mathbb{E}^{\mathrm{H}%d}_{tanh''|tanh}" % TANGENT_K in prog.latex()


@pytest.mark.slow      # about 70 s of cold compilation; CNN gradients: test_finite_differences
def test_image_program_mixed_members_per_pair():
    """Image programs call the mixed members' ``_full`` form; a tiny tanh CNN's gradient
    agrees with central differences."""
    from ntksym.codegen.image import generate_image_source
    arch = ntksym.loads_spec('name = "hc"\ninput = { shape = [2, 2, 1] }\n[defaults]\n'
                             'weight_var = { value = 1.5, learn = true }\n'
                             '[[layer]]\nkind = "conv"\nactivation = "tanh"\n'
                             'bias_var = { value = 0.2, learn = true }\n'
                             '[[layer]]\nkind = "global_avg_pool"\n[[layer]]\nkind = "dense"\n')
    assert "_m2_0_full(" in generate_image_source(arch.derive(gradient=True))
    X = np.random.default_rng(4).standard_normal((3, 2, 2, 1))
    G = ntksym.kernel(arch, X, kind="ntk", gradient=True)
    for h, v in arch.hyperparameters.items():
        step = 1e-4 * v
        fd = (ntksym.kernel(arch.with_hyperparameters({h: v + step}), X, kind="ntk")
              - ntksym.kernel(arch.with_hyperparameters({h: v - step}), X, kind="ntk")) / (2 * step)
        g = G[f"dntk/d[{h}]"]
        assert np.abs(fd - g).max() <= 1e-7 * np.abs(g).max(), h


def _layer_blocks(text):
    """{node: (its description line, its formula lines)} of a printed program."""
    blocks, node = {}, None
    for line in text.splitlines():
        if line and not line.startswith(" ") and ": " in line and not line.startswith("output"):
            node = line.split(":", 1)[0]
            blocks[node] = (line, [])
        elif node is not None and line.startswith("  "):
            blocks[node][1].append(line)
    return blocks


@pytest.mark.parametrize("first_fixed", [False, True])
def test_derive_gradient_states_the_degree_it_evaluates(first_fixed):
    """``ntksym derive --gradient``: the tanh layer's line states the highest degree of the
    series the code sums (the generated module's constant for the family its calls use), the
    same K as the E_H<K> of its formulas: 127 once the duals share the family extended for the
    tangents, 95 where no tangent passes through the layer (learnable constant after it) and
    without --gradient.  Before the fix the line said 95 over formulas of E_H127."""
    import re

    from click.testing import CliRunner

    from cli import app
    from ntksym.codegen.vector import generate_vector_source
    first = "weight_var = 1.5" if first_fixed else "weight_var = { value = 1.5, learn = true }"
    text = (f'name = "k"\ninput = {{ shape = [3] }}\n[[layer]]\nkind = "dense"\n'
            f'activation = "tanh"\n{first}\n[[layer]]\nkind = "dense"\n'
            f'bias_var = {{ value = 0.1, learn = true }}\n')
    arch = ntksym.loads_spec(text)
    for gradient in (True, False):
        with CliRunner().isolated_filesystem():
            with open("k.toml", "w") as f:
                f.write(text)
            res = CliRunner().invoke(app, ["derive", "k.toml"] + ["--gradient"] * gradient)
        assert res.exit_code == 0, res.output
        line, formulas = _layer_blocks(res.output)["tanh_1"]
        stated = [int(k) for k in re.findall(r"k <= K <= (\d+) per pair", line)]
        used = {int(k) for f in formulas for k in re.findall(r"E_H(\d+)\[", f)}
        want = TANGENT_K if gradient and not first_fixed else HERMITE_K
        assert stated == [want] and used == {want}, (gradient, line, used)
        # the generated code sums that family's series to that degree
        src = generate_vector_source(arch.derive(gradient=gradient))
        consts = {int(k) for k in re.findall(r"^_H(?:K\d+)?_K = (\d+)$", src, re.M)}
        assert want in consts, consts
        if want == TANGENT_K:
            assert "def _h_series_xy_k%d(" % TANGENT_K in src
