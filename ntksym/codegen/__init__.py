"""Code generation: a KernelProgram -> Numba source (CPU) or numba.cuda source (GPU), and the
on-disk cache of compiled modules."""
