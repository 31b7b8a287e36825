"""Every bad input the data layer can meet gives one DataError naming the problem and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import modelyard as my
from modelyard.errors import DataError


def _msg(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text, "an error message is one line"
    return text


def test_missing_file(tmp_path):
    with pytest.raises(DataError) as e:
        my.load_dataset(tmp_path / "nope.csv")
    assert "nope.csv" in _msg(e) and "does not exist" in _msg(e) and "check the path" in _msg(e)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        my.load_dataset(tmp_path)


def test_unknown_format(tmp_path):
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(DataError) as e:
        my.load_dataset(tmp_path / "d.xlsx")
    assert "'.xlsx'" in _msg(e) and ".csv, .parquet or .npz" in _msg(e)


@pytest.mark.parametrize(
    "name, content, expect",
    [
        ("ragged.csv", "a,b\n1,2\n1,2,3,4\n", "cannot parse"),
        ("empty.csv", "", "is empty"),
        ("header_only.csv", "a,b\n", "no rows"),
        ("broken.parquet", "not parquet at all", "cannot parse"),
        ("broken.npz", "not a zip", "cannot read"),
    ],
)
def test_unreadable_files(tmp_path, name, content, expect):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError) as e:
        my.load_dataset(tmp_path / name, target="b")
    assert expect in _msg(e) and name in _msg(e)


def test_npz_without_arrays(tmp_path):
    np.savez(tmp_path / "a.npz", features=np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"no array 'X'.*np\.savez"):
        my.load_dataset(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", X=np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"no array 'y'"):
        my.load_dataset(tmp_path / "b.npz")


def test_npz_never_unpickles(tmp_path):
    np.savez(tmp_path / "o.npz", X=np.array([{"a": 1}] * 4, dtype=object), y=np.arange(4))
    with pytest.raises(DataError, match="pickled"):
        my.load_dataset(tmp_path / "o.npz")


def test_unknown_bundled_dataset():
    with pytest.raises(DataError) as e:
        my.load_dataset("sklearn:mnist")
    assert "'mnist'" in _msg(e) and "iris" in _msg(e) and "diabetes" in _msg(e)


def test_unknown_target_lists_the_columns(churn_csv):
    with pytest.raises(DataError) as e:
        my.load_dataset(churn_csv, target="churn")
    assert "'churn'" in _msg(e) and "age, plan, monthly, churned" in _msg(e)


def test_no_target_given_lists_the_columns(churn_csv):
    with pytest.raises(DataError) as e:
        my.load_dataset(churn_csv)
    assert "--target" in _msg(e) and "age, plan, monthly, churned" in _msg(e)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_inf_in_a_feature_names_column_and_count(churn, bad):
    churn = churn.astype({"monthly": float})
    churn.loc[[1, 4, 9], "monthly"] = bad
    with pytest.raises(DataError) as e:
        my.load_dataset(churn, target="churned")
    assert "'monthly' (3 inf)" in _msg(e) and "--drop-missing" in _msg(e)


def test_inf_in_several_columns_is_one_message_naming_each():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({f"c{i}": rng.normal(size=30) for i in range(7)} | {"t": [0, 1] * 15})
    for i in range(7):
        df.loc[: i, f"c{i}"] = np.inf
    with pytest.raises(DataError) as e:
        my.load_dataset(df, target="t")
    assert "7 column(s)" in _msg(e) and all(f"'c{i}' ({i + 1} inf)" in _msg(e) for i in range(7))
    X = df.drop(columns="t").to_numpy()
    with pytest.raises(DataError) as e:
        my.from_arrays(X, df["t"].to_numpy())
    assert "7 column(s)" in _msg(e) and "'x6' (7 inf)" in _msg(e)


def test_missing_values_in_features_load_as_nan(churn):
    churn = churn.astype({"monthly": float})
    churn.loc[[1, 4, 9], "monthly"] = np.nan
    churn.loc[[0, 3], "plan"] = np.nan
    ds = my.load_dataset(churn, target="churned")
    assert len(ds) == len(churn) and ds.dropped is None
    assert np.isnan(ds.X[:, 2]).sum() == 3 and np.isnan(ds.X[:, 1]).sum() == 2


def test_rows_without_a_target_are_dropped_and_counted(churn):
    churn.loc[[5, 6], "churned"] = None
    ds = my.load_dataset(churn, target="churned")
    assert len(ds) == len(churn) - 2
    assert ds.dropped.no_target == 2 and ds.dropped.dropped == 2 and ds.dropped.rows == len(churn)
    assert "2 without a value of target 'churned'" in ds.dropped.sentence()


def test_no_row_has_a_target(churn):
    churn["churned"] = None
    with pytest.raises(DataError, match="no row .* has a value in target column 'churned'"):
        my.load_dataset(churn, target="churned")


def test_inf_in_target(churn):
    churn["monthly"] = churn["monthly"].astype(float)
    churn.loc[3, "monthly"] = np.inf
    with pytest.raises(DataError, match=r"target column 'monthly' has 1 inf"):
        my.load_dataset(churn, target="monthly")


def test_nan_in_arrays_stays_nan_and_a_missing_target_drops_the_row():
    X = np.ones((10, 3))
    X[2, 1] = np.nan
    y = (np.arange(10) % 2).astype(float)
    y[4] = np.nan
    ds = my.from_arrays(X, y)
    assert len(ds) == 9 and np.isnan(ds.X[2, 1]) and ds.dropped.no_target == 1


def test_everything_missing_with_drop_missing():
    df = pd.DataFrame({"x": [np.nan] * 5, "t": [0, 1, 0, 1, 0]})
    with pytest.raises(DataError, match="leaves nothing"):
        my.load_dataset(df, target="t", drop_missing=True)


def test_single_class_target():
    df = pd.DataFrame({"x": np.arange(20.0), "t": ["spam"] * 20})
    with pytest.raises(DataError) as e:
        my.load_dataset(df, target="t")
    assert "single class ('spam')" in _msg(e) and "at least two classes" in _msg(e)


def test_text_target_cannot_be_regressed():
    df = pd.DataFrame({"x": np.arange(20.0), "t": ["a", "b"] * 10})
    with pytest.raises(DataError) as e:
        my.load_dataset(df, target="t", task="regression")
    assert "non-numeric" in _msg(e) and "classification" in _msg(e)


def test_unknown_task_name():
    df = pd.DataFrame({"x": np.arange(20.0), "t": [0, 1] * 10})
    with pytest.raises(DataError, match="'classification' or 'regression', got 'regresion'"):
        my.load_dataset(df, target="t", task="regresion")


def test_too_many_text_values_cannot_be_encoded():
    df = pd.DataFrame({"x": np.arange(1200.0), "id": [f"user-{i}" for i in range(1200)], "t": [0, 1] * 600})
    with pytest.raises(DataError) as e:
        my.load_dataset(df, target="t")
    assert "'id'" in _msg(e) and "1200 distinct" in _msg(e) and "drop it" in _msg(e)


def test_dates_cannot_be_encoded():
    df = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=12), "t": [0, 1] * 6})
    with pytest.raises(DataError, match="'when' holds dates"):
        my.load_dataset(df, target="t")


def test_value_too_large_for_float32():
    df = pd.DataFrame({"x": [1e39, 1.0] * 6, "t": [0, 1] * 6})
    with pytest.raises(DataError, match="too large for float32"):
        my.load_dataset(df, target="t")


def test_text_features_in_npz(tmp_path):
    np.savez(tmp_path / "t.npz", X=np.array([["a", "b"]] * 10), y=np.arange(10))
    with pytest.raises(DataError, match="X must be numeric"):
        my.load_dataset(tmp_path / "t.npz")


def test_too_few_rows_for_the_split():
    ds = my.load_dataset(pd.DataFrame({"x": np.arange(6.0), "t": [0, 1] * 3}), target="t")
    with pytest.raises(DataError) as e:
        my.split(ds)
    assert "6 rows" in _msg(e) and "at least 10" in _msg(e)


def test_class_too_rare_for_the_training_split():
    ds = my.from_arrays(np.arange(30.0).reshape(-1, 1), np.array([0] * 29 + [1]))
    with pytest.raises(DataError, match=r"too few rows to appear in the training split"):
        my.split(ds, val_size=0.2, test_size=0.8 - 1e-9)


def test_bad_split_fractions():
    ds = my.load_dataset("sklearn:iris")
    with pytest.raises(DataError, match=r"sum to less than 1.*e\.g\."):
        my.split(ds, val_size=0.5, test_size=0.6)
