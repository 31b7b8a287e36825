"""Deterministic seeded train/validation/test splits (stratified for classification) and disjoint shards."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError
from ..schema import Task
from .dataset import Dataset

__all__ = ["rederive", "shard", "shard_indices", "split", "split_indices", "split_record", "split_rows"]


def split_indices(
    y: NDArray | None, n: int, fractions: tuple[float, ...], *, seed: int, stratify: bool
) -> list[NDArray[np.int64]]:
    """Row indices of each part: the first part gets what the later ``fractions`` leave; every part is sorted."""
    if not all(0 <= f for f in fractions) or not sum(fractions) < 1:  # (NaN fails both)
        raise DataError(
            f"split fractions {', '.join(map(str, fractions))} must each be >= 0 and sum to less than 1 so rows are "
            "left to train on; use e.g. validation 0.15 and test 0.2"
        )
    rng = np.random.default_rng(seed)
    parts: list[list[NDArray[np.int64]]] = [[] for _ in range(len(fractions) + 1)]
    groups = [np.flatnonzero(y == c) for c in _classes(y)] if stratify and y is not None else [np.arange(n)]
    for idx in groups:
        idx = rng.permutation(idx)
        start = 0
        sizes = [round(f * len(idx)) for f in fractions]
        for k, size in enumerate(sizes, start=1):
            parts[k].append(idx[start : start + size])
            start += size
        parts[0].append(idx[start:])
    # each part sorted: mark every row with its part and read the marks back in row order (O(n), no sort)
    label = np.zeros(n, dtype=np.int8)
    for k, p in enumerate(parts[1:], start=1):
        label[np.concatenate(p)] = k
    return [np.flatnonzero(label == k).astype(np.int64) for k in range(len(parts))]


def _classes(y: NDArray) -> NDArray:
    """The distinct values of ``y``, sorted (class codes are counted, not sorted: ~25x faster)."""
    if y.dtype.kind in "iu" and len(y) and y.min() >= 0:
        return np.flatnonzero(np.bincount(y)).astype(y.dtype)
    return np.unique(y)


def split_rows(
    ds: Dataset, *, val_size: float = 0.15, test_size: float = 0.2, seed: int = 0
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Row indices of (train, validation, test) after every check ``split`` makes, without copying rows."""
    classification = ds.task is Task.CLASSIFICATION
    if len(ds) < 10:
        raise DataError(
            f"the dataset has {len(ds)} rows, too few for a train/validation/test split; use at least 10 rows"
        )
    train, val, test = split_indices(ds.y, len(ds), (val_size, test_size), seed=seed, stratify=classification)
    for name, part, frac in (("validation", val, val_size), ("test", test, test_size)):
        if frac > 0 and len(part) == 0:
            raise DataError(
                f"the {name} split is empty ({len(ds)} rows at {name} size {frac}); use more rows or a larger size"
            )
    if classification and ds.y is not None:
        missing = np.setdiff1d(_classes(ds.y), _classes(ds.y[train]))
        if len(missing):
            raise DataError(
                f"class(es) {list(ds.labels(missing))} have too few rows to appear in the training split; "
                "add rows of those classes or drop them"
            )
    return train, val, test


def split_record(
    ds: Dataset, rows: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]], *, val_size: float,
    test_size: float, seed: int, parts: tuple[Dataset, Dataset] | None = None,
) -> dict[str, Any]:
    """How ``ds`` was split into ``rows`` (train, validation, test): enough to re-derive it, and a record of the
    rows trained on (train and validation) by content, so later data can be checked against them.

    ``parts``: the train and validation datasets when the caller has them already (their rows are hashed
    where they are, instead of gathering them from ``ds`` once more)."""
    from .rowhash import row_hashes, seen_record

    train, val, test = rows
    if parts is not None:
        hashes = np.concatenate([row_hashes(p.X, p.y) for p in parts])
    else:
        seen = np.concatenate([train, val])
        hashes = row_hashes(ds.X[seen], None if ds.y is None else ds.y[seen])
    return {
        "train": len(train), "validation": len(val), "test": len(test),
        "rows": len(ds), "seed": int(seed), "val_size": float(val_size), "test_size": float(test_size),
        "stratify": ds.task is Task.CLASSIFICATION, "fingerprint": ds.fingerprint,
        "seen": seen_record(hashes),
    }


def rederive(ds: Dataset, record: Mapping[str, Any]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]] | None:
    """The (train, validation, test) rows ``record`` describes, if ``ds`` is the data it was made on; else None."""
    keys = ("rows", "seed", "val_size", "test_size", "stratify", "fingerprint")
    if any(k not in record for k in keys) or record["fingerprint"] != ds.fingerprint or record["rows"] != len(ds):
        return None
    parts = split_indices(ds.y, len(ds), (float(record["val_size"]), float(record["test_size"])),
                          seed=int(record["seed"]), stratify=bool(record["stratify"]))
    if [len(p) for p in parts] != [record.get(k) for k in ("train", "validation", "test")]:
        return None  # not the split it records (a different splitting rule): do not guess
    return parts[0], parts[1], parts[2]


def split(
    ds: Dataset, *, val_size: float = 0.15, test_size: float = 0.2, seed: int = 0
) -> tuple[Dataset, Dataset, Dataset]:
    """Split into (train, validation, test), stratified by class for classification; same seed, same split."""
    train, val, test = split_rows(ds, val_size=val_size, test_size=test_size, seed=seed)
    return ds.take(train), ds.take(val), ds.take(test)


def shard_indices(n: int, n_shards: int) -> list[slice]:
    """``n_shards`` contiguous, disjoint row ranges covering ``range(n)``, sizes differing by at most one."""
    if not isinstance(n_shards, int) or n_shards < 1:
        raise DataError(f"the number of shards must be an int >= 1, got {n_shards!r}")
    if n_shards > n:
        raise DataError(f"cannot cut {n} rows into {n_shards} non-empty shards; use at most {n} shards")
    bounds = np.linspace(0, n, n_shards + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def shard(ds: Dataset, n: int) -> list[Dataset]:
    """``n`` disjoint shards of contiguous rows that together cover the dataset exactly once."""
    return [ds.take(s) for s in shard_indices(len(ds), n)]
