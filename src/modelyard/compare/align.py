"""Checking comparison data against each version's stored schema, and re-coding it for each version.

A dataset loaded from a file carries its own inferred schema: column order, category codes
and class codes follow that file, not the training data. Every version gets its own feature
matrix ``X_v: (n, d_v)`` with columns in its training order and categories in its training
codes, and the target is re-coded once into the classes of the first version (all versions
must know the same classes). Every mismatch is collected first and reported in one error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.dataset import Dataset
from ..errors import DataError, SchemaMismatchError
from ..schema import Column, Schema, Task

__all__ = ["Aligned", "align", "label_key"]

_SHOW = 5  # values named in a message before "..."


def label_key(v: Any) -> str:
    """A class or category value as a string key (``3.0`` read from a file matches ``3``; ``True`` is ``True``)."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, np.generic):
        return str(v.item())
    return str(v)


def _names(values: Sequence[Any]) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:_SHOW])
    return shown + (f", ... ({len(values)} in all)" if len(values) > _SHOW else "")


@dataclass(frozen=True)
class Aligned:
    """The comparison data as each version needs it."""

    X: tuple[NDArray[np.float32], ...]  # one (n, d_v) matrix per version, in its training column order
    y: NDArray  # (n,) class indices into ``classes`` or float values
    classes: tuple[Any, ...] | None  # the first version's classes (the reference order)
    class_maps: tuple[NDArray[np.intp], ...]  # per version: reference index of each of its class indices


def _feature(dataset: Dataset, have: Column, j: int, want: Column, label: str,
             problems: list[str]) -> NDArray[np.float32] | None:
    """Column ``j`` of the data re-coded as ``want`` expects, or None after noting the problem."""
    values = dataset.X[:, j]
    if want.kind == "numeric":
        if have.kind != "numeric":
            problems.append(f"column {want.name!r} holds text in the data but was numeric when {label} was trained")
            return None
        return values
    index = {c: i for i, c in enumerate(want.categories or ())}
    # a missing value stays NaN: the version's Predictor imputes it, routes it natively or reads it as unseen,
    # exactly as it does for raw rows
    present = ~np.isnan(values)
    recoded = np.full(len(values), np.nan, dtype=np.float32)
    if have.kind == "categorical":
        unseen = [c for c in have.categories or () if c not in index]
        lut = np.array([index.get(c, -1) for c in have.categories or ()] + [-1], dtype=np.float32)
        codes = values[present].astype(np.int64)
        recoded[present] = lut[np.where(codes < 0, len(lut) - 1, codes)]
    else:  # numbers in the data where training saw text categories such as "1", "2"
        uniq = np.unique(values[present])
        keys = [label_key(v) for v in uniq]
        unseen = [k for k in keys if k not in index]
        lut = np.array([index.get(k, -1) for k in keys], dtype=np.float32)
        recoded[present] = lut[np.searchsorted(uniq, values[present])]
    if unseen:
        problems.append(
            f"column {want.name!r} has categories {label} never saw in training: {_names(unseen)} "
            f"(it knows {_names(want.categories or ())})"
        )
        return None
    return recoded


def _classes_of(dataset: Dataset) -> tuple[list[str], NDArray]:
    """Class keys of the data's target and the rows' indices into them."""
    if dataset.schema.task is Task.CLASSIFICATION:
        return [label_key(c) for c in dataset.schema.classes or ()], np.asarray(dataset.y, dtype=np.int64)
    uniq, inverse = np.unique(np.asarray(dataset.y), return_inverse=True)
    return [label_key(v) for v in uniq], inverse.ravel()


def align(dataset: Dataset, schemas: Sequence[tuple[str, Schema]]) -> Aligned:
    """Check ``dataset`` against every ``(label, schema)`` and re-code it for each; one SchemaMismatchError lists all problems."""
    if dataset.y is None:
        raise DataError("the comparison data has no target; load it with target=COLUMN (CLI: --target)")
    if len(dataset) == 0:
        raise DataError("the comparison data has no rows; pass a file with held-out rows")
    tasks = {s.task for _, s in schemas}
    if len(tasks) > 1:
        kinds = ", ".join(f"{label} does {s.task.value}" for label, s in schemas)
        raise SchemaMismatchError(f"cannot compare classifiers with regressors ({kinds}); compare versions of one task")
    task = tasks.pop()
    problems: list[str] = []
    have = {c.name: (j, c) for j, c in enumerate(dataset.schema.columns)}
    matrices: list[NDArray[np.float32]] = []
    for label, schema in schemas:
        missing = [c.name for c in schema.columns if c.name not in have]
        if missing:
            problems.append(f"{label} needs column(s) {_names(missing)} that the data lacks")
        X = np.empty((len(dataset), len(schema.columns)), dtype=np.float32)
        for jj, want in enumerate(schema.columns):
            if want.name in have:
                j, col = have[want.name]
                recoded = _feature(dataset, col, j, want, label, problems)
                if recoded is not None:
                    X[:, jj] = recoded
        matrices.append(X)
        if schema.target is not None and dataset.schema.target is not None and schema.target != dataset.schema.target:
            problems.append(f"{label} was trained to predict {schema.target!r} but the target given is "
                            f"{dataset.schema.target!r}")
    used = {c.name for _, s in schemas for c in s.columns}
    extra = [n for n in dataset.schema.feature_names if n not in used]
    if extra:
        problems.append(f"column(s) {_names(extra)} are in the data but no compared version was trained on them")

    y, classes, maps = _target(dataset, schemas, task, problems)
    if problems:
        unique = list(dict.fromkeys(problems))
        raise SchemaMismatchError(
            "the data does not match the versions' training schemas: " + "; ".join(unique)
            + "; fix the data (same columns, categories and classes as in training) or compare other versions"
        )
    return Aligned(tuple(matrices), y, classes, maps)


def _target(dataset: Dataset, schemas: Sequence[tuple[str, Schema]], task: Task,
            problems: list[str]) -> tuple[NDArray, tuple[Any, ...] | None, tuple[NDArray[np.intp], ...]]:
    """The target as reference class indices (classification) or floats (regression)."""
    if task is Task.REGRESSION:
        if dataset.schema.task is Task.REGRESSION:
            return np.asarray(dataset.y, dtype=np.float64), None, tuple(np.empty(0, np.intp) for _ in schemas)
        classes = dataset.schema.classes or ()
        try:
            values = np.asarray([float(c) for c in classes], dtype=np.float64)
        except (TypeError, ValueError):
            problems.append(f"the target {dataset.schema.target!r} holds labels such as {classes[0]!r} but the "
                            "versions predict numbers")
            return np.zeros(len(dataset)), None, tuple(np.empty(0, np.intp) for _ in schemas)
        return values[np.asarray(dataset.y, dtype=np.int64)], None, tuple(np.empty(0, np.intp) for _ in schemas)

    ref_label, ref_schema = schemas[0]
    ref_classes = tuple(ref_schema.classes or ())
    ref_index = {label_key(c): i for i, c in enumerate(ref_classes)}
    maps: list[NDArray[np.intp]] = []
    for label, schema in schemas:
        keys = [label_key(c) for c in schema.classes or ()]
        if set(keys) != set(ref_index):
            problems.append(f"{label} knows classes {_names(keys)} but {ref_label} knows {_names(list(ref_index))}")
            maps.append(np.arange(len(keys), dtype=np.intp))
        else:
            maps.append(np.array([ref_index[k] for k in keys], dtype=np.intp))
    data_keys, codes = _classes_of(dataset)
    unseen = [k for k in data_keys if k not in ref_index]
    if unseen:
        problems.append(f"the target has class(es) {_names(unseen)} the versions never saw in training "
                        f"(they know {_names(list(ref_index))})")
        return np.zeros(len(dataset), dtype=np.int64), ref_classes, tuple(maps)
    lut = np.array([ref_index[k] for k in data_keys], dtype=np.int64)
    return lut[codes], ref_classes, tuple(maps)
