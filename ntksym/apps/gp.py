"""scikit-learn Gaussian-process kernels whose hyperparameters are a spec's learnable constants.

``NNGPKernel(spec=...)`` and ``NTKKernel(spec=...)`` are
:class:`sklearn.gaussian_process.kernels.Kernel` s: the infinite-width NNGP or NTK of the spec,
with ``theta`` = the logs of the learnable constants (``weight_var = { value = 2.0, learn =
true }``, docs/hyperparameters.md) in the order they appear in the spec.  ``K, dK =
kernel(X, eval_gradient=True)`` comes from one fused pass of the generated code (the kernel
and every dK/dtheta together); the values are run-time arguments of that code, so an
optimizer never recompiles.  They compose with ``WhiteKernel``, ``ConstantKernel``, ``+`` and
``*`` like any scikit-learn kernel, and ``GaussianProcessRegressor`` fits them by maximizing
the log marginal likelihood with L-BFGS-B.

Parameters (``get_params``):

* ``spec``: a spec file path, spec text (TOML) or an :class:`ntksym.Architecture`;
* ``values``: the learnable constants' values, an array in spec order (None: the spec's own);
  this is the one, vector-valued, scikit-learn hyperparameter ("values");
  :attr:`hyperparameter_names` names its entries;
* ``values_bounds``: (low, high) for every value, or one pair per value (default 1e-4, 1e4);
* ``input_shape``: how a row of X becomes one network input ("auto", "spec" or a tuple; see
  :mod:`ntksym.apps.estimators`);
* ``dtype``: "float64" (default) or "float32" storage of the kernel.

>>> import numpy as np
>>> k = NNGPKernel(spec='name = "m"\\ninput = { shape = [2] }\\n[defaults]\\n'
...     'weight_var = { value = 2.0, learn = true }\\n'
...     'bias_var = { value = 0.1, learn = true }\\n'
...     '[[layer]]\\nkind = "dense"\\nactivation = "relu"\\n[[layer]]\\nkind = "dense"\\n')
>>> k.hyperparameter_names, np.exp(k.theta).round(12).tolist()
(['weight_var', 'bias_var'], [2.0, 0.1])
>>> K, dK = k(np.eye(2), eval_gradient=True)
>>> K.shape, dK.shape
((2, 2), (2, 2, 2))
>>> k.clone_with_theta(np.log([3.0, 0.2]))
NNGPKernel('m', weight_var=3, bias_var=0.2)
"""

from __future__ import annotations

import numpy as np
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel

from ntksym.apps.estimators import load_architecture, with_input_shape

__all__ = ["NNGPKernel", "NTKKernel", "NeuralKernel"]

# (spec structure, input shape request, n_features) -> the architecture on that input shape;
# kernels are cloned at every optimizer step, so this is kept per process, not per object
_BASES: dict = {}


class NeuralKernel(Kernel):
    """Base of :class:`NNGPKernel` and :class:`NTKKernel` (``kind`` says which kernel)."""

    kind = "nngp"

    def __init__(self, spec=None, values=None, values_bounds=(1e-4, 1e4), input_shape="auto",
                 dtype="float64"):
        self.spec = spec
        self.values = values
        self.values_bounds = values_bounds
        self.input_shape = input_shape
        self.dtype = dtype

    # ------------------------------------------------------------------ hyperparameters
    def _arch(self):
        if self.spec is None:
            raise ValueError(f"{type(self).__name__} needs a spec: a path, spec text or an "
                             "ntksym.Architecture")
        return load_architecture(self.spec)

    @property
    def hyperparameter_names(self):
        """The names of the learnable constants, the order of ``values`` and ``theta``."""
        return list(self._arch().hyperparameters)

    def _values(self):
        names = self.hyperparameter_names
        if self.values is None:
            v = np.array(list(self._arch().hyperparameters.values()), dtype=np.float64)
        else:
            v = np.atleast_1d(np.asarray(self.values, dtype=np.float64))
        if v.shape != (len(names),):
            raise ValueError(f"values: expected {len(names)} numbers (for "
                             f"{', '.join(names) or 'no learnable constant'}), got {v.shape}")
        if not (np.isfinite(v).all() and (v > 0).all()):
            raise ValueError(f"values must be finite and > 0, got {v.tolist()}")
        return v

    @property
    def hyperparameter_values(self):
        return Hyperparameter("values", "numeric", self.values_bounds,
                              max(len(self.hyperparameter_names), 1))

    @property
    def hyperparameters(self):
        return [self.hyperparameter_values] if self.hyperparameter_names else []

    def _free(self):
        """The learnable constants that theta holds: all, or none when the bounds are
        "fixed" (scikit-learn's way to freeze a hyperparameter)."""
        fixed = isinstance(self.values_bounds, str) and self.values_bounds == "fixed"
        return [] if fixed else self.hyperparameter_names

    @property
    def theta(self):
        """log of the learnable constants' values, in spec order."""
        return np.log(self._values()) if self._free() else np.array([])

    @theta.setter
    def theta(self, theta):
        theta = np.atleast_1d(np.asarray(theta, dtype=np.float64))
        if theta.shape != (len(self._free()),):
            raise ValueError(f"theta has not the correct number of entries. Should be "
                             f"{len(self._free())}; given are {len(theta)}")
        if len(theta):
            self.values = np.exp(theta)

    # ------------------------------------------------------------------ evaluation
    def architecture(self, n_features=None):
        """The Architecture at the current values (on rows of ``n_features`` values)."""
        arch = self._arch()
        if n_features is not None:
            key = (arch.spec.structure_hash, repr(self.input_shape), n_features)
            if key not in _BASES:
                _BASES[key] = with_input_shape(arch, self.input_shape, n_features)
            arch, _ = _BASES[key]
        names = self.hyperparameter_names
        return arch.with_hyperparameters(dict(zip(names, self._values()))) if names else arch

    def _inputs(self, X):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        arch = self.architecture(X.shape[1])
        return arch, X.reshape((len(X),) + tuple(arch.input_shape))

    def __call__(self, X, Y=None, eval_gradient=False):
        """K(X, Y) (Y = None: K(X, X)); with ``eval_gradient`` also dK/dtheta, (n, n, k)."""
        import ntksym

        if eval_gradient and Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        arch, Xr = self._inputs(X)
        Yr = None if Y is None else self._inputs(Y)[1]
        if not eval_gradient:
            return np.asarray(ntksym.kernel(arch, Xr, Yr, kind=self.kind, dtype=self.dtype))
        names = self._free()
        if not names:
            K = np.asarray(ntksym.kernel(arch, Xr, kind=self.kind, dtype=self.dtype))
            return K, np.empty(K.shape + (0,))
        out = ntksym.kernel(arch, Xr, kind=self.kind, dtype=self.dtype, gradient=True)
        # d/dlog(v) = v d/dv
        grad = np.stack([v * out[f"d{self.kind}/d[{n}]"]
                         for n, v in zip(names, self._values())], axis=-1)
        return out[self.kind], grad

    def diag(self, X):
        """K(x_i, x_i) by the exact per-example rule (no pair is computed)."""
        from ntksym.engine.diagonal import kernel_diagonal
        arch, Xr = self._inputs(X)
        return kernel_diagonal(arch, Xr, self.kind)

    def is_stationary(self):
        return False

    def __repr__(self):
        try:
            arch = self._arch()
            named = ", ".join(f"{n}={v:.3g}" for n, v in zip(self.hyperparameter_names,
                                                             self._values()))
            return f"{type(self).__name__}({arch.name!r}{', ' + named if named else ''})"
        except Exception:        # a repr must not raise (an invalid spec is reported on use)
            return f"{type(self).__name__}(spec={self.spec!r})"


class NNGPKernel(NeuralKernel):
    """The NNGP (the network's prior covariance) of a spec as a scikit-learn GP kernel."""

    kind = "nngp"


class NTKKernel(NeuralKernel):
    """The NTK of a spec as a scikit-learn GP kernel (the NTK-GP of the trained network's
    function-space dynamics uses it as a covariance too)."""

    kind = "ntk"
