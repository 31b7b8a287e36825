"""The gc lock: what makes a gc and a registration of the same weights exclude each other.

gc deletes a blob only inside a write transaction that holds the lock exclusively and has re-read,
under it, that no version references the blob (``collect``); a registration takes the lock shared
inside the transaction that inserts its version and checks there that its blob is still stored
(``hold_shared`` and ``WeightsCollected``, used by ``VersionStore.create``). On SQLite the lock is
the database's write lock itself (both are write transactions, which SQLite runs one at a time);
on PostgreSQL it is a transaction-scoped advisory lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, select, text

from ..errors import StoreError
from .db import Database
from .version_tables import model_versions

__all__ = ["GC_LOCK", "WeightsCollected", "collect", "hold_shared"]

GC_LOCK = 0x6D6F64656C67  # the PostgreSQL advisory lock's key ("modelg")
_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(:k)")
_SHARED = text("SELECT pg_advisory_xact_lock_shared(:k)")


class WeightsCollected(StoreError):
    """Raised inside a registration's transaction when its blob is gone (a gc removed it after it was written)."""


def hold_shared(db: Database, conn: Any) -> None:
    """Take the gc lock shared for the rest of this write transaction (on a DBAPI or SQLAlchemy connection)."""
    if db.dialect == "postgresql":  # SQLite: the write transaction itself excludes gc's
        db.fetch(conn, _SHARED, {"k": GC_LOCK})


def collect(db: Database, digests: Sequence[str], remove: Callable[[list[str]], list[str]]) -> list[str]:
    """``remove(unreferenced)`` inside one write transaction holding the gc lock; returns what it removed.

    ``unreferenced`` is those of ``digests`` that no version references, read under the lock. A
    registration checks that its blob is stored under the same lock, so a blob removed here either
    was unreferenced when that check ran later (and the registration writes it again) or is never
    removed (the registration's row came first).
    """
    wanted = list(dict.fromkeys(digests))

    def txn(conn: Connection) -> list[str]:
        if db.dialect == "postgresql":
            conn.execute(_EXCLUSIVE, {"k": GC_LOCK})
        used = {r[0] for r in conn.execute(
            select(model_versions.c.artifact).where(model_versions.c.artifact.in_(wanted)).distinct())}
        return remove([d for d in wanted if d not in used])

    return db.run(txn)
