"""Tuning records: a trial's state, a trial, and a study's description."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .times import from_iso, to_iso

__all__ = ["StudyInfo", "Trial", "TrialState"]


class TrialState(str, Enum):
    """Where a trial is in its life: running, or finished as complete, pruned or failed."""

    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """Whether the trial has ended (any state but running)."""
        return self is not TrialState.RUNNING


@dataclass(frozen=True)
class Trial:
    """One evaluation of a study: its params, state, value, intermediate values and why it ended so.

    ``value`` is the objective's return for a complete trial and the last reported value for a
    pruned one; ``reason`` says why a trial was pruned or failed. Times are seconds since the
    epoch on the store's clock.
    """

    study: str
    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    reason: str | None = None
    worker: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish (None while running)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def last_step(self) -> int | None:
        """The latest step with a reported intermediate value."""
        return max(self.intermediate) if self.intermediate else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (intermediate steps become string keys, as JSON requires)."""
        return {
            "study": self.study,
            "number": self.number,
            "state": self.state.value,
            "params": dict(self.params),
            "value": self.value,
            "intermediate": {str(k): v for k, v in sorted(self.intermediate.items())},
            "reason": self.reason,
            "worker": self.worker,
            "started_at": to_iso(self.started_at) if self.started_at is not None else None,
            "finished_at": to_iso(self.finished_at) if self.finished_at is not None else None,
            "heartbeat_at": to_iso(self.heartbeat_at) if self.heartbeat_at is not None else None,
            "duration": self.duration,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trial:
        """Inverse of ``to_dict``."""
        return cls(
            study=d["study"],
            number=int(d["number"]),
            state=TrialState(d["state"]),
            params=dict(d["params"]),
            value=d.get("value"),
            intermediate={int(k): float(v) if v is not None else float("nan")
                          for k, v in (d.get("intermediate") or {}).items()},
            reason=d.get("reason"),
            worker=d.get("worker"),
            started_at=from_iso(d["started_at"]) if d.get("started_at") is not None else None,
            finished_at=from_iso(d["finished_at"]) if d.get("finished_at") is not None else None,
            heartbeat_at=from_iso(d["heartbeat_at"]) if d.get("heartbeat_at") is not None else None,
        )


@dataclass(frozen=True)
class StudyInfo:
    """A study's definition (space, direction, optimizer, pruner, seed, user attributes) and tallies."""

    name: str
    direction: str  # "minimize" or "maximize"
    space: dict[str, Any]  # SearchSpace.to_dict()
    optimizer: str
    pruner: str
    seed: int
    created_at: float
    attrs: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # trials per state value
    best_value: float | None = None
    best_number: int | None = None

    @property
    def n_trials(self) -> int:
        """Trials in the study, in every state."""
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "name": self.name,
            "direction": self.direction,
            "space": self.space,
            "optimizer": self.optimizer,
            "pruner": self.pruner,
            "seed": self.seed,
            "created_at": to_iso(self.created_at),
            "attrs": dict(self.attrs),
            "counts": {s.value: int(self.counts.get(s.value, 0)) for s in TrialState},
            "n_trials": self.n_trials,
            "best_value": self.best_value,
            "best_number": self.best_number,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyInfo:
        """Inverse of ``to_dict``."""
        return cls(
            name=d["name"], direction=d["direction"], space=dict(d["space"]), optimizer=d["optimizer"],
            pruner=d["pruner"], seed=int(d["seed"]), created_at=from_iso(d["created_at"]),
            attrs=dict(d.get("attrs") or {}), counts={k: int(v) for k, v in (d.get("counts") or {}).items() if v},
            best_value=d.get("best_value"), best_number=d.get("best_number"),
        )
