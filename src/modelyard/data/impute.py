"""Imputation of missing values: fitted on the training rows, carried by the model like its encoding.

Notation: ``X: (n, d)`` float32 schema-coded features, NaN where a value is missing;
``fill: (d,)`` float32, what replaces NaN in each column. Strategy ``median``: the median
of a numeric column's training values; ``most_frequent``: its most frequent value. A
categorical column gets its most frequent category under either strategy (the median of
category codes means nothing). A column with no value in the training rows gets 0 (numeric)
or -1, the code of an unseen category (categorical). The fitted imputer is plain data: the
strategy goes in the model's config, ``fill`` in its state as ``impute.fill``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError, ParamError
from ..schema import Schema

__all__ = ["STATE_KEY", "STRATEGIES", "Imputer", "check_strategy", "missing_counts"]

STRATEGIES = ("median", "most_frequent")
STATE_KEY = "impute.fill"


def check_strategy(strategy: str) -> str:
    """The strategy if it is one of ``STRATEGIES``; ParamError naming the choices otherwise."""
    if strategy not in STRATEGIES:
        raise ParamError(
            f"impute must be one of {', '.join(STRATEGIES)}, got {strategy!r}; e.g. --impute median"
        )
    return strategy


def missing_counts(X: NDArray, names: list[str]) -> dict[str, int]:
    """NaN count of each column that has any, by column name."""
    if X.dtype.kind != "f" or not X.size or not np.isnan(X.sum(dtype=np.float64)):
        return {}  # a NaN anywhere makes the sum NaN: one cheap pass rules out the column counts
    counts = np.isnan(X).sum(axis=0)
    return {names[j]: int(counts[j]) for j in np.flatnonzero(counts)}


def _most_frequent(values: NDArray) -> float:
    uniq, counts = np.unique(values, return_counts=True)
    return float(uniq[int(np.argmax(counts))])  # ties: the smallest value


class Imputer:
    """Replaces NaN in each column by a value learned from the training rows."""

    def __init__(self, strategy: str):
        self.strategy = check_strategy(strategy)
        self.fill_: NDArray[np.float32] | None = None

    def fit(self, X: NDArray, schema: Schema) -> Self:
        """Learn each column's fill value from the rows of ``X`` (NaN ignored)."""
        categorical = set(schema.categorical)
        fill = np.zeros(X.shape[1], dtype=np.float32)
        for j in range(X.shape[1]):
            col = X[:, j]
            present = col[~np.isnan(col)]
            if len(present) == 0:
                fill[j] = -1.0 if j in categorical else 0.0
            elif j in categorical or self.strategy == "most_frequent":
                fill[j] = _most_frequent(present)
            else:
                fill[j] = np.median(present.astype(np.float64))
        self.fill_ = fill
        return self

    def transform(self, X: NDArray[np.float32]) -> NDArray[np.float32]:
        """``X`` with each NaN replaced by its column's fill value (``X`` itself when it has none)."""
        if self.fill_ is None:
            raise ModelError("the imputer is not fitted; call fit first")
        if len(self.fill_) != X.shape[1]:
            raise ModelError(f"the imputer was fitted on {len(self.fill_)} columns but got {X.shape[1]}")
        mask = np.isnan(X)
        if not mask.any():
            return X
        out = np.array(X, dtype=np.float32, copy=True)
        rows, cols = np.nonzero(mask)
        out[rows, cols] = self.fill_[cols]
        return out

    def state(self) -> dict[str, NDArray]:
        """The fill values as one named array."""
        if self.fill_ is None:
            raise ModelError("the imputer is not fitted; call fit first")
        return {STATE_KEY: np.asarray(self.fill_, dtype=np.float32)}

    @classmethod
    def from_state(cls, strategy: str, state: Mapping[str, NDArray]) -> Self:
        """Rebuild from the strategy and ``state()``."""
        if STATE_KEY not in state:
            raise ModelError(f"the model's config asks for imputation but its state has no {STATE_KEY!r} array")
        self = cls(strategy)
        self.fill_ = np.asarray(state[STATE_KEY], dtype=np.float32)
        return self
