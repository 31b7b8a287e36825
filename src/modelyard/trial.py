"""The running trial an objective gets: its params (a read-only mapping), ``report`` and ``should_prune``.

``ActiveTrial`` belongs to a ``Study`` (``study.py``) and writes through its trial store;
``TrialPruned`` is what an objective raises to end its trial early.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import StudyError
from .records import Trial

if TYPE_CHECKING:
    from .study import Study

__all__ = ["ActiveTrial", "TrialPruned", "as_value"]


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

    def __init__(self, study: Study, record: Trial):
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
    def study(self) -> Study:
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
            self._study._store.report(self._study.name, self.number, int(step), float(value))

    def should_prune(self) -> bool:
        """Whether to stop now: the pruner judged the reported values worse than peers, or the study is stopping."""
        if self._study._stop.is_set() or self._lost:
            self.prune_reason = self.prune_reason or ("trial lost (heartbeat missed)" if self._lost else "study stopped")
            return True
        if self.last_step is None:
            return False
        study = self._study
        everyone = study._store.trials(study.name)
        me = next((t for t in everyone if t.number == self.number), None)
        if me is None:
            return False
        others = [study._view(t) for t in everyone if t.number != self.number]
        if study._pruner.should_prune(study._view(me), others):
            self.prune_reason = (
                f"pruned by the {study._pruner_name} pruner at step {self.last_step} (value {self.last_value:.6g})"
            )
            return True
        return False
