"""Model versions in SQL: numbering, lineage walks, aliases and their history (``VersionStore``).

The tables, their JSON codec and the row -> record builders live in ``version_tables.py``
(re-exported here, where other modules look for them); ref resolution in ``refs.py``.
Every method is one transaction (``Database.run`` for writes, retried on lock conflicts;
``Database.read`` for reads) and returns frozen records from ``modelyard.records.versions``.
``ancestors`` and ``descendants`` are one recursive CTE each.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, literal_column, select, text, update

from ..errors import LineageError, NotFoundError
from ..records.versions import AliasMove, Deletion, Lineage, LineageEdge, Version, VersionSummary
from . import refs
from .db import Database
from .gc_lock import WeightsCollected, hold_shared
from .version_tables import (
    alias_history,
    dumps,
    edge_from_row,
    encode_version,
    fields_digest,
    group_pairs,
    loads,
    model_aliases,
    model_lineage,
    model_names,
    model_version_data,
    model_versions,
    param_diff,
    payload_params,
    summary_from_row,
    version_from_row,
    version_from_values,
)

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

_MAX_DEPTH = 1_000_000  # guards the recursive queries against a damaged store
_FULL_ID = re.compile(r"^[0-9a-f]{64}$")
_MAX_ROWS = 2**62  # "no limit" for a listing that has an offset
_SUMMARY = (
    model_versions.c.id, model_versions.c.name, model_versions.c.number, model_versions.c.family,
    model_versions.c.task, model_versions.c.key_metric, model_versions.c.key_value, model_versions.c.created_at,
    model_versions.c.creator, model_versions.c.tags,
)
_SUMMARY_SQL = "v.id, v.name, v.number, v.family, v.task, v.key_metric, v.key_value, v.created_at, v.creator, v.tags"

# Each walk carries the lineage row's columns through the recursion, so the result needs only one
# join (to the versions) per row. Ancestors: each row is an ancestor with its own edge to its parent.
_ANCESTORS_SQL = f"""
WITH RECURSIVE anc(id, parent_id, diff, retrained, via, depth) AS (
    SELECT l.child_id, l.parent_id, l.diff, l.retrained, l.via, 1 FROM model_lineage l
    WHERE l.child_id = (SELECT p.parent_id FROM model_lineage p WHERE p.child_id = :id)
    UNION ALL
    SELECT l.child_id, l.parent_id, l.diff, l.retrained, l.via, anc.depth + 1
    FROM model_lineage l JOIN anc ON l.child_id = anc.parent_id
    WHERE anc.depth < {_MAX_DEPTH}
)
SELECT {_SUMMARY_SQL}, anc.parent_id, anc.diff, anc.retrained, anc.via, anc.depth
FROM anc JOIN model_versions v ON v.id = anc.id
ORDER BY anc.depth
"""

_DESCENDANTS_SQL = f"""
WITH RECURSIVE des(id, parent_id, diff, retrained, via, depth) AS (
    SELECT child_id, parent_id, diff, retrained, via, 1 FROM model_lineage WHERE parent_id = :id
    UNION ALL
    SELECT l.child_id, l.parent_id, l.diff, l.retrained, l.via, des.depth + 1
    FROM model_lineage l JOIN des ON l.parent_id = des.id
    WHERE des.depth < {_MAX_DEPTH}
)
SELECT {_SUMMARY_SQL}, des.parent_id, des.diff, des.retrained, des.via, des.depth
FROM des JOIN model_versions v ON v.id = des.id
ORDER BY des.depth, v.name, v.number
"""

_ANCESTORS = text(_ANCESTORS_SQL)
_DESCENDANTS = text(_DESCENDANTS_SQL)

# Hot-path statements are built once: constructing a SQLAlchemy statement per call costs more
# than SQLite takes to run it.
_ID, _NAME, _NUMBER = model_versions.c.id, model_versions.c.name, model_versions.c.number


def _full_queries(dialect: str) -> tuple[Any, Any, Any]:
    """A full version in one statement (row, payload, parent, and its aliases joined with ',', which aliases
    cannot contain), selected by id, by name and number, and by name and alias."""
    held = model_aliases.alias("held")
    agg = func.string_agg if dialect == "postgresql" else func.group_concat
    # a literal separator keeps the statement fully cacheable (a bound one is re-rendered per call)
    csv = (select(agg(held.c.alias, literal_column("','"))).where(held.c.version_id == _ID)
           .correlate(model_versions).scalar_subquery().label("aliases_csv"))
    full = select(model_versions, model_version_data.c.payload, csv).join(model_version_data,
                                                                         model_version_data.c.id == _ID)
    return (
        full.where(_ID == bindparam("id")),
        full.where(and_(_NAME == bindparam("name"), _NUMBER == bindparam("number"))),
        full.join(model_aliases, model_aliases.c.version_id == _ID).where(
            and_(model_aliases.c.name == bindparam("name"), model_aliases.c.alias == bindparam("alias"))),
    )


_Q_PAYLOAD = select(model_version_data.c.payload).where(model_version_data.c.id == bindparam("id"))
_Q_REF = select(_NAME, _NUMBER).where(_ID == bindparam("id"))
_PARENT = model_versions.c.parent_id
_Q_SUMMARY = select(*_SUMMARY, _PARENT).where(_ID == bindparam("id"))
_Q_SUMMARY_ALIASES = select(model_aliases.c.alias).where(model_aliases.c.version_id == bindparam("id"))
_Q_LIST_ALIASES = select(model_aliases.c.version_id, model_aliases.c.alias)
_Q_LIST_ALIASES_NAME = _Q_LIST_ALIASES.where(model_aliases.c.name == bindparam("name"))
# listings read one table: each row carries its parent (a 10,000-version listing is dominated by per-row work)
_Q_ROWS = select(*_SUMMARY, _PARENT).order_by(_NAME, _NUMBER.desc())
_Q_ROWS_NAME = _Q_ROWS.where(_NAME == bindparam("name"))
_Q_ROWS_PAGE = _Q_ROWS.limit(bindparam("limit")).offset(bindparam("offset"))
_Q_ROWS_NAME_PAGE = _Q_ROWS_NAME.limit(bindparam("limit")).offset(bindparam("offset"))
_Q_OWN_EDGE = select(model_lineage).where(model_lineage.c.child_id == bindparam("id"))
# inserts with every column bound, so one compiled statement serves every registration
_INSERT_VERSION = model_versions.insert().values({c.name: bindparam(c.name) for c in model_versions.c})
_INSERT_DATA = model_version_data.insert().values({c.name: bindparam(c.name) for c in model_version_data.c})
_INSERT_LINEAGE = model_lineage.insert().values({c.name: bindparam(c.name) for c in model_lineage.c})


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
    def create(self, fields: Mapping[str, Any], *, parent: str | None, retrained: bool,
               blob_present: Callable[[str], bool] | None = None) -> Version:
        """Insert a version of ``fields["name"]`` numbered by the database, with its lineage row.

        ``blob_present(digest)`` is asked inside the transaction, under the gc lock (``gc_lock.py``):
        when it says the version's blob is gone, nothing is inserted and ``WeightsCollected`` is raised.
        """
        row, payload = encode_version(fields)
        parent_id = parent if parent is None or _FULL_ID.match(parent) else self.resolve(parent).id
        row["config_digest"] = fields_digest(fields)  # what a load of this version will compute again

        def txn(conn: Any) -> Version:
            # the whole transaction on the DBAPI fast path: a registration is four small statements,
            # and SQLAlchemy's per-statement and per-transaction work would cost more than SQLite's
            fetch = self.db.fetch
            hold_shared(self.db, conn)  # see gc_lock.py
            if blob_present is not None and not blob_present(row["artifact"]):
                raise WeightsCollected(f"artifact {row['artifact']} was removed by gc before the version was recorded")
            now = round(time.time(), 6)  # microseconds: what the ISO form in to_dict keeps
            diff: dict[str, Any] = {}
            if parent_id is not None:
                found = fetch(conn, _Q_PAYLOAD, {"id": parent_id})[1]
                if not found:
                    raise NotFoundError(f"parent version {parent!r} does not exist (deleted meanwhile?); pick another")
                diff = param_diff(payload_params(found[0][0]), fields["params"])
            number = int(fetch(conn, self._allocate, {"name": row["name"], "now": now})[1][0][0]) - 1
            values = {**row, "number": number, "created_at": now, "parent_id": parent_id}
            fetch(conn, _INSERT_VERSION, values)
            fetch(conn, _INSERT_DATA, {"id": row["id"], "payload": payload})
            fetch(conn, _INSERT_LINEAGE, {
                "child_id": row["id"], "parent_id": parent_id,
                "diff": dumps({k: list(v) for k, v in diff.items()}),
                "retrained": bool(retrained) if parent_id else False, "via": "[]",
            })
            return version_from_values({**values, "payload": payload}, parent_id, ())

        return self.db.run_fast(txn)

    def set_alias(self, name: str, alias: str, ref: str, *, user: str, reason: str | None) -> AliasMove:
        """Point ``name@alias`` at ``ref`` (a version of ``name``) and record the move."""

        def txn(conn: Connection) -> AliasMove:
            refs.require_name(conn, name)
            target = refs.resolve(conn, ref)
            self._require_same_name(conn, name, alias, target, ref)
            return self._move(conn, name, alias, target, user=user, reason=reason, action="set")

        return self.db.run(txn)

    def unset_alias(self, name: str, alias: str, *, user: str, reason: str | None) -> AliasMove:
        """Remove ``name@alias`` and record it."""

        def txn(conn: Connection) -> AliasMove:
            if refs.alias_target(conn, name, alias, lock=True) is None:
                raise refs.no_alias(conn, name, alias)
            return self._move(conn, name, alias, None, user=user, reason=reason, action="unset")

        return self.db.run(txn)

    def rollback(self, name: str, alias: str, to: str | None, *, user: str, reason: str | None) -> AliasMove:
        """Move ``name@alias`` to the parent of the version it holds, or to the named ancestor ``to``."""

        def txn(conn: Connection) -> AliasMove:
            current = refs.alias_target(conn, name, alias, lock=True)
            if current is None:
                raise refs.no_alias(conn, name, alias)
            cur_ref = self._ref(conn, current)
            ancestors = [r[0] for r in self.db.fetch(conn, _ANCESTORS, {"id": current})[1]]
            if to is None:
                if not ancestors:
                    raise LineageError(
                        f"{name}@{alias} holds {cur_ref}, a root version with no parent, so there is nothing to roll "
                        f"back to; point the alias elsewhere with: modelyard models alias {name} {alias} REF"
                    )
                target = ancestors[0]
            else:
                target = refs.resolve(conn, to)
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
            vid = refs.resolve(conn, ref)
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
        via = [*(loads(edge.via) or []), deleted, *(loads(own.via) or [])]
        if own.parent_id is None:
            values = {"parent_id": None, "diff": "{}", "retrained": False, "via": dumps(via)}
        else:
            payloads = dict(conn.execute(
                select(model_version_data.c.id, model_version_data.c.payload)
                .where(model_version_data.c.id.in_([child, own.parent_id]))
            ).all())
            diff = param_diff(payload_params(payloads[own.parent_id]), payload_params(payloads[child]))
            values = {
                "parent_id": own.parent_id, "diff": dumps({k: list(v) for k, v in diff.items()}),
                "retrained": bool(edge.retrained) or bool(own.retrained), "via": dumps(via),
            }
        conn.execute(update(model_lineage).where(model_lineage.c.child_id == child).values(**values))
        conn.execute(update(model_versions).where(model_versions.c.id == child).values(parent_id=values["parent_id"]))

    def _move(self, conn: Connection, name: str, alias: str, to_id: str | None, *, user: str,
              reason: str | None, action: str) -> AliasMove:
        now = round(time.time(), 6)  # microseconds: what the ISO form in to_dict keeps
        from_id = refs.alias_target(conn, name, alias, lock=True)
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
            return version_from_row(row)
        return self.db.read(lambda conn: self._version(conn, refs.resolve(conn, ref)))

    def resolve(self, ref: str) -> VersionSummary:
        """The summary of the version ``ref`` names (NAME/NUMBER, NAME@ALIAS or an id prefix)."""
        return self.db.read(lambda conn: self._summaries(conn, [refs.resolve(conn, ref)])[0])

    def list(self, name: str | None = None, *, limit: int | None = None, offset: int = 0) -> list[VersionSummary]:
        """Summaries ordered by name, then newest number first."""

        def txn(conn: Connection) -> list[VersionSummary]:
            params: dict[str, Any] = {} if name is None else {"name": name}
            if name is not None:
                refs.require_name(conn, name)
            if limit is None and not offset:
                _, rows = self.db.fetch(conn, _Q_ROWS if name is None else _Q_ROWS_NAME, params)
            else:
                page = {**params, "limit": _MAX_ROWS if limit is None else limit, "offset": offset}
                _, rows = self.db.fetch(conn, _Q_ROWS_PAGE if name is None else _Q_ROWS_NAME_PAGE, page)
            aliases = group_pairs(self.db.fetch(conn, _Q_LIST_ALIASES if name is None else _Q_LIST_ALIASES_NAME, params)[1])
            return [summary_from_row(r, r[10], aliases) for r in rows]

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
        return self.db.read(lambda conn: [s for s, _ in self._walk(conn, _ANCESTORS, refs.resolve(conn, ref))])

    def descendants(self, ref: str) -> list[VersionSummary]:
        """Children, grandchildren, ... of ``ref``, breadth first (one recursive query)."""
        return self.db.read(lambda conn: [s for s, _ in self._walk(conn, _DESCENDANTS, refs.resolve(conn, ref))])

    def lineage(self, ref: str) -> Lineage:
        """``ref`` with its ancestors, descendants and the edges among them."""

        def txn(conn: Connection) -> Lineage:
            vid = refs.resolve(conn, ref)
            anc = self._walk(conn, _ANCESTORS, vid)
            des = self._walk(conn, _DESCENDANTS, vid)
            own = conn.execute(_Q_OWN_EDGE, {"id": vid}).one()
            version = self._summaries(conn, [vid])[0]
            edges = [e for _, e in (*anc, *des) if e is not None]
            if own.parent_id is not None:
                edges.insert(0, edge_from_row(vid, own.parent_id, own.diff, own.retrained, own.via))
            return Lineage(version, tuple(s for s, _ in anc), tuple(s for s, _ in des), tuple(edges))

        return self.db.read(txn)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Every move of ``name``'s aliases (or of one alias), oldest first."""

        def txn(conn: Connection) -> list[AliasMove]:
            refs.require_name(conn, name)
            q = select(alias_history).where(alias_history.c.name == name).order_by(alias_history.c.seq)
            if alias is not None:
                q = q.where(alias_history.c.alias == alias)
            rows = conn.execute(q).all()
            if alias is not None and not rows:
                raise refs.no_alias(conn, name, alias)
            return [AliasMove(
                seq=r.seq, name=r.name, alias=r.alias, from_id=r.from_id, to_id=r.to_id, from_number=r.from_number,
                to_number=r.to_number, at=r.at, user=r.user, reason=r.reason, action=r.action,
            ) for r in rows]

        return self.db.read(txn)

    def aliases(self, name: str) -> dict[str, str]:
        """``{alias: version id}`` for ``name``."""
        def txn(conn: Connection) -> dict[str, str]:
            refs.require_name(conn, name)
            q = select(model_aliases.c.alias, model_aliases.c.version_id).where(model_aliases.c.name == name)
            return dict(conn.execute(q).all())

        return self.db.read(txn)

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
    def _walk(self, conn: Connection, sql: Any, vid: str) -> list[tuple[VersionSummary, LineageEdge | None]]:
        rows = self.db.fetch(conn, sql, {"id": vid})[1]
        aliases: dict[str, list[str]] = {}
        for name in sorted({r[1] for r in rows}):  # usually one model name along a lineage
            aliases.update(group_pairs(self.db.fetch(conn, _Q_LIST_ALIASES_NAME, {"name": name})[1]))
        out = []
        for r in rows:
            parent = r[10]
            edge = edge_from_row(r[0], parent, r[11], r[12], r[13]) if parent is not None else None
            out.append((summary_from_row(r, parent, aliases), edge))
        return out

    def _summaries(self, conn: Connection, ids: Iterable[str]) -> list[VersionSummary]:
        ids = list(ids)
        if len(ids) == 1:
            row = conn.execute(_Q_SUMMARY, {"id": ids[0]}).one()
            aliases = {ids[0]: [a for (a,) in conn.execute(_Q_SUMMARY_ALIASES, {"id": ids[0]})]}
            return [summary_from_row(row, row[10], aliases)]
        rows = {r[0]: r for r in conn.execute(select(*_SUMMARY, _PARENT).where(model_versions.c.id.in_(ids)))}
        aliases = group_pairs(conn.execute(
            select(model_aliases.c.version_id, model_aliases.c.alias).where(model_aliases.c.version_id.in_(ids))
        ))
        return [summary_from_row(rows[i], rows[i][10], aliases) for i in ids]

    def _version(self, conn: Connection, vid: str) -> Version:
        return version_from_row(conn.execute(self._q_by_id, {"id": vid}).one()._mapping)

    def _ref(self, conn: Connection, vid: str) -> str:
        r = conn.execute(_Q_REF, {"id": vid}).one()
        return f"{r[0]}/{r[1]}"

    def _require_same_name(self, conn: Connection, name: str, alias: str, vid: str, ref: str) -> None:
        owner = conn.execute(select(model_versions.c.name).where(model_versions.c.id == vid)).scalar_one()
        if owner != name:
            raise LineageError(
                f"{ref} is a version of {owner!r}, not of {name!r}; {name}@{alias} can only point at versions of {name}"
            )


