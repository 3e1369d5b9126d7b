"""Readouts of width k > 1 (issue 18): the analytic kernel is the one kernel of every output;
the finite network gives one empirical NTK per output (exactly its Jacobian Gram matrix), the
mean by default, and each output's kernel converges to the same limit."""

import subprocess
import sys

import numpy as np
import pytest

import ntksym
from ntksym.empirical.network import FiniteNetwork
from ntksym.errors import SpecError
from testkit import ROOT

MLP = '''name = "k-out"
input = { shape = [3] }
[[layer]]
kind = "dense"
weight_var = 2.0
bias_var = 0.1
activation = "relu"
[[layer]]
kind = "dense"
activation = "erf"
[[layer]]
kind = "dense"
bias_var = 0.2
'''
RNN_ALL = '''name = "k-seq"
input = { shape = [3, 2] }
[[layer]]
kind = "rnn"
readout = "all"
[[layer]]
kind = "dense"
'''


def arch_of(text, k):
    return ntksym.loads_spec(text + ("" if k is None else f"width = {k}\n"))


def X(n=3, d=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def test_width_k_readout_has_the_kernel_of_width_1():
    one, four = arch_of(MLP, None), arch_of(MLP, 4)
    assert four.graph.nodes["dense_4"]["shape"] == (4,)
    K1, K4 = ntksym.kernel(one, X(), kind="both"), ntksym.kernel(four, X(), kind="both")
    for k in ("nngp", "ntk"):
        assert K4[k].shape == (3, 3)
        np.testing.assert_array_equal(K1[k], K4[k])


def test_readout_refusals():
    with pytest.raises(SpecError, match="must end in a readout"):
        ntksym.loads_spec('name = "m"\ninput = { shape = [3] }\n[[layer]]\nkind = "dense"\n'
                          '[[layer]]\nkind = "relu"\n').graph
    with pytest.raises(SpecError, match="outputs images"):
        ntksym.loads_spec('name = "c"\ninput = { shape = [4, 4, 1] }\n[[layer]]\n'
                          'kind = "conv"\nwidth = 3\n').graph


def finite_difference_ntk_per_output(net, X, h=1e-6):
    """[J_j J_j^T for every output j], J_j[i, p] = d f_j(x_i) / d theta_p, central differences
    over every parameter of the network."""
    out = net.graph.graph["output"]
    rows = []
    for node in net.order:
        for w in net.weights[node].values():
            flat = w.reshape(-1)
            for p in range(flat.size):
                old = flat[p]
                flat[p] = old + h
                fp = net.forward(X)[0][out]
                flat[p] = old - h
                fm = net.forward(X)[0][out]
                flat[p] = old
                rows.append((fp - fm) / (2 * h))            # (n, k)
    J = np.array(rows)                                      # (params, n, k)
    return np.stack([J[:, :, j].T @ J[:, :, j] for j in range(J.shape[2])])


def test_per_output_ntk_is_each_outputs_jacobian_gram():
    net = FiniteNetwork(arch_of(MLP, 3).finite_graph(4), seed=1)
    Xs = X(seed=2)
    each = net.ntk(Xs, per_output=True)
    assert each.shape == (3, 3, 3)
    np.testing.assert_allclose(each, finite_difference_ntk_per_output(net, Xs), rtol=1e-6,
                               atol=1e-9)
    np.testing.assert_allclose(net.ntk(Xs), each.mean(0), rtol=1e-15)
    assert not np.allclose(each[0], each[1])       # finite width: the outputs differ
    # per-layer terms: per output too, and they sum to the total
    total, terms = net.ntk(Xs, per_layer=True, per_output=True)
    np.testing.assert_allclose(sum(terms.values()), total, rtol=1e-13)
    assert all(t.shape == (3, 3, 3) for t in terms.values())


def test_width_1_is_unchanged():
    """A readout of width 1: the per-output kernel is the NTK as before (k = 1)."""
    net = FiniteNetwork(arch_of(MLP, None).finite_graph(5), seed=3)
    each = net.ntk(X(), per_output=True)
    assert each.shape == (1, 3, 3)
    np.testing.assert_array_equal(net.ntk(X()), each[0])


def test_each_output_converges_to_the_same_limit():
    """Per output j: within 5 standard errors of the analytic kernel at a large width, and the
    mean deviation shrinks from a narrow to a wide network (seeded: deterministic)."""
    arch, Xs = arch_of(MLP, 3), X(4)
    K = ntksym.kernel(arch, Xs, kind="ntk")
    dev = {}
    for width in (64, 2048):
        E = ntksym.empirical_kernel(arch, Xs, width=width, samples=16, seed=0, kind="ntk",
                                    per_output=True)
        each, se = E.mean["ntk_per_output"], E.stderr["ntk_per_output"]
        assert each.shape == (3, 4, 4)
        dev[width] = np.abs(E.samples["ntk_per_output"] - K).mean(axis=(0, 2, 3))   # per j
        if width == 2048:
            z = np.abs(each - K) / np.maximum(se, 1e-12)
            assert z.max() < 5, z.max(axis=(1, 2))
    assert (dev[2048] < dev[64] / 2.5).all(), (dev[64], dev[2048])


def test_sequence_readout_of_width_k():
    """rnn with readout = "all" and a dense readout of width 2: per-step outputs, per unit."""
    arch = arch_of(RNN_ALL, 2)
    seqs = np.random.default_rng(5).standard_normal((2, 3, 2))
    net = FiniteNetwork(arch.finite_graph(6), seed=0)
    each = net.ntk(seqs, per_output=True)
    assert each.shape == (2, 2, 2, 3, 3)           # (k, n1, n2, T1, T2)
    K = ntksym.kernel(arch, seqs, kind="ntk")
    assert K.shape == each.shape[1:]


def test_empirical_cli_per_output(tmp_path):
    spec = tmp_path / "k.toml"
    spec.write_text(MLP + "width = 3\n")
    np.save(tmp_path / "x.npy", X())
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "empirical", str(spec), "--x",
                        "x.npy", "--width", "32", "--samples", "3", "--per-output", "--compare",
                        "-o", "e.npz", "--json"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert '"outputs": 3' in r.stdout and '"compare"' in r.stdout
    z = np.load(tmp_path / "e.npz")
    assert z["ntk_per_output_mean"].shape == (3, 3, 3)
    np.testing.assert_allclose(z["ntk_per_output_mean"].mean(0), z["ntk_mean"], rtol=1e-13)
    help_text = subprocess.run([sys.executable, str(ROOT / "cli.py"), "empirical", "--help"],
                               capture_output=True, text=True).stdout
    assert "--per-output" in help_text and "width k > 1" in help_text
