"""Declared hyperparameters: coercion from CLI strings, ranges and messages (name, rule, fix)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.errors import ModelError, ParamError
from modelyard.models import FAMILIES, Param, get_family

RATE = Param("learning_rate", float, 0.01, low=1e-7, high=10.0)
UNITS = Param("hidden_sizes", "ints", (64,), low=1, high=65536)
DEPTH = Param("max_depth", int, None, low=1, high=1000, nullable=True)


@given(st.floats(1e-7, 10.0))
def test_float_round_trips_through_its_string(x):
    assert RATE.coerce(repr(x)) == x


@given(st.lists(st.integers(1, 65536), min_size=1, max_size=5))
def test_int_lists_round_trip_through_comma_strings(sizes):
    assert UNITS.coerce(",".join(map(str, sizes))) == tuple(sizes)
    assert UNITS.coerce(sizes) == tuple(sizes)


@pytest.mark.parametrize("text, value", [("128,64", (128, 64)), ("(32, 16)", (32, 16)), ("[8]", (8,)), (16, (16,))])
def test_int_list_spellings(text, value):
    assert UNITS.coerce(text) == value


@pytest.mark.parametrize("value, message", [
    ("fast", "learning_rate must be a float between 1e-07 and 10, got 'fast'; use e.g. learning_rate=0.01"),
    (20, "learning_rate must be a float between 1e-07 and 10, got 20; use e.g. learning_rate=0.01"),
    ("nan", "learning_rate must be a float between 1e-07 and 10, got 'nan'"),
    (True, "learning_rate must be a float"),
    (None, "learning_rate must be a float"),
])
def test_float_refusals(value, message):
    with pytest.raises(ParamError) as e:
        RATE.coerce(value)
    assert str(e.value).startswith(message)


def test_nullable_and_range_messages():
    assert DEPTH.coerce("None") is None and DEPTH.coerce("12") == 12
    with pytest.raises(ParamError, match=r"max_depth must be an int between 1 and 1000 \(or None\), got 0"):
        DEPTH.coerce(0)
    with pytest.raises(ParamError, match=r"hidden_sizes must be a list of ints like 128,64 each between 1 and 65536"):
        UNITS.coerce("64,0")
    with pytest.raises(ParamError, match="must be an int"):
        Param("n", int, 1, low=1).coerce(2.5)
    assert "n must be an int >= 1, got 0" in _msg(lambda: Param("n", int, 1, low=1).coerce(0))
    assert "x must be one of a, b, got 'c'; use e.g. x=a" in _msg(lambda: Param("x", str, "a", choices=("a", "b")).coerce("c"))
    assert "flag must be true or false, got 'maybe'" in _msg(lambda: Param("flag", bool, True).coerce("maybe"))


def _msg(fn) -> str:
    with pytest.raises(ParamError) as e:
        fn()
    return str(e.value)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_messages_name_the_family(family):
    first = next(iter(get_family(family).params))
    with pytest.raises(ParamError, match=f"^{family}: {first.name} must be"):
        get_family(family).params.validate({first.name: object()}, family)


def test_unknown_family_lists_them():
    with pytest.raises(ModelError) as e:
        get_family("xgboost")
    for name in FAMILIES:
        assert name in str(e.value)
    assert "package.module:Class" in str(e.value)


def test_forest_criterion_must_fit_the_task():
    with pytest.raises(ModelError, match="criterion 'gini' does not apply to regression"):
        get_family("random_forest")(task="regression", criterion="gini")
