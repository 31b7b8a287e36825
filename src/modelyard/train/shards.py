"""One rank's part of a data file: its rows of the train/validation/test split, with the global schema.

Rank r of N owns the file rows ``shard_indices(n, N)[r]``. From Parquet it reads its feature
rows by row groups (``ParquetFile.read_row_groups`` and a slice), never the whole file; the
target column (and any text columns) are read whole, because the schema (task, classes,
categories) and the stratified split must be the ones a single process would infer. The
rows of each split part a rank holds are the part's rows inside its range, so concatenating
the ranks' parts in rank order gives exactly the single-process split. Other formats are
loaded whole on every rank and then cut the same way.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.dataset import Dataset
from ..data.encode import frame_to_matrix
from ..data.load import _encode_target, _infer_column, infer_task, load_dataset, resolve_target
from ..data.rowhash import row_hashes, seen_record
from ..data.split import split, split_record, split_rows
from ..data.validate import check_finite, missing_mask
from ..errors import DataError
from ..schema import Column, Schema, Task

__all__ = ["RankData", "load_rank_data", "part_bounds"]

PARTS = ("train", "validation", "test")


@dataclass
class RankData:
    """A rank's rows of each split part, the global schema, global part sizes and a data fingerprint."""

    schema: Schema
    parts: dict[str, tuple[NDArray[np.float32], NDArray]]  # part -> (X, y) of this rank
    sizes: dict[str, int]  # part -> rows over all ranks
    rows: int  # rows of the dataset (after --drop-missing)
    fingerprint: str
    source: str
    sharded_read: bool  # True when this rank read only its rows of the features
    split: dict[str, Any] | None = None  # how the rows were split (data.split.split_record), the sizes included


def part_bounds(n: int, world: int) -> list[tuple[int, int]]:
    """Contiguous ranges of ``range(n)`` for ``world`` ranks (empty ones allowed when n < world)."""
    bounds = np.linspace(0, n, world + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def _split_positions(y: NDArray, schema: Schema, *, val_size: float, test_size: float, seed: int) -> list[NDArray]:
    """Row positions of train/validation/test exactly as ``split`` draws them (with its checks and messages)."""
    if not val_size > 0 and not test_size > 0:
        raise DataError(
            f"val_size={val_size} and test_size={test_size} leave no held-out rows to measure the model on; "
            "make at least one of them > 0 (e.g. --test-size 0.2)"
        )
    positions = np.arange(len(y), dtype=np.int64)[:, None]
    parts = split(Dataset(positions, y, schema), val_size=val_size, test_size=test_size, seed=seed)
    return [p.X[:, 0] for p in parts]


def load_rank_data(
    source: Any,
    comm: Any,
    *,
    target: str | None,
    task: str | None,
    drop_missing: bool,
    val_size: float,
    test_size: float,
    seed: int,
) -> RankData:
    """This rank's rows of the split of ``source`` (Parquet: read by row groups; other formats: loaded whole)."""
    text = str(source)
    path = Path(text).expanduser()
    if not text.startswith("sklearn:") and path.suffix.lower() in (".parquet", ".pq") and path.is_file():
        return _parquet(path, comm, target=target, task=task, drop_missing=drop_missing,
                        val_size=val_size, test_size=test_size, seed=seed)
    ds = load_dataset(source, target=target, task=task, drop_missing=drop_missing)
    return from_dataset(ds, comm, val_size=val_size, test_size=test_size, seed=seed)


def from_dataset(ds: Dataset, comm: Any, *, val_size: float, test_size: float, seed: int) -> RankData:
    """This rank's contiguous block of each part of the single-process split of an in-memory dataset."""
    if ds.y is None:
        raise DataError("the dataset has no target; load it with target=COLUMN")
    rows = split_rows(ds, val_size=val_size, test_size=test_size, seed=seed)
    train, val, test = (ds.take(r) for r in rows)
    parts = {}
    for name, part in zip(PARTS, (train, val, test), strict=True):
        a, b = part_bounds(len(part), comm.world_size)[comm.rank]
        parts[name] = (part.X[a:b], part.y[a:b])
    sizes = {"train": len(train), "validation": len(val), "test": len(test)}
    record = split_record(ds, rows, val_size=val_size, test_size=test_size, seed=seed)
    return RankData(ds.schema, parts, sizes, len(ds), ds.fingerprint, ds.source, sharded_read=False, split=record)


def _arrow_numeric(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def _parquet(
    path: Path, comm: Any, *, target: str | None, task: str | None, drop_missing: bool,
    val_size: float, test_size: float, seed: int,
) -> RankData:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a bad file
        raise DataError(f"cannot parse {str(path)!r} as parquet: {e}; check that the file is valid") from e
    arrow = pf.schema_arrow
    cols = [str(c) for c in arrow.names]
    target = resolve_target(cols, target, str(path))
    n = pf.metadata.num_rows
    if n == 0:
        raise DataError(f"{str(path)!r} has no rows; use a file with data")
    features = [c for c in cols if c != target]
    numeric = {c for c in features if _arrow_numeric(arrow.field(c).type)}
    whole = [target] + [c for c in features if c not in numeric]  # read in full: schema and split need them

    # my rows of every column, by row groups
    a, b = part_bounds(n, comm.world_size)[comm.rank]
    starts = np.concatenate([[0], np.cumsum([pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)])])
    groups = [i for i in range(pf.num_row_groups) if starts[i] < b and starts[i + 1] > a]
    if groups:
        table = pf.read_row_groups(groups, columns=cols)
        mine = table.slice(a - int(starts[groups[0]]), b - a).to_pandas()
    else:
        mine = arrow.empty_table().to_pandas()
    full = pf.read(columns=whole).to_pandas()

    # rows dropped for missing values: every rank checks its rows, then all ranks share the mask
    if drop_missing:
        local = np.zeros(len(mine), dtype=bool)
        for c in cols:
            local |= missing_mask(mine[c].to_numpy())
        drop = np.concatenate(comm.gather(local.astype(np.uint8))).astype(bool)
        if drop.all():
            raise DataError(f"every row of {str(path)!r} has a missing value, so --drop-missing leaves nothing")
    else:
        drop = np.zeros(n, dtype=bool)
        check_finite(target, full[target].to_numpy(), what="target")
    keep = ~drop

    # the schema a single process would infer
    empty = arrow.empty_table().to_pandas()
    columns = []
    for c in features:
        if c in numeric:
            columns.append(Column(c, "numeric", str(empty[c].to_numpy().dtype)))
        else:
            columns.append(_infer_column(c, full[c].to_numpy()[keep]))
    y_raw = full[target].to_numpy()[keep]
    t = Task(task) if task is not None else infer_task(y_raw)
    y_all, classes = _encode_target(y_raw, t, target)
    schema = Schema(tuple(columns), target, t, classes)

    # the single-process split, then my rows of each part
    kept_rows = np.flatnonzero(keep)  # file row of each kept row
    positions = _split_positions(y_all, schema, val_size=val_size, test_size=test_size, seed=seed)
    local_drop = drop[a:b]
    X_mine = frame_to_matrix(mine, schema, drop=local_drop if local_drop.any() else None)
    local_index = np.full(b - a, -1, dtype=np.int64)
    local_index[~local_drop] = np.arange(int((~local_drop).sum()))
    parts = {}
    for name, pos in zip(PARTS, positions, strict=True):
        rows = kept_rows[pos]
        rows = rows[(rows >= a) & (rows < b)]
        idx = local_index[rows - a]
        parts[name] = (X_mine[idx], y_all[pos[(kept_rows[pos] >= a) & (kept_rows[pos] < b)]])
    sizes = {name: len(p) for name, p in zip(PARTS, positions, strict=True)}

    # fingerprint: the schema and each rank's rows, hashed in rank order (depends on the number of ranks)
    h = hashlib.sha256()
    h.update(X_mine.tobytes())
    h.update(np.ascontiguousarray(y_all[(kept_rows >= a) & (kept_rows < b)]).tobytes())
    digests = comm.gather(np.frombuffer(h.digest(), dtype=np.uint8))
    top = hashlib.sha256(json.dumps(schema.to_dict(), sort_keys=True, default=str).encode())
    top.update(f"sharded:{comm.world_size}".encode())
    for d in digests:
        top.update(d.tobytes())
    # the rows trained on, by content: each rank hashes its train and validation rows, every rank gets them all
    mine = np.concatenate([row_hashes(*parts["train"]), row_hashes(*parts["validation"])])
    record = {**sizes, "rows": int(keep.sum()), "seed": int(seed), "val_size": float(val_size),
              "test_size": float(test_size), "stratify": t is Task.CLASSIFICATION, "fingerprint": top.hexdigest(),
              "seen": seen_record(np.concatenate(comm.gather(mine)))}
    return RankData(schema, parts, sizes, int(keep.sum()), top.hexdigest(), str(path), sharded_read=True,
                    split=record)

