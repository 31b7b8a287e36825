"""Imputation: fill values learned from training rows, categorical columns by their most frequent category."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from modelyard.data.impute import STATE_KEY, Imputer, check_strategy, missing_counts
from modelyard.errors import ParamError
from modelyard.schema import Column, Schema, Task


def _schema(kinds: str) -> Schema:
    cols = tuple(
        Column(f"c{j}", "categorical", "str", ("a", "b", "c")) if k == "c" else Column(f"c{j}", "numeric", "float64")
        for j, k in enumerate(kinds)
    )
    return Schema(cols, "t", Task.CLASSIFICATION, ("n", "y"))


def test_median_and_most_frequent():
    X = np.array([[1, 2, 0], [np.nan, 2, 2], [3, 7, 2], [10, np.nan, np.nan]], dtype=np.float32)
    schema = _schema("nnc")
    med = Imputer("median").fit(X, schema)
    np.testing.assert_array_equal(med.fill_, [3, 2, 2])  # the categorical column gets its mode, not a median
    mode = Imputer("most_frequent").fit(X, schema)
    np.testing.assert_array_equal(mode.fill_, [1, 2, 2])  # ties: the smallest value
    out = med.transform(X)
    np.testing.assert_array_equal(out, [[1, 2, 0], [3, 2, 2], [3, 7, 2], [10, 2, 2]])
    assert np.isnan(X[1, 0]), "the input is not changed"
    full = np.ones((2, 3), dtype=np.float32)
    assert med.transform(full) is full


def test_a_column_with_no_value_gets_zero_or_unseen():
    X = np.array([[np.nan, np.nan], [np.nan, np.nan]], dtype=np.float32)
    imp = Imputer("median").fit(X, _schema("nc"))
    np.testing.assert_array_equal(imp.fill_, [0, -1])


def test_state_round_trip_and_errors():
    X = np.array([[1, np.nan], [2, 4]], dtype=np.float32)
    imp = Imputer("median").fit(X, _schema("nn"))
    back = Imputer.from_state("median", imp.state())
    np.testing.assert_array_equal(back.transform(X), imp.transform(X))
    assert set(imp.state()) == {STATE_KEY}
    with pytest.raises(ParamError, match="impute must be one of median, most_frequent, got 'mean'"):
        check_strategy("mean")
    with pytest.raises(ParamError):
        Imputer("zero")
    assert missing_counts(X, ["a", "b"]) == {"b": 1}


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 30), st.integers(1, 4)),
              elements=st.one_of(st.just(np.nan), st.floats(-1e3, 1e3, width=32))))
def test_transform_law(X):
    """No NaN is left, present values are untouched, and each fill is the column's median of present values."""
    imp = Imputer("median").fit(X, _schema("n" * X.shape[1]))
    out = imp.transform(X)
    assert not np.isnan(out).any()
    present = ~np.isnan(X)
    np.testing.assert_array_equal(out[present], X[present])
    for j in range(X.shape[1]):
        col = X[:, j][present[:, j]]
        want = np.float32(np.median(col.astype(np.float64))) if len(col) else 0.0
        assert imp.fill_[j] == want
