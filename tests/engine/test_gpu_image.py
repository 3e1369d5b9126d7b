"""The numba.cuda backend for image programs (ntksym.codegen.cuda_slices, ntksym.engine.gpu)
under Numba's CUDA simulator, against the CPU engine on tiny images.

The simulator runs every thread of a block as a Python thread, so the images are 4x4 or 5x5 and
n = 3.  The CPU reference is ntksym.kernel(device="cpu") (the per-offset-slice schedule, itself
checked against the full (H W)^2 schedule and brute force in test_cnn_slices.py and
test_cnn_bruteforce.py).  Tolerances: 1e-12 relative to max |K| in fp64, 1e-5 in fp32.
"""

import os
import re
import subprocess
import sys

os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

from numba.core import config  # noqa: E402

config.reload_config()
from numba import cuda  # noqa: E402

if not cuda.device_array.__module__.startswith("numba.cuda.simulator"):
    raise RuntimeError("tests/test_gpu_image.py needs the CUDA simulator, but numba.cuda was "
                       "imported before NUMBA_ENABLE_CUDASIM=1 could take effect")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import ntksym  # noqa: E402
from ntksym.errors import DeviceError  # noqa: E402
from testkit import ROOT, cntk_toml  # noqa: E402

HEAD = 'name = "{name}"\ninput = {{ shape = {shape} }}\n'
CONV = '[[layer]]\nkind = "conv"\n'
SPECS = {
    # CNTK-GAP (Arora et al. 2019), depth 3, every layer trained, zero padding
    "gap-zero": cntk_toml([4, 4, 1], name="g_gap"),
    # CNTK-V with the first and last layer fixed, 5x5x2, one 'valid' layer (the grid shrinks)
    "v-frozen-valid": cntk_toml([5, 5, 2], [{"padding": "valid"}, {}], readout="flatten",
                                first={"trainable": False}, dense={"trainable": False},
                                name="g_v"),
    # circular padding, GAP, biases, erf, a 2x3 filter, a ReLU dense layer after the readout
    "gap-circular-tail": HEAD.format(name="g_circ", shape="[4, 5, 2]") + '''
[[layer]]
kind = "conv"
padding = "circular"
bias_var = 0.1
activation = "erf"
[[layer]]
kind = "conv"
padding = "circular"
filter = [2, 3]
activation = "relu"
[[layer]]
kind = "global_avg_pool"
[[layer]]
kind = "dense"
activation = "relu"
[[layer]]
kind = "dense"
''',
    # circular padding, flatten readout (offset 0 only), leaky ReLU
    "v-circular": HEAD.format(name="g_vcirc", shape="[4, 4, 1]") + '''
[[layer]]
kind = "conv"
padding = "circular"
activation = "leaky_relu(0.2)"
[[layer]]
kind = "conv"
padding = "circular"
activation = "relu"
[[layer]]
kind = "flatten"
[[layer]]
kind = "dense"
''',
    # a residual block (issue 14): the add reads two slices of one offset, GAP readout
    "residual-gap": HEAD.format(name="g_res", shape="[4, 4, 2]") + '''
[[layer]]
kind = "conv"
bias_var = 0.1
id = "stem"
[[layer]]
kind = "relu"
[[layer]]
kind = "conv"
id = "branch"
[[layer]]
kind = "add"
inputs = ["stem", "branch"]
scales = [1.0, 0.5]
[[layer]]
kind = "relu"
[[layer]]
kind = "global_avg_pool"
[[layer]]
kind = "dense"
''',
}
RNG = np.random.default_rng(11)


def _arch(key):
    return ntksym.loads_spec(SPECS[key])


def _data(arch, n, seed=0):
    return np.random.default_rng(seed).standard_normal((n,) + tuple(arch.input_shape))


def _rel_err(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


@pytest.mark.parametrize("key", list(SPECS))
def test_image_gpu_matches_cpu(key):
    """K(X, X) and K(X, X2), NNGP and NTK, fp64 to 1e-12 and fp32 to 1e-5 of the CPU."""
    arch = _arch(key)
    X, X2 = _data(arch, 3), _data(arch, 2, seed=1)
    cpu = {"sym": ntksym.kernel(arch, X, kind="both", progress=False),
           "cross": ntksym.kernel(arch, X, X2, kind="both", progress=False)}
    for dtype, tol in (("float64", 1e-12), ("float32", 1e-5)):
        gpu = {"sym": ntksym.kernel(arch, X, kind="both", device="gpu", dtype=dtype),
               "cross": ntksym.kernel(arch, X, X2, kind="both", device="gpu", dtype=dtype)}
        for block in ("sym", "cross"):
            for k in ("nngp", "ntk"):
                assert gpu[block][k].dtype == np.dtype(dtype)
                assert gpu[block][k].shape == cpu[block][k].shape
                err = _rel_err(gpu[block][k], cpu[block][k])
                assert err < tol, (key, dtype, block, k, err)
        assert np.array_equal(gpu["sym"]["ntk"], gpu["sym"]["ntk"].T)
        if dtype == "float64":
            # the diagonal is K(x, x) from the exact self pass on both devices
            np.testing.assert_allclose(np.diag(gpu["sym"]["ntk"]), np.diag(cpu["sym"]["ntk"]),
                                       rtol=1e-13)


# biases after linear convolutions: per-layer NTK terms that are constants (0.1) enter a patch
# sum and the readout
BIASED = HEAD.format(name="g_bias", shape="[4, 4, 1]") + '''
[[layer]]
kind = "conv"
bias_var = 0.1
[[layer]]
kind = "conv"
activation = "relu"
[[layer]]
kind = "conv"
bias_var = 0.1
[[layer]]
kind = "global_avg_pool"
[[layer]]
kind = "dense"
'''


def test_global_scratch_per_layer_constants_and_chunks():
    """Slots in global memory (no shared-memory budget), per-layer NTK terms (constant entries
    into a patch sum and into the readout), several pair_kernel launches (chunks of 2 pairs),
    a 3 x 2 cross block."""
    import sympy as sp

    from ntksym.engine.common import compiled, output_names
    from ntksym.engine.gpu import gpu_image_kernel
    arch = ntksym.loads_spec(BIASED)
    program = arch.derive(per_layer=True)
    consts = [(s.op.label, x) for s in program.steps if hasattr(s, "op") for x in s.inputs
              if not isinstance(x, sp.Symbol)]
    assert {op for op, _ in consts} == {"patch_sum", "global_avg"}, consts
    X, X2 = _data(arch, 3, seed=2), _data(arch, 2, seed=3)
    names = output_names(arch, "both", per_layer=True)
    assert len(names) > 3
    cpu = ntksym.kernel(arch, X, kind="both", per_layer=True, progress=False)
    out = gpu_image_kernel(arch, X, None, names, per_layer=True, chunk=2, shared_bytes=0)
    assert compiled(arch, True, "cuda-slices", dtype="float64", shared_bytes=0).SHARED is False
    for q, n in enumerate(names):
        assert _rel_err(out[q], cpu[n]) < 1e-12, n
    out = gpu_image_kernel(arch, X, None, names, dtype="float32", per_layer=True, chunk=2)
    for q, n in enumerate(names):
        assert _rel_err(out[q], cpu[n]) < 1e-5, n
    out = gpu_image_kernel(arch, X, X2, ["ntk"], chunk=2, shared_bytes=0)
    assert _rel_err(out[0], ntksym.kernel(arch, X, X2, progress=False)) < 1e-12


def test_pair_chunks_cover_each_pair_once():
    from ntksym.engine.gpu import pair_chunks
    for n1, n2, sym in ((7, 7, True), (5, 3, False), (1, 1, True)):
        seen = [(int(i), int(j)) for I, J in pair_chunks(n1, n2, sym, chunk=4)
                for i, j in zip(I, J)]
        want = [(i, j) for i in range(n1) for j in range(n2) if j > i or not sym]
        assert sorted(seen) == want and len(seen) == len(set(seen))


def test_fp32_source_has_only_float32_literals():
    """A bare Python float in device code is a float64 and would promote fp32 arithmetic to
    double precision; every literal of the fp32 module must be np.float32(...)."""
    from ntksym.codegen.cuda_slices import generate_cuda_image_source
    for key in SPECS:
        src = generate_cuda_image_source(_arch(key).derive(per_layer=True), "float32")
        code = src.split('"""', 2)[2]                       # past the module docstring
        code = re.sub(r'""".*?"""', "", code, flags=re.S)   # and the functions' docstrings
        code = re.sub(r"#.*", "", code)
        for m in re.finditer(r"(?<![\w.])\d+\.\d*(e[-+]?\d+)?", code):
            assert code[:m.start()].endswith(("np.float32(", "np.float32(-")), \
                (key, code[m.start() - 40:m.end()])
        assert "float64" not in code


STRIDED = HEAD.format(name="g_stride", shape="[4, 4, 1]") + CONV + '''stride = 2
activation = "relu"
[[layer]]
kind = "global_avg_pool"
[[layer]]
kind = "dense"
'''
POOLED = HEAD.format(name="g_pool", shape="[4, 4, 1]") + CONV + '''activation = "relu"
[[layer]]
kind = "avg_pool"
window = 2
[[layer]]
kind = "flatten"
[[layer]]
kind = "dense"
'''
TANH = HEAD.format(name="g_tanh", shape="[4, 4, 1]") + CONV + '''activation = "tanh"
[[layer]]
kind = "global_avg_pool"
[[layer]]
kind = "dense"
'''


@pytest.mark.parametrize("text,match", [(STRIDED, "mix pixel offsets"),
                                        (POOLED, "mix pixel offsets"),
                                        (TANH, "Gauss quadrature")],
                         ids=["strided", "avg_pool", "tanh"])
def test_refusals(text, match):
    arch = ntksym.loads_spec(text)
    with pytest.raises(DeviceError, match=match):
        ntksym.kernel(arch, _data(arch, 2), device="gpu")


def _cli(args, sim):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    if sim:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return subprocess.run([sys.executable, str(ROOT / "cli.py")] + args, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_cli_refused_image_spec_exits_2(tmp_path):
    spec = tmp_path / "pool.toml"
    spec.write_text(POOLED)
    x = tmp_path / "x.npy"
    np.save(x, _data(ntksym.loads_spec(POOLED), 2))
    out = tmp_path / "K.npy"
    r = _cli(["kernel", str(spec), "--x", str(x), "--device", "gpu", "-o", str(out)], True)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "mix pixel offsets" in lines[0] and "--device cpu" in lines[0]
    assert not out.exists()


def test_cli_image_without_gpu_exits_2(tmp_path):
    """Without the simulator and without a GPU, an image spec gets the no-GPU message."""
    probe = subprocess.run([sys.executable, "-c", "from numba import cuda; "
                            "print(cuda.is_available())"], capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items()
                                if k != "NUMBA_ENABLE_CUDASIM"})
    if probe.stdout.strip() == "True":
        pytest.skip("a real GPU is present: the no-GPU path cannot be exercised here")
    out = tmp_path / "K.npy"
    r = _cli(["kernel", str(ROOT / "spec" / "cntk_gap_digits_depth4.toml"), "--dataset",
              "digits:3", "--device", "gpu", "-o", str(out)], False)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA GPU is available" in lines[0], r.stderr
    assert not out.exists()


def test_cli_image_on_simulator_matches_cpu(tmp_path):
    spec = tmp_path / "gap.toml"
    spec.write_text(SPECS["gap-zero"])
    arch = _arch("gap-zero")
    X = _data(arch, 3, seed=5)
    x = tmp_path / "x.npy"
    np.save(x, X)
    g = tmp_path / "g.npy"
    r = _cli(["kernel", str(spec), "--x", str(x), "--device", "gpu", "--json", "-o", str(g)],
             True)
    assert r.returncode == 0, r.stderr
    assert _rel_err(np.load(g), ntksym.kernel(arch, X, progress=False)) < 1e-12


def test_docstring_examples():
    import doctest

    import ntksym.codegen.cuda_slices
    import ntksym.engine.gpu
    for mod in (ntksym.codegen.cuda_slices, ntksym.engine.gpu):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.failed == 0 and res.attempted > 0, mod.__name__


def test_identical_images_get_the_exact_diagonal_on_the_gpu():
    """Byte-identical images: K(x0, x3) is K(x0, x0) exactly, in K(X, X) and K(X, X2), as on
    the CPU (the pair recursion alone differs in the last digits near correlation 1)."""
    arch = _arch("gap-zero")
    X = _data(arch, 4)
    X[3] = X[0]
    K = ntksym.kernel(arch, X, kind="ntk", device="gpu")
    assert K[0, 3] == K[0, 0] == K[3, 3] == K[3, 0]
    C = ntksym.kernel(arch, X[:2], X[[3, 1]], kind="ntk", device="gpu")
    assert C[0, 0] == K[0, 0] and C[1, 1] == K[1, 1]
