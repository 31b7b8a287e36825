"""The running trial an objective gets: its params (a read-only mapping), ``report`` and ``should_prune``.

``ActiveTrial`` talks to its owner through ``TrialHost``, two methods that ``Study``
(``tune/study.py``) implements; this module imports nothing of the study, so the study owns the
trial and not the other way round. ``TrialPruned`` is what an objective raises to end its trial early.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import numpy as np

from ..errors import StudyError
from ..records.trials import Trial

__all__ = ["ActiveTrial", "TrialHost", "TrialPruned", "as_value"]


class TrialHost(Protocol):
    """What a running trial needs from the study that owns it."""

    name: str

    def record_report(self, number: int, step: int, value: float) -> None:
        """Store the intermediate ``value`` of trial ``number`` after ``step``."""

    def prune_reason(self, trial: ActiveTrial) -> str | None:
        """Why ``trial`` should stop now (study stopping, trial lost, pruner verdict), or None to go on."""


class TrialPruned(Exception):
    """Raised by an objective to stop its trial early (after ``trial.should_prune()`` said so)."""


def as_value(raw: Any) -> tuple[float | None, str | None]:
    """The objective's return as a finite float, or an error message saying what was wrong."""
    if isinstance(raw, (bool, np.bool_)) or raw is None:
        return None, f"the objective returned {raw!r}; return a float (raise to mark the trial failed)"
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None, f"the objective returned {type(raw).__name__} {str(raw)[:60]!r}; return a float"
    if not math.isfinite(value):
        return None, f"the objective returned {value}; return a finite float (raise to mark the trial failed)"
    return value, None


class ActiveTrial(Mapping[str, Any]):
    """A running trial: its params (also readable as ``trial["lr"]``), ``report`` and ``should_prune``."""

    def __init__(self, study: TrialHost, record: Trial):
        self._study = study
        self.number: int = record.number
        self.params: dict[str, Any] = dict(record.params)
        self.prune_reason: str | None = None
        self.last_step: int | None = None
        self.last_value: float | None = None
        self._lost = False  # another worker failed this trial (missed heartbeat); its result will be discarded

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __repr__(self) -> str:
        return f"ActiveTrial(study={self._study.name!r}, number={self.number}, params={self.params!r})"

    @property
    def study(self) -> TrialHost:
        """The study this trial belongs to."""
        return self._study

    def report(self, step: int, value: float) -> None:
        """Record the intermediate value (e.g. validation metric) after ``step`` (e.g. epoch) for pruning."""
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise StudyError(f"report step must be an int >= 0, got {step!r}; pass the epoch number, e.g. 3")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise StudyError(f"report value must be a number, got {value!r}; pass the validation metric as a float")
        self.last_step, self.last_value = int(step), float(value)
        if not self._lost:
            self._study.record_report(self.number, int(step), float(value))

    def should_prune(self) -> bool:
        """Whether to stop now: the pruner judged the reported values worse than peers, or the study is stopping."""
        reason = self._study.prune_reason(self)
        if reason is None:
            return False
        self.prune_reason = self.prune_reason or reason
        return True
