"""Evaluate compiled vector (MLP) kernel programs: one BLAS Gram product, then the fused
generated loop over the pairs (upper triangle only for K(X, X)).

Called by :func:`ntksym.engine.dispatch.kernel` for specs with inputs (n, d).

>>> import numpy as np, ntksym
>>> from ntksym.engine.common import compiled, finish
>>> arch = ntksym.loads_spec('name = "m"\\ninput = { shape = [2] }\\n'
...                          '[[layer]]\\nkind = "dense"\\nactivation = "relu"\\n'
...                          '[[layer]]\\nkind = "dense"\\n')
>>> out, diag, select = vector_kernel(compiled(arch), np.eye(2), None, ["nngp"], "float64")
>>> K = finish(out, ["nngp"], "float64", diag, select)
>>> bool(np.allclose(K, ntksym.kernel(arch, np.eye(2), kind="nngp")))
True
"""

from __future__ import annotations

import numpy as np


def vector_kernel(mod, X, X2, names, dtype, hp=None):
    """(out, diagonal, select) for :func:`ntksym.engine.common.finish`: out is the stacked
    (len(names), n1, n2) float64 result with its diagonal still to fill (``diagonal`` is None
    for a cross block K(X, X2)).

    X, X2 are validated float64 (n, d) arrays (:func:`ntksym.engine.common.check_data`);
    ``hp``: the values of the learnable constants of a module that has them.
    """
    extra = () if hp is None else (hp,)
    select = np.array([mod.OUTPUTS.index(o) for o in names], dtype=np.int64)
    scale = float(mod.INPUT_SCALE)
    D1, O1 = mod.diagonal(np.einsum("ij,ij->i", X, X) / scale, *extra)
    if X2 is None:
        G, D2, symmetric = X @ X.T, D1, True
    else:
        D2, _ = mod.diagonal(np.einsum("ij,ij->i", X2, X2) / scale, *extra)
        G, symmetric = X @ X2.T, False
    G /= scale
    if len(names) == 1 and dtype == "float64":
        out = G.reshape((1,) + G.shape)      # in place: each entry is read before it is written
    else:
        out = np.empty((len(names),) + G.shape, dtype=np.float64)
    mod.cross_tile(G, D1, D2, select, out, symmetric, *extra)
    return out, (O1 if symmetric else None), select
