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

# --- comparison records (compare.py, stats.py) ----------------------------------------
