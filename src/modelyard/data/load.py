"""Loading datasets from CSV, Parquet, .npz, scikit-learn's bundled sets, data frames and arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError
from ..schema import Column, Schema, Task
from .dataset import Dataset
from .encode import category_key, frame_to_matrix
from .validate import MAX_CATEGORIES, check_finite, missing_mask

__all__ = ["SKLEARN_DATASETS", "from_arrays", "from_frame", "infer_task", "load_dataset", "read_frame"]

SKLEARN_DATASETS = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "digits": "load_digits",
    "diabetes": "load_diabetes",
}
_TARGET_GUESSES = ("target", "label", "y", "class")
_MAX_CLASSES_FOR_INTS = 20


def load_dataset(
    source: Any,
    target: str | None = None,
    *,
    task: Task | str | None = None,
    drop_missing: bool = False,
) -> Dataset:
    """Load a dataset from a path (.csv, .parquet, .npz), ``sklearn:NAME``, a data frame or an ``(X, y)`` pair."""
    if isinstance(source, tuple) and len(source) == 2:
        return from_arrays(source[0], source[1], task=task, drop_missing=drop_missing)
    if not isinstance(source, (str, Path)):
        return from_frame(source, target, task=task, drop_missing=drop_missing)
    text = str(source)
    if text.startswith("sklearn:"):
        return _load_sklearn(text, task)
    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(f"data file {text!r} does not exist; check the path (or use sklearn:iris for a bundled set)")
    if path.is_dir():
        raise DataError(f"{text!r} is a folder, not a data file; pass a .csv, .parquet or .npz file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path, task, drop_missing)
    frame = read_frame(path)
    return from_frame(frame, target, task=task, drop_missing=drop_missing, source=text)


def read_frame(path: Path):
    """Read a CSV or Parquet file into a pandas DataFrame, mapping parse errors to DataError."""
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv", ".txt") or path.name.endswith((".csv.gz", ".csv.zip")):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except PermissionError as e:
        raise DataError(f"cannot read {str(path)!r}: permission denied; fix the file's permissions") from e
    except pd.errors.EmptyDataError as e:
        raise DataError(f"{str(path)!r} is empty; pass a file with a header row and data rows") from e
    except Exception as e:  # parser errors of pandas/pyarrow
        detail = " ".join(str(e).split())
        raise DataError(f"cannot parse {str(path)!r} as {suffix[1:]}: {detail}; check that the file is valid") from e
    raise DataError(
        f"unknown data format {suffix or '(no extension)'!r} for {str(path)!r}; use .csv, .parquet or .npz"
    )


def _load_sklearn(text: str, task: Task | str | None) -> Dataset:
    name = text.split(":", 1)[1]
    if name not in SKLEARN_DATASETS:
        raise DataError(f"unknown bundled dataset {name!r}; choose one of {', '.join(SKLEARN_DATASETS)}")
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, SKLEARN_DATASETS[name])()
    X = np.asarray(bunch.data, dtype=np.float32)
    names = [str(n) for n in getattr(bunch, "feature_names", [f"x{i}" for i in range(X.shape[1])])]
    y_raw = np.asarray(bunch.target)
    labels = getattr(bunch, "target_names", None)
    inferred = Task.REGRESSION if name == "diabetes" else Task.CLASSIFICATION
    t = _as_task(task) if task is not None else inferred
    if t is Task.CLASSIFICATION and labels is not None and len(labels) == len(np.unique(y_raw)):
        y_raw = np.asarray(labels)[y_raw]
    return from_arrays(X, y_raw, feature_names=names, task=t, source=text, target="target")


def _load_npz(path: Path, task: Task | str | None, drop_missing: bool) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "X" not in z.files:
                raise DataError(f"{str(path)!r} has no array 'X' (it has {', '.join(z.files)}); save it with np.savez(X=..., y=...)")
            X = z["X"]
            y = z["y"] if "y" in z.files else None
            names = [str(n) for n in z["feature_names"]] if "feature_names" in z.files else None
    except DataError:
        raise
    except ValueError as e:
        raise DataError(
            f"cannot read {str(path)!r} as .npz: it is not a zip of plain .npy arrays (or it holds pickled objects, "
            "which modelyard never loads); save numeric arrays with np.savez(path, X=X, y=y)"
        ) from e
    except Exception as e:
        raise DataError(f"cannot read {str(path)!r} as .npz: {e}; check the file") from e
    if y is None:
        raise DataError(f"{str(path)!r} has no array 'y'; save the target as np.savez(..., y=y)")
    return from_arrays(X, y, feature_names=names, task=task, source=str(path), drop_missing=drop_missing, copy=False)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _as_task(task: Task | str) -> Task:
    try:
        return Task(task)
    except ValueError:
        raise DataError(
            f"task must be 'classification' or 'regression', got {task!r}; pass one of those (or leave it out to infer it)"
        ) from None


def infer_task(y: NDArray) -> Task:
    """Classification for labels, booleans and few distinct integers; regression for other numbers."""
    if y.dtype.kind in "OUSb":
        return Task.CLASSIFICATION
    finite = y[np.isfinite(y)] if y.dtype.kind == "f" else y
    integral = y.dtype.kind in "iu" or bool(np.all(np.mod(finite, 1) == 0))
    if integral and len(np.unique(finite)) <= _MAX_CLASSES_FOR_INTS:
        return Task.CLASSIFICATION
    return Task.REGRESSION


def _encode_target(y: NDArray, task: Task, name: str) -> tuple[NDArray, tuple[Any, ...] | None]:
    if task is Task.REGRESSION:
        if y.dtype.kind not in "biuf":
            raise DataError(
                f"target {name!r} holds non-numeric values (e.g. {y[0]!r}) so it cannot be regressed; "
                "use --task classification or a numeric target"
            )
        return y.astype(np.float64), None
    if y.dtype.kind == "O":
        y = y.astype(str)
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise DataError(
            f"target {name!r} has a single class ({_plain(classes[0])!r}) so there is nothing to classify; "
            "use data with at least two classes"
        )
    return codes.astype(np.int64), tuple(c.item() if hasattr(c, "item") else c for c in classes)


def from_frame(
    frame: Any,
    target: str | None = None,
    *,
    task: Task | str | None = None,
    drop_missing: bool = False,
    source: str = "<frame>",
) -> Dataset:
    """Build a Dataset from a pandas (or polars/pyarrow) table, inferring the schema and the task."""
    from .encode import to_frame

    frame = to_frame(frame)
    cols = [str(c) for c in frame.columns]
    frame.columns = cols
    target = resolve_target(cols, target, source)
    if len(frame) == 0:
        raise DataError(f"{source!r} has no rows; use a file with data")

    y_raw = frame[target].to_numpy()
    features = [c for c in cols if c != target]
    drop = np.zeros(len(frame), dtype=bool)
    if drop_missing:
        for c in cols:
            drop |= missing_mask(frame[c].to_numpy())
        if drop.all():
            raise DataError(f"every row of {source!r} has a missing value, so --drop-missing leaves nothing")
    else:
        check_finite(target, y_raw, what="target")
    y_raw = y_raw[~drop]

    columns = []
    for c in features:
        columns.append(_infer_column(c, frame[c].to_numpy()[~drop]))
    t = _as_task(task) if task is not None else infer_task(y_raw)
    y, classes = _encode_target(y_raw, t, target)
    schema = Schema(columns=tuple(columns), target=target, task=t, classes=classes)
    X = frame_to_matrix(frame, schema, drop=drop if drop.any() else None)
    return Dataset(X, y, schema, source)


def resolve_target(cols: list[str], target: str | None, source: str) -> str:
    """The target column among ``cols``: the one named, else a conventional name; DataError otherwise."""
    if len(cols) < 2:
        raise DataError(f"{source!r} has {len(cols)} column(s); it needs at least one feature and a target")
    if target is None:
        guess = [c for c in _TARGET_GUESSES if c in cols]
        if not guess:
            raise DataError(f"no target column given; pass --target with one of: {', '.join(cols)}")
        target = guess[0]
    if target not in cols:
        raise DataError(f"target column {target!r} is not in {source!r}; its columns are: {', '.join(cols)}")
    return target


def _infer_column(name: str, values: NDArray) -> Column:
    import pandas as pd

    kind = values.dtype.kind
    if kind in "biuf":
        return Column(name, "numeric", str(values.dtype))
    if kind == "M" or kind == "m":
        raise DataError(f"column {name!r} holds dates/times, which cannot be encoded; convert it to numbers first")
    present = values[~missing_mask(values)]
    numeric = pd.to_numeric(pd.Series(present), errors="coerce")
    if len(present) and numeric.notna().all():
        return Column(name, "numeric", "float64")
    cats = sorted({category_key(v) for v in present})
    if len(cats) > MAX_CATEGORIES:
        raise DataError(
            f"column {name!r} is text with {len(cats)} distinct values (more than {MAX_CATEGORIES}), "
            "which cannot be encoded as categories; drop it or turn it into numbers"
        )
    return Column(name, "categorical", "str", tuple(cats))


def from_arrays(
    X: Any,
    y: Any,
    *,
    feature_names: list[str] | None = None,
    task: Task | str | None = None,
    source: str = "<arrays>",
    target: str = "y",
    drop_missing: bool = False,
    copy: bool = True,
) -> Dataset:
    """Build a Dataset from a numeric feature matrix and a target vector (``copy=False`` may share float32 X)."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise DataError(f"X must be a 2-D array (rows x features), got shape {X.shape}; reshape it")
    if y.ndim != 1 or len(y) != len(X):
        raise DataError(f"y must be a 1-D array with one value per row of X ({len(X)}), got shape {y.shape}")
    if X.dtype.kind not in "biuf":
        raise DataError(f"X must be numeric, got dtype {X.dtype}; use a CSV or Parquet file for text columns")
    if len(X) == 0:
        raise DataError(f"{source!r} has no rows; use data with rows")
    names = [str(n) for n in feature_names] if feature_names is not None else [f"x{i}" for i in range(X.shape[1])]
    if len(names) != X.shape[1]:
        raise DataError(f"{len(names)} feature names given for {X.shape[1]} columns; pass one name per column")
    with np.errstate(over="ignore"):
        Xf = X.astype(np.float32, copy=copy)
    if drop_missing:
        keep = np.isfinite(Xf).all(axis=1) & ~missing_mask(y)
        if not keep.any():
            raise DataError(f"every row of {source!r} has a missing value, so --drop-missing leaves nothing")
        Xf, y = Xf[keep], y[keep]
    for j, n in enumerate(names):
        check_finite(n, Xf[:, j])
    check_finite(target, y, what="target")
    t = _as_task(task) if task is not None else infer_task(y)
    y_enc, classes = _encode_target(y, t, target)
    columns = tuple(Column(n, "numeric", str(X.dtype)) for n in names)
    return Dataset(np.ascontiguousarray(Xf), y_enc, Schema(columns, target, t, classes), source)
