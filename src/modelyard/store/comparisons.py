"""Stored comparisons: each ``Comparison`` saved once under a random id, read back whole or listed newest first.

Table (declared on ``db.metadata``; ``Database.open`` creates it in stores made before it existed):

- ``comparisons``: one row per saved comparison: ``id`` (64 hex: sha256 of the record and a
  random salt, so two runs of the same comparison get two ids), ``created_at`` (when the
  comparison was computed, seconds since the epoch), the labels compared (``refs``, JSON),
  the ranking ``metric``, the ``best`` label, ``n_rows``, ``data_source`` and
  ``data_fingerprint``, and ``payload``: the whole ``Comparison.to_dict()`` as JSON, which
  ``get`` turns back into an equal record. The other columns serve listings without
  reading payloads.

Ids are looked up like version ids: the full id, or a unique prefix of at least 4 hex characters.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Double,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
)

from ..errors import AmbiguousRefError, ModelyardError, NotFoundError, ParamError
from ..records.comparisons import Comparison
from ..records.times import from_iso as _from_iso
from ..records.times import to_iso as _iso
from .db import Database
from .migrations import metadata
from .refs import prefix_bounds

__all__ = ["ComparisonStore", "ComparisonSummary", "comparisons_table"]

comparisons_table = Table(
    "comparisons",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", Double, nullable=False),
    Column("refs", Text, nullable=False),  # JSON list of the labels, in the order compared
    Column("metric", String(64), nullable=False),
    Column("best", Text, nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("data_source", Text, nullable=False),
    Column("data_fingerprint", String(128), nullable=False),
    Column("payload", Text, nullable=False),  # Comparison.to_dict() as JSON
    Index("ix_comparisons_created", "created_at"),
)

C = comparisons_table.c
_HEX = re.compile(r"^[0-9a-f]+$")
_MIN_PREFIX = 4
_SHOWN = 10  # ids named in an ambiguity error


@dataclass(frozen=True)
class ComparisonSummary:
    """One saved comparison as listings show it: id, time, what was compared on which data, and the winner."""

    id: str
    created_at: float  # seconds since the epoch (UTC): when the comparison was computed
    refs: tuple[str, ...]  # the labels, in the order compared
    metric: str
    best: str
    n_rows: int
    data_source: str
    data_fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (the items of ``GET /api/comparisons``)."""
        return {
            "id": self.id, "created_at": _iso(self.created_at), "refs": list(self.refs), "metric": self.metric,
            "best": self.best, "n_rows": self.n_rows, "data_source": self.data_source,
            "data_fingerprint": self.data_fingerprint,
        }


class ComparisonStore:
    """Saved comparisons in a ``Database`` (SQLite or PostgreSQL)."""

    def __init__(self, db: Database):
        self.db = db
        db.open()  # creates the table in a store made before it existed

    def save(self, comparison: Comparison) -> str:
        """Store ``comparison`` under a new random id, in one transaction; returns the id."""
        payload = json.dumps(comparison.to_dict())
        cid = hashlib.sha256(payload.encode() + secrets.token_bytes(16)).hexdigest()
        row = {
            "id": cid, "created_at": _created_at(comparison), "refs": json.dumps([e.label for e in comparison.entries]),
            "metric": comparison.metric, "best": comparison.best.label, "n_rows": int(comparison.n_rows),
            "data_source": comparison.data_source, "data_fingerprint": comparison.data_fingerprint,
            "payload": payload,
        }
        self.db.run(lambda conn: conn.execute(insert(comparisons_table).values(**row)))
        return cid

    def resolve(self, ref: str) -> str:
        """The full id of the comparison ``ref`` names (its id or a unique prefix of >= 4 hex characters)."""
        return self.db.read(lambda conn: _resolve(conn, ref))

    def get(self, ref: str) -> Comparison:
        """The comparison with id ``ref`` (or a unique prefix of it), equal to the one saved."""

        def q(conn: Connection) -> str:
            cid = _resolve(conn, ref)
            return conn.execute(select(C.payload).where(C.id == cid)).scalar_one()

        return Comparison.from_dict(json.loads(self.db.read(q)))

    def list(self, limit: int = 50, offset: int = 0) -> builtins.list[ComparisonSummary]:
        """Summaries of saved comparisons, newest first (``offset`` skips, ``limit`` caps)."""
        if limit < 1 or offset < 0:
            raise ParamError(f"list needs limit >= 1 and offset >= 0, got limit={limit}, offset={offset}")
        stmt = (select(C.id, C.created_at, C.refs, C.metric, C.best, C.n_rows, C.data_source, C.data_fingerprint)
                .order_by(C.created_at.desc(), C.id).limit(limit).offset(offset))
        rows = self.db.read(lambda conn: conn.execute(stmt).all())
        return [
            ComparisonSummary(id=r.id, created_at=float(r.created_at), refs=tuple(json.loads(r.refs)), metric=r.metric,
                              best=r.best, n_rows=int(r.n_rows), data_source=r.data_source,
                              data_fingerprint=r.data_fingerprint)
            for r in rows
        ]

    def count(self) -> int:
        """How many comparisons are saved."""
        return int(self.db.read(lambda conn: conn.execute(select(func.count()).select_from(comparisons_table))
                                .scalar_one()))

    def delete(self, ref: str) -> str:
        """Remove the comparison with id ``ref`` (or a unique prefix of it); returns the full id removed."""

        def txn(conn: Connection) -> str:
            cid = _resolve(conn, ref)
            conn.execute(delete(comparisons_table).where(C.id == cid))
            return cid

        return self.db.run(txn)


def _created_at(comparison: Comparison) -> float:
    """When the comparison was computed (its ``created_at``), or now for a record that does not say."""
    if not comparison.created_at:
        return time.time()
    try:
        return _from_iso(comparison.created_at)
    except ValueError:
        raise ModelyardError(
            f"the comparison's created_at {comparison.created_at!r} is not an ISO-8601 time; set it like "
            "2025-01-31T12:00:00.000Z or leave it empty"
        ) from None


def _resolve(conn: Connection, ref: str) -> str:
    """The one id starting with ``ref``, or NotFoundError/AmbiguousRefError saying what to give instead."""
    prefix = ref.strip().lower() if isinstance(ref, str) else ""
    if not _HEX.match(prefix) or len(prefix) < _MIN_PREFIX:
        raise NotFoundError(
            f"{ref!r} is not a comparison id; give the id or at least {_MIN_PREFIX} of its first hex characters "
            "(ids are printed by `modelyard compare --save` and listed by `modelyard comparisons list`)"
        )
    lo, hi = prefix_bounds(prefix)
    ids = [r[0] for r in conn.execute(
        select(C.id).where(C.id >= lo, C.id < hi).order_by(C.id).limit(_SHOWN + 1))]
    if len(ids) == 1:
        return ids[0]
    if ids:
        shown = ", ".join(i[:12] for i in ids[:_SHOWN]) + (" and more" if len(ids) > _SHOWN else "")
        raise AmbiguousRefError(f"comparison id prefix {ref!r} matches several comparisons ({shown}); "
                                "give more characters of the id")
    raise NotFoundError(f"no saved comparison has an id starting with {ref!r}; list them with `modelyard comparisons "
                        "list` or on the dashboard's Compare page, or save one with `modelyard compare ... --save`")
