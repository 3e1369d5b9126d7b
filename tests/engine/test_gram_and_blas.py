"""The pair loop's Gram product and the BLAS threads around it (docs/usage.md): the upper
Gram is X @ X.T on and above the diagonal, and ``import ntksym`` before numpy shortens
OpenBLAS's idle spinning unless the user chose a value."""

import os
import subprocess
import sys

import numpy as np
import pytest

from ntksym.engine.vector import upper_gram


@pytest.mark.parametrize("n, d, rows", [(1, 3, 4), (7, 3, 2), (50, 5, 16), (33, 40, 33)])
def test_upper_gram_is_the_upper_part_of_the_gram_matrix(n, d, rows):
    X = np.random.default_rng(n).standard_normal((n, d))
    G = upper_gram(X, rows=rows)
    # BLAS kernels of other shapes may round an entry near 0 differently in the last bit
    want = np.triu(X @ X.T)
    np.testing.assert_allclose(np.triu(G), want, rtol=1e-15, atol=1e-15 * np.abs(want).max())


def _timeout_seen(code, **env):
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", code + "; import os; "
                          "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"],
                         env={**environ, **env}, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_sets_the_openblas_spin_time_only_before_numpy_and_keeps_the_users():
    assert _timeout_seen("import ntksym") == "20"
    assert _timeout_seen("import numpy, ntksym") == "None"       # too late to matter: unset
    assert _timeout_seen("import ntksym", OPENBLAS_THREAD_TIMEOUT="26") == "26"
