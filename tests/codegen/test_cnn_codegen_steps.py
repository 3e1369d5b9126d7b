"""Structure of the generated slice-schedule modules that keeps their cold JIT independent of
depth (ntksym/codegen/steps.py): the repeated layers of a deep CNTK share their step
functions, and the pass functions loop over a constant table of calls, one row per call.  This
checks the structure the compile time rests on, not a wall-clock time."""

import re

import pytest
import sympy as sp

from ntksym.apps.reproduce.arora import digits_arch
from ntksym.codegen.image import ImagePrinter, generate_image_source
from ntksym.codegen.steps import StepFunctions, canonical
from ntksym.ir.program import Assign


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
def test_compiled_code_does_not_grow_with_depth(variant):
    shapes = {}
    for depth in (4, 6, 11, 21):
        src = generate_image_source(digits_arch(variant, depth).derive())
        fns = _functions(src)
        steps = sorted(f for f in fns if f.startswith("_step"))
        # the same functions, of the same size, at every depth: the layers are rows of the
        # call tables PAIR_OPS / SELF_OPS (constants, not code)
        shapes[depth] = (len(fns), len(steps), sum(len(fns[f]) for f in steps),
                         len(fns["image_pass"]), len(fns["pair_pass"]))
        # one table row per elementwise step: conv scaling and ReLU per layer, the first
        # (frozen) conv layer a ReLU only
        table = src[src.index("PAIR_OPS = np.array(["):src.index("], dtype=np.int64)")]
        rows = [l for l in table.splitlines() if l.lstrip().startswith("[")]
        assert sum(": _step" in l for l in rows) == 2 * (depth - 1) - 1
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
