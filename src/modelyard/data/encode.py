"""Turning raw tables (pandas, dicts, arrays) into the float32 matrix a Schema describes.

Used twice: when a dataset is loaded (the schema is inferred) and when a trained model
predicts on raw new rows (the stored schema is applied, unseen categories become -1).
A missing value (NaN, None, an empty string) becomes NaN in numeric and categorical
columns alike; infinite values are refused, every such column named in one message.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError, SchemaMismatchError
from ..schema import Schema
from .validate import nan_mask, refuse_infinite

__all__ = ["as_matrix", "category_key", "frame_to_matrix", "to_frame"]


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


def frame_to_matrix(
    frame: Any, schema: Schema, *, drop: NDArray[np.bool_] | None = None, training: bool = True
) -> NDArray[np.float32]:
    """The schema's feature columns of ``frame`` as float32 codes/values (missing: NaN); refuses absent columns and inf.

    ``training`` only picks the fix the error about infinite values suggests.
    """
    import pandas as pd

    missing = [c for c in schema.feature_names if c not in frame.columns]
    if missing:
        raise SchemaMismatchError(
            f"the data lacks column(s) {', '.join(map(repr, missing))} that the model was trained on; "
            f"it has {', '.join(map(str, frame.columns))}"
        )
    n = len(frame) if drop is None else int((~drop).sum())
    X = np.empty((n, len(schema.columns)), dtype=np.float32)
    infinite: dict[str, int] = {}
    for j, col in enumerate(schema.columns):
        values = frame[col.name].to_numpy()
        if drop is not None:
            values = values[~drop]
        if col.kind == "categorical":
            obj = values.astype(object) if values.dtype.kind in "fc" else values
            missing = nan_mask(obj)
            lookup = {c: i for i, c in enumerate(col.categories or ())}
            X[:, j] = [np.nan if m else lookup.get(category_key(v), -1) for v, m in zip(values, missing, strict=True)]
        else:
            if values.dtype.kind not in "biuf":
                try:
                    values = pd.to_numeric(pd.Series(values), errors="raise").to_numpy()
                except (ValueError, TypeError) as e:
                    raise SchemaMismatchError(
                        f"column {col.name!r} must be numeric as in training, but holds {values[:1][0]!r}; "
                        "fix the column's values"
                    ) from e
            given_inf = int(np.isinf(values).sum()) if values.dtype.kind == "f" else 0
            with np.errstate(over="ignore", invalid="ignore"):
                X[:, j] = values
            if given_inf:
                infinite[col.name] = given_inf
            if int(np.isinf(X[:, j]).sum()) > given_inf:
                raise DataError(
                    f"column {col.name!r} has values too large for float32 (|x| > 3.4e38); rescale the column"
                )
    refuse_infinite(infinite, training=training)
    return X


def as_matrix(table: Any, schema: Schema) -> NDArray[np.float32]:
    """Raw rows in any table type as the float32 matrix of ``schema`` (a numeric 2-D array passes through)."""
    if isinstance(table, np.ndarray) and table.dtype.kind in "biuf":
        arr = table.reshape(1, -1) if table.ndim == 1 else table
        if arr.ndim != 2 or arr.shape[1] != len(schema.columns):
            raise SchemaMismatchError(
                f"the array has shape {table.shape} but the model expects {len(schema.columns)} feature columns "
                f"({', '.join(schema.feature_names[:10])}{', ...' if len(schema.columns) > 10 else ''})"
            )
        X = np.asarray(arr, dtype=np.float32)
        infs = np.isinf(X).sum(axis=0)
        if infs.any():
            refuse_infinite(dict(zip(schema.feature_names, infs.tolist(), strict=True)), training=False)
        return X
    return frame_to_matrix(to_frame(table, schema.feature_names), schema, training=False)


def category_key(v: Any) -> str:
    """A raw value as the category string the schema stores (``3.0`` read from a file matches ``3``)."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)
