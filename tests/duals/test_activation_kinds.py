"""The activation kinds without sympy (ntksym.duals.kinds) say what the sympy constructors build.

``ntksym check`` describes and validates a named activation from the table of kinds, never
building it; these tests hold that text and those checks to the sympy objects: every
description equals ``Activation.description()`` of the activation the registry builds (sympy's
own printing of phi), names equal, and a bad parameter raises the same message either way.
"""

import math
import struct

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ntksym.duals.activations import (
    ACTIVATION_KINDS,
    activation_name,
    check_activation,
    describe_activation,
    get_activation,
    make_activation,
)
from ntksym.duals.kinds import float_text, is_static
from ntksym.errors import SpecError
from ntksym.ir.hyper import Learnable
from ntksym.ir.symbols import HyperSymbol

#: parameters of each kind that takes some: ints and floats, small, large, negative
SAMPLES = {
    "leaky_relu": [{"slope": s} for s in (0.1, -0.5, 0, 1, -1, 2, 0.0, -0.0, 1.0, 1e-7, 1e20,
                                          123456789.123, -0.3, 10 ** 20)],
    "relu_power": [{"k": k} for k in (1, 2, 3, 5, 8, 2.0)],
    "huberized_relu": [{"h": h} for h in (0.5, 1, 0.3, 2.0, 1e-7, 1e10, 0.1, 10 ** 20, 3)],
    "swish": [{"h": h} for h in (0.5, 1, 0.3, 2.0, 1e-7, 1e10, 10 ** 20)],
}
CASES = [(k, p) for k in ACTIVATION_KINDS if is_static(k) for p in SAMPLES.get(k, [{}])]


def finite_floats():
    return st.floats(allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize("kind,params", CASES, ids=lambda v: str(v))
def test_description_and_name_are_what_sympy_builds(kind, params):
    act = get_activation(kind, **params)
    assert describe_activation(kind, **params) == act.description()
    assert activation_name(kind, params) == act.name


def test_every_named_kind_has_a_static_description():
    """Only the user expression needs sympy to be described."""
    assert [k for k in ACTIVATION_KINDS if not is_static(k)] == ["activation"]
    assert describe_activation("activation", expr="z**2") == \
        get_activation("activation", expr="z**2").description()


@settings(max_examples=300, deadline=None)
@given(finite_floats())
def test_float_text_is_sympys_printing(x):
    if x != 0:
        assert float_text(x) + "*z" == sp.sstr(sp.Float(x) * sp.Symbol("z"))


def test_float_text_extremes():
    for bits in (1, 2 ** 52, 0x7FEFFFFFFFFFFFFF, 0x3FF0000000000001):       # subnormal .. max
        x = struct.unpack("d", struct.pack("Q", bits))[0]
        assert float_text(x) + "*z" == sp.sstr(sp.Float(x) * sp.Symbol("z"))


@settings(max_examples=60, deadline=None)
@given(finite_floats(), st.floats(min_value=1e-12, max_value=1e12))
def test_parameterized_phi_text(slope, h):
    """The phi texts computed with Python floats are sympy's (its Float arithmetic is
    correctly rounded too)."""
    for kind, params in (("leaky_relu", {"slope": slope}), ("huberized_relu", {"h": h}),
                         ("swish", {"h": h})):
        assert describe_activation(kind, **params) == \
            get_activation(kind, **params).description()


def test_learnable_slope_is_described_by_its_symbol():
    for name in ("slope", "zeta", "Z", "z_1"):
        symbolic = make_activation("leaky_relu", HyperSymbol(name))
        assert describe_activation("leaky_relu", slope=Learnable(0.2, name)) == \
            symbolic.description()


@pytest.mark.parametrize("kind,params", [
    ("rellu", {}), ("relu", {"slope": 1}), ("leaky_relu", {}), ("leaky_relu", {"slope": "a"}),
    ("leaky_relu", {"slope": math.inf}), ("relu_power", {"k": 1.5}), ("relu_power", {"k": 9}),
    ("relu_power", {"k": True}), ("huberized_relu", {"h": -1}), ("swish", {"h": 0.0}),
    ("activation", {"expr": "z +* 2"}), ("activation", {"expr": 3})])
def test_checks_raise_what_building_raises(kind, params):
    with pytest.raises(SpecError) as built:
        get_activation(kind, **params)
    with pytest.raises(SpecError) as checked:
        check_activation(kind, **params)
    assert str(checked.value) == str(built.value)


def test_int_and_float_parameters_are_different_activations():
    """The registry's memo keeps int and float (and -0.0) parameters apart: their names and
    phi differ (an int slope is exact)."""
    assert get_activation("leaky_relu", slope=1).description() == \
        describe_activation("leaky_relu", slope=1)
    assert get_activation("leaky_relu", slope=1.0).name == "leaky_relu(slope=1.0)"
    assert get_activation("leaky_relu", slope=0.0).name == "leaky_relu(slope=0.0)"
    assert get_activation("leaky_relu", slope=-0.0).name == "leaky_relu(slope=-0.0)"
