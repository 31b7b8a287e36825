"""Loading datasets from CSV, Parquet, .npz, scikit-learn's bundled sets, data frames and arrays."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError
from ..schema import Column, Schema, Task
from .dataset import MAX_DROP_SHARE, Dataset, DropReport
from .encode import category_key, frame_to_matrix
from .validate import MAX_CATEGORIES, describe_counts, infinite_mask, missing_mask, nan_mask, refuse_infinite

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
    drop_missing: bool | str = False,
    drop_columns: Sequence[str] | str = (),
) -> Dataset:
    """Load a dataset from a path (.csv, .parquet, .npz), ``sklearn:NAME``, a data frame or an ``(X, y)`` pair.

    Missing feature values load as NaN. Rows without a target value are dropped and counted in
    ``Dataset.dropped``. ``drop_missing=True`` also drops rows with a missing or infinite feature
    value, refusing to drop more than ``MAX_DROP_SHARE`` (20%) of the rows unless it is ``"force"``.
    ``drop_columns`` (names, or one comma-separated string) leaves those feature columns out.
    """
    if isinstance(source, tuple) and len(source) == 2:
        return from_arrays(source[0], source[1], task=task, drop_missing=drop_missing, drop_columns=drop_columns)
    if not isinstance(source, (str, Path)):
        return from_frame(source, target, task=task, drop_missing=drop_missing, drop_columns=drop_columns)
    text = str(source)
    if text.startswith("sklearn:"):
        return _load_sklearn(text, task, drop_columns)
    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(f"data file {text!r} does not exist; check the path (or use sklearn:iris for a bundled set)")
    if path.is_dir():
        raise DataError(f"{text!r} is a folder, not a data file; pass a .csv, .parquet or .npz file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path, task, drop_missing, drop_columns)
    frame = read_frame(path)
    return from_frame(frame, target, task=task, drop_missing=drop_missing, drop_columns=drop_columns, source=text)


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


def _load_sklearn(text: str, task: Task | str | None, drop_columns: Sequence[str] | str = ()) -> Dataset:
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
    return from_arrays(X, y_raw, feature_names=names, task=t, source=text, target="target", drop_columns=drop_columns)


def _load_npz(path: Path, task: Task | str | None, drop_missing: bool | str, drop_columns: Sequence[str] | str) -> Dataset:
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
    return from_arrays(X, y, feature_names=names, task=task, source=str(path), drop_missing=drop_missing,
                       drop_columns=drop_columns, copy=False)


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
    drop_missing: bool | str = False,
    drop_columns: Sequence[str] | str = (),
    source: str = "<frame>",
) -> Dataset:
    """Build a Dataset from a pandas (or polars/pyarrow) table, inferring the schema and the task."""
    from .encode import to_frame

    mode = drop_mode(drop_missing)
    frame = to_frame(frame)
    cols = [str(c) for c in frame.columns]
    frame.columns = cols
    target = resolve_target(cols, target, source)
    gone = check_drop_columns(cols, drop_columns, target, source)
    if gone:
        frame = frame.drop(columns=gone)
        cols = [c for c in cols if c not in gone]
    if len(frame) == 0:
        raise DataError(f"{source!r} has no rows; use a file with data")

    y_raw = frame[target].to_numpy()
    features = [c for c in cols if c != target]
    masks = {c: missing_mask(frame[c].to_numpy()) for c in features} if mode != "no" else {}
    drop, report = plan_drop(len(frame), masks, y_raw, mode, source, target)
    keep = slice(None) if drop is None else ~drop
    y_raw = y_raw[keep]

    columns = []
    for c in features:
        columns.append(_infer_column(c, frame[c].to_numpy()[keep]))
    t = _as_task(task) if task is not None else infer_task(y_raw)
    y, classes = _encode_target(y_raw, t, target)
    schema = Schema(columns=tuple(columns), target=target, task=t, classes=classes)
    X = frame_to_matrix(frame, schema, drop=drop)
    return Dataset(X, y, schema, source, dropped=report)


def drop_mode(drop_missing: bool | str | None) -> str:
    """``"no"``, ``"yes"`` or ``"force"`` from the ``drop_missing`` argument (a bool or ``"force"``)."""
    if drop_missing is None or drop_missing is False:
        return "no"
    if drop_missing is True or (isinstance(drop_missing, str) and drop_missing.lower() in ("yes", "true", "1")):
        return "yes"
    if isinstance(drop_missing, str) and drop_missing.lower() == "force":
        return "force"
    raise DataError(f"drop_missing must be True, False or 'force', got {drop_missing!r}; e.g. --drop-missing=force")


def check_drop_columns(cols: Sequence[str], drop_columns: Sequence[str] | str, target: str | None,
                       source: str) -> list[str]:
    """The columns ``drop_columns`` names (a list or ``"A,B"``), refusing unknown ones, the target, or all features."""
    if isinstance(drop_columns, str):
        drop_columns = [c.strip() for c in drop_columns.split(",") if c.strip()]
    names = list(dict.fromkeys(str(c) for c in drop_columns))
    if not names:
        return []
    unknown = [c for c in names if c not in cols]
    if unknown:
        raise DataError(
            f"--drop-columns names {', '.join(map(repr, unknown))}, not a column of {source!r}; its columns are: "
            f"{', '.join(cols)}"
        )
    if target is not None and target in names:
        raise DataError(f"--drop-columns names the target column {target!r}; list only feature columns to leave out")
    if len([c for c in cols if c != target and c not in names]) == 0:
        raise DataError(f"--drop-columns leaves no feature column of {source!r}; keep at least one")
    return names


def plan_drop(
    n: int, feature_missing: Mapping[str, NDArray[np.bool_]], y: NDArray, mode: str, source: str, target: str | None,
) -> tuple[NDArray[np.bool_] | None, DropReport | None]:
    """Rows to drop (``None``: none) and the report: rows without a target, and (``mode`` yes/force) rows with gaps.

    Refuses (DataError) when no row has a target, when every row would go, and, in mode
    ``"yes"``, when more than ``MAX_DROP_SHARE`` of the rows with a target would go.
    """
    no_target = nan_mask(y)
    inf_target = infinite_mask(y)
    if inf_target.any():
        if mode == "no":
            raise DataError(
                f"target column {target!r} has {int(inf_target.sum())} inf value(s); replace them, or pass "
                "--drop-missing to drop those rows"
            )
        no_target = no_target | inf_target
    n_no_target = int(no_target.sum())
    if n_no_target == n:
        raise DataError(f"no row of {source!r} has a value in target column {target!r}; choose another --target")
    drop = no_target.copy()
    by_column: dict[str, int] = {}
    if mode != "no":
        labeled = ~no_target
        gaps = np.zeros(n, dtype=bool)
        for name, mask in feature_missing.items():
            m = mask & labeled
            count = int(m.sum())
            if count:
                by_column[name] = count
                gaps |= m
        n_gaps, base = int(gaps.sum()), int(labeled.sum())
        worst = [c for c, _ in sorted(by_column.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
        if n_gaps == base:
            raise DataError(
                f"every row of {source!r} has a missing value, so --drop-missing leaves nothing (mostly "
                f"{describe_counts({c: by_column[c] for c in worst}, 'rows')}); impute instead (--impute median) or "
                f"leave those columns out (--drop-columns {shlex.quote(','.join(worst))})"
            )
        if mode == "yes" and n_gaps > MAX_DROP_SHARE * base:
            raise DataError(
                f"--drop-missing would drop {n_gaps:,} of {base:,} rows ({n_gaps / base:.0%}, more than the "
                f"{MAX_DROP_SHARE:.0%} it drops unasked), mostly for missing values in "
                f"{describe_counts({c: by_column[c] for c in worst}, 'rows')}; impute instead (--impute median, or a "
                f"family that takes missing values natively), leave those columns out (--drop-columns "
                f"{shlex.quote(','.join(worst))}), or pass --drop-missing=force (drop_missing='force')"
            )
        drop |= gaps
    if not drop.any():
        return None, None
    return drop, DropReport(rows=n, no_target=n_no_target, dropped=int(drop.sum()), by_column=by_column,
                            target=target)


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
    drop_missing: bool | str = False,
    drop_columns: Sequence[str] | str = (),
    copy: bool = True,
) -> Dataset:
    """Build a Dataset from a numeric feature matrix and a target vector (``copy=False`` may share float32 X).

    NaN features stay NaN; rows whose target is missing are dropped and counted in ``Dataset.dropped``.
    """
    mode = drop_mode(drop_missing)
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
    gone = check_drop_columns([*names, target], drop_columns, target, source)
    if gone:
        kept = [j for j, n in enumerate(names) if n not in gone]
        X, names = X[:, kept], [names[j] for j in kept]
        copy = False  # the fancy index already copied
    with np.errstate(over="ignore"):
        Xf = X.astype(np.float32, copy=copy)
    masks = {n: ~np.isfinite(Xf[:, j]) for j, n in enumerate(names)} if mode != "no" else {}
    drop, report = plan_drop(len(Xf), masks, y, mode, source, target)
    if drop is not None:
        Xf, y = Xf[~drop], y[~drop]
    if mode == "no":
        infs = np.isinf(Xf).sum(axis=0)
        if infs.any():
            rows = X if drop is None else X[~drop]
            given = np.isinf(rows).sum(axis=0) if X.dtype.kind == "f" else np.zeros_like(infs)
            if (infs > given).any():  # finite in X, infinite in float32
                j = int(np.flatnonzero(infs > given)[0])
                raise DataError(
                    f"column {names[j]!r} has values too large for float32 (|x| > 3.4e38); rescale the column"
                )
            refuse_infinite({n: int(c) for n, c in zip(names, infs, strict=True)})
    t = _as_task(task) if task is not None else infer_task(y)
    y_enc, classes = _encode_target(y, t, target)
    columns = tuple(Column(n, "numeric", str(X.dtype)) for n in names)
    return Dataset(np.ascontiguousarray(Xf), y_enc, Schema(columns, target, t, classes), source, dropped=report)
