"""The store's schema: the shared ``metadata`` its tables are declared on, the schema version, and migrations.

Tables are declared on ``metadata`` by the modules that own them (``version_tables.py``,
``trials.py``, ``comparisons.py``). ``create_or_migrate`` creates them in a new store,
migrates an older schema step by step (``MIGRATIONS``), and refuses a newer one with the
command to run.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, inspect, select, text

from ..errors import StoreError

__all__ = [
    "MIGRATIONS", "SCHEMA_VERSION", "TABLE_MODULES", "create_or_migrate", "has_all_tables", "metadata", "schema_info",
    "schema_version", "too_new",
]

metadata = MetaData()

schema_info = Table(
    "schema_info",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(2048), nullable=False),
)

# Version 1 was the first schema; 2 added model_versions.parent_id; 3 model_versions.config_digest (the
# checksum of everything a rebuild reads, computed for existing versions). To change it: bump SCHEMA_VERSION and add
# MIGRATIONS[old] = fn(conn) that upgrades a store at version ``old`` to ``old + 1`` (it runs
# inside the same transaction as the version bump, so a failed migration changes nothing).
# Tables that are merely new need no migration: ``open`` creates missing tables.
SCHEMA_VERSION = 3


def _v1_versions_carry_their_parent(conn: Connection) -> None:
    """Version 2: ``model_versions.parent_id``, a copy of the lineage's parent that listings read without a join."""
    if not inspect(conn).has_table("model_versions"):
        return  # created whole by ``open`` afterwards
    conn.execute(text("ALTER TABLE model_versions ADD COLUMN parent_id VARCHAR(64)"))
    conn.execute(text(
        "UPDATE model_versions SET parent_id = "
        "(SELECT l.parent_id FROM model_lineage l WHERE l.child_id = model_versions.id)"
    ))


def _v2_versions_carry_their_config_digest(conn: Connection) -> None:
    """Version 3: ``model_versions.config_digest``, computed here for every existing version.

    From then on a load refuses a version whose stored config no longer matches it. A row whose
    JSON cannot be read any more keeps a NULL digest, and loading it says the record is damaged.
    """
    from .version_tables import rebuild_digest, version_from_values  # they declare tables on ``metadata``

    if not inspect(conn).has_table("model_versions"):
        return
    if "config_digest" not in {c["name"] for c in inspect(conn).get_columns("model_versions")}:
        conn.execute(text("ALTER TABLE model_versions ADD COLUMN config_digest VARCHAR(64)"))
    rows = conn.execute(text(
        "SELECT v.*, d.payload FROM model_versions v JOIN model_version_data d ON d.id = v.id"
    )).mappings().all()
    for row in rows:
        try:
            digest = rebuild_digest(version_from_values(row, row["parent_id"], ()))
        except StoreError:
            continue
        conn.execute(text("UPDATE model_versions SET config_digest = :d WHERE id = :id"), {"d": digest, "id": row["id"]})


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _v1_versions_carry_their_parent,
    2: _v2_versions_carry_their_config_digest,
}

# modules declaring tables on ``metadata``; ``open`` imports them so a store always has all tables
TABLE_MODULES = ("modelyard.store.versions", "modelyard.store.trials", "modelyard.store.comparisons")


def schema_version(engine: Engine, conn: Connection) -> int | None:
    """The store's schema version: None for an empty database, 0 for one from before versions were recorded."""
    if not engine.dialect.has_table(conn, "schema_info"):
        return None
    row = conn.execute(select(schema_info.c.value).where(schema_info.c.key == "schema_version")).first()
    return int(row[0]) if row else 0


def has_all_tables(engine: Engine, conn: Connection) -> bool:
    """Whether every declared table exists."""
    names = set(engine.dialect.get_table_names(conn))
    return all(t.name in names for t in metadata.sorted_tables)


def too_new(safe_url: str, version: int) -> StoreError:
    """The error for a store written by a newer modelyard."""
    return StoreError(
        f"the store at {safe_url} has schema version {version}, newer than this modelyard's "
        f"{SCHEMA_VERSION}; upgrade modelyard (pip install -U modelyard)"
    )


def create_or_migrate(engine: Engine, conn: Connection, safe_url: str) -> None:
    """Create every table in a new store, or migrate an older one to ``SCHEMA_VERSION`` (in the caller's transaction)."""
    version = schema_version(engine, conn)
    if version is None:
        metadata.create_all(conn)
        conn.execute(schema_info.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        return
    if version > SCHEMA_VERSION:
        raise too_new(safe_url, version)
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise StoreError(
                f"the store at {safe_url} has schema version {version} and this modelyard has no migration "
                f"from it to {SCHEMA_VERSION}; open it with the modelyard release that wrote it and export the "
                "models, or start a new store with --store"
            )
        step(conn)
        version += 1
        conn.execute(schema_info.update().where(schema_info.c.key == "schema_version").values(value=str(version)))
    metadata.create_all(conn)  # tables added since, which need no data migration
