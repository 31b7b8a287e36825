"""The SQL database behind every store: engine from a URL, transactions, schema version and migrations.

One implementation serves SQLite (WAL, busy timeout, foreign keys, ``BEGIN IMMEDIATE`` for
writers so concurrent processes queue instead of failing) and PostgreSQL; they differ by URL
only. Tables are declared on ``metadata`` by the modules that own them (``versions.py``,
``trials.py``); ``Database.open`` creates them in a new store, migrates an older schema
step by step, and refuses a newer one with the command to run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, create_engine, event, select, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from ..errors import StoreError

__all__ = ["metadata", "SCHEMA_VERSION", "MIGRATIONS", "Database"]

metadata = MetaData()

schema_info = Table(
    "schema_info",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

SCHEMA_VERSION = 1

# MIGRATIONS[v] upgrades a store at schema version v to v + 1, inside one transaction.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}

_SQLITE_BUSY_MS = 60_000


def _is_locked(e: BaseException) -> bool:
    msg = str(e).lower()
    return "database is locked" in msg or "database is busy" in msg or "deadlock detected" in msg \
        or "could not serialize" in msg


class Database:
    """A SQLAlchemy engine for one store URL, with a retrying transaction scope."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        try:
            if url.startswith("sqlite"):
                self.engine = create_engine(
                    url, echo=echo, connect_args={"timeout": _SQLITE_BUSY_MS / 1000, "check_same_thread": False}
                )
                _sqlite_setup(self.engine)
            else:
                self.engine = create_engine(url, echo=echo, pool_pre_ping=True)
        except (ArgumentError, NoSuchModuleError, ValueError) as e:
            raise StoreError(
                f"bad store URL {url!r} ({e}); use a folder path, sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
            ) from e
        except ImportError as e:
            raise StoreError(
                f"the driver for {url.split(':', 1)[0]!r} is not installed ({e}); pip install 'modelyard[postgres]'"
            ) from e

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def open(self) -> Database:
        """Create the tables of a new store, or check and migrate an existing one."""
        with self.transaction() as conn:
            existing = self.engine.dialect.has_table(conn, "schema_info")
            if not existing:
                metadata.create_all(conn)
                conn.execute(schema_info.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
                return self
            row = conn.execute(select(schema_info.c.value).where(schema_info.c.key == "schema_version")).first()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the store at {self.safe_url} has schema version {version}, newer than this modelyard's "
                    f"{SCHEMA_VERSION}; upgrade modelyard (pip install -U modelyard)"
                )
            while version < SCHEMA_VERSION:
                step = MIGRATIONS.get(version)
                if step is None:
                    raise StoreError(
                        f"the store at {self.safe_url} has schema version {version} and no migration exists to "
                        f"{SCHEMA_VERSION}; export it with an older modelyard or start a new store"
                    )
                step(conn)
                version += 1
                conn.execute(
                    schema_info.update().where(schema_info.c.key == "schema_version").values(value=str(version))
                )
            metadata.create_all(conn)  # tables added without a data migration
        return self

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic unit of work (commit on success, rollback on error); use ``run`` to retry on lock conflicts."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as e:
            raise self._map(e) from e

    def run(self, fn: Callable[[Connection], Any], *, retries: int = 20) -> Any:
        """Run ``fn(conn)`` in one transaction, retrying the whole function on lock conflicts."""
        attempt = 0
        while True:
            try:
                with self.engine.begin() as conn:
                    return fn(conn)
            except (OperationalError, DBAPIError) as e:
                if _is_locked(e) and attempt < retries:
                    attempt += 1
                    time.sleep(min(0.5, 0.01 * 2**attempt) * (0.5 + random.random()))
                    continue
                if isinstance(e, OperationalError):
                    raise self._map(e) from e
                raise

    def _map(self, e: OperationalError) -> StoreError:
        msg = str(e.orig) if e.orig is not None else str(e)
        if _is_locked(e):
            return StoreError(
                f"the store at {self.safe_url} stayed locked by another process for too long; retry, or use PostgreSQL "
                "for many concurrent writers"
            )
        return StoreError(f"cannot use the store at {self.safe_url}: {msg.strip()}; check that the database is reachable")

    def ping(self) -> None:
        """Raise StoreError if the database cannot be reached."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError) as e:
            raise StoreError(
                f"cannot reach the database at {self.safe_url}: {str(getattr(e, 'orig', e)).strip()}; "
                "check the URL and that the server is running"
            ) from e

    def dispose(self) -> None:
        """Close pooled connections (call in forked children and at exit)."""
        self.engine.dispose()


def _sqlite_setup(engine: Engine) -> None:
    """WAL, busy timeout, foreign keys; writers start with BEGIN IMMEDIATE so lock upgrades cannot deadlock."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event emit BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
