"""Version refs: ``NAME/NUMBER``, ``NAME@ALIAS`` or a unique id prefix (>= 4 hex) -> id, and the
not-found messages that say what does exist. ``NAME@latest`` is built in: the highest number."""

from __future__ import annotations

import re

from sqlalchemy import Connection, and_, bindparam, func, select

from ..errors import AmbiguousRefError, NotFoundError
from .version_tables import model_aliases, model_names, model_versions

__all__ = [
    "LATEST", "alias_target", "latest", "name_exists", "no_alias", "no_number", "prefix_bounds", "require_name", "resolve",
]

_HEX = re.compile(r"^[0-9a-f]+$")


def prefix_bounds(prefix: str) -> tuple[str, str]:
    """``(lo, hi)``: the ids in ``[lo, hi)`` are those starting with the non-empty ``prefix`` (a primary-key range scan)."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


_ID, _NAME, _NUMBER = model_versions.c.id, model_versions.c.name, model_versions.c.number
_Q_ALIAS = select(model_aliases.c.version_id).where(
    and_(model_aliases.c.name == bindparam("name"), model_aliases.c.alias == bindparam("alias")))
_Q_ALIAS_LOCK = _Q_ALIAS.with_for_update()
_Q_NUMBER = select(_ID).where(and_(_NAME == bindparam("name"), _NUMBER == bindparam("number")))
_Q_PREFIX = (select(_ID, _NAME, _NUMBER).where(and_(_ID >= bindparam("lo"), _ID < bindparam("hi")))
             .order_by(_ID).limit(11))
_Q_NAME = select(model_names.c.name).where(model_names.c.name == bindparam("name"))
_Q_LATEST = select(_ID).where(_NAME == bindparam("name")).order_by(_NUMBER.desc()).limit(1)

LATEST = "latest"  # NAME@latest: the newest version, a built-in alias no one can move


def resolve(conn: Connection, ref: str) -> str:
    """The id ``ref`` names, or NotFoundError/AmbiguousRefError saying what exists."""
    if not isinstance(ref, str) or not ref.strip():
        raise NotFoundError(f"empty version ref {ref!r}; name a version as NAME/NUMBER, NAME@ALIAS or an id prefix")
    ref = ref.strip()
    if "@" in ref:
        name, _, alias = ref.partition("@")
        vid = latest(conn, name) if alias == LATEST else alias_target(conn, name, alias)
        if vid is None:
            raise no_alias(conn, name, alias)
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
            raise no_number(conn, name, number)
        return vid
    prefix = ref.lower()
    if _HEX.match(prefix) and len(prefix) >= 4:
        lo, hi = prefix_bounds(prefix)
        rows = conn.execute(_Q_PREFIX, {"lo": lo, "hi": hi}).all()
        if len(rows) == 1:
            return rows[0][0]
        if len(rows) > 1:
            shown = ", ".join(f"{n}/{k} ({i[:12]})" for i, n, k in rows[:10])
            more = " and more" if len(rows) > 10 else ""
            raise AmbiguousRefError(
                f"id prefix {ref!r} matches several versions: {shown}{more}; give more characters of the id"
            )
        raise NotFoundError(f"no version has an id starting with {ref!r}; list ids with: modelyard models list")
    if name_exists(conn, ref):
        raise NotFoundError(
            f"{ref!r} is a model name, not a version; name a version as {ref}/NUMBER or {ref}@ALIAS "
            f"(see modelyard models list {ref})"
        )
    hint = " (an id prefix needs at least 4 hex characters)" if _HEX.match(prefix) else ""
    raise NotFoundError(
        f"unknown version ref {ref!r}{hint}; refs look like churn/3, churn@production or an id prefix such as 3f9a2c"
    )

def latest(conn: Connection, name: str) -> str | None:
    """The id of ``name``'s highest-numbered version (what ``NAME@latest`` names), or None."""
    return conn.execute(_Q_LATEST, {"name": name}).scalar()


def name_exists(conn: Connection, name: str) -> bool:
    """Whether a model called ``name`` was ever registered."""
    return conn.execute(_Q_NAME, {"name": name}).scalar() is not None

def require_name(conn: Connection, name: str) -> None:
    """NotFoundError listing the known names unless ``name`` exists."""
    if not name_exists(conn, name):
        known = [r[0] for r in conn.execute(select(model_names.c.name).order_by(model_names.c.name).limit(20))]
        listing = f"known models: {', '.join(known)}" if known else "the store has no models yet (modelyard train ...)"
        raise NotFoundError(f"no model named {name!r}; {listing}")

def no_number(conn: Connection, name: str, number: int) -> NotFoundError:
    """The error for a missing ``NAME/NUMBER``: deleted, or never assigned."""
    require_name(conn, name)
    nxt = conn.execute(select(model_names.c.next_number).where(model_names.c.name == name)).scalar_one()
    count = conn.execute(select(func.count()).where(model_versions.c.name == name)).scalar_one()
    if 1 <= number < nxt:
        return NotFoundError(f"{name}/{number} was deleted; {name} has {count} version(s) left (modelyard models list {name})")
    return NotFoundError(
        f"{name} has no version {number}; its versions are numbered 1 to {nxt - 1} (modelyard models list {name})"
    )

def alias_target(conn: Connection, name: str, alias: str, *, lock: bool = False) -> str | None:
    """The id ``name@alias`` points at (row-locked on PostgreSQL with ``lock``), or None."""
    return conn.execute(_Q_ALIAS_LOCK if lock else _Q_ALIAS, {"name": name, "alias": alias}).scalar()

def no_alias(conn: Connection, name: str, alias: str) -> NotFoundError:
    """The error for a missing alias, listing the ones that exist."""
    require_name(conn, name)
    existing = [r[0] for r in conn.execute(
        select(model_aliases.c.alias).where(model_aliases.c.name == name).order_by(model_aliases.c.alias))]
    have = f"its aliases are: {', '.join(existing)}" if existing else "it has no aliases"
    return NotFoundError(
        f"{name} has no alias {alias!r} ({have}); set it with: modelyard models alias {name} {alias} {name}/NUMBER"
    )
