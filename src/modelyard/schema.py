"""The records every layer shares: the task, the feature columns and the dataset schema.

Records are plain data: frozen, holding no connections, each with ``to_dict``/``from_dict``
giving JSON-safe values, so the CLI's ``--json``, the REST API and the store speak the same shapes.
Each part's own records live in ``modelyard.records`` (one module per domain).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = ["Column", "Schema", "Task"]


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
