"""What every layer kind provides, and the per-pair kernel state its rules act on.

A layer kind is one class (in one module of ``ntksym/layers/``) with

* ``kind`` and ``keys``: the spec keys it accepts, each a :class:`Key` (type, default, check);
* ``output_shape(node, in_shapes)``: the shape rule, raising :class:`SpecError` if impossible;
* ``kernel_rule(node, inputs)``: the infinite-width rule, from the :class:`KernelState` of its
  inputs to its own, as sympy expressions (``symbolic`` turns them into IR steps);
* ``describe(node)``: one line with every constant, for ``ntksym check`` and ``derive``;
* finite width: ``init(node, rng)``, ``forward(node, weights, inputs, batch)``,
  ``delta(node, weights, cache, grad)`` (the gradient its parameters see: the output gradient,
  or for a recurrence the gradients of every step), ``backward(node, weights, cache, delta)``,
  ``ntk_terms(...)`` for the empirical NTK and, on a readout, ``conditional_nngp``.

``node`` is the attribute dict of the graph node: ``kind``, ``params`` (validated spec keys),
``in_shapes``, ``shape``, ``fan_in`` ...

The layer modules import sympy and NumPy inside the rules that use them, never at the top:
what validates and describes a spec (keys, ``validate``, ``output_shape``, ``check_graph``,
``describe``) runs without them, so that ``ntksym check`` starts in a fraction of the time
sympy takes to load (docs/startup.md; tests/cli/test_startup_imports.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Callable

# the one "no default: the spec must give it" marker (activation parameters use it too)
from ntksym.duals.kinds import REQUIRED  # noqa: F401  (re-exported)
from ntksym.ir.hyper import Learnable

if TYPE_CHECKING:          # the kernel state's annotations only
    import sympy as sp


@dataclass(frozen=True)
class Key:
    """A spec key: its type name (for messages), default, and a check returning an error or None."""

    type: str
    default: Any = None
    check: Callable[[Any], str | None] | None = None
    doc: str = ""


@dataclass
class KernelState:
    """The infinite-width state of one node for a pair (x, x') or for one example (x, x).

    nngp : Sigma(x, x') (or Sigma(x, x) when ``diagonal``)
    ntk : {parameter group: its NTK contribution}; groups are "node.W", "node.b" ...
    var_x, var_y : Sigma(x, x) and Sigma(x', x') (equal to nngp when ``diagonal``)
    diagonal : True when x' = x; rules then use their exact diagonal forms.
    """

    nngp: sp.Expr
    ntk: dict = field(default_factory=dict)
    var_x: sp.Expr = None
    var_y: sp.Expr = None
    diagonal: bool = False

    def with_(self, **kw):
        return replace(self, **kw)


def sympy_number(value):
    """An exact sympy number for a spec value: 2.0 -> 2, 0.05 -> 1/20 (decimal, not binary);
    a learnable constant (:class:`~ntksym.ir.hyper.Learnable`) -> its positive symbol; a
    :class:`~fractions.Fraction` (an exact mask factor) -> the same Rational; a sympy number
    unchanged.

    >>> sympy_number(0.05), sympy_number(Learnable(2.0, "weight_var")), sympy_number(Fraction(1, 3))
    (1/20, weight_var, 1/3)
    """
    import sympy as sp  # here, not at the top: the spec layer runs without sympy

    from ntksym.ir.symbols import HyperSymbol
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, Learnable):
        return HyperSymbol(value.name)
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    if isinstance(value, bool):
        return sp.Integer(int(value))
    if isinstance(value, int):
        return sp.Integer(value)
    return sp.Rational(repr(float(value)))


# ----------------------------------------------------------------------------- key checks

def positive(v):
    return None if v > 0 else "must be > 0"


def nonnegative(v):
    return None if v >= 0 else "must be >= 0"


def positive_pair(v):
    """A window / stride of one or two integers >= 1."""
    if len(v) > 2 or any(x < 1 for x in v):
        return "must be one or two integers >= 1"
    return None


def one_of(*choices):
    def check(v):
        return None if v in choices else "must be one of " + ", ".join(repr(c) for c in choices)
    check.choices = choices          # read by the spec reference (docs/spec.md)
    return check


# Keys every weight layer accepts (SPEC.md §1).
WEIGHT_KEYS = {
    "weight_var": Key("number", 1.0, nonnegative, "sigma_w^2"),
    "bias_var": Key("number", 0.0, nonnegative, "sigma_b^2"),
    "parameterization": Key("string", "ntk", one_of("ntk", "standard")),
    "normalize": Key("bool", True, None, "divide the weight variance by fan_in"),
    "width": Key("int", None, positive, "output units of the finite network"),
    "trainable": Key("bool|list", True, None, "true/false or a list of parameter names"),
}


@dataclass(frozen=True)
class Batch:
    """What a finite layer may need to know about its examples besides their values.

    lengths : (n,) int64 lengths of left-aligned padded sequences (None: not sequences);
    stream : which independent draw of per-example random state to use (an rnn's h_0):
      0 for the rows of X, 1 for those of X2.
    """

    lengths: Any = None
    stream: int = 0


class Layer:
    """Base class: defaults that layers without parameters or shapes can keep."""

    kind = "?"
    keys: dict = {}
    has_weights = False
    #: the parameter names of ``trainable`` lists
    parameter_names: tuple = ()
    #: whether the kernel rule may act at every time pair of a sequence program's grid
    #: (elementwise in time: dense, activations)
    acts_per_time_step = False
    #: how many inputs the layer takes: (at least, at most; None = no limit)
    inputs_range = (1, 1)
    #: how the output keeps the zero mean of fresh weights (:mod:`ntksym.layers.branches`):
    #: "fresh" for an affine map with its own weights (dense, conv), "linear" for a map that
    #: keeps a zero mean (pooling, flatten, add ...), None otherwise (activations, rnn)
    zero_mean = None

    @classmethod
    def check_graph(cls, node, facts, error):
        """Checks that need the whole graph (``facts``: a :class:`~ntksym.layers.branches.
        BranchFacts`); call ``error(msg, key)``."""

    @classmethod
    def validate(cls, params, error):
        """Cross-key checks after each key was type-checked; call ``error(msg, key)``."""

    @classmethod
    def output_shape(cls, node, in_shapes, error):
        (shape,) = in_shapes
        return shape

    @classmethod
    def describe(cls, node):
        return cls.kind

    @classmethod
    def kernel_rule(cls, node, inputs):
        raise TypeError(f"layer kind {cls.kind} has no kernel rule")

    # finite width -----------------------------------------------------------------
    @classmethod
    def init(cls, node, rng):
        return {}

    @classmethod
    def forward(cls, node, weights, inputs, batch=None):
        """(output, cache) from the input values; ``batch`` is a :class:`Batch`."""
        raise TypeError(f"layer kind {cls.kind} has no finite-width forward")

    @classmethod
    def delta(cls, node, weights, cache, grad):
        """The gradient that ``backward`` and ``ntk_terms`` start from, given the gradient of
        the outputs w.r.t. this layer's output: that gradient itself, unless the layer has inner
        steps (an rnn backpropagates through time to its pre-activations)."""
        return grad

    @classmethod
    def backward(cls, node, weights, cache, delta):
        """[gradient w.r.t. each input] from the layer's ``delta``."""
        raise TypeError(f"layer kind {cls.kind} has no finite-width backward")

    @classmethod
    def conditional_nngp(cls, node, y1, y2):
        """E[f(x) f(x')] over this (readout) layer's weights given its finite inputs."""
        raise TypeError(f"layer kind {cls.kind} cannot be a readout")

    @classmethod
    def ntk_terms(cls, node, weights, cache1, delta1, cache2, delta2):
        """{group: gradient inner products} for this layer's trainable parameters: (n1, n2),
        or (O1, n1, O2, n2) when the deltas carry an output axis (sequence graphs)."""
        return {}
