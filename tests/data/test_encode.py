"""Categorical encoding: one-hot for linear/neural models, ordinal for trees, carried by the fitted model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import modelyard as my
from modelyard.errors import DataError, SchemaMismatchError
from modelyard.models.encoding import Encoder


def test_one_hot_and_ordinal(churn):
    ds = my.load_dataset(churn, target="churned")
    onehot = Encoder(ds.schema, "onehot")
    ordinal = Encoder(ds.schema, "ordinal")
    X1 = onehot.transform(ds.X)
    assert X1.shape == (len(ds), 2 + 3) == (len(ds), onehot.n_outputs)
    codes = ds.X[:, 1].astype(int)
    np.testing.assert_array_equal(X1[:, 1:4], np.eye(3, dtype=np.float32)[codes])
    np.testing.assert_array_equal(X1[:, [0, 4]], ds.X[:, [0, 2]])
    assert ordinal.transform(ds.X) is ds.X and ordinal.n_outputs == 3


def test_unseen_category_is_all_zeros_one_hot(churn):
    schema = my.load_dataset(churn, target="churned").schema
    X = np.array([[30, -1, 40.0]], dtype=np.float32)
    np.testing.assert_array_equal(Encoder(schema, "onehot").transform(X), [[30, 0, 0, 0, 40]])


@pytest.mark.filterwarnings("ignore::modelyard.data.encode.UnseenCategoryWarning")  # the warning has its own test
@pytest.mark.parametrize("family, params", [
    ("logistic_regression", {"learning_rate": 0.05}), ("mlp", {"hidden_sizes": (8,)}), ("random_forest", {"n_estimators": 10}),
])
def test_prediction_on_raw_new_rows(churn, family, params):
    ds = my.load_dataset(churn, target="churned")
    result = my.train(ds, model=family, params=params, epochs=5, seed=0)
    model = result.model
    assert model.encoder.mode == ("ordinal" if family == "random_forest" else "onehot")
    new = pd.DataFrame({
        "age": [22, 60, 40, 35],
        "plan": ["basic", "pro", "enterprise", None],  # an unseen category and a missing one
        "monthly": [60.0, 30.0, 50.0, 45.0],
    })
    labels = model.predict(new)
    assert labels.shape == (4,) and set(labels) <= {"no", "yes"}
    proba = model.predict_proba(new)
    assert proba.shape == (4, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    # raw rows give what the coded training rows give
    head = churn.drop(columns="churned").head(20)
    np.testing.assert_array_equal(model.predict(head), ds.labels(model.predict_codes(ds.X[:20])))
    # columns may come in any order and as dicts
    assert list(model.predict(new[["monthly", "plan", "age"]])) == list(labels)
    assert list(model.predict(new.to_dict(orient="list"))) == list(labels)


def test_raw_rows_missing_a_column(churn):
    model = my.train(my.load_dataset(churn, target="churned"), model="random_forest", params={"n_estimators": 3}).model
    with pytest.raises(SchemaMismatchError, match=r"lacks column\(s\) 'plan'"):
        model.predict(pd.DataFrame({"age": [1], "monthly": [2.0]}))


def test_raw_rows_with_nan_in_a_numeric_column(churn):
    # a forest takes NaN natively; a model without imputation names every column with gaps, once
    ds = my.load_dataset(churn, target="churned")
    forest = my.train(ds, model="random_forest", params={"n_estimators": 3}).model
    assert forest.predict(pd.DataFrame({"age": [1], "plan": ["pro"], "monthly": [np.nan]})).shape == (1,)
    linear = my.train(ds, model="logistic_regression", epochs=1).model
    with pytest.raises(DataError) as e:
        linear.predict(pd.DataFrame({"age": [np.nan, 3], "plan": ["pro", None], "monthly": [np.nan, np.nan]}))
    msg = str(e.value)
    assert "'monthly' (2 missing)" in msg and "'age' (1 missing)" in msg and "before predicting" in msg
    assert "--impute" in msg and "\n" not in msg


def test_missing_category_is_nan_when_loading_and_unseen_for_a_model_without_imputation(churn):
    churn.loc[[0, 3], "plan"] = None
    ds = my.load_dataset(churn, target="churned")
    assert np.isnan(ds.X[[0, 3], 1]).all() and not np.isnan(np.delete(ds.X[:, 1], [0, 3])).any()
    onehot = Encoder(ds.schema, "onehot").transform(ds.X)
    assert (onehot[[0, 3], 1:4] == 0).all()  # a missing category sets no indicator


def test_array_of_wrong_width(churn):
    model = my.train(my.load_dataset(churn, target="churned"), model="random_forest", params={"n_estimators": 3}).model
    with pytest.raises(SchemaMismatchError, match="expects 3 feature columns"):
        model.predict(np.zeros((2, 5)))


def test_numeric_looking_categories_match_between_training_and_prediction():
    # a text column with values like "3" that were read as numbers when predicting
    df = pd.DataFrame({"zone": ["1", "2", "3", "x"] * 10, "v": np.arange(40.0), "t": [0, 1] * 20})
    ds = my.load_dataset(df, target="t")
    assert ds.schema.columns[0].categories == ("1", "2", "3", "x")
    model = my.train(ds, model="random_forest", params={"n_estimators": 3}).model
    a = model.encode(pd.DataFrame({"zone": [3, 3.0, "3"], "v": [1.0, 1.0, 1.0]}))
    assert (a[:, 0] == 2).all()


# --- the unseen-category policy (data/encode.py's docstring) -------------------------------------------------
import warnings

from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.data.encode import UNKNOWN_POLICIES, UnseenCategoryWarning, as_matrix
from modelyard.schema import Column, Schema, Task

SCHEMA = Schema((Column("plan", "categorical", "str", ("basic", "pro")), Column("monthly", "numeric", "float64")),
                "y", Task.CLASSIFICATION, ("no", "yes"))


def test_unseen_category_is_refused_under_error_naming_column_values_and_fix():
    with pytest.raises(SchemaMismatchError, match=r"column 'plan': 2 of 3 row\(s\) hold categories never seen in "
                                                  r"training \('gold', 'x'\); use one of the known categories "
                                                  r"\(basic, pro\).*--unknown warn"):
        as_matrix({"plan": ["gold", "basic", "x"], "monthly": [1.0, 2.0, 3.0]}, SCHEMA, unknown="error")


def test_unseen_category_is_scored_as_minus_one_with_a_warning_under_warn():
    with pytest.warns(UnseenCategoryWarning, match=r"column 'plan': 1 of 2 row\(s\).*'gold'.*unseen category") as rec:
        X = as_matrix({"plan": ["gold", "pro"], "monthly": [1.0, 2.0]}, SCHEMA, unknown="warn")
    np.testing.assert_array_equal(X, [[-1, 1], [1, 2]])
    assert rec[0].filename == __file__  # the warning points at the caller, not at modelyard's internals


def test_ignore_is_silent_and_known_categories_never_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert as_matrix({"plan": ["gold"], "monthly": [1.0]}, SCHEMA, unknown="ignore")[0, 0] == -1
        for policy in UNKNOWN_POLICIES:
            assert as_matrix({"plan": ["pro", "basic"], "monthly": [1, 2]}, SCHEMA, unknown=policy)[:, 0].tolist() == [1, 0]


def test_a_missing_category_follows_the_policy_unless_the_model_handles_missing_values():
    rows = {"plan": ["pro", None], "monthly": [1.0, 2.0]}
    with pytest.raises(SchemaMismatchError, match=r"1 of 2 row\(s\) have a missing value"):
        as_matrix(rows, SCHEMA, unknown="error")
    X = as_matrix(rows, SCHEMA, unknown="error", allow_missing=True)
    assert X[0, 0] == 1 and np.isnan(X[1, 0])
    X = as_matrix({"plan": ["pro"], "monthly": [np.nan]}, SCHEMA, allow_missing=True)
    assert np.isnan(X[0, 1])
    with pytest.raises(DataError, match=r"'monthly' \(1 missing\).*fill them"):
        as_matrix({"plan": ["pro"], "monthly": [None]}, SCHEMA)


def test_the_policy_name_is_checked():
    with pytest.raises(DataError, match="must be one of error, warn, ignore, got 'skip'"):
        as_matrix({"plan": ["pro"], "monthly": [1.0]}, SCHEMA, unknown="skip")


def test_columns_of_unequal_length_and_text_in_a_numeric_column_are_named():
    with pytest.raises(SchemaMismatchError, match=r"column 'plan' has 2 values but column 'monthly' has 1"):
        as_matrix({"plan": ["pro", "basic"], "monthly": [1.0]}, SCHEMA)
    with pytest.raises(SchemaMismatchError, match=r"column 'monthly' must be numeric as in training, but holds 'abc'"):
        as_matrix({"plan": ["pro", "basic"], "monthly": [1.0, "abc"]}, SCHEMA)


def test_a_predictor_refuses_unseen_categories_when_asked(churn):
    model = my.train(my.load_dataset(churn, target="churned"), model="random_forest", params={"n_estimators": 3}).model
    rows = pd.DataFrame({"age": [30], "plan": ["platinum"], "monthly": [50.0]})
    with pytest.raises(SchemaMismatchError, match="'platinum'"):
        model.predict(rows, unknown="error")
    with pytest.warns(UnseenCategoryWarning, match="'platinum'"):
        model.predict_proba(rows)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["basic", "pro", "gold", None, "", 3, 3.0]),
                          st.floats(-1e6, 1e6)), min_size=1, max_size=12))
def test_rows_coded_one_at_a_time_equal_rows_coded_together(rows):
    """The single-row path (serving) and the factorized path (batches) give the same codes, as do frames and dicts."""
    cols = {"plan": [r[0] for r in rows], "monthly": [r[1] for r in rows]}
    together = as_matrix(cols, SCHEMA, unknown="ignore")
    one_by_one = np.concatenate([as_matrix({"plan": [p], "monthly": [m]}, SCHEMA, unknown="ignore") for p, m in rows])
    np.testing.assert_array_equal(together, one_by_one)
    np.testing.assert_array_equal(together, as_matrix(pd.DataFrame(cols), SCHEMA, unknown="ignore"))
