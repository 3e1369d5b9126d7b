"""`ntksym kernel` on a sequence spec: --x2 with variable lengths and --per-layer."""

import subprocess
import sys

import numpy as np

import ntksym


def test_kernel_x2_per_layer_on_sequences(tmp_path, root):
    rng = np.random.default_rng(3)
    seqs = [rng.standard_normal((t, 4)) for t in (3, 5, 4)]
    X2, L2 = rng.standard_normal((2, 6, 4)), np.array([6, 2])
    np.savez(tmp_path / "a.npz", *seqs)                      # a list of sequences
    np.savez(tmp_path / "b.npz", x=X2, lengths=L2)           # padded, with lengths
    out = tmp_path / "k.npz"
    spec = root / "spec" / "rntk_last.toml"
    r = subprocess.run([sys.executable, "cli.py", "kernel", str(spec), "--x",
                        str(tmp_path / "a.npz"), "--x2", str(tmp_path / "b.npz"),
                        "--per-layer", "-o", str(out)], cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    z = np.load(out)
    terms = [k for k in z.files if k.startswith("ntk[")]
    assert {"ntk[rnn_0.W]", "ntk[rnn_0.A]", "ntk[rnn_0.b]", "ntk[dense_1.W]"} <= set(terms)
    np.testing.assert_allclose(sum(z[k] for k in terms), z["ntk"], rtol=1e-12, atol=1e-14)
    # the readout's W term is its input's NNGP (weight_var = 1, ntk parameterization)
    arch = ntksym.load_spec(spec)
    nngp = ntksym.kernel(arch, seqs, X2, kind="nngp", lengths2=L2)
    np.testing.assert_allclose(z["ntk[dense_1.W]"], nngp, rtol=1e-12)
    # the cross block equals the same block of the Gram matrix of all five sequences
    pad = np.zeros((5, 6, 4))
    for i, s in enumerate(seqs):
        pad[i, :len(s)] = s
    pad[3:] = X2
    full = ntksym.kernel(arch, pad, kind="ntk", lengths=np.array([3, 5, 4, 6, 2]))
    np.testing.assert_allclose(z["ntk"], full[:3, 3:], rtol=1e-12)
    assert z["ntk"].shape == (3, 2) and np.all(z["ntk"] > 0)
