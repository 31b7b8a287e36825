"""Feature encoding that travels with a fitted model: one-hot for linear and neural models, ordinal for trees.

Input ``X: (n, d)`` holds category codes in the schema's categorical columns (``-1`` for
unseen categories, NaN for missing ones). ``onehot`` expands each categorical column into one
column per category (unseen -1 and missing NaN -> all zeros); ``ordinal`` passes codes (and NaN)
through; ``native`` is for
a library with its own categorical splits (gradient boosting): codes pass through, except that
an unseen category (``-1``) becomes the code ``k`` (the column's number of training categories),
one category past the known ones, which a categorical split never chose and so sends down the
branch of the categories it did not pick (missing values stay NaN and follow the learned default
direction). A family declaring ``encoding = "native"`` gets ``set_categorical({column: k})``
from its ``Predictor`` before it is fitted. The encoder is derived from the schema alone, so it
needs no state of its own.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..schema import Schema

__all__ = ["MODES", "Encoder"]

MODES = ("onehot", "ordinal", "native")


class Encoder:
    """Maps schema-coded features to a model's input matrix."""

    def __init__(self, schema: Schema, mode: str):
        if mode not in MODES:
            raise ValueError(f"encoding mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.schema = schema
        self.mode = mode
        self._cat = schema.categorical

    def categorical_sizes(self) -> dict[int, int]:
        """``{column index: number of training categories}`` of the categorical columns."""
        return {j: len(self.schema.columns[j].categories or ()) for j in self._cat}

    @property
    def n_outputs(self) -> int:
        """Width of the encoded matrix."""
        if self.mode != "onehot" or not self._cat:
            return len(self.schema.columns)
        extra = sum(len(self.schema.columns[j].categories or ()) - 1 for j in self._cat)
        return len(self.schema.columns) + extra

    def transform(self, X: NDArray[np.float32]) -> NDArray[np.float32]:
        """The encoded matrix (the input itself when nothing needs expanding)."""
        if self.mode == "native" and self._cat:
            return self._native(X)
        if self.mode != "onehot" or not self._cat:
            return X
        blocks = []
        start = 0
        for j in self._cat:
            if j > start:
                blocks.append(X[:, start:j])
            k = len(self.schema.columns[j].categories or ())
            col = X[:, j]
            ok = col >= 0  # False for -1 (unseen) and NaN (missing)
            codes = np.where(ok, col, 0).astype(np.int64)
            onehot = np.zeros((len(X), k), dtype=np.float32)
            onehot[np.flatnonzero(ok), codes[ok]] = 1.0
            blocks.append(onehot)
            start = j + 1
        if start < X.shape[1]:
            blocks.append(X[:, start:])
        return np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.float32)

    def _native(self, X: NDArray[np.float32]) -> NDArray[np.float32]:
        """Codes as they are, an unseen category (-1) as the code one past the column's categories."""
        out = None
        for j, k in self.categorical_sizes().items():
            unseen = X[:, j] < 0
            if unseen.any():
                if out is None:
                    out = np.array(X, dtype=np.float32, copy=True)
                out[unseen, j] = k
        return X if out is None else out
