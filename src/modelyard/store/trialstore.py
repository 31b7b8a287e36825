"""The TrialStore protocol every study backend implements, and its in-memory implementation.

A store keeps studies and their trials and offers the few atomic operations a study needs;
the policy (which params, when to stop, how to prune) lives in ``tune/study.py``. ``claim`` is the
heart: in one atomic step it fails trials whose worker stopped sending heartbeats, checks the
trial budget, asks ``propose(history)`` for params while holding the study (so the running
trials of every worker are visible to it and two workers never propose from the same
history), and inserts the new running trial with the next number. The SQL store
(``trials.py``) does this in one database transaction; the memory store under one lock.

Budget: a trial counts against ``budget`` unless it failed for a reason that was not the
objective's (its worker died or was interrupted); such a slot is reused.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from ..errors import NotFoundError, StudyError
from ..records.trials import StudyInfo, Trial, TrialState

__all__ = [
    "HEARTBEAT_REASON",
    "INTERRUPTED_REASON",
    "MemoryTrialStore",
    "Propose",
    "TrialStore",
    "check_study_name",
    "summarize",
]

Propose = Callable[[list[Trial]], dict[str, Any]]

HEARTBEAT_REASON = "worker died (heartbeat missed)"
INTERRUPTED_REASON = "interrupted (Ctrl-C or stop signal)"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_study_name(name: Any) -> str:
    """The name if it is a valid study name, else StudyError naming the rule."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise StudyError(
            f"study name {name!r} is not valid; use 1-128 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit, e.g. churn-mlp"
        )
    return name


def summarize(info: StudyInfo, trials: Iterable[Trial]) -> StudyInfo:
    """``info`` with its state counts and best complete trial computed from ``trials``."""
    counts: dict[str, int] = {}
    best: Trial | None = None
    sign = -1.0 if info.direction == "maximize" else 1.0
    for t in trials:
        counts[t.state.value] = counts.get(t.state.value, 0) + 1
        if t.state is TrialState.COMPLETE and t.value is not None and (
            best is None or sign * t.value < sign * best.value  # type: ignore[operator]
        ):
            best = t
    return replace(
        info, counts=counts, best_value=best.value if best else None, best_number=best.number if best else None
    )


@runtime_checkable
class TrialStore(Protocol):
    """Where studies and trials live; every method is atomic and safe to call from several threads."""

    shared: bool  # whether other processes may use the same studies (then heartbeats matter)

    def create_study(self, info: StudyInfo) -> tuple[StudyInfo, bool]:
        """Create the study, or return the existing one of that name; ``(info, created)``."""
        ...

    def get_study(self, name: str) -> StudyInfo:
        """The study with its tallies, or NotFoundError."""
        ...

    def list_studies(self) -> list[StudyInfo]:
        """Every study with its tallies, oldest first."""
        ...

    def delete_study(self, name: str) -> None:
        """Remove a study and all its trials."""
        ...

    def claim(
        self, study: str, propose: Propose, *, budget: int | None, grace: float | None, worker: str
    ) -> Trial | None:
        """Atomically reap dead trials, check the budget, propose params and insert a running trial (or None)."""
        ...

    def report(self, study: str, number: int, step: int, value: float) -> None:
        """Record an intermediate value of a running trial (a repeated step overwrites)."""
        ...

    def heartbeat(self, study: str, numbers: Sequence[int]) -> set[int]:
        """Refresh the heartbeat of running trials; returns the numbers that are still running."""
        ...

    def finish(
        self, study: str, number: int, state: TrialState, value: float | None, reason: str | None,
        *, counted: bool = True,
    ) -> Trial:
        """End a running trial; StudyError if it already ended."""
        ...

    def trials(self, study: str, states: Sequence[TrialState] | None = None) -> list[Trial]:
        """The study's trials in number order, optionally only those in ``states``."""
        ...

    def trial(self, study: str, number: int) -> Trial:
        """One trial, or NotFoundError."""
        ...

    def counted(self, study: str) -> int:
        """Trials that count against the budget (see the module docstring)."""
        ...


def already_finished(t: Trial) -> StudyError:
    """The error for finishing or reporting to a trial that has ended."""
    why = f" ({t.reason})" if t.reason else ""
    return StudyError(
        f"trial {t.number} of study {t.study!r} is already {t.state.value}{why}; a trial is told once, and a "
        "trial failed for a missed heartbeat keeps that state (its slot was given to a new trial)"
    )


def not_found(study: str, number: int | None = None) -> NotFoundError:
    """The error for an unknown study or trial."""
    if number is None:
        return NotFoundError(f"no study named {study!r}; list them with `modelyard studies list`")
    return NotFoundError(f"study {study!r} has no trial {number}; see `modelyard studies show {study}`")


@dataclass
class _Study:
    info: StudyInfo
    trials: list[Trial] = field(default_factory=list)
    counted: dict[int, bool] = field(default_factory=dict)


class MemoryTrialStore:
    """Studies in this process's memory: a dict under one lock (the default of ``Study``)."""

    shared = False

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._studies: dict[str, _Study] = {}

    def _get(self, name: str) -> _Study:
        try:
            return self._studies[name]
        except KeyError:
            raise not_found(name) from None

    def create_study(self, info: StudyInfo) -> tuple[StudyInfo, bool]:
        """Create the study, or return the existing one of that name; ``(info, created)``."""
        check_study_name(info.name)
        with self._lock:
            if info.name in self._studies:
                return self.get_study(info.name), False
            self._studies[info.name] = _Study(replace(info, counts={}, best_value=None, best_number=None))
            return self.get_study(info.name), True

    def get_study(self, name: str) -> StudyInfo:
        """The study with its tallies."""
        with self._lock:
            s = self._get(name)
            return summarize(s.info, s.trials)

    def list_studies(self) -> list[StudyInfo]:
        """Every study with its tallies, oldest first."""
        with self._lock:
            return [summarize(s.info, s.trials) for s in self._studies.values()]

    def delete_study(self, name: str) -> None:
        """Remove a study and all its trials."""
        with self._lock:
            self._get(name)
            del self._studies[name]

    def claim(
        self, study: str, propose: Propose, *, budget: int | None, grace: float | None, worker: str
    ) -> Trial | None:
        """Check the budget, propose params and append a running trial, all under the lock.

        Memory studies live in one process, whose heartbeats cannot stop while it runs, so
        nothing is reaped here.
        """
        with self._lock:
            s = self._get(study)
            if budget is not None and sum(s.counted.values()) >= budget:
                return None
            params = propose(list(s.trials))
            now = time.time()
            t = Trial(
                study=study, number=len(s.trials), state=TrialState.RUNNING, params=dict(params), worker=worker,
                started_at=now, heartbeat_at=now,
            )
            s.trials.append(t)
            s.counted[t.number] = True
            return t

    def _running(self, s: _Study, number: int) -> Trial:
        if not 0 <= number < len(s.trials):
            raise not_found(s.info.name, number)
        t = s.trials[number]
        if t.state is not TrialState.RUNNING:
            raise already_finished(t)
        return t

    def report(self, study: str, number: int, step: int, value: float) -> None:
        """Record an intermediate value of a running trial."""
        with self._lock:
            s = self._get(study)
            t = self._running(s, number)
            s.trials[number] = replace(t, intermediate={**t.intermediate, int(step): float(value)})

    def heartbeat(self, study: str, numbers: Sequence[int]) -> set[int]:
        """Refresh heartbeats; returns the numbers still running."""
        with self._lock:
            s = self._get(study)
            now, alive = time.time(), set()
            for n in numbers:
                if 0 <= n < len(s.trials) and s.trials[n].state is TrialState.RUNNING:
                    s.trials[n] = replace(s.trials[n], heartbeat_at=now)
                    alive.add(n)
            return alive

    def finish(
        self, study: str, number: int, state: TrialState, value: float | None, reason: str | None,
        *, counted: bool = True,
    ) -> Trial:
        """End a running trial."""
        if state is TrialState.RUNNING:
            raise StudyError("finish needs a final state (complete, pruned or failed), got running")
        with self._lock:
            s = self._get(study)
            t = self._running(s, number)
            done = replace(t, state=state, value=_finite_or_none(value), reason=reason, finished_at=time.time())
            s.trials[number] = done
            s.counted[number] = counted or state is not TrialState.FAILED
            return done

    def trials(self, study: str, states: Sequence[TrialState] | None = None) -> list[Trial]:
        """The study's trials in number order."""
        with self._lock:
            out = list(self._get(study).trials)
        return out if states is None else [t for t in out if t.state in states]

    def trial(self, study: str, number: int) -> Trial:
        """One trial."""
        with self._lock:
            s = self._get(study)
            if not 0 <= number < len(s.trials):
                raise not_found(study, number)
            return s.trials[number]

    def counted(self, study: str) -> int:
        """Trials that count against the budget."""
        with self._lock:
            return sum(self._get(study).counted.values())


def _finite_or_none(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)
