"""Studies, trials and intermediate values in the SQL store (SQLite or PostgreSQL).

Tables (declared on ``db.metadata``):

- ``studies``: one row per study: name (unique), direction, space (JSON), optimizer, pruner,
  seed, user attributes (JSON), creation time and ``next_number``, the counter trial numbers
  come from.
- ``trials``: one row per trial: ``(study_id, number)`` unique, state, params (JSON), value,
  reason, worker, start/finish/heartbeat times, and ``counted`` (false for slots given back
  because the worker died or was interrupted).
- ``trial_values``: ``(trial_id, step) -> value``, the intermediate values pruners read.

Every write is one transaction through ``Database.run`` (retried on lock conflicts). A claim
locks its study row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already serializes writers), so the params proposal inside it sees every running trial and
numbers come from the row's counter, never from ``max() + 1``. Times are read from the
database's clock, so workers on machines with skewed clocks agree on who missed a heartbeat.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from ..errors import StudyError
from ..records.trials import StudyInfo, Trial, TrialState
from .db import Database
from .migrations import metadata
from .trialstore import HEARTBEAT_REASON, Propose, already_finished, check_study_name, not_found

__all__ = ["SqlTrialStore", "studies_table", "trial_record", "trial_values_table", "trials_table"]

studies_table = Table(
    "studies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("direction", String(8), nullable=False),
    Column("space", Text, nullable=False),
    Column("optimizer", String(64), nullable=False),
    Column("pruner", String(64), nullable=False),
    Column("seed", Integer, nullable=False),
    Column("attrs", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("next_number", Integer, nullable=False, default=0),
)

trials_table = Table(
    "trials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("study_id", Integer, ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("params", Text, nullable=False),
    Column("value", Double, nullable=True),
    Column("reason", Text, nullable=True),
    Column("worker", String(256), nullable=True),
    Column("counted", Boolean, nullable=False, default=True),
    Column("started_at", Double, nullable=True),
    Column("finished_at", Double, nullable=True),
    Column("heartbeat_at", Double, nullable=True),
    UniqueConstraint("study_id", "number", name="uq_trials_study_number"),
    Index("ix_trials_study_state", "study_id", "state"),
)

trial_values_table = Table(
    "trial_values",
    metadata,
    Column("trial_id", Integer, ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("value", Double, nullable=True),  # NULL stands for NaN (SQLite cannot store NaN)
)

S, T, V = studies_table.c, trials_table.c, trial_values_table.c


def trial_record(study: str, row: Any, intermediate: dict[int, float]) -> Trial:
    """The ``Trial`` of one row of the trials table, with its intermediate values by step."""
    return Trial(
        study=study, number=int(row["number"]), state=TrialState(row["state"]), params=json.loads(row["params"]),
        value=row["value"], intermediate=intermediate, reason=row["reason"], worker=row["worker"],
        started_at=row["started_at"], finished_at=row["finished_at"], heartbeat_at=row["heartbeat_at"],
    )


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


class SqlTrialStore:
    """Studies and trials in a ``Database``; several processes or machines may share one study."""

    shared = True

    def __init__(self, db: Database):
        self.db = db
        db.open()  # creates these tables in a store made before they existed

    def _now_sql(self) -> Any:
        if self.db.dialect == "postgresql":
            return literal_column("CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)")
        return literal_column("((julianday('now') - 2440587.5) * 86400.0)")

    def _now(self, conn: Connection) -> float:
        return float(conn.execute(select(self._now_sql())).scalar_one())

    # --- studies --------------------------------------------------------------------------
    def create_study(self, info: StudyInfo) -> tuple[StudyInfo, bool]:
        """Create the study, or return the existing one of that name; ``(info, created)``."""
        check_study_name(info.name)

        def txn(conn: Connection) -> bool:
            if conn.execute(select(S.id).where(S.name == info.name)).first() is not None:
                return False
            conn.execute(insert(studies_table).values(
                name=info.name, direction=info.direction, space=json.dumps(info.space), optimizer=info.optimizer,
                pruner=info.pruner, seed=int(info.seed), attrs=json.dumps(info.attrs), created_at=self._now(conn),
                next_number=0,
            ))
            return True

        try:
            created = self.db.run(txn)
        except IntegrityError:  # another process created it between our check and insert
            created = False
        return self.get_study(info.name), created

    def _infos(self, conn: Connection, name: str | None) -> list[StudyInfo]:
        q = select(studies_table).order_by(S.id)
        if name is not None:
            q = q.where(S.name == name)
        rows = conn.execute(q).mappings().all()
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        counts: dict[int, dict[str, int]] = {i: {} for i in ids}
        for sid, state, n in conn.execute(
            select(T.study_id, T.state, func.count()).where(T.study_id.in_(ids)).group_by(T.study_id, T.state)
        ):
            counts[sid][state] = int(n)
        best: dict[int, tuple[float, int]] = {}
        directions = {r["id"]: r["direction"] for r in rows}
        for sid, number, value in conn.execute(
            select(T.study_id, T.number, T.value).where(
                T.study_id.in_(ids), T.state == TrialState.COMPLETE.value, T.value.is_not(None)
            ).order_by(T.number)
        ):
            sign = -1.0 if directions[sid] == "maximize" else 1.0
            if sid not in best or sign * value < sign * best[sid][0]:
                best[sid] = (float(value), int(number))
        return [
            StudyInfo(
                name=r["name"], direction=r["direction"], space=json.loads(r["space"]), optimizer=r["optimizer"],
                pruner=r["pruner"], seed=int(r["seed"]), created_at=float(r["created_at"]),
                attrs=json.loads(r["attrs"]), counts=counts[r["id"]],
                best_value=best[r["id"]][0] if r["id"] in best else None,
                best_number=best[r["id"]][1] if r["id"] in best else None,
            )
            for r in rows
        ]

    def get_study(self, name: str) -> StudyInfo:
        """The study with its tallies, or NotFoundError."""
        found = self.db.read(lambda conn: self._infos(conn, name))
        if not found:
            raise not_found(name)
        return found[0]

    def list_studies(self) -> list[StudyInfo]:
        """Every study with its tallies, oldest first."""
        return self.db.read(lambda conn: self._infos(conn, None))

    def delete_study(self, name: str) -> None:
        """Remove a study and all its trials."""

        def txn(conn: Connection) -> None:
            sid = self._sid(conn, name)
            tids = select(T.id).where(T.study_id == sid).scalar_subquery()
            conn.execute(delete(trial_values_table).where(V.trial_id.in_(tids)))
            conn.execute(delete(trials_table).where(T.study_id == sid))
            conn.execute(delete(studies_table).where(S.id == sid))

        self.db.run(txn)

    def _sid(self, conn: Connection, name: str, *, lock: bool = False) -> int:
        q = select(S.id).where(S.name == name)
        if lock:
            q = q.with_for_update()
        sid = conn.execute(q).scalar()
        if sid is None:
            raise not_found(name)
        return int(sid)

    # --- trials ---------------------------------------------------------------------------
    def _load(self, conn: Connection, sid: int, study: str, *, numbers: Sequence[int] | None = None,
              states: Sequence[TrialState] | None = None) -> list[Trial]:
        q = select(trials_table).where(T.study_id == sid).order_by(T.number)
        if numbers is not None:
            q = q.where(T.number.in_(list(numbers)))
        if states is not None:
            q = q.where(T.state.in_([s.value for s in states]))
        rows = conn.execute(q).mappings().all()
        if not rows:
            return []
        values: dict[int, dict[int, float]] = {r["id"]: {} for r in rows}
        vq = select(V.trial_id, V.step, V.value).join(trials_table, T.id == V.trial_id).where(T.study_id == sid)
        if numbers is not None or states is not None:
            vq = vq.where(V.trial_id.in_(list(values)))
        for tid, step, value in conn.execute(vq):
            if tid in values:
                values[tid][int(step)] = float(value) if value is not None else math.nan
        return [trial_record(study, r, values[r["id"]]) for r in rows]

    def claim(
        self, study: str, propose: Propose, *, budget: int | None, grace: float | None, worker: str
    ) -> Trial | None:
        """In one transaction: reap dead trials, check the budget, propose params, insert a running trial."""

        def txn(conn: Connection) -> Trial | None:
            sid = self._sid(conn, study, lock=True)
            now = self._now(conn)
            if grace is not None:
                conn.execute(
                    update(trials_table)
                    .where(T.study_id == sid, T.state == TrialState.RUNNING.value, T.heartbeat_at < now - grace)
                    .values(state=TrialState.FAILED.value, reason=HEARTBEAT_REASON, counted=False, finished_at=now)
                )
            if budget is not None:
                used = conn.execute(
                    select(func.count()).select_from(trials_table).where(T.study_id == sid, T.counted.is_(True))
                ).scalar_one()
                if used >= budget:
                    return None
            params = dict(propose(self._load(conn, sid, study)))
            number = conn.execute(
                update(studies_table).where(S.id == sid).values(next_number=S.next_number + 1)
                .returning(S.next_number)
            ).scalar_one() - 1
            conn.execute(insert(trials_table).values(
                study_id=sid, number=number, state=TrialState.RUNNING.value, params=json.dumps(params),
                worker=worker, counted=True, started_at=now, heartbeat_at=now,
            ))
            return Trial(study=study, number=number, state=TrialState.RUNNING, params=params, worker=worker,
                         started_at=now, heartbeat_at=now)

        return self.db.run(txn)

    def _running_id(self, conn: Connection, study: str, number: int) -> int:
        sid = self._sid(conn, study)
        row = conn.execute(select(T.id, T.state).where(T.study_id == sid, T.number == number)).first()
        if row is None:
            raise not_found(study, number)
        if row.state != TrialState.RUNNING.value:
            raise already_finished(self._load(conn, sid, study, numbers=[number])[0])
        return int(row.id)

    def report(self, study: str, number: int, step: int, value: float) -> None:
        """Record an intermediate value of a running trial (a repeated step overwrites)."""

        def txn(conn: Connection) -> None:
            tid = self._running_id(conn, study, number)
            conn.execute(delete(trial_values_table).where(V.trial_id == tid, V.step == int(step)))
            conn.execute(insert(trial_values_table).values(trial_id=tid, step=int(step), value=_finite(value)))

        self.db.run(txn)

    def heartbeat(self, study: str, numbers: Sequence[int]) -> set[int]:
        """Refresh the heartbeat of running trials; returns the numbers that are still running."""
        if not numbers:
            return set()

        def txn(conn: Connection) -> set[int]:
            sid = self._sid(conn, study)
            where = (T.study_id == sid, T.number.in_(list(numbers)), T.state == TrialState.RUNNING.value)
            conn.execute(update(trials_table).where(*where).values(heartbeat_at=self._now_sql()))
            return {int(n) for n in conn.execute(select(T.number).where(*where)).scalars()}

        return self.db.run(txn)

    def finish(
        self, study: str, number: int, state: TrialState, value: float | None, reason: str | None,
        *, counted: bool = True,
    ) -> Trial:
        """End a running trial; StudyError if it already ended."""
        if state is TrialState.RUNNING:
            raise StudyError("finish needs a final state (complete, pruned or failed), got running")

        def txn(conn: Connection) -> Trial:
            tid = self._running_id(conn, study, number)
            conn.execute(update(trials_table).where(T.id == tid).values(
                state=state.value, value=_finite(value), reason=reason, finished_at=self._now(conn),
                counted=bool(counted or state is not TrialState.FAILED),
            ))
            return self._load(conn, self._sid(conn, study), study, numbers=[number])[0]

        return self.db.run(txn)

    def trials(self, study: str, states: Sequence[TrialState] | None = None) -> list[Trial]:
        """The study's trials in number order, optionally only those in ``states``."""
        return self.db.read(lambda conn: self._load(conn, self._sid(conn, study), study, states=states))

    def trial(self, study: str, number: int) -> Trial:
        """One trial, or NotFoundError."""
        found = self.db.read(lambda conn: self._load(conn, self._sid(conn, study), study, numbers=[number]))
        if not found:
            raise not_found(study, number)
        return found[0]

    def counted(self, study: str) -> int:
        """Trials that count against the budget."""

        def q(conn: Connection) -> int:
            sid = self._sid(conn, study)
            return int(conn.execute(
                select(func.count()).select_from(trials_table).where(T.study_id == sid, T.counted.is_(True))
            ).scalar_one())

        return self.db.read(q)
