"""ntksym: infinite-width NNGP and NTK kernels from a spec file.

    import ntksym
    arch = ntksym.load_spec("spec/cntk_mlp_depth3.toml")
    print(arch.derive())                          # the recursion, every constant visible
    K = ntksym.kernel(arch, X, kind="ntk")        # generated Numba code, float64
    E = ntksym.empirical_kernel(arch, X, width=1024, samples=16, seed=0)

See docs/conventions.md for the conventions.
"""

import os as _os
import sys as _sys

from ntksym.errors import DataError, NtksymError, SpecError

if "numpy" not in _sys.modules:
    # OpenBLAS's idle threads spin for 2**OPENBLAS_THREAD_TIMEOUT cycles after each call (28 by
    # default: about 0.1 s), taking a core from the Numba pair loop that follows the Gram
    # product (that loop ran 1.6x slower on 2 cores, docs/benchmarks.md).  2**20 cycles (under
    # 1 ms) still keeps back-to-back BLAS calls warm.  OpenBLAS reads it once, when numpy loads
    # it, so it can only be set here if numpy is not loaded yet; the user's own value wins.
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

__version__ = "0.1.0"

# Loaded on first use (PEP 562): ``import ntksym`` (and ``ntksym --help``) stays as cheap as the
# errors above; the spec machinery (sympy, networkx) arrives with the first spec.
_LAZY = {"Architecture": "Architecture", "load_spec": "load_spec",
         "loads_spec": "loads_spec_arch"}


def __getattr__(name):
    if name in _LAZY:
        from ntksym import architecture
        value = getattr(architecture, _LAZY[name])
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ntksym' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


def kernel(arch, X, X2=None, kind="ntk", **kw):
    """Kernel matrix of ``arch`` (an Architecture or a spec path) on data; see
    :func:`ntksym.engine.dispatch.kernel`."""
    from ntksym.architecture import as_architecture
    from ntksym.engine.dispatch import kernel as _kernel
    return _kernel(as_architecture(arch), X, X2, kind=kind, **kw)


def empirical_kernel(arch, X, X2=None, **kw):
    """Empirical/Monte Carlo kernels of the finite network; see
    :func:`ntksym.empirical.montecarlo.empirical_kernel`."""
    from ntksym.architecture import as_architecture
    from ntksym.empirical.montecarlo import empirical_kernel as _emp
    return _emp(as_architecture(arch), X, X2, **kw)


__all__ = ["Architecture", "load_spec", "loads_spec", "kernel", "empirical_kernel",
           "NtksymError", "SpecError", "DataError", "__version__"]
