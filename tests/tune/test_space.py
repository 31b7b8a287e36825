"""Search spaces: validation errors, file/dict round trips, unit-cube laws."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.errors import SpaceError
from modelyard.tune.space import Categorical, Float, Int, SearchSpace

SPACE = SearchSpace(
    {
        "lr": Float(1e-4, 0.1, log=True),
        "drop": Float(0.0, 0.5),
        "units": Int(8, 512, log=True),
        "layers": Int(1, 9, step=2),
        "act": Categorical(["relu", "tanh", "gelu"]),
        "flag": Categorical([True, False, None]),
    }
)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: Float(1.0, 1.0), "empty"),
        (lambda: Float(0.0, 1.0, log=True), "log=True"),
        (lambda: Int(5, 2), "empty"),
        (lambda: Int(0, 10, log=True), "log=True"),
        (lambda: Int(0, 10, step=3), "grid"),
        (lambda: Int(0, 10, step=0), "step"),
        (lambda: Categorical([]), "empty"),
        (lambda: Categorical(["a", "a"]), "duplicates"),
        (lambda: SearchSpace({}), "at least one"),
        (lambda: SearchSpace.from_dict({"x": {"type": "normal", "low": 0}}), "unknown type"),
        (
            lambda: SearchSpace.from_dict({"x": {"type": "float", "low": 0, "high": 1, "lg": True}}),
            "unknown keys",
        ),
        (lambda: SearchSpace.from_dict({"x": {"type": "float", "low": 0}}), "missing"),
        (lambda: SearchSpace.from_dict({"x": {"type": "float", "low": 2, "high": 1}}), "'x'"),
    ],
)
def test_errors_name_the_value_and_the_fix(make, words):
    with pytest.raises(SpaceError, match=words):
        make()


def test_from_dict_matches_python_and_to_dict_round_trips(tmp_path):
    d = {
        "lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
        "act": {"type": "categorical", "choices": ["relu", "tanh"]},
        "n": {"type": "int", "low": 1, "high": 4},
    }
    space = SearchSpace.from_dict(d)
    assert space == SearchSpace(
        {"lr": Float(1e-4, 0.1, log=True), "act": Categorical(["relu", "tanh"]), "n": Int(1, 4)}
    )
    assert SearchSpace.from_dict(json.loads(json.dumps(space.to_dict()))) == space
    (tmp_path / "s.json").write_text(json.dumps(d))
    (tmp_path / "s.yaml").write_text(
        "lr: {type: float, low: 1.0e-4, high: 0.1, log: true}\nact: {type: categorical, choices: [relu, tanh]}\n"
        "n: {type: int, low: 1, high: 4}\n"
    )
    assert SearchSpace.from_file(tmp_path / "s.json") == space
    assert SearchSpace.from_file(tmp_path / "s.yaml") == space
    with pytest.raises(SpaceError, match="cannot read"):
        SearchSpace.from_file(tmp_path / "missing.yaml")


def test_encoding_is_mixed_with_one_hot_categoricals():
    u = SPACE.to_unit({"lr": 1e-4, "drop": 0.5, "units": 8, "layers": 9, "act": "tanh", "flag": None})
    assert u.shape == (SPACE.n_dims,) == (4 + 3 + 3,)
    assert u[0] == pytest.approx(0.0) and u[1] == pytest.approx(1.0)
    assert list(u[4:7]) == [0, 1, 0] and list(u[7:]) == [0, 0, 1]
    assert 0 < u[2] < 1 and 0 < u[3] < 1  # ints own the centre of their slice


def test_invalid_params_are_rejected():
    with pytest.raises(SpaceError, match="outside"):
        SPACE.to_unit({"lr": 1.0, "drop": 0.1, "units": 8, "layers": 1, "act": "relu", "flag": True})
    with pytest.raises(SpaceError, match="missing"):
        SPACE.to_unit({"lr": 1e-3})


def test_int_values_get_equal_shares_of_the_unit_interval():
    d = Int(1, 4)
    u = np.linspace(0, 1, 40001)
    counts = np.bincount([d.decode(np.array([x])) for x in u])[1:]
    assert counts.min() / counts.max() > 0.999


@st.composite
def params_of(draw, space: SearchSpace = SPACE):
    out = {}
    for name, d in space.params.items():
        if isinstance(d, Float):
            out[name] = draw(st.floats(d.low, d.high, allow_nan=False))
        elif isinstance(d, Int):
            out[name] = d.low + d.step * draw(st.integers(0, d.n_values - 1))
        else:
            out[name] = draw(st.sampled_from(d.choices))
    return out


@settings(max_examples=200, deadline=None)
@given(params_of())
def test_round_trip_params_unit_params_is_identity(p):
    back = SPACE.from_unit(SPACE.to_unit(p))
    for name, d in SPACE.params.items():
        if isinstance(d, Float):
            assert math.isclose(back[name], p[name], rel_tol=1e-9, abs_tol=1e-12)
        else:
            assert back[name] == p[name] and type(back[name]) is type(p[name])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=SPACE.n_dims, max_size=SPACE.n_dims))
def test_any_unit_point_decodes_to_valid_params(u):
    p = SPACE.from_unit(np.array(u))
    SPACE.validate(p)
    assert SPACE.snap(SPACE.to_unit(p)) == pytest.approx(SPACE.to_unit(p))


def test_sample_is_valid_and_seeded():
    a = SPACE.sample(np.random.default_rng(3), 20)
    assert a == SPACE.sample(np.random.default_rng(3), 20)
    for p in a:
        SPACE.validate(p)
