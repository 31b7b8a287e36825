"""The registry's tables, the JSON codec of their text columns, and rows -> records.

Tables (declared on ``db.metadata``)::

    model_names         name PK, next_number       per-name counter: numbers come from the database
    model_versions      id PK, name, number, ...   immutable but for parent_id (a copy of the lineage's, for
                                                   listings); UNIQUE(name, number); what listings read;
                                                   config_digest: see ``rebuild_digest``
    model_version_data  id PK, payload          the immutable payload (params, metrics, history, schema,
                                                   ... as one JSON object), 1:1
    model_lineage       child_id PK, parent_id, diff, retrained, via
                                                   one row per version (parent NULL for a root); the only
                                                   mutable part of lineage: a forced delete re-parents
    model_aliases       (name, alias) PK, version_id   where each alias points now
    alias_history       seq PK, name, alias, from, to, at, user, reason, action   append-only

JSON columns hold canonical JSON (sorted keys, NaN as null), written by ``dumps``; orjson writes and
reads it when installed (a dependency), the standard library otherwise, with the same values.

Every byte a prediction depends on is checksummed: the weights by their artifact's sha256, and
everything else a rebuild reads (family, hyperparameters, schema with its columns, categories and
class labels, the model config with its encodings, and the artifact digest itself: exactly
``Version.predictor_config()`` plus ``artifact``) by ``config_digest``, the sha256 of their canonical
JSON, written with the row and checked by the registry before it rebuilds a model.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

try:  # several times faster than the standard library at the payloads of a registration; optional
    import orjson as _orjson
except ImportError:  # pragma: no cover - the json module gives the same values
    _orjson = None

from ..errors import CorruptArtifactError, StoreError
from ..records.training import EpochLog, FitConfig
from ..records.versions import LineageEdge, Version, VersionSummary
from ..schema import Schema
from .migrations import metadata

_new = object.__new__

__all__ = [
    "PAYLOAD_FIELDS",
    "alias_history",
    "damaged_row",
    "dumps",
    "edge_from_row",
    "encode_version",
    "fields_digest",
    "group_pairs",
    "loads",
    "model_aliases",
    "model_lineage",
    "model_names",
    "model_version_data",
    "model_versions",
    "param_diff",
    "payload_params",
    "rebuild_digest",
    "summary_from_row",
    "version_from_row",
    "version_from_values",
]

# Tables keyed by text and read by key are WITHOUT ROWID on SQLite (one B-tree instead of a table plus a key
# index): every registration writes a page per B-tree it touches, so fewer B-trees, fewer writes.
model_names = Table(
    "model_names",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("next_number", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    sqlite_with_rowid=False,
)

# A version is two immutable rows: ``model_versions`` holds what listings, refs and lineage
# walks read, ``model_version_data`` the large JSON (params, metrics, history, schema, ...).
# Kept apart, a listing of thousands of versions reads a few small pages per hundred rows
# instead of every version's payload. (``model_versions`` keeps its rowid: listings scan it in
# (name, number) order through an index, and a rowid lookup is cheaper than a text key's.)
model_versions = Table(
    "model_versions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), ForeignKey("model_names.name"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("family", String(300), nullable=False),
    Column("task", String(32), nullable=False),
    Column("key_metric", String(64)),
    Column("key_value", Float),
    Column("created_at", Float, nullable=False),
    Column("creator", String(200), nullable=False),
    Column("tags", Text, nullable=False),
    Column("artifact", String(64), nullable=False),
    Column("artifact_size", BigInteger, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("description", Text),
    Column("source", Text, nullable=False),
    # the current parent, copied from ``model_lineage`` in the same transactions (registration and a
    # forced delete's re-parenting), so a listing reads one table instead of joining the lineage
    Column("parent_id", String(64)),
    # sha256 of everything a rebuild reads (``rebuild_digest``), checked on every load; schema version 3
    Column("config_digest", String(64)),
    UniqueConstraint("name", "number", name="uq_model_versions_name_number"),
)

model_version_data = Table(
    "model_version_data",
    metadata,
    Column("id", String(64), ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("payload", Text, nullable=False),  # one JSON object holding the PAYLOAD_FIELDS
    sqlite_with_rowid=False,
)
# what a version's payload holds: written and read as one JSON document (one encode, one decode)
PAYLOAD_FIELDS = ("params", "model_config", "fit_config", "library_versions", "split", "links", "metrics", "history",
                  "data_schema")

model_lineage = Table(
    "model_lineage",
    metadata,
    Column("child_id", String(64), ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("parent_id", String(64), ForeignKey("model_versions.id"), nullable=True),
    Column("diff", Text, nullable=False),
    Column("retrained", Boolean, nullable=False),
    Column("via", Text, nullable=False),
    Index("ix_model_lineage_parent", "parent_id"),
    sqlite_with_rowid=False,
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", String(200), ForeignKey("model_names.name"), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version_id", String(64), ForeignKey("model_versions.id"), nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_model_aliases_version", "version_id"),
)

alias_history = Table(
    "alias_history",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("from_id", String(64)),
    Column("to_id", String(64)),
    Column("from_number", Integer),
    Column("to_number", Integer),
    Column("at", Float, nullable=False),
    Column("user", String(200), nullable=False),
    Column("reason", Text),
    Column("action", String(16), nullable=False),
    Index("ix_alias_history_name_alias", "name", "alias", "seq"),
)

def _clean(obj: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, tuples to lists, NaN/inf to None, enums to their value."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if hasattr(obj, "item") and hasattr(obj, "dtype"):  # numpy scalar or 0-d array
        return _clean(obj.item())
    if hasattr(obj, "tolist"):
        return _clean(obj.tolist())
    if hasattr(obj, "to_dict"):
        return _clean(obj.to_dict())
    if hasattr(obj, "value") and hasattr(obj, "name"):
        return _clean(obj.value)
    raise StoreError(f"cannot store value {obj!r} of type {type(obj).__name__}; use numbers, strings, lists or dicts")


def _default(obj: Any) -> Any:
    cleaned = _clean(obj)
    if cleaned is obj:  # pragma: no cover - _clean raises for what it cannot convert
        raise TypeError(obj)
    return cleaned


def dumps(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces, NaN and infinities as null) of ``obj``."""
    if _orjson is not None:
        try:
            return _orjson.dumps(obj, default=_default, option=_SORTED).decode()
        except TypeError:  # orjson.JSONEncodeError: e.g. an int beyond 64 bits; the json module takes it
            pass
    try:  # fast path: plain values, numpy scalars through ``default``
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_default)
    except ValueError:  # a NaN or infinity somewhere: clean the whole value first
        return json.dumps(_clean(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def loads(s: str | None) -> Any:
    """Inverse of ``dumps`` (None stays None)."""
    if s is None:
        return None
    if s == "{}":
        return {}
    return _loads(s)


def _encode_payload(payload: Any) -> str:
    if _orjson is not None:
        try:  # unsorted: nothing hashes or compares a payload
            return _orjson.dumps(payload, default=_default, option=_UNSORTED).decode()
        except TypeError:
            pass
    try:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False, default=_default)
    except ValueError:  # a NaN or infinity somewhere
        return json.dumps(_clean(payload), separators=(",", ":"), allow_nan=False)


_loads = _orjson.loads if _orjson is not None else json.loads
_UNSORTED = (_orjson.OPT_SERIALIZE_NUMPY | _orjson.OPT_NON_STR_KEYS) if _orjson is not None else 0
_SORTED = (_UNSORTED | _orjson.OPT_SORT_KEYS) if _orjson is not None else 0


def param_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{name: (old value, new value)}`` for every hyperparameter that differs (absent counts as None)."""
    a, b = _clean(dict(old)), _clean(dict(new))
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def summary_from_row(row: Sequence[Any], parent_id: str | None, aliases: Mapping[str, list[str]]) -> VersionSummary:
    """A VersionSummary from a row starting id, name, number, family, task, key_metric, key_value, created_at,
    creator, tags."""
    # Listings build thousands of these, so the frozen dataclass's __init__ (one object.__setattr__
    # per field) is bypassed: the fields go into the instance dict in one call. The record is the
    # same (equality, hash, repr and immutability all hold); both drivers already return
    # int/float/str for these columns, so no conversions either.
    held = aliases.get(row[0])
    summary = _new(VersionSummary)
    summary.__dict__.update(
        id=row[0], name=row[1], number=row[2], family=row[3], task=row[4], key_metric=row[5], key_value=row[6],
        parent_id=parent_id, aliases=tuple(sorted(held)) if held else (), created_at=row[7], creator=row[8],
        tags={} if row[9] == "{}" else _loads(row[9]),
    )
    return summary


def edge_from_row(child_id: str, parent_id: str, diff: str, retrained: Any, via: str) -> LineageEdge:
    """A LineageEdge from a ``model_lineage`` row's values (built like ``summary_from_row``, for deep walks)."""
    edge = _new(LineageEdge)
    edge.__dict__.update(
        child_id=child_id, parent_id=parent_id,
        diff={} if diff == "{}" else {k: (v[0], v[1]) for k, v in _loads(diff).items()},
        retrained=bool(retrained), via=() if via == "[]" else tuple(_loads(via)),
    )
    return edge


def version_from_row(row: Mapping[str, Any]) -> Version:
    """A Version from a full row: versions and payload columns, ``parent_id`` and ``aliases_csv``."""
    csv = row["aliases_csv"]
    return version_from_values(row, row["parent_id"], tuple(sorted(csv.split(","))) if csv else ())


def version_from_values(r: Mapping[str, Any], parent_id: str | None, aliases: tuple[str, ...]) -> Version:
    """A Version from the values of its two rows (``tags`` and ``payload`` still JSON).

    A row whose JSON no longer parses or lacks a field raises ``damaged_row``'s error.
    """
    try:
        p = _loads(r["payload"])
        return Version(
            id=r["id"], name=r["name"], number=int(r["number"]), family=r["family"], params=p["params"],
            fit_config=FitConfig.from_dict(p["fit_config"]), metrics=p["metrics"],
            history=tuple(EpochLog.from_dict(h) for h in p["history"]), schema=Schema.from_dict(p["data_schema"]),
            fingerprint=r["fingerprint"], seed=int(r["seed"]), library_versions=p["library_versions"],
            parent_id=parent_id, artifact=r["artifact"], artifact_size=int(r["artifact_size"]),
            created_at=float(r["created_at"]), creator=r["creator"], tags=loads(r["tags"]),
            description=r["description"], source=r["source"], split=p["split"], links=p["links"],
            model_config=p["model_config"], aliases=aliases, config_digest=r.get("config_digest"),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # JSON decode errors are ValueErrors
        raise damaged_row(r.get("id"), f"{type(e).__name__}: {e}") from e


def damaged_row(version_id: Any, why: str) -> CorruptArtifactError:
    """The error for a version whose stored record was changed or damaged (restore the database)."""
    who = f"version {str(version_id)[:12]}" if version_id else "a version"
    return CorruptArtifactError(
        f"the stored record of {who} is damaged ({why[:200]}); the database was changed outside modelyard or "
        "corrupted: restore the store's database from a backup, or delete the version and register it again"
    )


def rebuild_digest(version: Version) -> str:
    """sha256 of the canonical JSON of everything a rebuild of ``version`` reads: its predictor config and artifact."""
    return hashlib.sha256(dumps({"artifact": version.artifact, "config": version.predictor_config()}).encode()).hexdigest()


def fields_digest(fields: Mapping[str, Any]) -> str:
    """``rebuild_digest`` of the version a registration's ``fields`` will read back as, without building it.

    The parts a rebuild reads go through JSON once (as they will through the payload) and the
    schema through its record, exactly as ``version_from_values`` and ``predictor_config`` take them.
    """
    parts = _loads(dumps({"params": fields["params"], "model_config": fields["model_config"],
                          "data_schema": fields["data_schema"]}))
    config = {**parts["model_config"], "family": fields["family"], "params": parts["params"],
              "schema": Schema.from_dict(parts["data_schema"]).to_dict()}
    return hashlib.sha256(dumps({"artifact": fields["artifact"], "config": config}).encode()).hexdigest()


def encode_version(fields: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The ``model_versions`` values (tags as JSON) and the payload JSON of a version's ``fields``."""
    row = {k: v for k, v in fields.items() if k not in PAYLOAD_FIELDS}
    row["tags"] = dumps(row.get("tags") or {})
    return row, _encode_payload({k: fields[k] for k in PAYLOAD_FIELDS})


def payload_params(payload: str) -> dict[str, Any]:
    """The hyperparameters in a payload JSON."""
    return _loads(payload)["params"]


def group_pairs(rows: Iterable[Sequence[Any]]) -> dict[str, list[str]]:
    """``[(key, value), ...]`` -> ``{key: [values]}``."""
    out: dict[str, list[str]] = {}
    for vid, alias in rows:
        out.setdefault(vid, []).append(alias)
    return out

