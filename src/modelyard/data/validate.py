"""Checks on raw columns that turn bad data into one clear DataError naming every column and the fix.

Missing values (NaN, None, an empty string) are ordinary input: they load as NaN. Infinite
values are refused, naming every column that holds them in one message.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError

__all__ = [
    "MAX_CATEGORIES", "PREDICT_FIX", "TRAIN_FIX", "check_finite", "check_rows", "describe_counts", "infinite_mask",
    "missing_mask", "nan_mask", "refuse_infinite",
]

MAX_CATEGORIES = 1000


def nan_mask(values: NDArray) -> NDArray[np.bool_]:
    """Rows where a column holds a missing value: NaN, None or an empty string (not inf)."""
    if values.dtype.kind in "fc":
        return np.isnan(values)
    if values.dtype.kind in "iub":
        return np.zeros(len(values), dtype=bool)
    out = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and v == ""):
            out[i] = True
    return out


def infinite_mask(values: NDArray) -> NDArray[np.bool_]:
    """Rows where a column holds +inf or -inf."""
    if values.dtype.kind in "fc":
        return np.isinf(values)
    if values.dtype.kind in "iub":
        return np.zeros(len(values), dtype=bool)
    return np.array([isinstance(v, float) and v in (np.inf, -np.inf) for v in values], dtype=bool)


def missing_mask(values: NDArray) -> NDArray[np.bool_]:
    """Rows where a column holds no usable value: NaN, inf, None or an empty string."""
    if values.dtype.kind in "fc":
        return ~np.isfinite(values)
    return nan_mask(values) | infinite_mask(values)


TRAIN_FIX = "clean them, or pass --drop-missing (drop_missing=True) to drop those rows"
PREDICT_FIX = "fill them (or drop those rows) before predicting"


def describe_counts(counts: Mapping[str, int], unit: str, limit: int = 12) -> str:
    """``'a' (12 missing), 'b' (3 missing)``, largest first, at most ``limit`` named."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{name!r} ({n:,} {unit})" for name, n in items[:limit])
    if len(items) > limit:
        text += f" and {len(items) - limit} more column(s)"
    return text


def refuse_infinite(counts: Mapping[str, int], *, training: bool = True) -> None:
    """One DataError naming every column that holds infinite values, with counts."""
    counts = {k: int(v) for k, v in counts.items() if v}
    if not counts:
        return
    fix = ("replace them (with NaN if unknown: missing values are accepted), or pass --drop-missing to drop those rows"
           if training else "replace them (or drop those rows) before predicting")
    raise DataError(f"{len(counts)} column(s) hold infinite values: {describe_counts(counts, 'inf')}; {fix}")


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
