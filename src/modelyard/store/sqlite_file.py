"""A store's SQLite file: how to connect (read-write, or read-only on a folder one may not write), and its errors.

Read-write connections use WAL, a busy timeout, foreign keys and ``BEGIN IMMEDIATE`` for writers
(``setup``). When the database file or its folder cannot be written (a read-only mount, or a
folder the user may read but not write), the store is opened read-only: with SQLite's
``mode=ro`` when a write-ahead log is there to read (and its shared-memory file with it), else
as ``immutable`` (no lock, no log: nothing may be writing a file nobody can write). Reading
commands then work; ``Database`` refuses writes up front with ``read_only_error``.

A file that is not a SQLite database (garbage, a truncated or zeroed file, a text file given as
``sqlite:///path``) is named by ``broken_error`` with what to do, rather than by the driver's
"file is not a database".
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, event

from ..errors import StoreError

__all__ = ["BUSY_MS", "READONLY_OPTION", "broken_error", "is_broken", "is_read_only", "read_only_connect",
           "read_only_error", "setup"]

BUSY_MS = 60_000
READONLY_OPTION = "modelyard_readonly"  # execution option of snapshot readers: BEGIN, not BEGIN IMMEDIATE
_WAL_PAGES = 4000
_BROKEN = ("file is not a database", "database disk image is malformed", "malformed database schema",
           "database corrupt", "not a database")


def is_read_only(path: str) -> bool:
    """Whether an existing SQLite file at ``path`` may be read but not written (the file, or its folder for the log)."""
    if not os.path.isfile(path):
        return False
    folder = os.path.dirname(os.path.abspath(path)) or "."
    return not os.access(path, os.W_OK) or not os.access(folder, os.W_OK)


def read_only_connect(path: str) -> Callable[[], sqlite3.Connection]:
    """A connection factory opening ``path`` read-only: ``mode=ro`` when a write-ahead log exists, else immutable."""
    wal = path + "-wal"
    has_log = os.path.isfile(wal) and os.path.getsize(wal) > 0 and os.path.isfile(path + "-shm")
    uri = f"file:{quote(os.path.abspath(path))}?{'mode=ro' if has_log else 'immutable=1'}"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=BUSY_MS / 1000, check_same_thread=False)

    return connect


def is_broken(e: BaseException) -> bool:
    """Whether a driver error says the file is not a (readable) SQLite database."""
    orig = getattr(e, "orig", None) or e
    msg = str(orig).lower()
    return isinstance(orig, sqlite3.DatabaseError) and any(b in msg for b in _BROKEN)


def broken_error(path: str, e: BaseException) -> StoreError:
    """The one sentence for a store file that is not a readable modelyard database, with what to do."""
    orig = getattr(e, "orig", None) or e
    return StoreError(
        f"{path} is not a readable modelyard database (SQLite says: {' '.join(str(orig).split())}); restore it "
        f"from a backup, or try to salvage it with: sqlite3 {path} \".recover\" | sqlite3 recovered.db, or start "
        "a new store at another path with --store"
    )


def read_only_error(path: str) -> StoreError:
    """The one sentence for a write to a store that may only be read."""
    return StoreError(
        f"the store at {path} is read-only (it or its folder cannot be written, e.g. a read-only mount); reading "
        "commands (models list/show, compare, predict) work, but this one writes: run it with write access or "
        "on a writable copy of the store"
    )


def setup(engine: Engine, *, durable: bool, read_only: bool) -> None:
    """Connection settings: WAL, busy timeout, foreign keys; writers begin with BEGIN IMMEDIATE (no lock upgrades).

    ``synchronous=NORMAL`` (default) keeps every commit atomic and the store consistent when a
    process or the OS crashes, but the last commits may roll back after a power loss;
    ``durable`` selects ``FULL``: each commit is on disk before it returns (slower). A read-only
    connection changes nothing on disk: it only sets the busy timeout and ``query_only``.
    """
    sync = "FULL" if durable else "NORMAL"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event emit BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_MS}")  # first: switching to WAL may wait for a lock
        if read_only:
            cur.execute("PRAGMA query_only=ON")
            cur.close()
            return
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA synchronous={sync}")
        # a checkpoint every 4,000 WAL pages (16 MiB) rather than SQLite's 1,000: a registration writes
        # about a dozen pages, mostly the same ones again, and each checkpoint costs an fsync, so
        # this cuts the checkpoint time of a burst of registrations by about 3x; the file is then cut back
        cur.execute(f"PRAGMA wal_autocheckpoint={_WAL_PAGES}")
        cur.execute(f"PRAGMA journal_size_limit={_WAL_PAGES * 4096}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # readers take a deferred transaction: a WAL snapshot that never waits for a writer
        reader = read_only or conn.get_execution_options().get(READONLY_OPTION)
        conn.exec_driver_sql("BEGIN" if reader else "BEGIN IMMEDIATE")
