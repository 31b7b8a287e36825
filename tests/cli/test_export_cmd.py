"""``modelyard export``: ONNX and safetensors files from a registered version; families that cannot say so."""

from __future__ import annotations

import json

import numpy as np
import pytest

import modelyard as my
from modelyard.cli.main import main


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "store"
    assert main(["train", "sklearn:iris", "--model", "random_forest", "--set", "n_estimators=5", "--name", "iris",
                 "--store", str(path), "--json"]) == 0
    assert main(["train", "sklearn:iris", "--model", "sklearn.naive_bayes:GaussianNB", "--name", "nb",
                 "--store", str(path), "--json"]) == 0
    assert main(["models", "alias", "iris", "production", "iris/1", "--store", str(path)]) == 0
    return str(path)


def test_export_onnx_and_safetensors(store, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    capsys.readouterr()
    assert main(["export", "iris@production", "--format", "onnx", "--out", str(tmp_path / "m.onnx"), "--json",
                 "--store", store]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"]["ref"] == "iris/1" and out["files"] == [str(tmp_path / "m.onnx")]
    ds = my.load_dataset("sklearn:iris")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    labels, proba = session.run(None, {n: ds.X[:, [j]] for j, n in enumerate(ds.feature_names)})
    model = my.load_model("iris/1", store=store)
    np.testing.assert_allclose(proba, model.predict_proba(ds.X), atol=1e-5)
    assert list(labels) == list(model.predict(ds.X))
    assert main(["export", "iris/1", "--format", "safetensors", "--out", str(tmp_path / "w.safetensors"),
                 "--store", store]) == 0
    assert "exported iris/1" in capsys.readouterr().out and (tmp_path / "w.safetensors.json").is_file()


def test_a_family_that_cannot_be_exported_says_so(store, tmp_path, capsys):
    capsys.readouterr()
    assert main(["export", "nb/1", "--out", str(tmp_path / "k.onnx"), "--store", store]) == 2
    err = capsys.readouterr().err
    assert "cannot be exported to ONNX" in err and "--format safetensors" in err and not (tmp_path / "k.onnx").exists()


@pytest.mark.parametrize("name", ["penguins", "cars"])
def test_export_a_gradient_boosting_version_with_categories_and_missing_values(name, tmp_path, capsys):
    """The version rebuilt from the store (XGBoost's UBJSON) exports exactly: native categories, NaN, unseen ones."""
    import warnings

    from modelyard.serve.export import onnx_feed
    from modelyard.testing.datasets import real_table

    ort = pytest.importorskip("onnxruntime")
    table, store = real_table(name), str(tmp_path / "store")
    drop = ["--drop-columns", ",".join(table.drop_columns)] if table.drop_columns else []
    assert main(["train", str(table.path), "--target", table.target, *drop, "--model", "gradient_boosting",
                 "--set", "n_estimators=30", "--set", "max_cat_to_onehot=1", "--name", name, "--store", store,
                 "--json"]) == 0
    assert main(["export", f"{name}/1", "--format", "onnx", "--out", str(tmp_path / "gb.onnx"), "--store", store]) == 0
    model = my.load_model(f"{name}/1", store=store)
    rows = table.frame().drop(columns=[table.target, *table.drop_columns])
    categorical = [c.name for c in model.schema.columns if c.kind == "categorical"]
    assert rows.isna().any().any() and categorical
    rows.loc[rows.index[:5], categorical[0]] = "never-seen"  # unseen: scored as XGBoost scores the code k
    session = ort.InferenceSession(str(tmp_path / "gb.onnx"))
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, onnx_feed(model, rows)), strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = model.predict(rows)
        if model.task is my.Task.CLASSIFICATION:
            np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(rows), rtol=0, atol=1e-5)
            assert list(outputs["label"]) == list(expected)
        else:
            np.testing.assert_allclose(outputs["prediction"], expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
