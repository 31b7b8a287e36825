"""ONNX export of gradient_boosting: onnxruntime's predictions match XGBoost's (NaN routed the same way)."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.errors import ModelError
from modelyard.models.boosting import GradientBoosting
from modelyard.models.boosting.onnx_export import export_onnx
from modelyard.records.training import FitConfig
from modelyard.schema import Task

ort = pytest.importorskip("onnxruntime")
CFG = FitConfig(seed=0, threads=1)


def data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    X[rng.random((n, 5)) < 0.1] = np.nan
    return X, rng


def run(model, X):
    sess = ort.InferenceSession(export_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"X": X})


@pytest.mark.parametrize("k", [2, 3])
def test_classifier_probabilities_match_xgboost(k):
    X, _ = data()
    y = np.digitize(np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * np.isnan(X[:, 2]), [-0.5, 0.5][: k - 1])
    model = GradientBoosting(task=Task.CLASSIFICATION, n_classes=k, n_estimators=40, max_depth=4, n_jobs=1)
    model.fit(X, y, config=CFG)
    label, proba = run(model, X)
    np.testing.assert_allclose(proba, model.predict_proba(X), atol=1e-5)
    clear = np.sort(proba, axis=1)[:, -1] - np.sort(proba, axis=1)[:, -2] > 1e-4
    assert np.array_equal(label[clear], model.predict(X)[clear])


def test_regressor_values_match_xgboost():
    X, rng = data()
    y = np.nan_to_num(X[:, 0]) * 3 + rng.normal(0, 0.1, len(X))
    model = GradientBoosting(task=Task.REGRESSION, n_estimators=50, n_jobs=1).fit(X, y, config=CFG)
    (out,) = run(model, X)
    np.testing.assert_allclose(out[:, 0], model.predict(X), rtol=1e-4, atol=1e-4)


def test_categorical_models_are_refused_in_one_sentence():
    X, rng = data()
    X[:, 0] = rng.integers(0, 3, len(X))
    model = GradientBoosting(task=Task.CLASSIFICATION, n_classes=2, n_estimators=5, n_jobs=1)
    model.set_categorical({0: 3})
    model.fit(X, (X[:, 0] == 1).astype(int), config=CFG)
    with pytest.raises(ModelError, match="cannot express; export a model trained without categorical columns"):
        export_onnx(model)
