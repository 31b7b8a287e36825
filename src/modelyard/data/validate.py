"""Checks on raw columns that turn bad data into one clear DataError naming the column and the fix."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError

__all__ = ["MAX_CATEGORIES", "PREDICT_FIX", "TRAIN_FIX", "check_finite", "check_rows", "missing_mask"]

MAX_CATEGORIES = 1000


def missing_mask(values: NDArray) -> NDArray[np.bool_]:
    """Rows where a column holds NaN, inf, None or an empty string."""
    if values.dtype.kind in "fc":
        return ~np.isfinite(values)
    if values.dtype.kind in "iub":
        return np.zeros(len(values), dtype=bool)
    out = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and not np.isfinite(v)) or (isinstance(v, str) and v == ""):
            out[i] = True
    return out


TRAIN_FIX = "clean them, or pass --drop-missing (drop_missing=True) to drop those rows"
PREDICT_FIX = "fill them (or drop those rows) before predicting"


def check_finite(name: str, values: NDArray, *, what: str = "feature", fix: str = TRAIN_FIX) -> None:
    """Refuse NaN/inf/missing values in one column with a count and the fix."""
    bad = missing_mask(values)
    n_bad = int(bad.sum())
    if n_bad:
        kinds = []
        if values.dtype.kind in "fc":
            n_nan = int(np.isnan(values).sum())
            n_inf = n_bad - n_nan
            if n_nan:
                kinds.append(f"{n_nan} NaN/missing")
            if n_inf:
                kinds.append(f"{n_inf} inf")
        else:
            kinds.append(f"{n_bad} missing")
        raise DataError(
            f"{what} column {name!r} has {' and '.join(kinds)} value(s) in {len(values)} rows; {fix}"
        )


def check_rows(n: int, needed: int, why: str) -> None:
    """Refuse a dataset with too few rows for what is asked of it."""
    if n < needed:
        raise DataError(f"the dataset has {n} rows but {why} needs at least {needed}; use more data")
