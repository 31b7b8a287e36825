"""load_dataset: every source format, task inference and override, schema and fingerprint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import modelyard as my
from modelyard.schema import Task


def test_csv_with_text_columns_and_string_target(churn_csv, churn):
    ds = my.load_dataset(churn_csv, target="churned")
    assert len(ds) == len(churn) and ds.n_features == 3
    assert ds.task is Task.CLASSIFICATION
    assert ds.schema.classes == ("no", "yes")
    assert ds.feature_names == ["age", "plan", "monthly"]
    plan = ds.schema.columns[1]
    assert plan.kind == "categorical" and plan.categories == ("basic", "plus", "pro")
    # X holds the category index; y the class index
    assert set(np.unique(ds.X[:, 1])) == {0.0, 1.0, 2.0}
    assert np.array_equal(ds.labels(ds.y), churn["churned"].to_numpy())
    assert ds.X.dtype == np.float32 and ds.source == str(churn_csv)


def test_parquet_matches_csv(tmp_path, churn, churn_csv):
    path = tmp_path / "churn.parquet"
    churn.to_parquet(path)
    a = my.load_dataset(path, target="churned")
    b = my.load_dataset(churn_csv, target="churned")
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert a.schema.columns[1] == b.schema.columns[1]


def test_npz(tmp_path):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(50, 4)), rng.normal(size=50)
    np.savez(tmp_path / "d.npz", X=X, y=y, feature_names=np.array(["a", "b", "c", "d"]))
    ds = my.load_dataset(tmp_path / "d.npz")
    assert ds.task is Task.REGRESSION and ds.feature_names == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(ds.X, X.astype(np.float32))
    np.testing.assert_array_equal(ds.y, y)


@pytest.mark.parametrize(
    "name, task, n_classes",
    [("iris", Task.CLASSIFICATION, 3), ("wine", Task.CLASSIFICATION, 3), ("breast_cancer", Task.CLASSIFICATION, 2),
     ("digits", Task.CLASSIFICATION, 10), ("diabetes", Task.REGRESSION, 0)],
)
def test_sklearn_bundled(name, task, n_classes):
    ds = my.load_dataset(f"sklearn:{name}")
    assert ds.task is task and ds.schema.n_classes == n_classes and len(ds) > 100


def test_iris_classes_are_names():
    assert my.load_dataset("sklearn:iris").schema.classes == ("setosa", "versicolor", "virginica")


def test_data_frame_and_arrays_sources(churn):
    assert len(my.load_dataset(churn, target="churned")) == len(churn)
    ds = my.load_dataset((np.eye(12), np.arange(12) % 2))
    assert ds.task is Task.CLASSIFICATION and ds.n_features == 12


def test_target_guessed_from_common_names():
    df = pd.DataFrame({"x": np.arange(20.0), "label": [0, 1] * 10})
    assert my.load_dataset(df).schema.target == "label"


@pytest.mark.parametrize(
    "values, task",
    [
        (np.arange(40) % 3, Task.CLASSIFICATION),  # few ints: labels
        (np.arange(40), Task.REGRESSION),  # many distinct int64 values: a quantity
        ((np.arange(40) % 2).astype(float), Task.CLASSIFICATION),  # 0.0 / 1.0
        (np.linspace(0, 1, 40), Task.REGRESSION),
        (np.array(["a", "b"] * 20), Task.CLASSIFICATION),
        (np.array([True, False] * 20), Task.CLASSIFICATION),
    ],
)
def test_task_inference(values, task):
    df = pd.DataFrame({"x": np.linspace(0, 1, 40), "t": values})
    assert my.load_dataset(df, target="t").task is task


def test_task_override():
    df = pd.DataFrame({"x": np.linspace(0, 1, 40), "t": np.arange(40) % 3})
    ds = my.load_dataset(df, target="t", task="regression")
    assert ds.task is Task.REGRESSION and ds.y.dtype == np.float64
    ds = my.load_dataset(pd.DataFrame({"x": np.arange(40.0), "t": np.arange(40)}), target="t", task=Task.CLASSIFICATION)
    assert ds.schema.n_classes == 40


def test_fingerprint_is_stable_and_content_addressed(churn_csv, churn, tmp_path):
    a = my.load_dataset(churn_csv, target="churned")
    b = my.load_dataset(churn_csv, target="churned")
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 64
    assert a.schema == b.schema
    changed = churn.copy()
    changed.loc[0, "monthly"] += 1
    changed.to_csv(tmp_path / "changed.csv", index=False)
    assert my.load_dataset(tmp_path / "changed.csv", target="churned").fingerprint != a.fingerprint
    # another target is another dataset
    assert my.load_dataset(churn_csv, target="age").fingerprint != a.fingerprint


def test_fingerprint_pinned_for_bundled_set():
    # the bytes of a bundled dataset do not change between runs or machines (schema + float32 X + int64 y)
    first = my.load_dataset("sklearn:iris").fingerprint
    assert first == my.load_dataset("sklearn:iris").fingerprint


def test_schema_round_trips_through_json(churn_csv):
    import json

    schema = my.load_dataset(churn_csv, target="churned").schema
    assert my.Schema.from_dict(json.loads(json.dumps(schema.to_dict()))) == schema


def test_drop_missing_drops_only_rows_with_missing_values(churn, tmp_path):
    bad = churn.copy()
    bad.loc[[2, 5], "monthly"] = np.nan
    bad.loc[7, "plan"] = None
    bad.loc[9, "churned"] = None
    bad.to_csv(tmp_path / "holes.csv", index=False)
    ds = my.load_dataset(tmp_path / "holes.csv", target="churned", drop_missing=True)
    assert len(ds) == len(churn) - 4
    keep = np.ones(len(churn), dtype=bool)
    keep[[2, 5, 7, 9]] = False
    np.testing.assert_array_equal(ds.X[:, 0], churn["age"].to_numpy()[keep])


def test_drop_missing_on_npz(tmp_path):
    X = np.arange(40.0).reshape(20, 2)
    X[3, 1] = np.inf
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(20) % 2)
    ds = my.load_dataset(tmp_path / "d.npz", drop_missing=True)
    assert len(ds) == 19 and np.isfinite(ds.X).all()
