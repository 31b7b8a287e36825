"""Turning raw tables (pandas, dicts, arrays) into the float32 matrix a Schema describes.

Used twice: when a dataset is loaded (the schema is inferred) and when a trained model
predicts on raw new rows (the stored schema is applied). A missing value (NaN, None, an
empty string) becomes NaN in numeric and categorical columns alike when training; infinite
values are refused, every such column named in one message.

Unseen categories at prediction time
------------------------------------
A value of a categorical column that training never saw (``"gold"`` when the model knows
``basic`` and ``pro``) follows the ``unknown=`` policy, one of ``UNKNOWN_POLICIES``:

``"error"``
    refuse with a ``SchemaMismatchError`` naming the column, the values and the fix. The
    serving endpoint (HTTP 422) and ``modelyard predict`` (exit 2) use it by default.
``"warn"``
    score the row as an unseen category (code ``-1``: all zeros in a one-hot encoding, a
    value below every split threshold of an ordinal one) and emit an ``UnseenCategoryWarning``
    naming the column, the number of rows and the values. ``Predictor.predict`` and the other
    Python entry points use it by default; ``modelyard predict --unknown warn`` and
    ``modelyard serve --unknown warn`` choose it explicitly.
``"ignore"``
    as ``"warn"``, silently (for callers that have already decided).

A missing value (NaN, None, an empty string) where the model can take none (it neither handles
missing values natively nor imputes) is never scored silently either: in numeric columns it is
refused, every such column named in one message; in a categorical column it follows the same
policy as an unseen category. A model that takes missing values (``allow_missing=True``) gets
NaN in ``X``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError, SchemaMismatchError
from ..schema import Column, Schema
from .validate import describe_counts, missing_mask, refuse_infinite

__all__ = [
    "DEFAULT_UNKNOWN",
    "UNKNOWN_POLICIES",
    "UnseenCategoryWarning",
    "as_matrix",
    "category_key",
    "check_unknown_policy",
    "frame_to_matrix",
    "to_frame",
]

UNKNOWN_POLICIES = ("error", "warn", "ignore")
DEFAULT_UNKNOWN = "warn"
_MISSING = -2  # internal code of a missing value before the policy is applied


class UnseenCategoryWarning(UserWarning):
    """Rows held categories never seen in training and were scored as unseen (code -1)."""


def check_unknown_policy(unknown: str) -> str:
    """``unknown`` if it is one of ``UNKNOWN_POLICIES``, else DataError naming them."""
    if unknown not in UNKNOWN_POLICIES:
        raise DataError(f"unknown-category policy must be one of {', '.join(UNKNOWN_POLICIES)}, got {unknown!r}")
    return unknown


def to_frame(table: Any, columns: list[str] | None = None):
    """Any table type (pandas, polars, pyarrow, dict of columns, 2-D array) as a pandas DataFrame."""
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        return table
    if hasattr(table, "to_pandas"):  # polars, pyarrow
        return table.to_pandas()
    if isinstance(table, dict):
        return pd.DataFrame(table)
    arr = np.asarray(table)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise DataError(f"expected a table or a 2-D array, got an array of shape {arr.shape}")
    if columns is not None and arr.shape[1] != len(columns):
        raise SchemaMismatchError(
            f"the data has {arr.shape[1]} columns but the model expects {len(columns)} ({', '.join(columns)}); "
            "pass rows with the training columns in the same order"
        )
    return pd.DataFrame(arr, columns=columns if columns is not None else [f"x{i}" for i in range(arr.shape[1])])


def _column(frame: Any, name: str) -> NDArray:
    """One column of a DataFrame or of a mapping of column name -> values, as a 1-D array."""
    values = frame[name]
    if hasattr(values, "to_numpy"):
        return values.to_numpy()
    arr = np.asarray(values)
    if arr.dtype.kind in "US":  # numpy turns [1, "a", None] into strings: keep the values as they came
        arr = np.array(values, dtype=object)
    if arr.ndim != 1:
        arr = np.asarray(list(values), dtype=object) if arr.ndim > 1 else arr.reshape(1)
        if arr.ndim != 1:
            raise SchemaMismatchError(f"column {name!r} must be a list of values, one per row; got nested lists")
    return arr


def _n_rows(frame: Any, schema: Schema) -> int:
    if hasattr(frame, "shape"):
        return int(frame.shape[0])
    lengths = [len(frame[c]) if hasattr(frame[c], "__len__") and not isinstance(frame[c], str) else 1
               for c in schema.feature_names]
    if lengths and min(lengths) != max(lengths):
        a = schema.feature_names[lengths.index(min(lengths))]
        b = schema.feature_names[lengths.index(max(lengths))]
        raise SchemaMismatchError(
            f"column {b!r} has {max(lengths)} values but column {a!r} has {min(lengths)}; "
            "give every column one value per row"
        )
    return lengths[0] if lengths else 0


def frame_to_matrix(
    frame: Any,
    schema: Schema,
    *,
    drop: NDArray[np.bool_] | None = None,
    training: bool = True,
    unknown: str = DEFAULT_UNKNOWN,
    allow_missing: bool = False,
) -> NDArray[np.float32]:
    """The schema's feature columns of ``frame`` (a DataFrame or a mapping of columns) as float32 codes/values.

    Refuses absent columns, non-numeric values in numeric columns and inf (every such column in one
    message). When training, missing values become NaN. When predicting (``training=False``) unseen
    categories and missing values follow the module's policy (``unknown``, ``allow_missing``).
    """
    check_unknown_policy(unknown)
    missing = [c for c in schema.feature_names if c not in frame]
    if missing:
        have = list(frame.columns) if hasattr(frame, "columns") else list(frame)
        raise SchemaMismatchError(
            f"the data lacks column(s) {', '.join(map(repr, missing))} that the model was trained on; "
            f"it has {', '.join(map(str, have)) or 'no columns'}"
        )
    n_all = _n_rows(frame, schema)
    n = n_all if drop is None else int((~drop).sum())
    X = np.empty((n, len(schema.columns)), dtype=np.float32)
    numeric: list[int] = []
    with np.errstate(over="ignore", invalid="ignore"):  # too large for float32: inf, reported below
        for j, col in enumerate(schema.columns):
            values = _column(frame, col.name)
            if drop is not None:
                values = values[~drop]
            if col.kind == "categorical":
                X[:, j] = _category_codes(col, values, unknown=unknown, allow_missing=allow_missing or training)
                continue
            if values.dtype.kind not in "biuf":
                import pandas as pd  # only for text in a numeric column: numbers need no pandas

                try:
                    values = pd.to_numeric(pd.Series(values), errors="raise").to_numpy()
                except (ValueError, TypeError) as e:
                    raise SchemaMismatchError(
                        f"column {col.name!r} must be numeric as in training, but holds {_first_non_numeric(values)!r}; "
                        "fix the column's values"
                    ) from e
            X[:, j] = values
            numeric.append(j)
    if numeric:  # one check over every numeric column; the slow path below only counts per column
        _check_numeric(frame, schema, X, numeric, drop, nan_ok=training or allow_missing, training=training)
    return X


def _check_numeric(frame: Any, schema: Schema, X: NDArray[np.float32], numeric: list[int],
                   drop: NDArray[np.bool_] | None, *, nan_ok: bool, training: bool) -> None:
    """Refuse inf (and NaN unless ``nan_ok``) in the numeric columns, naming every such column with counts."""
    block = X[:, numeric]
    bad = np.isinf(block) if nan_ok else ~np.isfinite(block)
    if not bad.any():
        return
    names = [schema.columns[j].name for j in numeric]
    infinite: dict[str, int] = {}
    for k in np.flatnonzero(np.isinf(block).any(axis=0)):
        values = _column(frame, names[k])
        values = values[~drop] if drop is not None else values
        if values.dtype.kind not in "biuf":
            import pandas as pd

            values = pd.to_numeric(pd.Series(values)).to_numpy()
        given = int(np.isinf(values.astype(np.float64)).sum())
        if int(np.isinf(block[:, k]).sum()) > given:
            raise DataError(f"column {names[k]!r} has values too large for float32 (|x| > 3.4e38); rescale the column")
        infinite[names[k]] = given
    refuse_infinite(infinite, training=training)
    if not nan_ok:
        _refuse_missing(dict(zip(names, np.isnan(block).sum(axis=0).tolist(), strict=True)))


def _refuse_missing(counts: dict[str, int]) -> None:
    """One DataError naming every numeric column with missing values, for a model that takes none."""
    counts = {k: int(v) for k, v in counts.items() if v}
    if counts:
        raise DataError(
            f"{len(counts)} column(s) have missing values: {describe_counts(counts, 'missing')}; the model was "
            "trained without missing values or imputation, so fill them before predicting (or retrain it with "
            "--impute median, or with a family that takes missing values such as random_forest)"
        )


def _first_non_numeric(values: NDArray) -> Any:
    import pandas as pd

    for v in values:
        if v is None or (isinstance(v, float)):
            continue
        try:
            pd.to_numeric(pd.Series([v]), errors="raise")
        except (ValueError, TypeError):
            return v
    return values[:1][0] if len(values) else None


def _category_codes(col: Column, values: NDArray, *, unknown: str, allow_missing: bool) -> NDArray[np.float32]:
    """Codes of one categorical column: index into ``col.categories``, -1 unseen, NaN missing (if allowed)."""
    import pandas as pd

    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    lookup = {c: i for i, c in enumerate(col.categories or ())}
    if n == 1:  # one row (serving): a dict look-up beats factorizing
        v = values[0]
        uniques, index = [v], np.zeros(1, dtype=np.int64)
    else:
        index, uniques = pd.factorize(values, use_na_sentinel=True)  # None/NaN -> -1
        uniques = list(uniques)
    lut = np.empty(len(uniques) + 1, dtype=np.float32)
    unseen: list[str] = []
    for i, v in enumerate(uniques):
        if missing_mask(np.array([v], dtype=object))[0]:
            lut[i] = _MISSING
            continue
        key = category_key(v)
        code = lookup.get(key)
        if code is None:
            unseen.append(key)
            lut[i] = -1
        else:
            lut[i] = code
    lut[-1] = _MISSING  # the factorize sentinel
    codes = lut[index]
    is_missing = codes == _MISSING
    n_missing = int(is_missing.sum())
    if n_missing and allow_missing:
        codes[is_missing] = np.nan
    elif n_missing:
        codes[is_missing] = -1
    n_unseen = int((codes == -1).sum()) - (0 if allow_missing else n_missing)
    if unseen or (n_missing and not allow_missing):
        _apply_policy(col, unseen, n_unseen, 0 if allow_missing else n_missing, n, unknown)
    return codes


def _apply_policy(col: Column, unseen: list[str], n_unseen: int, n_missing: int, n: int, unknown: str) -> None:
    """Refuse or warn about unseen categories / missing values in ``col`` as ``unknown`` says."""
    if unknown == "ignore":
        return
    shown = ", ".join(repr(u) for u in sorted(unseen)[:5]) + (f" and {len(unseen) - 5} more" if len(unseen) > 5 else "")
    known = ", ".join(map(str, (col.categories or ())[:10])) + (", ..." if len(col.categories or ()) > 10 else "")
    parts = []
    if n_unseen:
        parts.append(f"{n_unseen} of {n} row(s) hold categories never seen in training ({shown})")
    if n_missing:
        parts.append(f"{n_missing} of {n} row(s) have a missing value, which training never saw")
    problem = f"column {col.name!r}: " + " and ".join(parts)
    if unknown == "error":
        raise SchemaMismatchError(
            f"{problem}; use one of the known categories ({known}), or accept them as unseen with "
            "--unknown warn (Python: unknown='warn')"
        )
    warnings.warn(
        f"{problem}; they are scored as an unseen category (code -1); pass unknown='error' to refuse them",
        UnseenCategoryWarning, stacklevel=_caller_level(),
    )


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside modelyard, so a warning points at the user's call."""
    import sys

    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("modelyard."):
        frame, level = frame.f_back, level + 1
    return level


def as_matrix(
    table: Any, schema: Schema, *, unknown: str = DEFAULT_UNKNOWN, allow_missing: bool = False
) -> NDArray[np.float32]:
    """Raw rows in any table type as the float32 matrix of ``schema`` (a numeric 2-D array passes through).

    A mapping of column name -> values is read as it is (no pandas frame is built); see the module
    docstring for ``unknown`` and ``allow_missing``.
    """
    if isinstance(table, np.ndarray) and table.dtype.kind in "biuf":
        arr = table.reshape(1, -1) if table.ndim == 1 else table
        if arr.ndim != 2 or arr.shape[1] != len(schema.columns):
            raise SchemaMismatchError(
                f"the array has shape {table.shape} but the model expects {len(schema.columns)} feature columns "
                f"({', '.join(schema.feature_names[:10])}{', ...' if len(schema.columns) > 10 else ''})"
            )
        with np.errstate(over="ignore"):
            X = np.asarray(arr, dtype=np.float32)
        infs = np.isinf(X).sum(axis=0)
        if infs.any():
            refuse_infinite(dict(zip(schema.feature_names, infs.tolist(), strict=True)), training=False)
        if not allow_missing:
            _refuse_missing(dict(zip(schema.feature_names, np.isnan(X).sum(axis=0).tolist(), strict=True)))
        return X
    if not isinstance(table, Mapping):
        table = to_frame(table, schema.feature_names)
    return frame_to_matrix(table, schema, training=False, unknown=unknown, allow_missing=allow_missing)


def category_key(v: Any) -> str:
    """A raw value as the category string the schema stores (``3.0`` read from a file matches ``3``)."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)
