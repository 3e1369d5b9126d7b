"""The entry point of code generation: a KernelProgram and a target -> module source.

One table maps (input kind, target) to the generator that lowers it; every generator
imports only :mod:`ntksym.codegen.common` (and the slice schedule its target shares), never
this module, so there is no import circle.

>>> import ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [3] }\\n[[layer]]\\nkind = "dense"\\n')
>>> "def cross_tile" in generate_source(arch.derive())
True
>>> "def pair_kernel" in generate_source(arch.derive(), target="cuda", dtype="float32")
True
"""

from __future__ import annotations

from ntksym.errors import DeviceError
from ntksym.ir.program import KernelProgram

TARGETS = ("cpu", "cuda")


def _generator(input_kind, target):
    """The source generator of (input kind, target), imported on first use (the CUDA
    modules, and the sequence templates, are not needed by most runs)."""
    if (input_kind, target) == ("vector", "cpu"):
        from ntksym.codegen.vector import generate_vector_source as gen
    elif (input_kind, target) == ("image", "cpu"):
        from ntksym.codegen.image import generate_image_source as gen
    elif (input_kind, target) == ("sequence", "cpu"):
        from ntksym.codegen.sequence import generate_sequence_source as gen
    elif (input_kind, target) == ("vector", "cuda"):
        from ntksym.codegen.cuda import generate_cuda_source as gen
    elif (input_kind, target) == ("image", "cuda"):
        from ntksym.codegen.cuda_slices import generate_cuda_image_source as gen
    elif target == "cuda" and input_kind == "sequence":
        raise DeviceError("the GPU backend runs MLP and convolutional specs only; sequence "
                          "inputs: use --device cpu (device='cpu')")
    else:
        raise ValueError(f"no code generator for input kind {input_kind!r} and target "
                         f"{target!r} (targets: {', '.join(TARGETS)})")
    return gen


def generate_source(program: KernelProgram, target="cpu", **options) -> str:
    """The standalone module of ``program`` for ``target`` ("cpu": Numba, "cuda": numba.cuda),
    as Python source text.  ``options`` go to the target's generator (cuda: ``dtype``, and
    ``shared_bytes`` for images)."""
    return _generator(program.input_kind, target)(program, **options)


def module_stem(program: KernelProgram, target="cpu", **options) -> str:
    """The name stem of the cached module of ``program`` (:mod:`ntksym.codegen.cache`)."""
    name = program.name.replace("-", "_")
    if target == "cuda":
        prefix = "cuda_image_" if program.input_kind == "image" else "cuda_"
        name = prefix + name + "_" + options.get("dtype", "float64")
    return name


def compile_program(program: KernelProgram, target="cpu", source=None, **options):
    """Generate (unless ``source`` is given), cache on disk (keyed by the source hash) and
    import the module.

    CUDA device code compiles lazily, at the first launch (numba.cuda JIT; nothing is
    compiled under the simulator)."""
    from ntksym.codegen.cache import load_module
    if source is None:
        source = generate_source(program, target, **options)
    return load_module(source, module_stem(program, target, **options))
