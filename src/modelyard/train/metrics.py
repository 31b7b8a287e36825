"""Evaluation (S): metrics of predictions on held-out rows.

Classification: accuracy, precision/recall/F1 (macro, and per class), log loss, ROC-AUC
(binary). Regression: RMSE, MAE, R². Inputs: ``y_true: (n,)`` class indices or values,
``y_pred: (n,)``, ``proba: (n, k)`` or None.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError
from ..schema import Task

__all__ = [
    "HIGHER_IS_BETTER",
    "KEY_METRIC",
    "classification_metrics",
    "evaluate",
    "predict_outputs",
    "regression_metrics",
    "roc_auc",
    "score",
]

KEY_METRIC = {Task.CLASSIFICATION: "f1", Task.REGRESSION: "rmse"}
HIGHER_IS_BETTER = {
    "accuracy": True, "precision": True, "recall": True, "f1": True, "roc_auc": True, "r2": True,
    "log_loss": False, "rmse": False, "mae": False,
}


def classification_metrics(
    y_true: NDArray, y_pred: NDArray, proba: NDArray | None, classes: Sequence[Any]
) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, per-class scores, log loss and (binary) ROC-AUC."""
    k = len(classes)
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    cm = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(np.float64)
    pred_pos = cm.sum(axis=0).astype(np.float64)
    true_pos = cm.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, pred_pos, out=np.zeros(k), where=pred_pos > 0)
    recall = np.divide(tp, true_pos, out=np.zeros(k), where=true_pos > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    present = true_pos > 0  # macro averages over classes present in y_true, as scikit-learn does with labels seen
    out: dict[str, Any] = {
        "accuracy": float(tp.sum() / max(len(y_true), 1)),
        "precision": float(precision[present | (pred_pos > 0)].mean()),
        "recall": float(recall[present | (pred_pos > 0)].mean()),
        "f1": float(f1[present | (pred_pos > 0)].mean()),
        "per_class": {
            str(c): {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(true_pos[i])}
            for i, c in enumerate(classes)
        },
    }
    if proba is not None:
        p = np.clip(np.asarray(proba, dtype=np.float64), 1e-15, 1.0)
        p = p / p.sum(axis=1, keepdims=True)
        out["log_loss"] = float(-np.mean(np.log(p[np.arange(len(y_true)), y_true])))
        if k == 2 and 0 < y_true.sum() < len(y_true):
            out["roc_auc"] = roc_auc(y_true, proba[:, 1])
    return out


def roc_auc(y_true: NDArray, score: NDArray) -> float:
    """Area under the ROC curve (Mann-Whitney U with midranks for ties)."""
    _, inverse, counts = np.unique(np.asarray(score), return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse.reshape(-1)]  # midranks, 1-based
    pos = np.asarray(y_true) == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def regression_metrics(y_true: NDArray, y_pred: NDArray) -> dict[str, float]:
    """RMSE, MAE and R²."""
    y_true = np.asarray(y_true, dtype=np.float64)
    err = np.asarray(y_pred, dtype=np.float64) - y_true
    ss_tot = float(((y_true - y_true.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": float(1 - (err**2).sum() / ss_tot) if ss_tot > 0 else 0.0,
    }


def predict_outputs(predictor: Any, X: NDArray) -> tuple[NDArray, NDArray | None]:
    """What the metrics need from a model on schema-coded rows: class indices or values, and probabilities."""
    if predictor.schema.task is Task.REGRESSION:
        return np.asarray(predictor.predict_codes(X)), None
    proba = predictor.proba_codes(X) if predictor.has_proba else None
    pred = proba.argmax(axis=1) if proba is not None else np.asarray(predictor.predict_codes(X))
    return pred, proba


def score(schema: Any, y: NDArray, pred: NDArray, proba: NDArray | None) -> dict[str, Any]:
    """All metrics of predictions ``pred`` (and ``proba``) against targets ``y`` for the schema's task."""
    if len(y) == 0:
        raise DataError("there are no held-out rows to measure the model on; use a test or validation size > 0")
    if schema.task is Task.REGRESSION:
        return regression_metrics(y, pred)
    return classification_metrics(y, pred, proba, schema.classes or ())


def evaluate(predictor: Any, X: NDArray, y: NDArray) -> dict[str, Any]:
    """All metrics of ``predictor`` on schema-coded rows ``X`` with targets ``y``."""
    pred, proba = predict_outputs(predictor, X)
    return score(predictor.schema, y, pred, proba)
