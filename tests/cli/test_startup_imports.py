"""No waiting to start (issue 16): a command loads only the modules it needs.

Each test runs the command's own code path (``cli.main``) in a fresh interpreter and then lists
the heavy modules it imported.  Times are measured by benchmarks/bench_startup.py, not here.

* ``ntksym --help`` / ``--version`` / ``bounds --help``: click only (no numpy, sympy,
  networkx, let alone numba);
* ``check``, ``graph``, ``derive`` on every kind of spec (MLP, CNN, RNN, a quadrature
  activation, a user expression, masks): no Numba, no scipy, scikit-learn, matplotlib, dask;
* ``check`` and ``graph`` (text, DOT, JSON) of a spec whose activations are named (not a user
  expression) and whose masks are not magnitude masks: not even NumPy, sympy or networkx
  (issue 16: at most 1.5x ``import numpy``).  A user expression is parsed by sympy, and a
  magnitude mask's factor is a sympy integral, so those two load sympy (and NumPy).
"""

import json
import subprocess
import sys

import pytest

from testkit import ROOT

#: never needed to read a spec
COMPILERS_AND_EXTRAS = ("numba", "llvmlite", "scipy", "sklearn", "matplotlib", "dask",
                        "distributed")
#: not needed to print the help either
SPEC_MACHINERY = ("numpy", "sympy", "networkx")

#: every shipped spec but the one with a user expression: named activations (closed forms,
#: the Hermite series of tanh-like ones), CNNs, RNNs, bernoulli masks, residual graphs
NAMED = sorted({str(p.relative_to(ROOT)) for p in (ROOT / "spec").glob("*.toml")}
               - {"spec/custom_expression.toml"})

SPECS = ["spec/cntk_mlp_depth5.toml", "spec/cntk_gap_depth3.toml", "spec/cntk_v_depth3.toml",
         "spec/rntk_last.toml", "spec/clb_huberized_relu.toml", "spec/custom_expression.toml",
         "spec/vgg_small_bernoulli.toml", "spec/yang_wang_mlp.toml", "spec/erf_mlp_bias.toml"]

_PROBE = """
import json, sys
import cli
for argv in json.loads(sys.argv[1]):
    try:
        cli.main(argv)
    except SystemExit as e:
        if e.code not in (0, None):
            raise
print("\\nIMPORTED " + json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def imported_after(*argvs):
    """Top-level packages imported by running ``cli.main(argv)`` for each argv in one fresh
    interpreter."""
    r = subprocess.run([sys.executable, "-c", _PROBE, json.dumps([list(a) for a in argvs])],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.splitlines() if l.startswith("IMPORTED ")][-1]
    return set(json.loads(line[len("IMPORTED "):]))


def test_help_imports_click_only():
    mods = imported_after(["--help"], ["--version"], ["bounds", "--help"], ["kernel", "--help"],
                          ["check", "--help"])
    assert not mods & set(COMPILERS_AND_EXTRAS + SPEC_MACHINERY), mods


@pytest.mark.parametrize("command", [["check"], ["graph"], ["graph", "--format", "dot"],
                                     ["derive"], ["derive", "--format", "latex", "--per-layer"]])
def test_spec_commands_never_import_numba(command):
    mods = imported_after(*[command + [s] for s in SPECS])
    assert not mods & set(COMPILERS_AND_EXTRAS), mods & set(COMPILERS_AND_EXTRAS)


@pytest.mark.parametrize("command", [["check"], ["check", "--json"], ["graph"],
                                     ["graph", "--format", "dot"]])
def test_check_and_graph_of_named_activations_need_no_numpy_sympy_networkx(command):
    mods = imported_after(*[command + [s] for s in NAMED])
    assert not mods & set(COMPILERS_AND_EXTRAS + SPEC_MACHINERY), \
        mods & set(COMPILERS_AND_EXTRAS + SPEC_MACHINERY)


def test_check_of_a_user_expression_loads_sympy_for_it():
    """The expression is parsed and described by sympy (with ntksym.ir's NumPy); the graph
    still needs no networkx."""
    mods = imported_after(["check", "spec/custom_expression.toml"])
    assert "sympy" in mods and not mods & {"networkx", *COMPILERS_AND_EXTRAS}, \
        mods & {"sympy", "networkx", *COMPILERS_AND_EXTRAS}
