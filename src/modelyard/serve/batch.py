"""Batch prediction of a file: CSV, Parquet or .npz in, CSV or Parquet out, streamed in bounded memory.

Parquet is read one batch of rows at a time (``ParquetFile.iter_batches``: row group by row
group, only the columns needed), CSV in chunks, and every batch's predictions are appended to
the output as soon as they are computed, so a file larger than memory scores in memory bounded
by the batch size and the input's row groups. The output is written to a temporary file next to
the target and renamed into place when complete: a failed run leaves no half-written file.

Output columns: the ``keep`` columns (ids) as they came, ``prediction`` (class labels in their
original form, or values), then ``proba_<class>`` per class with ``proba=True``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError, SchemaMismatchError
from .scoring import proba_columns, score

if TYPE_CHECKING:
    from ..models.predictor import Predictor

__all__ = ["BATCH_ROWS", "BatchResult", "predict_file"]

BATCH_ROWS = 65_536
INPUTS = (".csv", ".parquet", ".pq", ".npz")
OUTPUTS = (".csv", ".parquet", ".pq")
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class BatchResult:
    """What a batch prediction did: rows scored, seconds, and where the predictions went."""

    rows: int
    seconds: float
    input: str
    output: str | None  # None: stdout

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"rows": self.rows, "seconds": self.seconds, "input": self.input, "output": self.output,
                "rows_per_second": self.rows / self.seconds if self.seconds > 0 else None}


def predict_file(
    predictor: Predictor,
    path: str | os.PathLike[str],
    out: str | os.PathLike[str] | IO[bytes] | None,
    *,
    proba: bool = False,
    keep: Sequence[str] = (),
    unknown: str = "error",
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
) -> BatchResult:
    """Score every row of the file at ``path`` (or ``sklearn:NAME``) and write the predictions to ``out`` (a path or a binary stream)."""
    start = time.perf_counter()
    src = Path(path)
    if str(path).startswith("sklearn:"):
        pass
    elif not src.is_file():
        raise DataError(f"input file {str(path)!r} does not exist; check the path")
    suffix = src.suffix.lower()
    if suffix not in INPUTS and not str(path).startswith("sklearn:"):
        raise DataError(f"cannot read {suffix or 'a file without extension'!r} for prediction; use .csv, .parquet or .npz")
    if proba and not predictor.has_proba:
        from ..errors import ModelError

        raise ModelError(f"{predictor.family} gives no class probabilities for this {predictor.task.value} model; "
                         "leave out --proba")
    batches, total = _reader(src, predictor, list(keep), batch_rows)
    sink = _Sink(out)
    done = 0
    try:
        for columns, kept in batches:
            scores = score(predictor, columns, proba=proba, unknown=unknown)
            sink.write(_output_table(kept, scores))
            done += len(scores)
            if progress is not None:
                progress(done, total)
        if done == 0:
            sink.write(_output_table({k: np.zeros(0) for k in keep}, score(predictor, {
                c: np.zeros(0) for c in predictor.schema.feature_names}, proba=proba, unknown=unknown)))
        sink.close()
    except BaseException:
        sink.abort()
        raise
    return BatchResult(done, time.perf_counter() - start, str(path), sink.name)


# --- reading ----------------------------------------------------------------------------------
def _check_columns(have: Sequence[str], predictor: Predictor, keep: list[str], where: str) -> None:
    missing = [c for c in predictor.schema.feature_names if c not in have]
    if missing:
        raise SchemaMismatchError(
            f"{where} lacks column(s) {', '.join(map(repr, missing))} that the model was trained on; add them "
            f"(its columns are {', '.join(have[:20])}{', ...' if len(have) > 20 else ''})"
        )
    absent = [c for c in keep if c not in have]
    if absent:
        raise DataError(f"--keep names column(s) {', '.join(map(repr, absent))} that {where} does not have; "
                        f"choose among {', '.join(have[:20])}")


def _reader(src: Path, predictor: Predictor, keep: list[str], batch_rows: int) -> tuple[Iterator[Any], int | None]:
    suffix = src.suffix.lower()
    features = predictor.schema.feature_names
    needed = list(dict.fromkeys([*features, *keep]))
    if str(src).startswith("sklearn:"):  # a bundled set: its features and its labels as column "target"
        import pandas as pd

        from ..data.load import load_dataset

        ds = load_dataset(str(src))
        frame = pd.DataFrame(ds.X, columns=ds.feature_names)
        frame["target"] = ds.labels(ds.y) if ds.y is not None else np.nan
        _check_columns(list(frame.columns), predictor, keep, repr(str(src)))

        def bundled() -> Iterator[Any]:
            for i in range(0, len(frame), batch_rows):
                chunk = frame.iloc[i : i + batch_rows]
                yield chunk, {k: chunk[k].to_numpy() for k in keep}

        return bundled(), len(frame)
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        from .inputs import table_columns

        try:
            pf = pq.ParquetFile(src, pre_buffer=False)  # pre-buffering keeps every row group read so far
        except Exception as e:
            raise DataError(f"cannot read {str(src)!r} as Parquet ({' '.join(str(e).split())[:200]}); check the file") from e
        _check_columns(pf.schema_arrow.names, predictor, keep, repr(str(src)))

        def parquet() -> Iterator[Any]:
            for batch in pf.iter_batches(batch_size=batch_rows, columns=needed):
                yield table_columns(batch, predictor.schema), {k: batch.column(k) for k in keep}

        return parquet(), pf.metadata.num_rows
    if suffix == ".csv":
        import pandas as pd

        try:
            header = list(pd.read_csv(src, nrows=0).columns)
        except Exception as e:
            raise DataError(f"cannot read {str(src)!r} as CSV ({' '.join(str(e).split())[:200]}); check the file") from e
        _check_columns(header, predictor, keep, repr(str(src)))

        def csv() -> Iterator[Any]:
            for chunk in pd.read_csv(src, chunksize=batch_rows, usecols=needed):
                yield chunk, {k: chunk[k].to_numpy() for k in keep}

        return csv(), None
    with np.load(src, allow_pickle=False) as z:
        if "X" not in z.files:
            raise DataError(f"{str(src)!r} has no array 'X' (it has {', '.join(z.files)}); save it with np.savez(X=...)")
        X = z["X"]
        ids = {k: z[k] for k in keep if k in z.files}
    if X.ndim != 2:
        raise DataError(f"'X' in {str(src)!r} must be 2-D (rows x features), got shape {X.shape}")
    absent = [k for k in keep if k not in ids]
    if absent:
        raise DataError(f"--keep names array(s) {', '.join(map(repr, absent))} that {str(src)!r} does not hold")

    def npz() -> Iterator[Any]:
        for i in range(0, len(X), batch_rows):
            yield X[i : i + batch_rows], {k: v[i : i + batch_rows] for k, v in ids.items()}

    return npz(), len(X)


# --- writing ----------------------------------------------------------------------------------
def _output_table(kept: dict[str, Any], scores: Any) -> Any:
    import pyarrow as pa

    cols: dict[str, Any] = {}
    for k, v in kept.items():
        cols[k] = v if isinstance(v, (pa.Array, pa.ChunkedArray)) else pa.array(v)
    p = scores.predictions
    cols["prediction"] = pa.array(p) if p.dtype.kind in "biuf" else pa.array(p.tolist())  # faster than from <U
    if scores.probabilities is not None:
        for name, j in zip(proba_columns(scores.classes or ()), range(scores.probabilities.shape[1]), strict=True):
            cols[name] = pa.array(scores.probabilities[:, j])
    return pa.table(cols)


class _Sink:
    """Appends output tables to a CSV or Parquet file (via a temporary name) or to a binary stream as CSV."""

    def __init__(self, out: str | os.PathLike[str] | IO[bytes] | None):
        import secrets
        import sys

        self._writer: Any = None
        self._header = True
        if out is None or hasattr(out, "write"):
            self.name = None
            self.path = self.tmp = None
            self.stream = out if out is not None else sys.stdout.buffer
            self.format = "csv"
            return
        self.path = Path(out)
        suffix = self.path.suffix.lower()
        if suffix not in OUTPUTS:
            raise DataError(f"cannot write predictions as {suffix or 'a file without extension'!r}; name the output "
                            ".csv or .parquet")
        if self.path.is_dir():
            raise DataError(f"--out {str(out)!r} is a folder; name a .csv or .parquet file")
        if not self.path.parent.exists():
            raise DataError(f"the folder of --out {str(out)!r} does not exist; create it first")
        self.name = str(out)
        self.format = "csv" if suffix == ".csv" else "parquet"
        self.tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        self.stream = open(self.tmp, "wb")  # noqa: SIM115 - closed in close/abort

    def write(self, table: Any) -> None:
        if self.format == "csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, self.stream, write_options=pacsv.WriteOptions(include_header=self._header))
            self._header = False
            return
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = pq.ParquetWriter(self.stream, table.schema)
        elif table.schema != self._writer.schema:
            table = table.cast(self._writer.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.stream.flush()
        if self.tmp is not None:
            self.stream.close()
            os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self.tmp is not None:
            try:
                self.stream.close()
            finally:
                self.tmp.unlink(missing_ok=True)
