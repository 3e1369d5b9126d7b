"""RNN kernels: reductions to the MLP, structure of the time recursion, bad inputs."""

import numpy as np
import pytest

import ntksym
from ntksym.errors import DataError

RNN = '''
name = "r"
input = {{ shape = [{T}, {d}] }}
[[layer]]
kind = "rnn"
weight_var = {w}
input_var = {a}
bias_var = {b}
hidden_init_var = {h0}
activation = "{act}"
readout = "{readout}"
{extra}
[[layer]]
kind = "dense"
weight_var = 1.5
bias_var = 0.2
'''

MLP = '''
name = "m"
input = {{ shape = [{d}] }}
[[layer]]
kind = "dense"
weight_var = {a}
bias_var = {b}
activation = "{act}"
[[layer]]
kind = "dense"
weight_var = 1.5
bias_var = 0.2
'''


def rnn(T=3, d=4, w=2.0, a=1.0, b=0.1, h0=0.0, act="relu", readout="last", extra=""):
    return ntksym.loads_spec(RNN.format(T=T, d=d, w=w, a=a, b=b, h0=h0, act=act,
                                        readout=readout, extra=extra))


# one spec per case: every spec compiles two Numba modules (30-90 s on a cold cache, loaded).
# The default run keeps one case per readout, one of them a quadrature activation (tanh); the
# closed-form ReLU family's RNN duals are the MLP's, also checked by the RNN Monte Carlo tests.
@pytest.mark.parametrize("act, readout", [
    pytest.param("relu", "last", marks=pytest.mark.slow), ("erf", "mean"),
    pytest.param("leaky_relu(0.1)", "mean", marks=pytest.mark.slow), ("tanh", "last")])
def test_single_step_is_the_mlp(act, readout):
    """T = 1 and h_0 = 0: h_1 = phi(A x + b), the one-hidden-layer MLP of the same parameters."""
    X = np.random.default_rng(1).standard_normal((6, 1, 4))
    R = ntksym.kernel(rnn(T=1, act=act, readout=readout), X, kind="both")
    M = ntksym.kernel(ntksym.loads_spec(MLP.format(d=4, a=1.0, b=0.1, act=act)), X[:, 0],
                      kind="both")
    for k in ("nngp", "ntk"):
        np.testing.assert_allclose(R[k], M[k], rtol=1e-12, atol=1e-12)


def test_single_step_initial_state_enters_the_variances_only():
    """T = 1, h_0 ~ N(0, s): the pre-activation covariance is a <x, x'>/d + b + w s 1{x = x'}
    (the same example only), so the variances grow by w s and the cross terms do not; checked
    against the erf arcsine kernel (Williams 1997) written out here."""
    X = np.random.default_rng(2).standard_normal((5, 1, 4))
    R = ntksym.kernel(rnn(T=1, h0=0.5, act="erf"), X, kind="nngp")
    x = X[:, 0]
    c = x @ x.T / 4 + 0.1
    v = np.diag(c) + 2.0 * 0.5
    V = 2 / np.pi * np.arcsin(2 * c / np.sqrt(np.outer(1 + 2 * v, 1 + 2 * v)))
    np.fill_diagonal(V, 2 / np.pi * np.arcsin(2 * v / (1 + 2 * v)))
    np.testing.assert_allclose(R, 1.5 * V + 0.2, rtol=1e-12)


# ------------------------------------------------------------------------ bad inputs

def _bad_inputs_arch():
    return rnn(T=-1, d=4, readout="last")


def test_ragged_sequences_without_lengths():
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.ones((3, 4)), np.ones((2, 4))
    with pytest.raises(DataError, match="ragged"):
        ntksym.kernel(_bad_inputs_arch(), ragged)


def test_lengths_longer_than_T():
    with pytest.raises(DataError, match="lengths must lie in 1..3"):
        ntksym.kernel(_bad_inputs_arch(), np.ones((2, 3, 4)), lengths=np.array([3, 4]))


def test_feature_dimension_mismatch():
    with pytest.raises(DataError, match=r"\(n, T, 4\)"):
        ntksym.kernel(_bad_inputs_arch(), np.ones((2, 3, 5)))
    with pytest.raises(DataError, match=r"\(T_i, 4\)"):
        ntksym.kernel(_bad_inputs_arch(), [np.ones((3, 4)), np.ones((2, 5))])


def test_list_of_sequences_equals_padded_with_lengths():
    rng = np.random.default_rng(5)
    seqs = [rng.standard_normal((T, 4)) for T in (3, 1, 2)]
    X = np.full((3, 3, 4), 7.0)               # the padding must never enter
    for i, s in enumerate(seqs):
        X[i, :len(s)] = s
    arch = _bad_inputs_arch()
    K1 = ntksym.kernel(arch, seqs, kind="ntk")
    K2 = ntksym.kernel(arch, X, lengths=np.array([3, 1, 2]), kind="ntk")
    np.testing.assert_array_equal(K1, K2)


def test_cli_exit_status_2_on_bad_sequences(tmp_path):
    import subprocess
    import sys
    spec = tmp_path / "r.toml"
    spec.write_text(RNN.format(T=-1, d=4, w=2.0, a=1.0, b=0.1, h0=0.0, act="relu",
                               readout="last", extra=""))
    cases = {
        "ragged.npz": dict(x=np.ones((2, 3, 4)), lengths=np.array([2, 5])),
        "dim.npy": np.ones((2, 3, 5)),
        "nolen.npz": dict(lengths=np.array([1, 2])),
    }
    for name, data in cases.items():
        p = tmp_path / name
        if isinstance(data, dict):
            np.savez(p, **data)
        else:
            np.save(p, data)
        r = subprocess.run([sys.executable, "cli.py", "kernel", str(spec), "--x", str(p)],
                           capture_output=True, text=True)
        assert r.returncode == 2, (name, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.startswith("ntksym: error:"), r.stderr
    ok = tmp_path / "ok.npz"
    np.savez(ok, np.ones((3, 4)), np.ones((2, 4)))          # a list of sequences: arr_0, arr_1
    r = subprocess.run([sys.executable, "cli.py", "kernel", str(spec), "--x", str(ok), "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert '"shape": [\n    2,\n    2\n  ]' in r.stdout


def test_spec_errors():
    from ntksym.errors import SpecError
    with pytest.raises(SpecError, match="sequence input"):
        ntksym.loads_spec('name = "v"\ninput = { shape = [3] }\n[[layer]]\nkind = "rnn"\n'
                          '[[layer]]\nkind = "dense"\n').graph
    with pytest.raises(SpecError, match="normalize"):
        rnn(extra='normalize = ["B"]')
    with pytest.raises(SpecError, match="activation"):
        rnn(act="relux")
    with pytest.raises(SpecError, match="trainable"):
        rnn(extra='trainable = ["V"]')


def test_equal_length_fast_path_matches_the_pair_walk():
    """"last" with every length equal runs _row_eq (pairs innermost, vectorized input
    products); one shorter sequence forces the per-pair walk.  The shared block must agree."""
    arch = ntksym.load_spec("spec/rntk_last.toml")
    rng = np.random.default_rng(5)
    X = rng.standard_normal((7, 5, 4))
    short = np.zeros((1, 5, 4))
    short[0, :3] = rng.standard_normal((3, 4))
    Xs = np.concatenate([X, short])
    Ls = np.array([5] * 7 + [3])
    for kind in ("nngp", "ntk"):
        fast = ntksym.kernel(arch, X, kind=kind)
        slow = ntksym.kernel(arch, Xs, kind=kind, lengths=Ls)
        np.testing.assert_allclose(fast, slow[:7, :7], rtol=1e-13, atol=0)
        cross_fast = ntksym.kernel(arch, X[:3], X[3:], kind=kind)
        cross_slow = ntksym.kernel(arch, Xs[:3], Xs[3:], kind=kind, lengths=Ls[:3],
                                   lengths2=Ls[3:])
        np.testing.assert_allclose(cross_fast, cross_slow[:, :4], rtol=1e-13, atol=0)
