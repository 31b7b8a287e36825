"""Writing rows back out: a dataset's train/validation/test parts as files a person can open and check.

Rows are decoded from the dataset (categories back to their text, classes to their labels,
integer columns to integers), in the input's format where it has one (CSV, Parquet, .npz)
and as CSV otherwise (``sklearn:NAME``, DataFrames). Reading a written file back gives the
same feature values, so ``modelyard compare --data test.csv`` finds no training row in it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError
from ..schema import Task
from .dataset import Dataset

__all__ = ["PART_NAMES", "check_split_folder", "split_format", "to_frame", "write_split"]

PART_NAMES = ("train", "validation", "test")


def split_format(source: str) -> str:
    """``csv``, ``parquet`` or ``npz``: the format of ``source``, or CSV when it has none of those."""
    suffix = Path(str(source)).suffix.lower()
    if str(source).startswith("sklearn:") or str(source).startswith("<"):
        return "csv"
    return {".parquet": "parquet", ".pq": "parquet", ".npz": "npz"}.get(suffix, "csv")


def check_split_folder(folder: str | os.PathLike[str]) -> Path:
    """``folder`` if the split can be written there: absent, or an empty folder; DataError otherwise."""
    path = Path(folder).expanduser()
    if path.exists() and not path.is_dir():
        raise DataError(f"--save-split {str(folder)!r} is a file; pass a folder that does not exist yet or is empty")
    if path.is_dir() and any(path.iterdir()):
        raise DataError(
            f"--save-split folder {str(folder)!r} is not empty; pass a new or empty folder so no file is overwritten"
        )
    return path


def to_frame(ds: Dataset) -> Any:
    """The rows as a pandas DataFrame of raw values: features in schema order, then the target."""
    import pandas as pd

    data: dict[str, Any] = {}
    for j, col in enumerate(ds.schema.columns):
        values = ds.X[:, j]
        if col.kind == "categorical":
            cats = np.asarray(list(col.categories or ()) + [None], dtype=object)
            codes = np.where(np.isfinite(values) & (values >= 0), values, len(cats) - 1).astype(np.int64)
            data[col.name] = cats[codes]
        elif col.dtype.startswith(("int", "uint")) and np.isfinite(values).all():
            data[col.name] = values.astype(np.int64)
        else:
            data[col.name] = values
    if ds.y is not None:
        target = ds.schema.target or "target"
        data[target] = ds.labels(ds.y) if ds.task is Task.CLASSIFICATION else np.asarray(ds.y, dtype=np.float64)
    return pd.DataFrame(data)


def _write(ds: Dataset, path: Path, fmt: str) -> None:
    if fmt == "npz":
        y = ds.labels(ds.y) if ds.y is not None and ds.task is Task.CLASSIFICATION else ds.y
        y = np.asarray(y) if y is not None else np.zeros(0)
        if y.dtype == object:
            y = y.astype(str)
        np.savez(path, X=ds.X, y=y, feature_names=np.asarray(ds.feature_names, dtype=str))
        return
    frame = to_frame(ds)
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def write_split(
    ds: Dataset, rows: Sequence[NDArray[np.integer]], folder: str | os.PathLike[str], *,
    record: Mapping[str, Any] | None = None, fmt: str | None = None,
) -> dict[str, str]:
    """Write the parts ``rows`` (train, validation, test indices) of ``ds`` into ``folder``; ``{part: path}``.

    The files appear together or not at all: they are written in a temporary folder beside
    ``folder`` and moved in. ``split.json`` holds the part sizes and how they were drawn
    (``record``, without its row hashes).
    """
    target = check_split_folder(folder)
    fmt = fmt or split_format(ds.source)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".split-", dir=target.parent))
    try:
        names = {}
        for part, idx in zip(PART_NAMES, rows, strict=True):
            name = f"{part}.{fmt}"
            _write(ds.take(np.asarray(idx)), tmp / name, fmt)
            names[part] = name
        about = {k: v for k, v in dict(record or {}).items() if k != "seen"}
        about.update({"source": ds.source, "files": names})
        (tmp / "split.json").write_text(json.dumps(about, indent=2) + "\n")
        target.mkdir(exist_ok=True)
        for name in [*names.values(), "split.json"]:
            os.replace(tmp / name, target / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {part: str(target / name) for part, name in names.items()}
