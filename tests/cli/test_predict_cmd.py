"""``modelyard predict``: files in, predictions out (streamed), checked against the version's schema."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import modelyard as my
from modelyard.cli.main import main


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """churn/1: a random forest on a table with a text column and string labels, aliased production."""
    import modelyard.store.versions  # noqa: F401
    from modelyard.yard import Yard

    folder = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"id": np.arange(n) + 1000, "age": rng.integers(18, 80, n),
                          "plan": rng.choice(["basic", "plus", "pro"], n), "monthly": rng.normal(50, 15, n).round(2)})
    frame["churned"] = np.where((frame.plan == "basic") | (frame.age < 25), "yes", "no")
    with Yard(folder / "store") as yard:
        yard.registry.register(my.train(my.load_dataset(frame.drop(columns="id"), target="churned"),
                                        model="random_forest", params={"n_estimators": 5, "n_jobs": 1}), "churn")
        yard.registry.set_alias("churn", "production", "churn/1")
    frame.to_csv(folder / "rows.csv", index=False)
    frame.to_parquet(folder / "rows.parquet", row_group_size=64)
    return folder, frame


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_csv_to_stdout_keeps_ids_and_gives_labels_as_in_training(store, capsys):
    folder, frame = store
    code, out, err = _run(capsys, "predict", "churn@production", folder / "rows.csv", "--keep", "id",
                          "--store", folder / "store")
    assert code == 0, err
    import io

    got = pd.read_csv(io.StringIO(out))
    model = my.load_model("churn/1", store=folder / "store")
    assert list(got.columns) == ["id", "prediction"] and got["id"].tolist() == frame["id"].tolist()
    assert got["prediction"].tolist() == list(model.predict(frame)) and set(got["prediction"]) <= {"yes", "no"}


def test_parquet_streams_by_batch_into_parquet_with_probabilities_and_a_json_summary(store, capsys, tmp_path):
    folder, frame = store
    out = tmp_path / "scored.parquet"
    code, stdout, err = _run(capsys, "predict", "churn/1", folder / "rows.parquet", "--out", out, "--proba",
                             "--keep", "id,churned", "--batch-rows", 50, "--json", "--store", folder / "store")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["rows"] == len(frame) and summary["output"] == str(out) and summary["seconds"] > 0
    assert summary["version"]["ref"] == "churn/1" and len(summary["version"]["id"]) == 64
    got = pd.read_parquet(out)
    assert list(got.columns) == ["id", "churned", "prediction", "proba_no", "proba_yes"]
    model = my.load_model("churn/1", store=folder / "store")
    np.testing.assert_allclose(got[["proba_no", "proba_yes"]].to_numpy(), model.predict_proba(frame), atol=1e-12)
    assert not list(tmp_path.glob(".*tmp"))


def test_batches_of_any_size_give_the_same_predictions(store, tmp_path):
    from modelyard.serve.batch import predict_file

    folder, frame = store
    model = my.load_model("churn/1", store=folder / "store")
    calls = []
    whole = predict_file(model, folder / "rows.parquet", tmp_path / "a.csv", proba=True)
    small = predict_file(model, folder / "rows.parquet", tmp_path / "b.csv", proba=True, batch_rows=7,
                         progress=lambda done, total: calls.append((done, total)))
    assert whole.rows == small.rows == len(frame)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert len(calls) >= len(frame) // 64 and calls[-1] == (len(frame), len(frame))  # incremental, row group by group


def test_npz_input(store, capsys, tmp_path):
    folder, _ = store
    ds = my.load_dataset("sklearn:iris")
    assert main(["train", "sklearn:iris", "--model", "logistic_regression", "--epochs", "1", "--name", "iris",
                 "--store", str(folder / "store"), "--json"]) == 0
    capsys.readouterr()
    np.savez(tmp_path / "x.npz", X=ds.X[:10])
    code, out, err = _run(capsys, "predict", "iris/1", tmp_path / "x.npz", "--store", folder / "store")
    assert code == 0, err
    assert out.splitlines()[0] == '"prediction"' and len(out.splitlines()) == 11
    code, out, err = _run(capsys, "predict", "iris/1", "sklearn:iris", "--keep", "target", "--store", folder / "store")
    assert code == 0 and len(out.splitlines()) == 151 and out.splitlines()[1].startswith('"setosa"')


def test_an_unseen_category_stops_the_run_with_exit_2_and_leaves_no_file(store, capsys, tmp_path):
    folder, frame = store
    bad = frame.copy()
    bad.loc[250, "plan"] = "platinum"
    bad.to_parquet(tmp_path / "bad.parquet", row_group_size=64)
    out = tmp_path / "out.parquet"
    code, _, err = _run(capsys, "predict", "churn/1", tmp_path / "bad.parquet", "--out", out,
                        "--store", folder / "store")
    assert code == 2 and "Traceback" not in err
    assert "column 'plan': 1 of" in err and "'platinum'" in err and "--unknown warn" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "bad.parquet"]
    code, _, err = _run(capsys, "predict", "churn/1", tmp_path / "bad.parquet", "--out", out, "--unknown", "warn",
                             "--store", folder / "store")
    assert code == 0 and "warning: column 'plan'" in err and "'platinum'" in err and out.exists()


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.drop(columns="plan"), r"lacks column\(s\) 'plan' that the model was trained on"),
    (lambda f: f.assign(age=["old"] * len(f)), r"column 'age' must be numeric as in training, but holds 'old'"),
])
def test_rows_that_do_not_match_the_schema_exit_2_with_one_sentence(store, capsys, tmp_path, change, message):
    import re

    folder, frame = store
    change(frame.copy()).to_csv(tmp_path / "bad.csv", index=False)
    code, _, err = _run(capsys, "predict", "churn/1", tmp_path / "bad.csv", "--store", folder / "store")
    assert code == 2 and re.search(message, err) and len(err.strip().splitlines()) == 1, err


def test_bad_arguments_exit_2(store, capsys, tmp_path):
    folder, _ = store
    s = ("--store", folder / "store")
    assert "--out FILE" in _run(capsys, "predict", "churn/1", folder / "rows.csv", "--json", *s)[2]
    assert "does not exist" in _run(capsys, "predict", "churn/1", tmp_path / "nope.csv", *s)[2]
    assert "name the output .csv or .parquet" in _run(capsys, "predict", "churn/1", folder / "rows.csv", "--out",
                                                        tmp_path / "x.xlsx", *s)[2]
    code, _, err = _run(capsys, "predict", "churn/9", folder / "rows.csv", *s)
    assert code == 2 and "churn has no version 9" in err
