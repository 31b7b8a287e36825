"""TrainResult: everything one training run produced, with what a registry needs to version it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..models.predictor import Predictor
from ..records.training import EpochLog, FitConfig
from ..schema import Schema

__all__ = ["TrainResult"]


@dataclass(frozen=True, eq=False)
class TrainResult:
    """A fitted model, its held-out metrics, history, and the provenance needed to version it."""

    model: Predictor
    family: str
    params: dict[str, Any]
    config: FitConfig
    metrics: dict[str, Any]
    history: list[EpochLog]
    schema: Schema
    fingerprint: str
    seed: int
    library_versions: dict[str, str]
    split: dict[str, Any]  # rows in train / validation / test, and how they were drawn (data.split.split_record)
    source: str = "<memory>"
    best_epoch: int | None = None
    stop_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what a person should know: rows dropped, options not applied

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (the shape of ``modelyard train --json``)."""
        return {
            "model": self.family,
            "params": self.params,
            "config": self.config.to_dict(),
            "metrics": self.metrics,
            "history": [h.to_dict() for h in self.history],
            "schema": self.schema.to_dict(),
            "fingerprint": self.fingerprint,
            "seed": self.seed,
            "library_versions": self.library_versions,
            "split": self.split,
            "source": self.source,
            "best_epoch": self.best_epoch,
            "stop_reason": self.stop_reason,
            **({"extra": self.extra} if self.extra else {}),
            **({"notes": list(self.notes)} if self.notes else {}),
        }
