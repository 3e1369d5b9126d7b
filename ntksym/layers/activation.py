"""Activation layers: ``relu``, ``erf``, ``tanh``, ``activation(expr=...)`` ... (one class per
kind).

The mathematics of each activation (phi, phi', its dual kernels and which path computes them)
lives in :mod:`ntksym.duals.activations`; this module makes each registered activation a layer kind.

Kernel rule, with V = E[phi(u) phi(v)] and V' = E[phi'(u) phi'(v)] for
(u, v) ~ N(0, [[Sigma(x,x), Sigma(x,x')], [Sigma(x,x'), Sigma(x',x')]]):

    Sigma' = V,    Theta' = V' * Theta

On the diagonal (x' = x) the activation's exact diagonal rule is used instead.
"""

from __future__ import annotations

from ntksym.duals.activations import (
    ACTIVATION_KINDS,
    check_activation,
    describe_activation,
    get_activation,
    make_activation,
)
from ntksym.ir.hyper import Learnable

from .base import KernelState, Key, Layer, sympy_number

_PARAM_TYPES = {"expr": "string", "k": "int"}


#: the activation parameters that may be learnable constants: those whose dual kernels are
#: closed forms that stay valid with a symbol for the parameter
LEARNABLE_PARAMS = {"leaky_relu": ("slope",)}


def activation_of(node):
    """The registry activation with the node's parameters at their current values."""
    return get_activation(node["kind"], **node["params"])


def symbolic_activation(node):
    """The activation whose dual kernels the kernel rule uses: learnable parameters (a
    leaky ReLU's slope) as their symbols, through the registry's constructor.

    >>> from ntksym.ir.hyper import Learnable
    >>> act = symbolic_activation({"kind": "leaky_relu",
    ...                            "params": {"slope": Learnable(0.1, "slope")}})
    >>> act.dual_prime_diag(1)
    slope**2/2 + 1/2
    """
    params = node["params"]
    if not any(isinstance(v, Learnable) for v in params.values()):
        return activation_of(node)
    return make_activation(node["kind"], *[sympy_number(params[p])
                                           for p in ACTIVATION_KINDS[node["kind"]]["params"]])


class ActivationLayer(Layer):
    """Base of the generated per-kind classes below."""

    acts_per_time_step = True

    @classmethod
    def validate(cls, params, error):
        # check the activation now, so that a bad parameter or expression is reported with
        # the spec's file, line and key (expressions go through the whitelist parser; a named
        # kind is checked without building its sympy expressions)
        try:
            check_activation(cls.kind, **params)
        except ValueError as e:   # SpecError is a ValueError
            msg = getattr(e, "message", str(e))
            if getattr(e, "hint", None):
                msg += f" ({e.hint})"
            error(msg, "expr" if "expr" in params else None)
        for p, v in params.items():
            if isinstance(v, Learnable) and p not in LEARNABLE_PARAMS.get(cls.kind, ()):
                learnable = ", ".join(f"{k}.{q}" for k, qs in LEARNABLE_PARAMS.items()
                                      for q in qs)
                error(f"the parameter {p!r} of '{cls.kind}' cannot be learned (its dual kernel "
                      f"is not a closed form in it); learnable activation parameters: "
                      f"{learnable}", p)

    @classmethod
    def describe(cls, node):
        # the text of symbolic_activation(node).description(), without sympy for a named kind
        return describe_activation(cls.kind, **node["params"])

    @classmethod
    def kernel_rule(cls, node, inputs):
        (s,) = inputs
        act = symbolic_activation(node)
        if s.diagonal:
            v = act.dual_diag(s.nngp)
            dv = act.dual_prime_diag(s.nngp)
            return KernelState(v, {g: dv * t for g, t in s.ntk.items()}, v, v, True)
        v = act.dual(s.var_x, s.var_y, s.nngp)
        dv = act.dual_prime(s.var_x, s.var_y, s.nngp)
        return KernelState(v, {g: dv * t for g, t in s.ntk.items()},
                           act.dual_diag(s.var_x), act.dual_diag(s.var_y), False)

    @classmethod
    def forward(cls, node, weights, inputs, batch=None):
        from ntksym.codegen.elementwise import elementwise_function  # NumPy, sympy
        (z,) = inputs
        act = activation_of(node)
        return elementwise_function(act.phi)(z), z

    @classmethod
    def backward(cls, node, weights, cache, grad):
        from ntksym.codegen.elementwise import elementwise_function
        act = activation_of(node)
        return [grad * elementwise_function(act.dphi)(cache)]


def _make(kind, info):
    keys = {}
    for pname, default in info["params"].items():
        ptype = _PARAM_TYPES.get(pname, "number")
        keys[pname] = Key(ptype, default)
    return type(f"Activation_{kind}", (ActivationLayer,), {"kind": kind, "keys": keys})


ACTIVATION_LAYERS = {kind: _make(kind, info) for kind, info in ACTIVATION_KINDS.items()}
