"""Request bodies as columns: JSON (records or column form), Arrow IPC streams and Parquet files; nothing else.

A body is decoded into a mapping ``{column: values}`` that ``data.encode.as_matrix`` codes
against the version's schema. Decoding errors (not JSON, wrong shape, not Arrow) are
``MalformedBody`` (HTTP 400); checks of the values against the schema (a missing column, a
wrong type, NaN, an unseen category) are raised later by the encoder (HTTP 422). Only JSON,
Arrow and Parquet are ever parsed: no pickle, no NumPy object arrays, no code.

JSON forms::

    {"rows": [{"tenure": 3, "plan": "basic"}, ...]}        records
    {"columns": {"tenure": [3, 5], "plan": ["basic", "pro"]}}  columns
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError, SchemaMismatchError
from ..schema import Schema

__all__ = ["ARROW_TYPES", "JSON_TYPES", "PARQUET_TYPES", "MalformedBody", "decode_body", "from_json", "media_type"]

JSON_TYPES = ("application/json",)
ARROW_TYPES = ("application/vnd.apache.arrow.stream",)
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet")


class MalformedBody(DataError):
    """The request body cannot be read as JSON rows, an Arrow stream or a Parquet file."""


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``; no header means JSON."""
    if not content_type:
        return JSON_TYPES[0]
    return content_type.split(";", 1)[0].strip().lower()


def decode_body(body: bytes, content_type: str | None, schema: Schema) -> tuple[Any, int, dict[str, Any]]:
    """``(columns, n_rows, options)`` from a request body; options are the JSON body's other keys (``proba``).

    ``columns`` is a mapping of column name -> values, or (rows of an all-numeric schema) a float
    matrix with the columns in schema order.
    """
    kind = media_type(content_type)
    if kind in JSON_TYPES or kind.endswith("+json"):
        return from_json(body, schema)
    if kind in ARROW_TYPES or kind in PARQUET_TYPES:
        columns, n = _from_arrow(body, schema, parquet=kind in PARQUET_TYPES)
        return columns, n, {}
    raise UnsupportedMediaType(
        f"content-type {kind!r} is not read here; send JSON (application/json), an Arrow IPC stream "
        f"({ARROW_TYPES[0]}) or a Parquet file ({PARQUET_TYPES[0]})"
    )


class UnsupportedMediaType(MalformedBody):
    """A body type other than JSON, Arrow or Parquet (HTTP 415)."""


def from_json(body: bytes, schema: Schema) -> tuple[Any, int, dict[str, Any]]:
    """Decode a JSON body in the records or the column form."""
    import orjson

    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise MalformedBody(f"the body is not valid JSON ({e}); send {{\"rows\": [{{...}}]}} or "
                            "{\"columns\": {...}}") from None
    if not isinstance(doc, dict) or ("rows" in doc) == ("columns" in doc):
        raise MalformedBody('the JSON body must be an object with either "rows" (a list of row objects) or '
                            '"columns" (an object of column lists)')
    options = {k: v for k, v in doc.items() if k not in ("rows", "columns")}
    if "rows" in doc:
        rows = doc["rows"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise MalformedBody('"rows" must be a list of objects, one per row, e.g. [{"tenure": 3, "plan": "basic"}]')
        return _records(rows, schema), len(rows), options
    cols = doc["columns"]
    if not isinstance(cols, dict) or not all(isinstance(v, list) for v in cols.values()):
        raise MalformedBody('"columns" must be an object of lists, e.g. {"tenure": [3, 5], "plan": ["basic", "pro"]}')
    lengths = {len(v) for v in cols.values()}
    n = lengths.pop() if len(lengths) == 1 else -1
    if n < 0 and cols:
        raise MalformedBody("every list in \"columns\" must have one value per row; their lengths differ")
    for name in schema.feature_names:
        values = cols.get(name)
        if values is not None and any(isinstance(v, (list, dict)) for v in values):
            raise SchemaMismatchError(f"column {name!r} holds nested lists or objects; send one plain value per row")
    return cols, max(n, 0), options


def _records(rows: list[dict[str, Any]], schema: Schema) -> Any:
    names = schema.feature_names
    if not rows:
        return {n: [] for n in names}
    if not schema.categorical:  # all numeric: one C call builds the matrix (the hot path of single-row serving)
        try:
            X = np.array([[r[n] for n in names] for r in rows], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            pass  # fall through for the precise message
        else:
            return X  # a numeric matrix in schema order: the encoder checks its width and values
    out: dict[str, list[Any]] = {n: [] for n in names}
    for i, r in enumerate(rows):
        for n in names:
            try:
                v = r[n]
            except KeyError:
                raise SchemaMismatchError(
                    f"row {i} lacks column {n!r} that the model was trained on; send every feature column "
                    f"({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})"
                ) from None
            if isinstance(v, (list, dict)):
                raise SchemaMismatchError(f"row {i}, column {n!r} holds a {type(v).__name__}; send one plain value")
            out[n].append(v)
    return out


def _from_arrow(body: bytes, schema: Schema, *, parquet: bool) -> tuple[Mapping[str, Any], int]:
    import pyarrow as pa

    try:
        if parquet:
            import pyarrow.parquet as pq

            table = pq.read_table(pa.BufferReader(body))
        else:
            import pyarrow.ipc

            table = pa.ipc.open_stream(pa.BufferReader(body)).read_all()
    except (pa.ArrowException, OSError, ValueError) as e:
        what = "a Parquet file" if parquet else "an Arrow IPC stream"
        raise MalformedBody(f"the body is not {what} ({' '.join(str(e).split())[:200]}); "
                            "send the bytes pyarrow writes, or JSON") from None
    return table_columns(table, schema), table.num_rows


def table_columns(table: Any, schema: Schema) -> dict[str, NDArray]:
    """The schema's feature columns of a pyarrow Table (or RecordBatch) as NumPy arrays (others are skipped)."""
    have = set(table.schema.names)
    out: dict[str, NDArray] = {}
    for name in schema.feature_names:
        if name in have:
            col = table.column(name)
            try:
                out[name] = col.to_numpy(zero_copy_only=False)
            except Exception as e:  # nested or extension types: not a plain column
                raise SchemaMismatchError(f"column {name!r} has Arrow type {col.type}, which is not a plain value "
                                          "column; send numbers or strings") from e
    return out
