"""Frozen records shared by every layer: schemas, training configuration and results.

Records are plain data: they hold no connections and no live rows, and each has
``to_dict``/``from_dict`` giving JSON-safe values, so the CLI's ``--json``, the REST API
and the store all speak the same shapes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = [
    "Task",
    "Column",
    "Schema",
    "FitConfig",
    "EpochLog",
]


class Task(str, Enum):
    """What the target is: class labels or real values."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"


@dataclass(frozen=True)
class Column:
    """One feature column: its name, kind, original dtype and, if categorical, its categories."""

    name: str
    kind: str  # "numeric" or "categorical"
    dtype: str
    categories: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "categories": list(self.categories) if self.categories is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Column:
        """Inverse of ``to_dict``."""
        cats = d.get("categories")
        return cls(d["name"], d["kind"], d["dtype"], tuple(cats) if cats is not None else None)


@dataclass(frozen=True)
class Schema:
    """What a dataset looks like: feature columns, target, task and class labels."""

    columns: tuple[Column, ...]
    target: str | None
    task: Task
    classes: tuple[Any, ...] | None = None

    @property
    def feature_names(self) -> list[str]:
        """Names of the feature columns, in order."""
        return [c.name for c in self.columns]

    @property
    def categorical(self) -> list[int]:
        """Indices of the categorical feature columns."""
        return [i for i, c in enumerate(self.columns) if c.kind == "categorical"]

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        return len(self.classes) if self.classes is not None else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "columns": [c.to_dict() for c in self.columns],
            "target": self.target,
            "task": self.task.value,
            "classes": list(self.classes) if self.classes is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schema:
        """Inverse of ``to_dict``."""
        classes = d.get("classes")
        return cls(
            columns=tuple(Column.from_dict(c) for c in d["columns"]),
            target=d.get("target"),
            task=Task(d["task"]),
            classes=tuple(classes) if classes is not None else None,
        )


@dataclass(frozen=True)
class FitConfig:
    """How long and how carefully to train: the training configuration, apart from hyperparameters."""

    epochs: int = 20
    patience: int | None = None  # epochs without validation improvement before stopping
    max_time: float | None = None  # wall-clock budget in seconds
    seed: int = 0
    min_delta: float = 0.0  # smallest improvement of the validation loss that counts
    device: str | None = None  # "cpu", "cuda", ...; None picks automatically
    threads: int | None = None  # torch intra-op threads; None keeps torch's default

    def __post_init__(self) -> None:
        from .errors import ParamError

        if not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs < 1:
            raise ParamError(f"epochs must be an int >= 1, got {self.epochs!r}; pass e.g. --epochs 20")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise ParamError(f"patience must be an int >= 1, got {self.patience!r}; pass e.g. --patience 5")
        if self.max_time is not None and not self.max_time > 0:
            raise ParamError(f"max_time must be > 0 seconds, got {self.max_time!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FitConfig:
        """Inverse of ``to_dict`` (unknown keys are ignored, so old records still load)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class EpochLog:
    """What one epoch of training measured."""

    epoch: int
    train_loss: float
    val_loss: float | None = None
    val_metric: float | None = None  # accuracy for classification, R² for regression
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EpochLog:
        """Inverse of ``to_dict``."""
        return cls(**d)


# --- registry records (store/, registry.py) -------------------------------------------

# --- tuning records (tune/, study.py) -------------------------------------------------

__all__ += ["TrialState", "Trial", "StudyInfo"]

def _iso(t: float) -> str:
    """Seconds since the epoch as ISO-8601 UTC with milliseconds, e.g. ``2025-01-31T12:00:00.123Z``."""
    import datetime as _dt

    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _from_iso(s: str | float) -> float:
    """Inverse of ``_iso`` (numbers pass through)."""
    import datetime as _dt

    if isinstance(s, (int, float)):
        return float(s)
    return _dt.datetime.fromisoformat(s).timestamp()



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
            "started_at": _iso(self.started_at) if self.started_at is not None else None,
            "finished_at": _iso(self.finished_at) if self.finished_at is not None else None,
            "heartbeat_at": _iso(self.heartbeat_at) if self.heartbeat_at is not None else None,
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
            started_at=_from_iso(d["started_at"]) if d.get("started_at") is not None else None,
            finished_at=_from_iso(d["finished_at"]) if d.get("finished_at") is not None else None,
            heartbeat_at=_from_iso(d["heartbeat_at"]) if d.get("heartbeat_at") is not None else None,
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
            "created_at": _iso(self.created_at),
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
            pruner=d["pruner"], seed=int(d["seed"]), created_at=_from_iso(d["created_at"]),
            attrs=dict(d.get("attrs") or {}), counts={k: int(v) for k, v in (d.get("counts") or {}).items() if v},
            best_value=d.get("best_value"), best_number=d.get("best_number"),
        )


# --- comparison records (compare.py, stats.py) ----------------------------------------
