"""Scoring decoded rows with one loaded version: predictions (original labels or values) and probabilities."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError

if TYPE_CHECKING:
    from ..models.predictor import Predictor

__all__ = ["Scores", "proba_columns", "score"]


@dataclass(frozen=True, eq=False)
class Scores:
    """Predictions for ``n`` rows and, when asked for, class probabilities ``(n, n_classes)``."""

    predictions: NDArray
    probabilities: NDArray | None = None
    classes: tuple[Any, ...] | None = None

    def __len__(self) -> int:
        return len(self.predictions)


def score(predictor: Predictor, columns: Mapping[str, Any] | Any, *, proba: bool = False,
          unknown: str = "error") -> Scores:
    """Code raw ``columns`` against the predictor's schema (``unknown``: the unseen-category policy) and score them."""
    X = predictor.coded(columns, unknown=unknown)
    if len(X) == 0:
        k = predictor.schema.n_classes
        return Scores(np.zeros(0), np.zeros((0, k)) if proba else None, predictor.schema.classes if proba else None)
    predictions = predictor.labels(predictor.predict_codes(X))
    if not proba:
        return Scores(predictions)
    if not predictor.has_proba:
        raise ModelError(f"{predictor.family} gives no class probabilities for this task; leave out proba")
    return Scores(predictions, predictor.proba_codes(X), predictor.schema.classes)


def proba_columns(classes: tuple[Any, ...]) -> list[str]:
    """Output column names of the class probabilities: ``proba_<label>``."""
    return [f"proba_{c}" for c in classes]
