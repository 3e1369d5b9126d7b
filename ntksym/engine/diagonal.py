"""The diagonal K(x_i, x_i) alone, by each program's exact per-example rule.

A Gaussian process asks for the prior variance of test points (``Kernel.diag``); the generated
modules compute it in their per-example pass (the pass that K(X, X) uses for its diagonal), so
no pair is evaluated.  Sequence programs compute their diagonal inside the pair drivers: there
it is K(x_i, x_i) of one example at a time.

>>> import numpy as np, ntksym
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [2] }\\n'
...                          '[[layer]]\\nkind = "dense"\\nactivation = "relu"\\n'
...                          '[[layer]]\\nkind = "dense"\\n')
>>> X = np.array([[1.0, 0.0], [3.0, 4.0]])
>>> d = kernel_diagonal(arch, X, "nngp")
>>> bool(np.allclose(d, np.diag(ntksym.kernel(arch, X, kind="nngp"))))
True
"""

from __future__ import annotations

import numpy as np

from ntksym.engine.common import check_data, compiled, hyper_values, output_names, program


def kernel_diagonal(arch, X, kind="ntk"):
    """K(x_i, x_i) for the rows of X (an array of examples of the spec's input shape):
    (n,) float64.  ``kind``: "nngp" or "ntk"."""
    (name,) = output_names(arch, kind)
    prog = program(arch)
    hp = hyper_values(arch, prog)
    extra = () if hp is None else (hp,)
    if prog.input_kind == "sequence":
        from ntksym.engine.dispatch import kernel
        return np.array([kernel(arch, X[i:i + 1], kind=kind)[0, 0] for i in range(len(X))])
    X = check_data(X, arch.input_shape, "X")
    mod = compiled(arch)
    q = mod.OUTPUTS.index(name)
    if prog.input_kind == "vector":
        _, O = mod.diagonal(np.einsum("ij,ij->i", X, X) / float(mod.INPUT_SCALE), *extra)
    else:
        X1 = np.ascontiguousarray(X.reshape(X.shape[0], X.shape[1] * X.shape[2], X.shape[3]))
        _, O = mod.diagonal(X1, *extra)
    return np.array(O[:, q])
