"""The Dataset record: features as one float32 matrix, target as codes or values, schema and fingerprint.

Notation: ``X: (n, d)`` float32, numeric columns hold their values and categorical
columns hold the index of their category in ``schema.columns[j].categories`` (``-1``
for a category never seen); a missing value is NaN in either kind of column. ``y: (n,)`` int64 class indices into ``schema.classes``
for classification, float64 values for regression, or ``None`` for unlabeled rows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError
from ..schema import Schema, Task

__all__ = ["MAX_DROP_SHARE", "Dataset", "DropReport"]

MAX_DROP_SHARE = 0.2
"""``drop_missing=True`` refuses to drop more than this share of the rows that have a target ("force" does)."""


@dataclass(frozen=True)
class DropReport:
    """Rows a load removed: those without a target, and (``drop_missing``) those with missing values per column."""

    rows: int  # rows in the source
    no_target: int  # rows without a target value (always dropped: nothing to train on)
    dropped: int  # rows removed in all
    by_column: dict[str, int] = field(default_factory=dict)  # rows with a missing value in each column (overlapping)
    target: str | None = None

    def sentence(self) -> str:
        """One line for a person: what was dropped and why."""
        parts = []
        if self.no_target:
            parts.append(f"{self.no_target:,} without a value of target {self.target!r}")
        missing = self.dropped - self.no_target
        if missing:
            from .validate import describe_counts

            parts.append(f"{missing:,} with missing values ({describe_counts(self.by_column, 'rows', limit=5)})")
        return f"dropped {self.dropped:,} of {self.rows:,} rows: {'; '.join(parts)}"

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form."""
        return {"rows": self.rows, "dropped": self.dropped, "no_target": self.no_target,
                "by_column": dict(self.by_column), "target": self.target}


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features, target, schema and a content fingerprint; rows are immutable once loaded."""

    X: NDArray[np.float32]
    y: NDArray | None
    schema: Schema
    source: str = "<memory>"
    _fingerprint: str | None = field(default=None, repr=False)
    dropped: DropReport | None = field(default=None, repr=False)  # rows the load removed, and why

    def __post_init__(self) -> None:
        if self.X.ndim != 2:
            raise DataError(f"X must be 2-D (rows x features), got shape {self.X.shape}; reshape it")
        if self.y is not None and len(self.y) != len(self.X):
            raise DataError(f"X has {len(self.X)} rows but y has {len(self.y)}; pass one target value per row")

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def task(self) -> Task:
        """Classification or regression."""
        return self.schema.task

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return int(self.X.shape[1])

    @property
    def feature_names(self) -> list[str]:
        """Feature column names, in order."""
        return self.schema.feature_names

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the schema, features and target as loaded (hex)."""
        if self._fingerprint is not None:
            return self._fingerprint
        h = hashlib.sha256()
        h.update(json.dumps(self.schema.to_dict(), sort_keys=True, default=str).encode())
        h.update(np.ascontiguousarray(self.X).reshape(-1).view(np.uint8))  # no copy
        if self.y is not None:
            h.update(np.ascontiguousarray(self.y).reshape(-1).view(np.uint8))
        return h.hexdigest()

    def take(self, index: NDArray[np.integer] | slice) -> Dataset:
        """The rows at ``index`` as a new dataset with the same schema."""
        y = None if self.y is None else self.y[index]
        return Dataset(self.X[index], y, self.schema, self.source)

    def labels(self, codes: NDArray[np.integer]) -> NDArray:
        """Map class indices back to the original class labels."""
        if self.schema.classes is None:
            return codes
        return np.asarray(self.schema.classes, dtype=object)[codes]
