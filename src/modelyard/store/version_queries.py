"""Read queries the dashboard needs over models and versions: pages, counts, filters and alias history.

They read the registry's tables (``version_tables.py``) through SQLAlchemy Core in one read
snapshot each and return frozen records; every list has a stable order.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, func, select

from ..errors import ModelyardError, NotFoundError
from ..records.versions import ModelSummary
from .listing import finite, like_pattern

__all__ = ["alias_history", "list_models", "list_versions"]


def list_models(
    db: Any, *, name: str | None = None, exact: str | None = None, limit: int = 50, offset: int = 0,
) -> tuple[list[ModelSummary], int]:
    """Model names in alphabetical order (containing ``name``, or equal to ``exact``) with counts and aliases."""
    from .versions import model_aliases, model_names, model_versions

    N, M, A = model_names.c, model_versions.c, model_aliases.c

    def q(conn: Connection) -> tuple[list[ModelSummary], int]:
        where = [N.name.like(like_pattern(name), escape="\\")] if name else []
        if exact is not None:
            where.append(N.name == exact)
        total = conn.execute(select(func.count()).select_from(model_names).where(*where)).scalar_one()
        rows = conn.execute(
            select(N.name, N.created_at).where(*where).order_by(N.name).limit(limit).offset(offset)
        ).all()
        names = [r[0] for r in rows]
        stats = {n: (0, None, None) for n in names}
        aliases: dict[str, dict[str, int]] = {n: {} for n in names}
        if names:
            for n, count, latest, updated in conn.execute(
                select(M.name, func.count(), func.max(M.number), func.max(M.created_at))
                .where(M.name.in_(names)).group_by(M.name)
            ):
                stats[n] = (int(count), int(latest), float(updated))
            for n, alias, number in conn.execute(
                select(A.name, A.alias, M.number).join(model_versions, M.id == A.version_id).where(A.name.in_(names))
            ):
                aliases[n][alias] = int(number)
        items = [
            ModelSummary(n, stats[n][0], stats[n][1], aliases[n], float(created), stats[n][2])
            for n, created in rows
        ]
        return items, int(total)

    return db.read(q)


def list_versions(
    db: Any, *, name: str | None = None, family: str | None = None, alias: str | None = None,
    sort: str = "-created", limit: int = 50, offset: int = 0,
) -> tuple[list[Any], int]:
    """Version summaries with filters (model name, family, having an alias), newest first by default."""
    from .versions import model_aliases, model_names, model_versions

    M, A = model_versions.c, model_aliases.c
    sorts = {"-created": [M.created_at.desc(), M.id], "created": [M.created_at.asc(), M.id],
             "-number": [M.name, M.number.desc()], "number": [M.name, M.number.asc()],
             "-key_value": [M.key_value.is_(None), M.key_value.desc(), M.id],
             "key_value": [M.key_value.is_(None), M.key_value.asc(), M.id]}
    if sort not in sorts:
        raise ModelyardError(f"cannot sort versions by {sort!r}; use one of {', '.join(sorts)}")

    def q(conn: Connection) -> tuple[list[Any], int]:
        where = []
        if name is not None:
            if conn.execute(select(model_names.c.name).where(model_names.c.name == name)).first() is None:
                raise NotFoundError(f"no model named {name!r}; list them with: modelyard models list")
            where.append(M.name == name)
        if family:
            where.append(M.family == family)
        if alias:
            where.append(select(A.version_id).where(A.version_id == M.id, A.alias == alias).exists())
        total = conn.execute(select(func.count()).select_from(model_versions).where(*where)).scalar_one()
        rows = conn.execute(
            select(M.id).where(*where).order_by(*sorts[sort]).limit(limit).offset(offset)
        ).scalars().all()
        return _version_summaries(conn, list(rows)), int(total)

    return db.read(q)


def _version_summaries(conn: Connection, ids: list[str]) -> list[Any]:
    from ..records.versions import VersionSummary
    from .versions import model_aliases, model_lineage, model_versions

    M, L, A = model_versions.c, model_lineage.c, model_aliases.c
    if not ids:
        return []
    rows = {r.id: r for r in conn.execute(
        select(M.id, M.name, M.number, M.family, M.task, M.key_metric, M.key_value, M.created_at, M.creator, M.tags,
               L.parent_id).join(model_lineage, L.child_id == M.id).where(M.id.in_(ids))
    )}
    aliases: dict[str, list[str]] = {}
    for vid, alias in conn.execute(select(A.version_id, A.alias).where(A.version_id.in_(ids))):
        aliases.setdefault(vid, []).append(alias)
    out = []
    for i in ids:
        r = rows[i]
        out.append(VersionSummary(
            id=r.id, name=r.name, number=int(r.number), family=r.family, task=r.task, key_metric=r.key_metric,
            key_value=finite(r.key_value), parent_id=r.parent_id, aliases=tuple(sorted(aliases.get(i, ()))),
            created_at=float(r.created_at), creator=r.creator, tags=json.loads(r.tags) if r.tags else {},
        ))
    return out


def alias_history(db: Any, name: str, *, alias: str | None = None, limit: int = 50, offset: int = 0
                  ) -> tuple[list[Any], int]:
    """A page of a model's alias moves (or one alias's), newest first."""
    from ..records.versions import AliasMove
    from .versions import alias_history as H_table
    from .versions import model_names

    H = H_table.c

    def q(conn: Connection) -> tuple[list[Any], int]:
        if conn.execute(select(model_names.c.name).where(model_names.c.name == name)).first() is None:
            raise NotFoundError(f"no model named {name!r}; list them with: modelyard models list")
        where = [H.name == name] + ([H.alias == alias] if alias else [])
        total = conn.execute(select(func.count()).select_from(H_table).where(*where)).scalar_one()
        if alias and not total:
            raise NotFoundError(f"{name} has no alias {alias!r} and never had one; set it with: "
                                f"modelyard models alias {name} {alias} {name}/NUMBER")
        rows = conn.execute(select(H_table).where(*where).order_by(H.seq.desc()).limit(limit).offset(offset)).all()
        return [AliasMove(
            seq=r.seq, name=r.name, alias=r.alias, from_id=r.from_id, to_id=r.to_id, from_number=r.from_number,
            to_number=r.to_number, at=r.at, user=r.user, reason=r.reason, action=r.action,
        ) for r in rows], int(total)

    return db.read(q)
