"""Model versions in SQL: tables, ref resolution, numbering, lineage queries, aliases and their history.

Tables (declared on ``db.metadata``)::

    model_names    name PK, next_number          per-name counter: numbers come from the database
    model_versions id PK, name, number, ...      immutable rows; UNIQUE(name, number); what listings read
    model_version_data  id PK, params, metrics, history, schema, ...   the immutable payload, 1:1
    model_lineage  child_id PK, parent_id, diff, retrained, via
                                                 one row per version (parent NULL for a root); the only
                                                 mutable part of lineage: a forced delete re-parents
    model_aliases  (name, alias) PK, version_id  where each alias points now
    alias_history  seq PK, name, alias, from, to, at, user, reason, action   append-only

Every method is one transaction (``Database.run`` for writes, retried on lock conflicts;
``Database.read`` for reads) and returns frozen records from ``modelyard.records``.
``ancestors`` and ``descendants`` are one recursive CTE each.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    text,
    update,
)

from ..errors import AmbiguousRefError, LineageError, NotFoundError, StoreError
from ..records import (
    AliasMove,
    Deletion,
    EpochLog,
    FitConfig,
    Lineage,
    LineageEdge,
    Schema,
    Version,
    VersionSummary,
)
from .db import Database, metadata

__all__ = [
    "VersionStore",
    "alias_history",
    "dumps",
    "model_aliases",
    "model_lineage",
    "model_names",
    "model_version_data",
    "model_versions",
    "param_diff",
]

model_names = Table(
    "model_names",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("next_number", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)

# A version is two immutable rows: ``model_versions`` holds what listings, refs and lineage
# walks read, ``model_version_data`` the large JSON (params, metrics, history, schema, ...).
# Kept apart, a listing of thousands of versions reads a few small pages per hundred rows
# instead of every version's payload.
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
    UniqueConstraint("name", "number", name="uq_model_versions_name_number"),
    Index("ix_model_versions_artifact", "artifact"),
)

model_version_data = Table(
    "model_version_data",
    metadata,
    Column("id", String(64), ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("params", Text, nullable=False),
    Column("model_config", Text, nullable=False),
    Column("fit_config", Text, nullable=False),
    Column("library_versions", Text, nullable=False),
    Column("split", Text, nullable=False),
    Column("links", Text, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("history", Text, nullable=False),
    Column("data_schema", Text, nullable=False),
)
_DATA_FIELDS = frozenset(c.name for c in model_version_data.columns) - {"id"}

model_lineage = Table(
    "model_lineage",
    metadata,
    Column("child_id", String(64), ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("parent_id", String(64), ForeignKey("model_versions.id"), nullable=True),
    Column("diff", Text, nullable=False),
    Column("retrained", Boolean, nullable=False),
    Column("via", Text, nullable=False),
    Index("ix_model_lineage_parent", "parent_id"),
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

_HEX = re.compile(r"^[0-9a-f]+$")
_MAX_DEPTH = 1_000_000  # guards the recursive queries against a damaged store
_SUMMARY = (
    model_versions.c.id, model_versions.c.name, model_versions.c.number, model_versions.c.family,
    model_versions.c.task, model_versions.c.key_metric, model_versions.c.key_value, model_versions.c.created_at,
    model_versions.c.creator, model_versions.c.tags,
)
_SUMMARY_SQL = "v.id, v.name, v.number, v.family, v.task, v.key_metric, v.key_value, v.created_at, v.creator, v.tags"

_ANCESTORS_SQL = f"""
WITH RECURSIVE anc(id, depth) AS (
    SELECT parent_id, 1 FROM model_lineage WHERE child_id = :id AND parent_id IS NOT NULL
    UNION ALL
    SELECT l.parent_id, anc.depth + 1 FROM model_lineage l JOIN anc ON l.child_id = anc.id
    WHERE l.parent_id IS NOT NULL AND anc.depth < {_MAX_DEPTH}
)
SELECT {_SUMMARY_SQL}, l.parent_id, l.diff, l.retrained, l.via, anc.depth
FROM anc JOIN model_versions v ON v.id = anc.id JOIN model_lineage l ON l.child_id = anc.id
ORDER BY anc.depth
"""

_DESCENDANTS_SQL = f"""
WITH RECURSIVE des(id, depth) AS (
    SELECT child_id, 1 FROM model_lineage WHERE parent_id = :id
    UNION ALL
    SELECT l.child_id, des.depth + 1 FROM model_lineage l JOIN des ON l.parent_id = des.id
    WHERE des.depth < {_MAX_DEPTH}
)
SELECT {_SUMMARY_SQL}, l.parent_id, l.diff, l.retrained, l.via, des.depth
FROM des JOIN model_versions v ON v.id = des.id JOIN model_lineage l ON l.child_id = des.id
ORDER BY des.depth, v.name, v.number
"""


# Hot-path statements are built once: constructing a SQLAlchemy statement per call costs more
# than SQLite takes to run it.
_ID, _NAME, _NUMBER = model_versions.c.id, model_versions.c.name, model_versions.c.number
_Q_ALIAS = select(model_aliases.c.version_id).where(
    and_(model_aliases.c.name == bindparam("name"), model_aliases.c.alias == bindparam("alias")))
_Q_ALIAS_LOCK = _Q_ALIAS.with_for_update()
_Q_NUMBER = select(_ID).where(and_(_NAME == bindparam("name"), _NUMBER == bindparam("number")))
_Q_PREFIX = (select(_ID, _NAME, _NUMBER).where(and_(_ID >= bindparam("lo"), _ID < bindparam("hi")))
             .order_by(_ID).limit(11))
_Q_NAME = select(model_names.c.name).where(model_names.c.name == bindparam("name"))
def _full_queries(dialect: str) -> tuple[Any, Any, Any]:
    """A full version in one statement (row, payload, parent, and its aliases joined with ',', which aliases
    cannot contain), selected by id, by name and number, and by name and alias."""
    held = model_aliases.alias("held")
    agg = func.string_agg if dialect == "postgresql" else func.group_concat
    # a literal separator keeps the statement fully cacheable (a bound one is re-rendered per call)
    csv = (select(agg(held.c.alias, literal_column("','"))).where(held.c.version_id == _ID)
           .correlate(model_versions).scalar_subquery().label("aliases_csv"))
    full = (select(model_versions, *[c for c in model_version_data.c if c.name != "id"], model_lineage.c.parent_id, csv)
            .join(model_version_data, model_version_data.c.id == _ID)
            .join(model_lineage, model_lineage.c.child_id == _ID))
    return (
        full.where(_ID == bindparam("id")),
        full.where(and_(_NAME == bindparam("name"), _NUMBER == bindparam("number"))),
        full.join(model_aliases, model_aliases.c.version_id == _ID).where(
            and_(model_aliases.c.name == bindparam("name"), model_aliases.c.alias == bindparam("alias"))),
    )


_Q_PARAMS = select(model_version_data.c.params).where(model_version_data.c.id == bindparam("id"))
_Q_REF = select(_NAME, _NUMBER).where(_ID == bindparam("id"))
_Q_SUMMARY = (select(*_SUMMARY, model_lineage.c.parent_id)
              .join(model_lineage, model_lineage.c.child_id == _ID).where(_ID == bindparam("id")))
_Q_SUMMARY_ALIASES = select(model_aliases.c.alias).where(model_aliases.c.version_id == bindparam("id"))
_Q_LIST = (select(*_SUMMARY, model_lineage.c.parent_id).join(model_lineage, model_lineage.c.child_id == _ID)
           .order_by(_NAME, _NUMBER.desc()))
_Q_LIST_NAME = _Q_LIST.where(_NAME == bindparam("name"))
_Q_LIST_ALIASES = select(model_aliases.c.version_id, model_aliases.c.alias)
_Q_LIST_ALIASES_NAME = _Q_LIST_ALIASES.where(model_aliases.c.name == bindparam("name"))
_Q_OWN_EDGE = select(model_lineage).where(model_lineage.c.child_id == bindparam("id"))
_INSERT_VERSION = model_versions.insert()
_INSERT_DATA = model_version_data.insert()
_INSERT_LINEAGE = model_lineage.insert()


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
    try:  # fast path: plain values, numpy scalars through ``default``
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_default)
    except ValueError:  # a NaN or infinity somewhere: clean the whole value first
        return json.dumps(_clean(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _loads(s: str | None) -> Any:
    if s is None:
        return None
    if s == "{}":
        return {}
    return json.loads(s)


def param_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{name: (old value, new value)}`` for every hyperparameter that differs (absent counts as None)."""
    a, b = _clean(dict(old)), _clean(dict(new))
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _summary(row: Sequence[Any], parent_id: str | None, aliases: Mapping[str, list[str]]) -> VersionSummary:
    # positional and without conversions: both drivers return int/float/str for these columns already,
    # and listings build thousands of these
    held = aliases.get(row[0])
    return VersionSummary(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], parent_id,
        tuple(sorted(held)) if held else (), row[7], row[8], {} if row[9] == "{}" else json.loads(row[9]),
    )


def _edge(child_id: str, parent_id: str, diff: str, retrained: Any, via: str) -> LineageEdge:
    d = _loads(diff) or {}
    return LineageEdge(child_id, parent_id, {k: (v[0], v[1]) for k, v in d.items()}, bool(retrained),
                       tuple(_loads(via) or ()))


class VersionStore:
    """SQL access to versions, lineage and aliases; every method is one transaction."""

    def __init__(self, db: Database):
        self.db = db
        if db.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        # the next number of a name: one atomic upsert that row-locks the counter until commit
        stmt = insert(model_names).values(name=bindparam("name"), next_number=2, created_at=bindparam("now"))
        self._q_by_id, self._q_by_number, self._q_by_alias = _full_queries(db.dialect)
        self._allocate = stmt.on_conflict_do_update(
            index_elements=[model_names.c.name], set_={"next_number": model_names.c.next_number + 1}
        ).returning(model_names.c.next_number)

    # --- writes ---------------------------------------------------------------------------
    def create(self, fields: Mapping[str, Any], *, parent: str | None, retrained: bool) -> Version:
        """Insert a version of ``fields["name"]`` numbered by the database, with its lineage row."""
        row = {k: (dumps(v) if k in _JSON_FIELDS else v) for k, v in fields.items()}
        params = _loads(row["params"])

        def txn(conn: Connection) -> Version:
            now = round(time.time(), 6)  # microseconds: what the ISO form in to_dict keeps
            diff: dict[str, Any] = {}
            parent_id = None
            if parent is not None:
                parent_id = self._resolve(conn, parent)
                parent_params = conn.execute(_Q_PARAMS, {"id": parent_id}).scalar_one()
                diff = param_diff(_loads(parent_params), params)
            number = int(conn.execute(self._allocate, {"name": row["name"], "now": now}).scalar_one()) - 1
            values = {**row, "number": number, "created_at": now}
            conn.execute(_INSERT_VERSION, {k: v for k, v in values.items() if k not in _DATA_FIELDS})
            conn.execute(_INSERT_DATA, {"id": row["id"], **{k: values[k] for k in _DATA_FIELDS}})
            conn.execute(_INSERT_LINEAGE, {
                "child_id": row["id"], "parent_id": parent_id,
                "diff": dumps({k: list(v) for k, v in diff.items()}),
                "retrained": bool(retrained) if parent_id else False, "via": "[]",
            })
            return _record(values, parent_id, ())

        return self.db.run(txn)

    def set_alias(self, name: str, alias: str, ref: str, *, user: str, reason: str | None) -> AliasMove:
        """Point ``name@alias`` at ``ref`` (a version of ``name``) and record the move."""

        def txn(conn: Connection) -> AliasMove:
            self._require_name(conn, name)
            target = self._resolve(conn, ref)
            self._require_same_name(conn, name, alias, target, ref)
            return self._move(conn, name, alias, target, user=user, reason=reason, action="set")

        return self.db.run(txn)

    def unset_alias(self, name: str, alias: str, *, user: str, reason: str | None) -> AliasMove:
        """Remove ``name@alias`` and record it."""

        def txn(conn: Connection) -> AliasMove:
            if self._alias_target(conn, name, alias, lock=True) is None:
                raise self._no_alias(conn, name, alias)
            return self._move(conn, name, alias, None, user=user, reason=reason, action="unset")

        return self.db.run(txn)

    def rollback(self, name: str, alias: str, to: str | None, *, user: str, reason: str | None) -> AliasMove:
        """Move ``name@alias`` to the parent of the version it holds, or to the named ancestor ``to``."""

        def txn(conn: Connection) -> AliasMove:
            current = self._alias_target(conn, name, alias, lock=True)
            if current is None:
                raise self._no_alias(conn, name, alias)
            cur_ref = self._ref(conn, current)
            ancestors = [r[0] for r in conn.execute(text(_ANCESTORS_SQL), {"id": current})]
            if to is None:
                if not ancestors:
                    raise LineageError(
                        f"{name}@{alias} holds {cur_ref}, a root version with no parent, so there is nothing to roll "
                        f"back to; point the alias elsewhere with: modelyard models alias {name} {alias} REF"
                    )
                target = ancestors[0]
            else:
                target = self._resolve(conn, to)
                if target not in ancestors:
                    names = ", ".join(self._ref(conn, a) for a in ancestors[:10]) or "none (it is a root)"
                    raise LineageError(
                        f"{to} is not an ancestor of {cur_ref} (held by {name}@{alias}), so it is not a rollback; "
                        f"its ancestors are: {names}. To point the alias anywhere, use: modelyard models alias "
                        f"{name} {alias} {to}"
                    )
            self._require_same_name(conn, name, alias, target, self._ref(conn, target))
            return self._move(conn, name, alias, target, user=user, reason=reason, action="rollback")

        return self.db.run(txn)

    def delete(self, ref: str, *, force: bool, user: str, reason: str | None) -> Deletion:
        """Delete a version; with children or aliases only when ``force`` (re-parents children, drops aliases)."""

        def txn(conn: Connection) -> Deletion:
            vid = self._resolve(conn, ref)
            # lock the row: on PostgreSQL a concurrent branch from it waits (its foreign key check needs a share lock)
            conn.execute(select(model_versions.c.id).where(model_versions.c.id == vid).with_for_update())
            summary = self._summaries(conn, [vid])[0]
            children = [r[0] for r in conn.execute(
                select(model_lineage.c.child_id).where(model_lineage.c.parent_id == vid)
                .order_by(model_lineage.c.child_id)
            )]
            aliases = [r[0] for r in conn.execute(
                select(model_aliases.c.alias).where(model_aliases.c.version_id == vid).order_by(model_aliases.c.alias)
            )]
            if (children or aliases) and not force:
                parts = []
                if children:
                    parts.append(f"{len(children)} child version(s) ({', '.join(self._ref(conn, c) for c in children[:5])})")
                if aliases:
                    parts.append("alias(es) " + ", ".join(f"{summary.name}@{a}" for a in aliases))
                does = []
                if children:
                    does.append("re-parent its children to its own parent (recorded on their lineage edge)")
                if aliases:
                    does.append("remove its aliases (recorded in the alias history)")
                first = "move its aliases elsewhere first, or " if aliases and not children else ""
                raise LineageError(
                    f"cannot delete {summary.ref}: it has {' and '.join(parts)}; {first}pass --force (force=True) "
                    f"to {' and '.join(does)}"
                )
            own = conn.execute(select(model_lineage).where(model_lineage.c.child_id == vid)).one()
            for child in children:
                self._reparent(conn, child, vid, own)
            dropped = tuple(
                self._move(conn, summary.name, a, None, user=user, reason=reason, action="delete") for a in aliases
            )
            conn.execute(delete(model_lineage).where(model_lineage.c.child_id == vid))
            conn.execute(delete(model_version_data).where(model_version_data.c.id == vid))
            conn.execute(delete(model_versions).where(model_versions.c.id == vid))
            return Deletion(summary, tuple(children), dropped)

        return self.db.run(txn)

    def _reparent(self, conn: Connection, child: str, deleted: str, own: Any) -> None:
        """Link ``child`` to the parent of ``deleted``: diff recomputed, retrained if either step retrained."""
        edge = conn.execute(select(model_lineage).where(model_lineage.c.child_id == child)).one()
        via = [*(_loads(edge.via) or []), deleted, *(_loads(own.via) or [])]
        if own.parent_id is None:
            values = {"parent_id": None, "diff": "{}", "retrained": False, "via": dumps(via)}
        else:
            params = dict(conn.execute(
                select(model_version_data.c.id, model_version_data.c.params)
                .where(model_version_data.c.id.in_([child, own.parent_id]))
            ).all())
            diff = param_diff(_loads(params[own.parent_id]), _loads(params[child]))
            values = {
                "parent_id": own.parent_id, "diff": dumps({k: list(v) for k, v in diff.items()}),
                "retrained": bool(edge.retrained) or bool(own.retrained), "via": dumps(via),
            }
        conn.execute(update(model_lineage).where(model_lineage.c.child_id == child).values(**values))

    def _move(self, conn: Connection, name: str, alias: str, to_id: str | None, *, user: str,
              reason: str | None, action: str) -> AliasMove:
        now = round(time.time(), 6)  # microseconds: what the ISO form in to_dict keeps
        from_id = self._alias_target(conn, name, alias, lock=True)
        if to_id is None:
            conn.execute(delete(model_aliases).where(
                and_(model_aliases.c.name == name, model_aliases.c.alias == alias)))
        elif from_id is None:
            conn.execute(model_aliases.insert().values(name=name, alias=alias, version_id=to_id, updated_at=now))
        else:
            conn.execute(update(model_aliases).where(
                and_(model_aliases.c.name == name, model_aliases.c.alias == alias)
            ).values(version_id=to_id, updated_at=now))
        numbers = dict(conn.execute(
            select(model_versions.c.id, model_versions.c.number)
            .where(model_versions.c.id.in_([i for i in (from_id, to_id) if i]))
        ).all())
        values = {
            "name": name, "alias": alias, "from_id": from_id, "to_id": to_id, "from_number": numbers.get(from_id),
            "to_number": numbers.get(to_id), "at": now, "user": user, "reason": reason, "action": action,
        }
        seq = conn.execute(alias_history.insert().values(**values).returning(alias_history.c.seq)).scalar_one()
        return AliasMove(seq=int(seq), **values)

    # --- reads ----------------------------------------------------------------------------
    def get(self, ref: str) -> Version:
        """The full record of the version ``ref`` names."""
        # the common refs are answered by one statement on the fast path; the rest (prefixes, errors) resolve first
        row = None
        text_ref = ref.strip() if isinstance(ref, str) else ""
        name, at, alias = text_ref.partition("@")
        if at and name and alias:
            row = self.db.first(self._q_by_alias, {"name": name, "alias": alias})
        elif "/" in text_ref:
            name, _, num = text_ref.rpartition("/")
            if num.isdigit():
                row = self.db.first(self._q_by_number, {"name": name, "number": int(num)})
        if row is not None:
            return _full(row)
        return self.db.read(lambda conn: self._version(conn, self._resolve(conn, ref)))

    def resolve(self, ref: str) -> VersionSummary:
        """The summary of the version ``ref`` names (NAME/NUMBER, NAME@ALIAS or an id prefix)."""
        return self.db.read(lambda conn: self._summaries(conn, [self._resolve(conn, ref)])[0])

    def list(self, name: str | None = None, *, limit: int | None = None, offset: int = 0) -> list[VersionSummary]:
        """Summaries ordered by name, then newest number first."""

        def txn(conn: Connection) -> list[VersionSummary]:
            params = {} if name is None else {"name": name}
            if name is not None:
                self._require_name(conn, name)
            q = _Q_LIST if name is None else _Q_LIST_NAME
            if limit is not None or offset:
                q = q.limit(limit).offset(offset or None)
            aliases = _group(conn.execute(_Q_LIST_ALIASES if name is None else _Q_LIST_ALIASES_NAME, params))
            return [_summary(r, r[10], aliases) for r in conn.execute(q, params).all()]

        return self.db.read(txn)

    def count(self, name: str | None = None) -> int:
        """Number of versions (of ``name``, or in all)."""
        q = select(func.count()).select_from(model_versions)
        if name is not None:
            q = q.where(model_versions.c.name == name)
        return int(self.db.read(lambda conn: conn.execute(q).scalar_one()))

    def names(self) -> list[str]:
        """Every model name, sorted."""
        return self.db.read(lambda c: [r[0] for r in c.execute(select(model_names.c.name).order_by(model_names.c.name))])

    def ancestors(self, ref: str) -> list[VersionSummary]:
        """Parent, grandparent, ..., root of ``ref`` (one recursive query)."""
        return self.db.read(lambda conn: [s for s, _ in self._walk(conn, _ANCESTORS_SQL, self._resolve(conn, ref))])

    def descendants(self, ref: str) -> list[VersionSummary]:
        """Children, grandchildren, ... of ``ref``, breadth first (one recursive query)."""
        return self.db.read(lambda conn: [s for s, _ in self._walk(conn, _DESCENDANTS_SQL, self._resolve(conn, ref))])

    def lineage(self, ref: str) -> Lineage:
        """``ref`` with its ancestors, descendants and the edges among them."""

        def txn(conn: Connection) -> Lineage:
            vid = self._resolve(conn, ref)
            anc = self._walk(conn, _ANCESTORS_SQL, vid)
            des = self._walk(conn, _DESCENDANTS_SQL, vid)
            own = conn.execute(_Q_OWN_EDGE, {"id": vid}).one()
            version = self._summaries(conn, [vid])[0]
            edges = [e for _, e in (*anc, *des) if e is not None]
            if own.parent_id is not None:
                edges.insert(0, _edge(vid, own.parent_id, own.diff, own.retrained, own.via))
            return Lineage(version, tuple(s for s, _ in anc), tuple(s for s, _ in des), tuple(edges))

        return self.db.read(txn)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Every move of ``name``'s aliases (or of one alias), oldest first."""

        def txn(conn: Connection) -> list[AliasMove]:
            self._require_name(conn, name)
            q = select(alias_history).where(alias_history.c.name == name).order_by(alias_history.c.seq)
            if alias is not None:
                q = q.where(alias_history.c.alias == alias)
            rows = conn.execute(q).all()
            if alias is not None and not rows:
                raise self._no_alias(conn, name, alias)
            return [AliasMove(
                seq=r.seq, name=r.name, alias=r.alias, from_id=r.from_id, to_id=r.to_id, from_number=r.from_number,
                to_number=r.to_number, at=r.at, user=r.user, reason=r.reason, action=r.action,
            ) for r in rows]

        return self.db.read(txn)

    def aliases(self, name: str) -> dict[str, str]:
        """``{alias: version id}`` for ``name``."""
        q = select(model_aliases.c.alias, model_aliases.c.version_id).where(model_aliases.c.name == name)
        return self.db.read(lambda conn: (self._require_name(conn, name), dict(conn.execute(q).all()))[1])

    def artifacts_in_use(self) -> set[str]:
        """Digests referenced by any version."""
        return self.db.read(lambda c: {r[0] for r in c.execute(select(model_versions.c.artifact).distinct())})

    def edges(self, name: str | None = None) -> dict[str, str | None]:
        """``{child id: parent id or None}`` for every version (of ``name``): the whole graph, for checks."""
        q = select(model_lineage.c.child_id, model_lineage.c.parent_id)
        if name is not None:
            q = q.join(model_versions, model_versions.c.id == model_lineage.c.child_id).where(
                model_versions.c.name == name)
        return self.db.read(lambda c: dict(c.execute(q).all()))

    # --- internals ------------------------------------------------------------------------
    def _walk(self, conn: Connection, sql: str, vid: str) -> list[tuple[VersionSummary, LineageEdge | None]]:
        rows = conn.execute(text(sql), {"id": vid}).all()
        names = sorted({r[1] for r in rows})
        aliases = _group(conn.execute(
            select(model_aliases.c.version_id, model_aliases.c.alias).where(model_aliases.c.name.in_(names))
        )) if names else {}
        out = []
        for r in rows:
            parent = r[10]
            edge = _edge(r[0], parent, r[11], r[12], r[13]) if parent is not None else None
            out.append((_summary(r, parent, aliases), edge))
        return out

    def _summaries(self, conn: Connection, ids: Iterable[str]) -> list[VersionSummary]:
        ids = list(ids)
        if len(ids) == 1:
            row = conn.execute(_Q_SUMMARY, {"id": ids[0]}).one()
            aliases = {ids[0]: [a for (a,) in conn.execute(_Q_SUMMARY_ALIASES, {"id": ids[0]})]}
            return [_summary(row, row[10], aliases)]
        rows = {r[0]: r for r in conn.execute(
            select(*_SUMMARY, model_lineage.c.parent_id)
            .join(model_lineage, model_lineage.c.child_id == model_versions.c.id)
            .where(model_versions.c.id.in_(ids))
        )}
        aliases = _group(conn.execute(
            select(model_aliases.c.version_id, model_aliases.c.alias).where(model_aliases.c.version_id.in_(ids))
        ))
        return [_summary(rows[i], rows[i][10], aliases) for i in ids]

    def _version(self, conn: Connection, vid: str) -> Version:
        return _full(conn.execute(self._q_by_id, {"id": vid}).one()._mapping)

    def _ref(self, conn: Connection, vid: str) -> str:
        r = conn.execute(_Q_REF, {"id": vid}).one()
        return f"{r[0]}/{r[1]}"

    def _resolve(self, conn: Connection, ref: str) -> str:
        """The id ``ref`` names, or NotFoundError/AmbiguousRefError saying what exists."""
        if not isinstance(ref, str) or not ref.strip():
            raise NotFoundError(f"empty version ref {ref!r}; name a version as NAME/NUMBER, NAME@ALIAS or an id prefix")
        ref = ref.strip()
        if "@" in ref:
            name, _, alias = ref.partition("@")
            vid = self._alias_target(conn, name, alias)
            if vid is None:
                raise self._no_alias(conn, name, alias)
            return vid
        if "/" in ref:
            name, _, num = ref.rpartition("/")
            try:
                number = int(num)
            except ValueError:
                raise NotFoundError(
                    f"{ref!r} is not a version ref: the part after '/' must be a version number, like {name}/3"
                ) from None
            vid = conn.execute(_Q_NUMBER, {"name": name, "number": number}).scalar()
            if vid is None:
                raise self._no_number(conn, name, number)
            return vid
        prefix = ref.lower()
        if _HEX.match(prefix) and len(prefix) >= 4:
            hi = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # ids in [prefix, hi) start with prefix; uses the PK index
            rows = conn.execute(_Q_PREFIX, {"lo": prefix, "hi": hi}).all()
            if len(rows) == 1:
                return rows[0][0]
            if len(rows) > 1:
                shown = ", ".join(f"{n}/{k} ({i[:12]})" for i, n, k in rows[:10])
                more = " and more" if len(rows) > 10 else ""
                raise AmbiguousRefError(
                    f"id prefix {ref!r} matches several versions: {shown}{more}; give more characters of the id"
                )
            raise NotFoundError(f"no version has an id starting with {ref!r}; list ids with: modelyard models list")
        if self._name_exists(conn, ref):
            raise NotFoundError(
                f"{ref!r} is a model name, not a version; name a version as {ref}/NUMBER or {ref}@ALIAS "
                f"(see modelyard models list {ref})"
            )
        hint = " (an id prefix needs at least 4 hex characters)" if _HEX.match(prefix) else ""
        raise NotFoundError(
            f"unknown version ref {ref!r}{hint}; refs look like churn/3, churn@production or an id prefix such as 3f9a2c"
        )

    def _name_exists(self, conn: Connection, name: str) -> bool:
        return conn.execute(_Q_NAME, {"name": name}).scalar() is not None

    def _require_name(self, conn: Connection, name: str) -> None:
        if not self._name_exists(conn, name):
            known = [r[0] for r in conn.execute(select(model_names.c.name).order_by(model_names.c.name).limit(20))]
            listing = f"known models: {', '.join(known)}" if known else "the store has no models yet (modelyard train ...)"
            raise NotFoundError(f"no model named {name!r}; {listing}")

    def _no_number(self, conn: Connection, name: str, number: int) -> NotFoundError:
        self._require_name(conn, name)
        nxt = conn.execute(select(model_names.c.next_number).where(model_names.c.name == name)).scalar_one()
        count = conn.execute(select(func.count()).where(model_versions.c.name == name)).scalar_one()
        if 1 <= number < nxt:
            return NotFoundError(f"{name}/{number} was deleted; {name} has {count} version(s) left (modelyard models list {name})")
        return NotFoundError(
            f"{name} has no version {number}; its versions are numbered 1 to {nxt - 1} (modelyard models list {name})"
        )

    def _alias_target(self, conn: Connection, name: str, alias: str, *, lock: bool = False) -> str | None:
        return conn.execute(_Q_ALIAS_LOCK if lock else _Q_ALIAS, {"name": name, "alias": alias}).scalar()

    def _no_alias(self, conn: Connection, name: str, alias: str) -> NotFoundError:
        self._require_name(conn, name)
        existing = [r[0] for r in conn.execute(
            select(model_aliases.c.alias).where(model_aliases.c.name == name).order_by(model_aliases.c.alias))]
        have = f"its aliases are: {', '.join(existing)}" if existing else "it has no aliases"
        return NotFoundError(
            f"{name} has no alias {alias!r} ({have}); set it with: modelyard models alias {name} {alias} {name}/NUMBER"
        )

    def _require_same_name(self, conn: Connection, name: str, alias: str, vid: str, ref: str) -> None:
        owner = conn.execute(select(model_versions.c.name).where(model_versions.c.id == vid)).scalar_one()
        if owner != name:
            raise LineageError(
                f"{ref} is a version of {owner!r}, not of {name!r}; {name}@{alias} can only point at versions of {name}"
            )


_JSON_FIELDS = frozenset(
    {"params", "model_config", "fit_config", "metrics", "history", "data_schema", "library_versions", "tags",
     "split", "links"}
)


def _full(row: Mapping[str, Any]) -> Version:
    csv = row["aliases_csv"]
    return _record(row, row["parent_id"], tuple(sorted(csv.split(","))) if csv else ())


def _record(r: Mapping[str, Any], parent_id: str | None, aliases: tuple[str, ...]) -> Version:
    """A Version from a ``model_versions`` row (JSON columns still encoded)."""
    return Version(
        id=r["id"], name=r["name"], number=int(r["number"]), family=r["family"], params=_loads(r["params"]),
        fit_config=FitConfig.from_dict(_loads(r["fit_config"])), metrics=_loads(r["metrics"]),
        history=tuple(EpochLog.from_dict(h) for h in _loads(r["history"])),
        schema=Schema.from_dict(_loads(r["data_schema"])), fingerprint=r["fingerprint"], seed=int(r["seed"]),
        library_versions=_loads(r["library_versions"]), parent_id=parent_id, artifact=r["artifact"],
        artifact_size=int(r["artifact_size"]), created_at=float(r["created_at"]), creator=r["creator"],
        tags=_loads(r["tags"]), description=r["description"], source=r["source"], split=_loads(r["split"]),
        links=_loads(r["links"]), model_config=_loads(r["model_config"]), aliases=aliases,
    )


def _group(rows: Iterable[Sequence[Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for vid, alias in rows:
        out.setdefault(vid, []).append(alias)
    return out

