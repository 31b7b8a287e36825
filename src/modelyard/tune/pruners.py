"""Pruners: stop unpromising trials early from their intermediate values (minimize direction).

``should_prune(trial, history)`` reads ``trial.intermediate`` (dict step -> value, lower is
better) and the other trials' records (``.state``, ``.intermediate``, as in optimizers.py);
it holds no state, so any worker can ask about any trial.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ParamError

__all__ = ["PRUNERS", "ASHAPruner", "MedianPruner", "NopPruner", "Pruner", "get_pruner"]


@runtime_checkable
class Pruner(Protocol):
    """Decides whether a running trial should stop now."""

    def should_prune(self, trial: Any, history: Sequence[Any]) -> bool: ...


def _state(trial: Any) -> str:
    s = getattr(trial, "state", "complete")
    return str(getattr(s, "value", s)).lower()


def _steps(trial: Any) -> dict[int, float]:
    return {int(k): float(v) for k, v in (getattr(trial, "intermediate", None) or {}).items()}


def _check_minimums(settings: dict[str, tuple[int, int]]) -> None:
    """Raise ValueError unless every setting (name -> (value, minimum)) is at least its minimum."""
    if any(value < low for value, low in settings.values()):
        need = ", ".join(f"{name} >= {low}" for name, (_, low) in settings.items())
        got = ", ".join(str(value) for value, _ in settings.values())
        raise ParamError(f"need {need}, got {got}; fix the offending one.")


class NopPruner:
    """Never prunes."""

    def should_prune(self, trial: Any, history: Sequence[Any]) -> bool:
        """Always ``False``."""
        return False


class MedianPruner:
    """Prune when the trial's best value so far is worse than the median of completed trials
    at the same step."""

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0, interval_steps: int = 1) -> None:
        _check_minimums(
            {"n_startup_trials": (n_startup_trials, 0), "n_warmup_steps": (n_warmup_steps, 0),
             "interval_steps": (interval_steps, 1)}
        )
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps
        self.interval_steps = interval_steps

    def should_prune(self, trial: Any, history: Sequence[Any]) -> bool:
        """Whether to stop ``trial`` after its latest reported step."""
        cur = _steps(trial)
        if not cur:
            return False
        step = max(cur)
        if step < self.n_warmup_steps or (step - self.n_warmup_steps) % self.interval_steps:
            return False
        best = min(v for s, v in cur.items() if s <= step)
        if math.isnan(best):
            return True
        done = [t for t in history if _state(t) == "complete" and t is not trial]
        if len(done) < self.n_startup_trials:
            return False
        others = [_steps(t).get(step) for t in done]
        others = [v for v in others if v is not None and not math.isnan(v)]
        if not others:
            return False
        return best > float(np.median(others))


class ASHAPruner:
    """Asynchronous successive halving: at rungs ``min_resource * eta**(k + s)`` keep only the
    top ``1/eta`` of the values every trial recorded there (``s`` = min_early_stopping_rate)."""

    def __init__(
        self, min_resource: int = 1, reduction_factor: int = 3, min_early_stopping_rate: int = 0
    ) -> None:
        _check_minimums(
            {"min_resource": (min_resource, 1), "reduction_factor": (reduction_factor, 2),
             "min_early_stopping_rate": (min_early_stopping_rate, 0)}
        )
        self.min_resource = min_resource
        self.reduction_factor = reduction_factor
        self.min_early_stopping_rate = min_early_stopping_rate

    def rungs(self, max_step: int) -> list[int]:
        """Rung steps up to ``max_step``."""
        out, k = [], 0
        while True:
            r = self.min_resource * self.reduction_factor ** (k + self.min_early_stopping_rate)
            if r > max_step:
                return out
            out.append(r)
            k += 1

    @staticmethod
    def _at(steps: dict[int, float], rung: int) -> tuple[int, float] | None:
        """(step, value) of the first report at or after ``rung``."""
        after = [s for s in steps if s >= rung]
        if not after:
            return None
        s = min(after)
        return s, steps[s]

    def should_prune(self, trial: Any, history: Sequence[Any]) -> bool:
        """Whether ``trial`` just reached a rung without being in the top ``1/eta`` there."""
        cur = _steps(trial)
        if not cur:
            return False
        last = max(cur)
        rungs = [r for r in self.rungs(last) if self._at(cur, r)[0] == last]
        if not rungs:
            return False  # between rungs: ASHA decides only when a rung is reached
        rung = rungs[-1]
        mine = cur[last]
        if math.isnan(mine):
            return True
        values = [mine]
        for t in history:
            if t is trial:
                continue
            hit = self._at(_steps(t), rung)
            if hit is not None and not math.isnan(hit[1]):
                values.append(hit[1])
        k = max(1, len(values) // self.reduction_factor)
        cutoff = sorted(values)[k - 1]
        return mine > cutoff


PRUNERS: dict[str, type] = {"median": MedianPruner, "asha": ASHAPruner, "none": NopPruner}
"""Every pruner by the name a Study or the CLI accepts (``"nop"`` also names NopPruner)."""


def get_pruner(name: str, **kwargs: Any) -> Pruner:
    """Pruner by name: ``"median"``, ``"asha"`` or ``"none"``."""
    cls = PRUNERS.get("none" if name == "nop" else name)
    if cls is None:
        raise ParamError(f"unknown pruner {name!r}; use one of {', '.join(map(repr, PRUNERS))}.")
    return cls(**kwargs)
