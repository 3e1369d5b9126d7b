"""Compile the generated CUDA kernels to PTX without a GPU and count fp64 instructions.

The CUDA simulator runs kernels as Python, so it cannot tell whether a kernel compiles for a
real GPU or whether an fp32 kernel silently computes in double precision.  This script
compiles ``pair_kernel`` and ``diagonal_kernel`` of each spec (the MLP specs, and the CNTK-GAP
and CNTK-V image specs on 32 x 32 x 3 through ntksym.codegen.cuda_slices) for a fixed compute
capability (numba-cuda's ``compile_ptx``; needs only NVVM/NVRTC, e.g. the pip wheels
``numba-cuda nvidia-cuda-nvcc-cu12 nvidia-cuda-nvrtc-cu12``, no driver) and fails if an fp32
kernel contains any ``.f64`` instruction.

    PYTHONPATH=. python benchmarks/check_gpu_ptx.py [SPEC.toml ...]

Exit status: 0 all compiled (fp32 free of f64), 1 a failure, 2 numba-cuda/NVVM not installed.
"""

from __future__ import annotations

import re
import sys

SPECS = ["spec/cntk_mlp_depth3.toml", "spec/erf_mlp_bias.toml", "spec/leaky_relu_mlp.toml",
         "spec/cntk_gap_depth4.toml", "spec/cntk_v_depth4.toml", "spec/cntk_gap_depth21.toml"]
CC = (8, 0)


def main(paths):
    try:
        import numba.cuda.dispatcher as dispatcher
        from numba import boolean, cuda, float32, float64, int64, types
    except Exception as e:
        print(f"check_gpu_ptx: numba.cuda unavailable ({e})", file=sys.stderr)
        return 2
    if getattr(cuda, "implementation", "") != "NVIDIA":
        print("check_gpu_ptx: needs the numba-cuda package (pip install numba-cuda "
              "nvidia-cuda-nvcc-cu12 nvidia-cuda-nvrtc-cu12)", file=sys.stderr)
        return 2

    # Device functions called from a kernel are compiled for the *current* device's compute
    # capability, which needs a driver; without one, pretend to be a CC 8.0 device.
    class _Device:
        compute_capability = CC

    dispatcher.get_current_device = lambda: _Device()

    import ntksym
    from ntksym.codegen.cuda import compile_cuda_program
    from ntksym.codegen.cuda_slices import compile_cuda_image_program
    failed = False
    for path in paths:
        arch = ntksym.load_spec(path)
        image = len(arch.input_shape) == 3
        for dtype, nt in (("float32", float32), ("float64", float64)):
            A2, A3 = types.Array(nt, 2, "C"), types.Array(nt, 3, "C")
            sel = types.Array(int64, 1, "C")
            if image:
                mod = compile_cuda_image_program(arch.derive(), dtype)
                pair_sig = (A3, A3, A3, A3, sel, sel, sel, A2, A3)
                diag_sig = (A3, A3, A2, A3)
            else:
                mod = compile_cuda_program(arch.derive(), dtype)
                pair_sig = (A2, A2, int64, int64, A2, A2, sel, A3, boolean)
                diag_sig = (A2, A2, A2)
            try:
                ptx, _ = cuda.compile_ptx(mod.pair_kernel.py_func, pair_sig, cc=CC)
                dptx, _ = cuda.compile_ptx(mod.diagonal_kernel.py_func, diag_sig, cc=CC)
            except Exception as e:
                if "libnvvm" in str(e) or "nvrtc" in str(e).lower():
                    print(f"check_gpu_ptx: NVVM/NVRTC not found ({e})", file=sys.stderr)
                    return 2
                print(f"FAIL {path} {dtype}: {type(e).__name__}: {e}")
                failed = True
                continue
            f64 = len(re.findall(r"\.f64\b", ptx)) + len(re.findall(r"\.f64\b", dptx))
            ok = dtype == "float64" or f64 == 0
            failed |= not ok
            print(f"{'ok  ' if ok else 'FAIL'} {path} {dtype}: pair_kernel {ptx.count(chr(10))} "
                  f"PTX lines, .f64 instructions in both kernels: {f64}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or SPECS))
