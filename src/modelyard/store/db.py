"""The SQL database behind every store: engine from a URL, connections, transactions and retries.

One implementation serves SQLite (WAL, busy timeout, foreign keys, ``BEGIN IMMEDIATE`` for
writers so concurrent processes queue instead of failing) and PostgreSQL; they differ by URL
only. ``Database.open`` creates or migrates the schema (``migrations.py``).

Writers use ``run(fn)``: one transaction, retried whole on lock conflicts, so callers never
see "database is locked". Readers use ``read(fn)``: a snapshot that never waits for writers
(a deferred transaction on SQLite's WAL, REPEATABLE READ on PostgreSQL).
"""

from __future__ import annotations

import operator
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from ..errors import StoreError
from . import migrations

# metadata, schema_info and MIGRATIONS are re-exported for the table modules and tests
from .migrations import (
    MIGRATIONS,
    SCHEMA_VERSION,
    TABLE_MODULES,
    create_or_migrate,
    has_all_tables,
    metadata,
    schema_info,
    schema_version,
    too_new,
)
from .sqlite_file import (
    BUSY_MS,
    READONLY_OPTION,
    broken_error,
    is_broken,
    is_read_only,
    read_only_connect,
    read_only_error,
    setup,
)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Database", "metadata", "normalize_url"]

_PG_CONNECT_TIMEOUT_S = 10
_PG_OPEN_LOCK = 0x6D6F64656C79  # pg_advisory_xact_lock key serializing schema creation ("modely")


def _is_locked(e: BaseException) -> bool:
    msg = str(e).lower()
    return (
        "database is locked" in msg
        or "database is busy" in msg
        or "deadlock detected" in msg
        or "could not serialize" in msg
    )


def normalize_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` use psycopg 3 (the driver modelyard installs); others pass through."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Database:
    """A SQLAlchemy engine for one store URL, with retrying write transactions and snapshot reads."""

    def __init__(self, url: str, *, echo: bool = False, durable: bool = False):
        self.url = normalize_url(url)
        self.durable = durable
        self._lock_file: str | None = None
        self._lock_fd: int | None = None
        self._lock_pid = 0
        self._thread_lock = threading.Lock()
        self._opened = False
        self._writer: Any = None  # SQLite file: the DBAPI connection of this process's writes (see run_fast)
        self._writer_pid = 0
        self.file: str | None = None  # a SQLite store's database file
        self.read_only = False  # a SQLite file that may be read but not written: writes are refused up front
        self._reader: Engine | None = None
        self._compiled: dict[Any, tuple[str, bool, dict[str, Any], Callable[[Any], tuple[Any, ...]]]] = {}
        try:
            parsed = make_url(self.url)
            if parsed.get_backend_name() == "sqlite":
                if parsed.database in (None, "", ":memory:"):
                    raise StoreError(
                        f"store URL {url!r} is an in-memory SQLite database, which each connection sees empty; "
                        "use a file (sqlite:///path/modelyard.db) or a folder path"
                    )
                plain = not parsed.database.startswith("file:")
                self.file = os.path.abspath(os.path.expanduser(parsed.database)) if plain else parsed.database
                self.read_only = plain and is_read_only(self.file)
                extra = {"creator": read_only_connect(self.file)} if self.read_only else {}
                self.engine = create_engine(
                    self.url, echo=echo,
                    connect_args={"timeout": BUSY_MS / 1000, "check_same_thread": False}, **extra,
                )
                setup(self.engine, durable=durable, read_only=self.read_only)
                if os.name == "posix" and plain:
                    self._lock_file = self.file + "-writers.lock"
            else:
                connect_args: dict[str, Any] = {}
                if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
                    connect_args["connect_timeout"] = _PG_CONNECT_TIMEOUT_S
                self.engine = create_engine(self.url, echo=echo, pool_pre_ping=True, connect_args=connect_args)
        except (ArgumentError, NoSuchModuleError, ValueError) as e:
            raise StoreError(
                f"bad store URL {url!r} ({str(e).strip()}); use a folder path, sqlite:///PATH/modelyard.db or "
                "postgresql+psycopg://USER@HOST/DB"
            ) from e
        except ImportError as e:
            raise StoreError(
                f"the database driver for {url.split(':', 1)[0]!r} is not installed ({e}); "
                "for PostgreSQL: pip install 'modelyard[postgres]'"
            ) from e

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def open(self) -> Database:
        """Create the tables of a new store, or check and migrate an existing one (once per Database)."""
        if self._opened:  # the Yard and each store class open it; the schema is checked the first time only
            return self
        _declare_tables()
        version = self.read(lambda conn: schema_version(self.engine, conn))
        current = migrations.SCHEMA_VERSION  # read at call time: the migrations module owns it
        if version is not None and version > current:
            raise too_new(self.safe_url, version)
        if self.read_only and (version != current or not self.read(self._has_all_tables)):
            raise StoreError(
                f"the store at {self.file} is read-only and " + (
                    "holds no modelyard store" if version is None else
                    f"has schema version {version}, which this modelyard upgrades to {current} on first use (a "
                    "write)") + "; open it once with write access, or copy it somewhere writable and use --store"
            )
        if version != current or not self.read(self._has_all_tables):
            self.run(self._create_or_migrate)
        self._opened = True
        return self

    # --- transactions -------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic unit of work (commit on success, rollback on error); ``run`` also retries on lock conflicts."""
        self.require_writable()
        try:
            with self.engine.begin() as conn:
                yield conn
        except DBAPIError as e:
            self._raise(e)

    def run(self, fn: Callable[[Connection], Any], *, retries: int = 30) -> Any:
        """Run ``fn(conn)`` in one write transaction, retrying the whole function on lock conflicts."""
        self.require_writable()
        attempt = 0
        while True:
            try:
                with self._writer_turn(), self.engine.begin() as conn:
                    return fn(conn)
            except (OperationalError, DBAPIError) as e:
                attempt = self._retry_or_raise(e, attempt, retries)

    def run_fast(self, fn: Callable[[Any], Any], *, retries: int = 30) -> Any:
        """``run`` on a pooled DBAPI connection, for hot writes whose ``fn`` uses only ``fetch(conn, ...)``.

        The transaction is begun (BEGIN IMMEDIATE on SQLite) and committed on the driver directly,
        which saves SQLAlchemy's transaction bookkeeping -- a third of a small write's time.
        Retries, the writer queue and error mapping are those of ``run``.
        """
        self.require_writable()
        dbapi = self.engine.dialect.loaded_dbapi
        attempt = 0
        while True:
            try:
                with self._writer_turn():
                    if self._lock_file is not None:  # writes of this process take turns: one connection serves all
                        return self._commit(self._writer_connection(), fn)
                    pooled = self.engine.raw_connection()
                    try:
                        return self._commit(pooled.dbapi_connection, fn)
                    finally:
                        pooled.close()
            except dbapi.Error as e:  # BEGIN or COMMIT themselves failed
                error: DBAPIError = DBAPIError.instance(None, None, e, dbapi.Error, dialect=self.engine.dialect)
            except (OperationalError, DBAPIError) as e:
                error = e
            attempt = self._retry_or_raise(error, attempt, retries)

    def _retry_or_raise(self, error: DBAPIError, attempt: int, retries: int) -> int:
        """After a failed write: back off and return the next attempt number on a lock conflict, else raise.

        Lock errors past ``retries`` and other operational errors become our own error types; constraint
        violations and the like are raised as they are, since the caller knows what they mean.
        """
        if _is_locked(error) and attempt < retries:
            attempt += 1
            time.sleep(min(0.5, 0.01 * 2**attempt) * (0.5 + random.random()))
            return attempt
        self._raise(error)

    def _commit(self, conn: Any, fn: Callable[[Any], Any]) -> Any:
        try:
            if self.dialect == "sqlite":
                conn.execute("BEGIN IMMEDIATE")
            result = fn(conn)
            conn.commit()
            return result
        except BaseException:
            conn.rollback()
            raise

    def _writer_connection(self) -> Any:
        """This process's SQLite write connection, kept open (a pool checkout and return cost as much as a commit)."""
        if self._writer is None or self._writer_pid != os.getpid():
            fairy = self.engine.raw_connection()
            fairy.detach()  # ours until dispose(); the pool opens others for readers
            self._writer, self._writer_pid = fairy, os.getpid()
        return self._writer.dbapi_connection

    def read(self, fn: Callable[[Connection], Any]) -> Any:
        """Run ``fn(conn)`` in a read-only snapshot that does not wait for writers."""
        if self._reader is None:  # an engine view sharing the pool, with the options set once
            options = ({"isolation_level": "REPEATABLE READ"} if self.dialect == "postgresql"
                       else {READONLY_OPTION: True})
            self._reader = self.engine.execution_options(**options)
        try:
            with self._reader.connect() as conn, conn.begin():
                return fn(conn)
        except DBAPIError as e:
            self._raise(e)

    def first(self, stmt: Any, params: dict[str, Any]) -> dict[str, Any] | None:
        """The first row of one SELECT as a dict (None if no row): a fast path for hot single-statement reads.

        It runs through ``fetch`` on a pooled connection without a transaction of its own: one
        statement is its own consistent snapshot on both SQLite and PostgreSQL.
        """
        try:
            with self.engine.connect() as conn:
                names, rows = self.fetch(conn, stmt, params, limit=1)
        except DBAPIError as e:
            self._raise(e)
        return dict(zip(names, rows[0])) if rows else None

    def fetch(self, conn: Any, stmt: Any, params: dict[str, Any] | None = None, *,
              limit: int | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of a statement on ``conn`` (a Connection's DBAPI connection, or a DBAPI one).

        The statement is compiled once per Database and executed by the driver directly,
        skipping SQLAlchemy's per-execution and per-row work -- several times faster for hot
        reads, long listings and the statements of a registration. Values are the driver's own
        (no SQLAlchemy type processing): use it for text, numbers and booleans. A statement
        without result rows (an INSERT without RETURNING) gives no names and no rows. Driver
        errors come out as SQLAlchemy's (so ``run`` retries lock conflicts as usual).
        """
        compiled = self._compiled.get(stmt)
        if compiled is None:
            c = stmt.compile(dialect=self.engine.dialect)
            # values the statement carries itself (literals SQLAlchemy binds), under the caller's ``params``
            fixed = {k: v for k, v in c.params.items() if v is not None}
            order = tuple(c.positiontup) if c.positional else None
            pick = (lambda p, k=order[0]: (p[k],)) if order and len(order) == 1 else (
                operator.itemgetter(*order) if order else (lambda p: ()))
            compiled = self._compiled[stmt] = (str(c), order is not None, fixed, pick)
        sql, positional, fixed, pick = compiled
        params = ({**fixed, **params} if params else fixed) if fixed else (params or {})
        args = pick(params) if positional else params
        dbapi = self.engine.dialect.loaded_dbapi
        try:
            cursor = (conn.connection.dbapi_connection if isinstance(conn, Connection) else conn).cursor()
            try:
                cursor.execute(sql, args)
                if cursor.description is None:
                    return [], []
                rows = cursor.fetchall() if limit is None else cursor.fetchmany(limit)
                return [d[0] for d in cursor.description], rows
            finally:
                cursor.close()
        except dbapi.Error as e:
            raise DBAPIError.instance(sql, args, e, dbapi.Error, dialect=self.engine.dialect) from e

    def ping(self) -> None:
        """Raise StoreError if the database cannot be reached."""
        self.read(lambda conn: conn.execute(text("SELECT 1")))  # a reader's snapshot: no write lock, read-only too

    def dispose(self) -> None:
        """Close pooled connections (call in forked children and at exit)."""
        with self._thread_lock:
            if self._writer is not None and self._writer_pid == os.getpid():
                self._writer.close()
            self._writer = None
        self.engine.dispose()
        if self._lock_fd is not None and self._lock_pid == os.getpid():
            os.close(self._lock_fd)
        self._lock_fd = None

    # --- settings ---------------------------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        """A value stored in ``schema_info`` (e.g. where a URL store keeps its artifacts), or None."""
        return self.read(lambda c: c.execute(select(schema_info.c.value).where(schema_info.c.key == key)).scalar())

    def set_default_setting(self, key: str, value: str) -> str:
        """Store ``value`` under ``key`` unless a value is already there; returns the value in force."""

        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert

        def txn(conn: Connection) -> str:
            # insert-if-absent in one statement: concurrent first openers cannot collide on the key
            conn.execute(insert(schema_info).values(key=key, value=value).on_conflict_do_nothing())
            return conn.execute(select(schema_info.c.value).where(schema_info.c.key == key)).scalar_one()

        return self.run(txn)

    # --- internals --------------------------------------------------------------------
    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """On a local SQLite file, queue writers on an OS file lock next to it.

        SQLite's own busy handler polls with sleeps of up to 100 ms, so under many concurrent
        writers most time goes to sleeping; a blocking ``flock`` hands the turn over at once.
        BEGIN IMMEDIATE and the busy timeout still guard writers that do not take this lock.
        """
        if self._lock_file is None:
            yield
            return
        import fcntl

        with self._thread_lock:
            if self._lock_fd is None or self._lock_pid != os.getpid():  # a forked child needs its own description
                self._lock_fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o644)
                self._lock_pid = os.getpid()
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _has_all_tables(self, conn: Connection) -> bool:
        return has_all_tables(self.engine, conn)

    def _create_or_migrate(self, conn: Connection) -> None:
        if self.dialect == "postgresql":  # concurrent openers of a new database queue here
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_OPEN_LOCK})
        create_or_migrate(self.engine, conn, self.safe_url)

    def require_writable(self) -> None:
        """Raise the read-only StoreError if this store may only be read (before work that would end in a write)."""
        if self.read_only:
            raise read_only_error(self.file or self.safe_url)

    def _raise(self, e: DBAPIError) -> NoReturn:
        """Raise our error for a driver error a user can fix (unreachable, locked, broken, read-only), else ``e``."""
        if isinstance(e, OperationalError) or is_broken(e):
            raise self._map(e) from e
        raise e

    def _map(self, e: DBAPIError) -> StoreError:
        msg = str(e.orig) if e.orig is not None else str(e)
        msg = " ".join(msg.split())
        if self.file is not None and is_broken(e):
            return broken_error(self.file, e)
        if self.file is not None and "readonly database" in msg.lower():
            return read_only_error(self.file)
        if _is_locked(e):
            return StoreError(
                f"the store at {self.safe_url} stayed locked by another process for too long; retry, or use "
                "PostgreSQL for many concurrent writers"
            )
        if isinstance(e, OperationalError):
            return StoreError(
                f"cannot use the database at {self.safe_url}: {msg}; check the URL, that the server is running "
                "and that you may write there"
            )
        return StoreError(f"the database at {self.safe_url} refused the operation: {msg}")


def _declare_tables() -> None:
    """Import the modules that declare tables on ``metadata``, so every store gets every table."""
    import importlib

    for module in TABLE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
