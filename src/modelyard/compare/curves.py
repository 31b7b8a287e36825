"""Plot data kept in a comparison: confusion matrices, ROC and precision-recall points, samples of predictions.

Shapes: ``y: (n,)`` reference class indices or values, ``pred: (n,)``, ``score: (n,)`` the
probability of class 1 (binary). Curves keep at most ``max_points`` points, always
including both ends, so a record stays small however many rows were compared.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..records.comparisons import Diagnostics

__all__ = ["classification_diagnostics", "confusion", "pr_points", "regression_diagnostics", "roc_points", "thin"]

MAX_POINTS = 200
MAX_SAMPLE = 2000


def confusion(y: NDArray, pred: NDArray, k: int) -> NDArray[np.int64]:
    """Counts ``(k, k)``: rows are true classes, columns predicted classes."""
    return np.bincount(np.asarray(y) * k + np.asarray(pred), minlength=k * k).reshape(k, k)


def _thresholds(y: NDArray, score: NDArray) -> tuple[NDArray, NDArray]:
    """True and false positives at each distinct score, highest score first."""
    order = np.argsort(-score, kind="stable")
    s, t = score[order], (np.asarray(y)[order] == 1).astype(np.float64)
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # last row of each distinct score
    tps = np.cumsum(t)[last]
    fps = (last + 1) - tps
    return tps, fps


def thin(*curves: NDArray, max_points: int = MAX_POINTS) -> tuple[NDArray, ...]:
    """Keep at most ``max_points`` evenly spaced points of aligned curves (ends included)."""
    n = len(curves[0])
    if n <= max_points:
        return curves
    keep = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
    return tuple(c[keep] for c in curves)


def roc_points(y: NDArray, score: NDArray, max_points: int = MAX_POINTS) -> tuple[NDArray, NDArray]:
    """False and true positive rates from (0, 0) to (1, 1)."""
    tps, fps = _thresholds(y, score)
    p, n = max(tps[-1], 1.0), max(fps[-1], 1.0)
    fpr, tpr = np.r_[0.0, fps / n], np.r_[0.0, tps / p]
    return thin(fpr, tpr, max_points=max_points)


def pr_points(y: NDArray, score: NDArray, max_points: int = MAX_POINTS) -> tuple[NDArray, NDArray]:
    """Recall and precision, from recall 0 (precision 1) to recall 1."""
    tps, fps = _thresholds(y, score)
    recall = np.r_[0.0, tps / max(tps[-1], 1.0)]
    precision = np.r_[1.0, tps / (tps + fps)]
    return thin(recall, precision, max_points=max_points)


def _floats(v: NDArray) -> tuple[float, ...]:
    return tuple(float(x) for x in v)


def classification_diagnostics(y: NDArray, pred: NDArray, proba: NDArray | None, k: int) -> Diagnostics:
    """Confusion matrix, and for binary problems with probabilities the ROC and precision-recall points."""
    cm = confusion(y, pred, k)
    roc = pr = None
    if k == 2 and proba is not None and 0 < int(np.sum(y == 1)) < len(y):
        score = np.asarray(proba, dtype=np.float64)[:, 1]
        roc = tuple(_floats(c) for c in roc_points(y, score))
        pr = tuple(_floats(c) for c in pr_points(y, score))
    return Diagnostics(confusion=tuple(tuple(int(x) for x in row) for row in cm), roc=roc, pr=pr)


def regression_diagnostics(y: NDArray, pred: NDArray, rows: NDArray[np.intp]) -> Diagnostics:
    """Targets and predictions of the sampled ``rows`` (the same rows for every version)."""
    return Diagnostics(y_true=_floats(np.asarray(y)[rows]), y_pred=_floats(np.asarray(pred)[rows]))
