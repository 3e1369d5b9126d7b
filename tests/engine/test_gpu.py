"""The numba.cuda backend (ntksym.codegen.cuda, ntksym.engine.gpu) under Numba's CUDA simulator.

The simulator runs the generated kernels (shared memory, syncthreads, the tile grid) as Python
threads, so inputs are tiny.  It is switched on here, before anything imports numba.cuda; the
no-GPU error path runs in a subprocess without it.  What the simulator cannot show (that the
kernels compile for a real GPU, and that fp32 kernels have no fp64 instruction) is checked by
benchmarks/check_gpu_ptx.py when numba-cuda is installed (test_ptx_* below).
"""

import os
import subprocess
import sys

os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

from numba.core import config  # noqa: E402

config.reload_config()
from numba import cuda  # noqa: E402

if not cuda.device_array.__module__.startswith("numba.cuda.simulator"):
    # another test module imported numba.cuda first: these tests would need a real GPU
    raise RuntimeError("tests/test_gpu.py needs the CUDA simulator, but numba.cuda was "
                       "imported before NUMBA_ENABLE_CUDASIM=1 could take effect")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import ntksym  # noqa: E402
from ntksym.errors import DeviceError  # noqa: E402
from testkit import ROOT, SPEC_DIR  # noqa: E402

MLP_SPECS = ["cntk_mlp_depth3", "erf_mlp_bias", "leaky_relu_mlp"]
RNG = np.random.default_rng(7)
X = RNG.standard_normal((5, 64))
X2 = RNG.standard_normal((3, 64))


def _rel_err(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


def test_simulator_is_on():
    from ntksym.engine.gpu import cuda_module
    assert cuda_module() is cuda
    assert type(cuda.to_device(np.zeros(2))).__module__.startswith("numba.cuda.simulator")


@pytest.mark.parametrize("name", MLP_SPECS)
def test_gpu_matches_cpu_fp64(name):
    arch = ntksym.load_spec(SPEC_DIR / f"{name}.toml")
    cpu = ntksym.kernel(arch, X, kind="both")
    gpu = ntksym.kernel(arch, X, kind="both", device="gpu")
    for k in ("nngp", "ntk"):
        assert gpu[k].dtype == np.float64
        assert _rel_err(gpu[k], cpu[k]) < 1e-12, k
        assert np.array_equal(gpu[k], gpu[k].T)
        # the diagonal comes from the same exact per-example rule on both devices
        np.testing.assert_allclose(np.diag(gpu[k]), np.diag(cpu[k]), rtol=1e-13)
    cross = ntksym.kernel(arch, X, X2, device="gpu")
    assert cross.shape == (5, 3)
    assert _rel_err(cross, ntksym.kernel(arch, X, X2)) < 1e-12


@pytest.mark.parametrize("case", ["residual_mlp", "dense_shortcut", "concat_relu_erf",
                                  "layer_norm_mlp"])
def test_graph_mlps_on_gpu_match_cpu(case):
    """add, concat and layer_norm (issue 14): more SSA state in the same fused device code."""
    from graph_cases import CASES

    arch = ntksym.loads_spec(CASES[case].replace("[5]", "[64]"))
    for X2_ in (None, X2):
        cpu = ntksym.kernel(arch, X, X2_, kind="both")
        gpu = ntksym.kernel(arch, X, X2_, kind="both", device="gpu")
        for k in ("nngp", "ntk"):
            assert _rel_err(gpu[k], cpu[k]) < 1e-12, (case, k)


@pytest.mark.parametrize("name", MLP_SPECS)
def test_gpu_matches_cpu_fp32(name):
    arch = ntksym.load_spec(SPEC_DIR / f"{name}.toml")
    cpu = ntksym.kernel(arch, X, X2, kind="both")
    gpu = ntksym.kernel(arch, X, X2, kind="both", device="gpu", dtype="float32")
    for k in ("nngp", "ntk"):
        assert gpu[k].dtype == np.float32
        np.testing.assert_allclose(gpu[k], cpu[k], rtol=1e-5, atol=1e-5 * np.abs(cpu[k]).max())


def test_tiles_mirror_and_per_layer():
    """Several row tiles, blocks straddling the diagonal and the edges, per-layer outputs."""
    from ntksym.engine.common import output_names
    from ntksym.engine.gpu import gpu_kernel
    arch = ntksym.load_spec(SPEC_DIR / "cntk_mlp_depth3.toml")
    Xb = RNG.standard_normal((19, 64))
    names = output_names(arch, "ntk", per_layer=True)
    assert len(names) > 2
    cpu = ntksym.kernel(arch, Xb, per_layer=True)
    out = gpu_kernel(arch, Xb, None, names, per_layer=True, tile_rows=16)
    for q, n in enumerate(names):
        assert _rel_err(out[q], cpu[n]) < 1e-12, n
    # unequal shapes: 19 x 3 in tiles of 16 rows
    out = gpu_kernel(arch, Xb, X2, ["ntk"], tile_rows=16)
    assert _rel_err(out[0], ntksym.kernel(arch, Xb, X2)) < 1e-12


def test_fp32_device_code_stays_fp32():
    """The device functions, compiled by Numba for the CPU, type as float32 -> float32:
    no float64 literal promotes the arithmetic."""
    from numba import njit, types

    from ntksym.codegen.cuda import device_functions_source
    for name in MLP_SPECS:
        program = ntksym.load_spec(SPEC_DIR / f"{name}.toml").derive()
        src, n_diag = device_functions_source(program, "float32", decorator="njit")
        ns = {"njit": njit, "np": np, "math": __import__("math")}
        exec(compile(src, f"<{name} device functions>", "exec"), ns)
        t = ns["diag_state"](np.float32(1.5))
        args = [np.float32(v) for v in [0.3] + list(t[:n_diag]) * 2]   # boxed floats: re-type
        ns["pair"](*args)
        for fn in ("diag_state", "pair"):
            (sig,) = ns[fn].nopython_signatures
            assert all(a == types.float32 for a in sig.args), (name, fn, sig)
            assert all(r == types.float32 for r in sig.return_type), (name, fn, sig)


def test_refuses_sequence_and_quadrature_programs():
    """(Image specs run on the GPU: tests/test_gpu_image.py, with their refusals.)"""
    seq = ntksym.load_spec(SPEC_DIR / "rntk_last.toml")
    with pytest.raises(DeviceError, match="sequence inputs"):
        ntksym.kernel(seq, np.zeros((2, 3) + tuple(seq.input_shape[1:])), device="gpu")
    quad = ntksym.load_spec(SPEC_DIR / "clb_huberized_relu.toml")
    with pytest.raises(DeviceError, match="Gauss quadrature"):
        ntksym.kernel(quad, np.ones((2,) + tuple(quad.input_shape)), device="gpu")
    with pytest.raises(ntksym.DataError, match="unknown device"):
        ntksym.kernel(quad, np.ones((2,) + tuple(quad.input_shape)), device="tpu")


def _cli(args, sim):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    if sim:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return subprocess.run([sys.executable, str(ROOT / "cli.py")] + args, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def _real_gpu_present():
    r = subprocess.run([sys.executable, "-c",
                        "from numba import cuda; print(cuda.is_available())"],
                       capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"})
    return r.stdout.strip() == "True"


def test_cli_without_gpu_exits_2(tmp_path):
    if _real_gpu_present():
        pytest.skip("a real GPU is present: the no-GPU path cannot be exercised here")
    spec = str(SPEC_DIR / "cntk_mlp_depth3.toml")
    out = tmp_path / "K.npy"
    r = _cli(["kernel", spec, "--dataset", "digits:5", "--device", "gpu", "-o", str(out)], False)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA GPU is available" in lines[0], r.stderr
    assert "--device cpu" in lines[0]
    assert not out.exists()


def test_cli_gpu_on_simulator_matches_cpu(tmp_path):
    spec = str(SPEC_DIR / "cntk_mlp_depth3.toml")
    g = tmp_path / "g.npy"
    r = _cli(["kernel", spec, "--dataset", "digits:6", "--device", "gpu", "--json",
              "-o", str(g)], True)
    assert r.returncode == 0, r.stderr
    assert '"device": "gpu"' in r.stdout
    from ntksym.data import load_dataset
    cpu = ntksym.kernel(ntksym.load_spec(spec), load_dataset("digits:6").X)
    assert _rel_err(np.load(g), cpu) < 1e-12


def test_docstring_examples():
    import doctest

    import ntksym.codegen.cuda
    import ntksym.engine.gpu
    for mod in (ntksym.codegen.cuda, ntksym.engine.gpu):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.failed == 0 and res.attempted > 0, mod.__name__


def test_ptx_compiles_and_fp32_has_no_fp64():
    """Real-GPU compilation (PTX for CC 8.0) when numba-cuda and NVVM are installed."""
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "check_gpu_ptx.py")],
                       cwd=ROOT, capture_output=True, text=True, timeout=1800,
                       env=dict({k: v for k, v in os.environ.items()
                                 if k != "NUMBA_ENABLE_CUDASIM"}, PYTHONPATH=str(ROOT)))
    if r.returncode == 2:
        pytest.skip("numba-cuda with NVVM/NVRTC not installed: " + r.stderr.strip())
    assert r.returncode == 0, r.stdout + r.stderr
