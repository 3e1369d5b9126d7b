"""Structure of the generated slice-schedule modules that keeps their cold JIT independent of
depth (ntksym/codegen_steps.py): the repeated layers of a deep CNTK share their step
functions, and the pass functions hold only their offset loops around one call per layer.  This checks the
structure the compile time rests on, not a wall-clock time."""

import re

import pytest
import sympy as sp

from ntksym.codegen_image import ImagePrinter, generate_image_source
from ntksym.codegen_steps import StepFunctions, canonical
from ntksym.ir import Assign
from ntksym.reproduce.arora import digits_arch


def _functions(src):
    """{name: body lines} of every top-level function of a generated module."""
    out, name = {}, None
    for line in src.splitlines():
        m = re.match(r"def (\w+)\(", line)
        if m:
            name = m.group(1)
            out[name] = []
        elif name and line and not line.startswith((" ", "#", "@")):
            name = None
        elif name and line.startswith(" "):
            out[name].append(line)
    return out


@pytest.mark.parametrize("variant", ["CNTK-GAP", "CNTK-V"])
def test_step_functions_do_not_grow_with_depth(variant):
    shapes = {}
    for depth in (4, 6, 11, 21):
        fns = _functions(generate_image_source(digits_arch(variant, depth).derive()))
        steps = sorted(f for f in fns if f.startswith("_step"))
        # the same functions at every depth: only their call lines are per layer
        shapes[depth] = (len(fns), len(steps), sum(len(fns[f]) for f in steps))
        for f in ("image_pass", "pair_pass"):
            # no pixel loop of their own: the two offset loops around the call sequence
            loops = [l for l in fns[f] if l.lstrip().startswith(("for ", "while "))]
            assert [l.split(" in ")[0].strip() for l in loops] == ["for di", "for dj"], f
            # every elementwise step is one call line (conv scaling and ReLU per layer,
            # the first conv layer has a patch sum only)
            calls = [l for l in fns[f] if l.lstrip().startswith("_step")]
            assert len(calls) == 2 * (depth - 1) - 1, f
    assert len(set(shapes.values())) == 1, shapes
    # at most: first ReLU, first conv, later conv, later ReLU; the ReLUs in two modes
    assert shapes[4][1] <= 6


def test_canonical_names_follow_roles_not_layers():
    def relu_like(k):
        s, t = sp.symbols(f"Sigma_{k} Theta_{k}", real=True)
        sx, sy = sp.symbols(f"Sigma_{k}_xx Sigma_{k}_yy", real=True)
        return [Assign(sp.Symbol(f"Sigma_{k + 1}"), sp.sqrt(sx * sy) * s),
                Assign(sp.Symbol(f"Theta_{k + 1}"), t * s / sp.sqrt(sx * sy))]

    a, ren_a = canonical(relu_like(9), ["Sigma_9", "Theta_9"])
    b, ren_b = canonical(relu_like(10), ["Theta_10", "Sigma_10"])
    assert [(x.target, x.expr) for x in a] == [(x.target, x.expr) for x in b]
    assert ren_a["Sigma_9"] == ren_b["Sigma_10"] == "Sigma_in0"
    assert ren_b["Theta_11"] == "Theta_out1"


def test_same_step_other_buffers_shares_a_function_other_aliasing_does_not():
    fns = StepFunctions(ImagePrinter(), circular=False)
    s, t, u = sp.symbols("Sigma_4 Sigma_5 Sigma_8")
    v = sp.Symbol("Sigma_9")
    c1 = fns.call([Assign(t, 3 * s)], ["Sigma_4"], {"Sigma_4": 0, "Sigma_5": 0}, {}, (4, 4))
    c2 = fns.call([Assign(v, 3 * u)], ["Sigma_8"], {"Sigma_8": 2, "Sigma_9": 2}, {}, (5, 3))
    # written out of place: another function (in-place steps must stay one array for LLVM)
    c3 = fns.call([Assign(v, 3 * u)], ["Sigma_8"], {"Sigma_8": 2, "Sigma_9": 1}, {}, (5, 3))
    assert c1 == "_step0(buf[0], 4, 4, di, dj)"
    assert c2 == "_step0(buf[2], 5, 3, di, dj)"
    assert c3 == "_step1(buf[2], buf[1], 5, 3, di, dj)"
    assert len(fns.sources) == 2
