"""Feature encoding that travels with a fitted model: one-hot for linear and neural models, ordinal for trees.

Input ``X: (n, d)`` holds category codes in the schema's categorical columns (``-1`` for
unseen categories). ``onehot`` expands each categorical column into one column per category
(unseen -1 and missing NaN -> all zeros); ``ordinal`` passes codes (and NaN) through. The encoder is derived from the
schema alone, so it needs no state of its own.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..schema import Schema

__all__ = ["Encoder"]


class Encoder:
    """Maps schema-coded features to a model's input matrix."""

    def __init__(self, schema: Schema, mode: str):
        if mode not in ("onehot", "ordinal"):
            raise ValueError(f"encoding mode must be 'onehot' or 'ordinal', got {mode!r}")
        self.schema = schema
        self.mode = mode
        self._cat = schema.categorical

    @property
    def n_outputs(self) -> int:
        """Width of the encoded matrix."""
        if self.mode == "ordinal" or not self._cat:
            return len(self.schema.columns)
        extra = sum(len(self.schema.columns[j].categories or ()) - 1 for j in self._cat)
        return len(self.schema.columns) + extra

    def transform(self, X: NDArray[np.float32]) -> NDArray[np.float32]:
        """The encoded matrix (the input itself when nothing needs expanding)."""
        if self.mode == "ordinal" or not self._cat:
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
