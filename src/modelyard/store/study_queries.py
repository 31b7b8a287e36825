"""Read queries the dashboard needs over studies and trials: pages, counts, filters and plot aggregates.

They read the trial store's own tables (``trials.py``) through SQLAlchemy Core in one read
snapshot each, and return the same frozen records the stores return, so the API's shapes are the
records' ``to_dict()``. Every list has a stable order (a unique column breaks ties) and every plot
query is bounded: it aggregates or samples instead of sending every row, so a page stays fast with
tens of thousands of trials.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, select

from ..errors import ModelyardError, NotFoundError
from ..records.trials import StudyInfo, Trial, TrialState
from .listing import finite, like_pattern

__all__ = [
    "TRIAL_SORTS",
    "StudyPage",
    "best_so_far",
    "curves",
    "get_study",
    "history",
    "list_studies",
    "list_trials",
    "parallel",
    "thin_history",
]

TRIAL_SORTS = ("number", "-number", "value", "-value", "duration", "-duration")


# --- studies ------------------------------------------------------------------------------

@dataclass(frozen=True)
class StudyPage:
    """One page of studies with the total matching the filter."""

    items: list[StudyInfo]
    total: int


def _study_infos(conn: Connection, rows: Sequence[Any]) -> list[StudyInfo]:
    from .trials import trials_table

    T = trials_table.c
    ids = [r["id"] for r in rows]
    if not ids:
        return []
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    for sid, state, n in conn.execute(
        select(T.study_id, T.state, func.count()).where(T.study_id.in_(ids)).group_by(T.study_id, T.state)
    ):
        counts[sid][state] = int(n)
    best: dict[int, tuple[float, int]] = {}
    for direction in ("minimize", "maximize"):
        sids = [r["id"] for r in rows if r["direction"] == direction]
        if not sids:
            continue
        agg = func.min(T.value) if direction == "minimize" else func.max(T.value)
        done = and_(T.study_id.in_(sids), T.state == TrialState.COMPLETE.value, T.value.is_not(None))
        bests = select(T.study_id.label("sid"), agg.label("best")).where(done).group_by(T.study_id).subquery()
        q = (
            select(T.study_id, func.min(T.number), bests.c.best)
            .join(bests, and_(bests.c.sid == T.study_id, T.value == bests.c.best))
            .where(done)
            .group_by(T.study_id, bests.c.best)
        )
        for sid, number, value in conn.execute(q):
            best[sid] = (float(value), int(number))
    return [
        StudyInfo(
            name=r["name"], direction=r["direction"], space=json.loads(r["space"]), optimizer=r["optimizer"],
            pruner=r["pruner"], seed=int(r["seed"]), created_at=float(r["created_at"]), attrs=json.loads(r["attrs"]),
            counts=counts[r["id"]], best_value=best[r["id"]][0] if r["id"] in best else None,
            best_number=best[r["id"]][1] if r["id"] in best else None,
        )
        for r in rows
    ]


def list_studies(db: Any, *, name: str | None = None, limit: int = 50, offset: int = 0) -> StudyPage:
    """Studies newest first, optionally those whose name contains ``name``."""
    from .trials import studies_table

    S = studies_table.c

    def q(conn: Connection) -> StudyPage:
        where = [S.name.like(like_pattern(name), escape="\\")] if name else []
        total = conn.execute(select(func.count()).select_from(studies_table).where(*where)).scalar_one()
        rows = conn.execute(
            select(studies_table).where(*where).order_by(S.id.desc()).limit(limit).offset(offset)
        ).mappings().all()
        return StudyPage(_study_infos(conn, rows), int(total))

    return db.read(q)


def _study_row(conn: Connection, name: str) -> Any:
    from .trials import studies_table

    row = conn.execute(select(studies_table).where(studies_table.c.name == name)).mappings().first()
    if row is None:
        raise NotFoundError(f"no study named {name!r}; list them with `modelyard studies list`")
    return row


def get_study(db: Any, name: str) -> StudyInfo:
    """One study with its tallies and best trial, or NotFoundError."""
    return db.read(lambda conn: _study_infos(conn, [_study_row(conn, name)])[0])


# --- trials -------------------------------------------------------------------------------

def _trials(conn: Connection, study: str, rows: Sequence[Any]) -> list[Trial]:
    from .trials import trial_record, trial_values_table

    V = trial_values_table.c
    values: dict[int, dict[int, float]] = {r["id"]: {} for r in rows}
    if values:
        for tid, step, value in conn.execute(
            select(V.trial_id, V.step, V.value).where(V.trial_id.in_(list(values))).order_by(V.trial_id, V.step)
        ):
            values[tid][int(step)] = float(value) if value is not None else math.nan
    return [trial_record(study, r, values[r["id"]]) for r in rows]


def _states(states: Sequence[str] | None) -> list[str] | None:
    if not states:
        return None
    valid = [s.value for s in TrialState]
    for s in states:
        if s not in valid:
            raise ModelyardError(f"unknown trial state {s!r}; use one of {', '.join(valid)}")
    return list(states)


def list_trials(
    db: Any, study: str, *, states: Sequence[str] | None = None, sort: str = "number", limit: int = 50,
    offset: int = 0, since: int | None = None,
) -> tuple[list[Trial], int]:
    """A page of a study's trials with intermediate values, and how many match; ``since`` keeps numbers > since."""
    from .trials import trials_table

    T = trials_table.c
    if sort not in TRIAL_SORTS:
        raise ModelyardError(f"cannot sort trials by {sort!r}; use one of {', '.join(TRIAL_SORTS)}")
    wanted = _states(states)

    def q(conn: Connection) -> tuple[list[Trial], int]:
        sid = _study_row(conn, study)["id"]
        where = [T.study_id == sid]
        if wanted:
            where.append(T.state.in_(wanted))
        if since is not None:
            where.append(T.number > since)
        total = conn.execute(select(func.count()).select_from(trials_table).where(*where)).scalar_one()
        key = sort.lstrip("-")
        desc = sort.startswith("-")
        col = {"number": T.number, "value": T.value, "duration": T.finished_at - T.started_at}[key]
        order = [col.is_(None), col.desc() if desc else col.asc()] if key != "number" else []
        order.append(T.number.desc() if desc and key == "number" else T.number.asc())
        rows = conn.execute(
            select(trials_table).where(*where).order_by(*order).limit(limit).offset(offset)
        ).mappings().all()
        return _trials(conn, study, rows), int(total)

    return db.read(q)


# --- plot aggregates ----------------------------------------------------------------------

def best_so_far(numbers: Sequence[int], values: Sequence[float], direction: str) -> list[tuple[int, float]]:
    """The improvements of the best value in trial order: ``[(number, new best), ...]``."""
    sign = -1.0 if direction == "maximize" else 1.0
    out: list[tuple[int, float]] = []
    for n, v in sorted(zip(numbers, values)):
        if not math.isfinite(v):
            continue
        if not out or sign * v < sign * out[-1][1]:
            out.append((n, v))
    return out


def thin_history(points: Sequence[tuple[int, float, str]], max_points: int) -> list[tuple[int, float, str]]:
    """At most about ``max_points`` points keeping each bucket's extremes, so outliers and the shape survive."""
    if len(points) <= max_points:
        return list(points)
    pts = sorted(points)
    buckets = max(1, max_points // 2)
    size = len(pts) / buckets
    keep: dict[int, tuple[int, float, str]] = {}
    for b in range(buckets):
        chunk = pts[int(b * size):int((b + 1) * size)]
        if not chunk:
            continue
        lo = min(chunk, key=lambda p: p[1])
        hi = max(chunk, key=lambda p: p[1])
        keep[lo[0]] = lo
        keep[hi[0]] = hi
    return sorted(keep.values())


def history(db: Any, study: str, *, max_points: int = 2000) -> dict[str, Any]:
    """Value per finished trial (thinned past ``max_points``) and the exact best-so-far staircase."""
    from .trials import trials_table

    T = trials_table.c

    def q(conn: Connection) -> dict[str, Any]:
        row = _study_row(conn, study)
        rows = conn.execute(
            select(T.number, T.value, T.state)
            .where(T.study_id == row["id"], T.value.is_not(None), T.state != TrialState.RUNNING.value)
            .order_by(T.number)
        ).all()
        total = conn.execute(select(func.count()).select_from(trials_table).where(T.study_id == row["id"])).scalar_one()
        return {"direction": row["direction"], "rows": rows, "total": int(total)}

    data = db.read(q)
    pts = [(int(n), float(v), s) for n, v, s in data["rows"] if v is not None and math.isfinite(v)]
    complete = [(n, v) for n, v, s in pts if s == TrialState.COMPLETE.value]
    best = best_so_far([n for n, _ in complete], [v for _, v in complete], data["direction"])
    shown = thin_history(pts, max_points)
    return {
        "direction": data["direction"],
        "n_trials": data["total"],
        "n_finished": len(pts),
        "thinned": len(shown) < len(pts),
        "points": [{"number": n, "value": v, "state": s} for n, v, s in shown],
        "best": [{"number": n, "value": v} for n, v in best],
    }


def _space_axes(space: dict[str, Any]) -> list[dict[str, Any]]:
    axes = []
    for name, spec in space.items():
        kind = str(spec.get("type", "float"))
        axis: dict[str, Any] = {"name": name, "type": kind, "log": bool(spec.get("log", False))}
        if "choices" in spec:
            axis["choices"] = [c if isinstance(c, (int, float, str, bool)) or c is None else str(c)
                               for c in spec["choices"]]
        axes.append(axis)
    return axes


def parallel(db: Any, study: str, *, max_rows: int = 1000) -> dict[str, Any]:
    """Params and value of completed trials: all of them up to ``max_rows``, else the best half plus an even sample."""
    from .trials import trials_table

    T = trials_table.c

    def q(conn: Connection) -> dict[str, Any]:
        row = _study_row(conn, study)
        done = and_(T.study_id == row["id"], T.state == TrialState.COMPLETE.value, T.value.is_not(None))
        keys = conn.execute(select(T.id, T.value).where(done).order_by(T.number)).all()
        n = len(keys)
        if n > max_rows:
            sign = -1.0 if row["direction"] == "maximize" else 1.0
            ranked = sorted(range(n), key=lambda i: (sign * keys[i][1], i))
            chosen = set(ranked[: max_rows // 2])
            rest = [i for i in range(n) if i not in chosen]
            step = len(rest) / (max_rows - len(chosen))
            chosen.update(rest[int(k * step)] for k in range(max_rows - len(chosen)))
            ids = [keys[i][0] for i in sorted(chosen)]
        else:
            ids = [k[0] for k in keys]
        rows = []
        for chunk in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
            rows += conn.execute(
                select(T.number, T.value, T.params).where(T.id.in_(ids[chunk:chunk + 900]))
            ).all()
        rows.sort(key=lambda r: r[0])
        return {"row": row, "rows": rows, "n": n}

    data = db.read(q)
    row = data["row"]
    return {
        "direction": row["direction"],
        "params": _space_axes(json.loads(row["space"])),
        "n_complete": data["n"],
        "sampled": len(data["rows"]) < data["n"],
        "rows": [{"number": int(n), "value": finite(v), "params": json.loads(p)} for n, v, p in data["rows"]],
    }


def curves(db: Any, study: str, *, max_curves: int = 120) -> dict[str, Any]:
    """Intermediate values of up to ``max_curves`` trials: all running, then the latest pruned and completed."""
    from .trials import trial_values_table, trials_table

    T, V = trials_table.c, trial_values_table.c

    def q(conn: Connection) -> dict[str, Any]:
        row = _study_row(conn, study)
        has_values = select(V.trial_id).where(V.trial_id == T.id).exists()
        picked: list[Any] = []
        counts: dict[str, int] = {}
        share = {TrialState.RUNNING.value: max_curves // 4, TrialState.PRUNED.value: max_curves * 3 // 8,
                 TrialState.COMPLETE.value: max_curves * 3 // 8}
        for state, k in share.items():
            base = and_(T.study_id == row["id"], T.state == state, has_values)
            counts[state] = int(conn.execute(select(func.count()).select_from(trials_table).where(base)).scalar_one())
            picked += conn.execute(
                select(T.id, T.number, T.state).where(base).order_by(T.number.desc()).limit(k)
            ).all()
        steps: dict[int, list[list[float | None]]] = {p[0]: [] for p in picked}
        ids = list(steps)
        for chunk in range(0, len(ids), 900):
            for tid, step, value in conn.execute(
                select(V.trial_id, V.step, V.value).where(V.trial_id.in_(ids[chunk:chunk + 900]))
                .order_by(V.trial_id, V.step)
            ):
                steps[tid].append([int(step), finite(value)])
        return {"picked": picked, "steps": steps, "counts": counts, "direction": row["direction"]}

    data = db.read(q)
    trials = sorted(
        ({"number": int(n), "state": s, "steps": data["steps"][tid]} for tid, n, s in data["picked"]),
        key=lambda t: t["number"],
    )
    return {
        "direction": data["direction"],
        "with_values": data["counts"],
        "sampled": len(trials) < sum(data["counts"].values()),
        "trials": trials,
    }
