"""One boosting run's per-round bookkeeping: the EpochLog of each round (or block of rounds), the time budget,
and the caller's callbacks (progress bars, pruners, a launcher's stop requests), agreed on by every rank.

XGBoost evaluates ``train`` and ``validation`` after every round (the train metric is read from the
prediction cache, so it costs one pass over the margins). A log is made every ``every`` rounds and
after the last one: ``train_loss`` and ``val_loss`` are the loss metric (logloss, mlogloss or rmse),
``val_metric`` is the validation accuracy (1 - error) or R² (1 - rmse² / var(y_val)).
In a distributed run XGBoost reduces the metrics over all ranks, and a stop request of any rank
is reduced with ``max`` so that every rank stops after the same round.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ...records.training import EpochLog

__all__ = ["RoundLogger"]


def _make_base() -> type:
    import xgboost

    return xgboost.callback.TrainingCallback


class RoundLogger:
    """Builds the XGBoost callback; after training, says how many rounds ran and why they stopped."""

    def __init__(
        self,
        *,
        loss: str,
        accuracy: str | None,
        y_var: float | None,
        every: int,
        max_time: float | None,
        callbacks: Sequence[Callable[[EpochLog], bool | None]],
        on_round: Sequence[Callable[[Any], None]] = (),
        working: Callable[[], Any] | None = None,
    ):
        self.loss = loss
        self.accuracy = accuracy
        self.y_var = y_var
        self.every = max(1, int(every))
        self.max_time = max_time
        self.callbacks = list(callbacks)
        self.on_round = list(on_round)  # called after every round with the booster being trained
        self.working = working  # marks this rank's own Python work inside the library's run (a rank's watchdog)
        self.history: list[EpochLog] = []
        self.rounds = 0
        self.stopped_by: str | None = None
        self._start = time.perf_counter()
        self._last = self._start
        self._first: int | None = None

    def callback(self, total: int) -> Any:
        """The ``xgboost.callback.TrainingCallback`` for ``xgboost.train`` of ``total`` rounds."""
        base = _make_base()
        outer = self

        class _Callback(base):  # type: ignore[misc, valid-type]
            def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
                return outer._after(model, epoch, evals_log, total)

        return _Callback()

    def _value(self, evals_log: dict[str, Any], data: str, metric: str | None) -> float | None:
        if metric is None:
            return None
        values = evals_log.get(data, {}).get(metric)
        return float(values[-1]) if values else None

    def _after(self, model: Any, epoch: int, evals_log: dict[str, Any], total: int) -> bool:
        if self.working is not None:
            with self.working():
                stop = self._local(model, epoch, evals_log, total)
        else:
            stop = self._local(model, epoch, evals_log, total)
        agreed = _agree(stop)
        if agreed and self.stopped_by is None:
            self.stopped_by = "callback"  # another rank's request
        return agreed

    def _local(self, model: Any, epoch: int, evals_log: dict[str, Any], total: int) -> bool:
        """This rank's part of a round's end: log, callbacks, time budget; whether it asks to stop."""
        if self._first is None:
            self._first = epoch
        self.rounds = epoch - self._first + 1
        for fn in self.on_round:
            fn(model)
        stop = False
        last = self.rounds >= total
        if self.rounds % self.every == 0 or last:
            now = time.perf_counter()
            val_loss = self._value(evals_log, "validation", self.loss)
            val_metric = None
            if self.accuracy is not None:
                err = self._value(evals_log, "validation", self.accuracy)
                val_metric = None if err is None else 1.0 - err
            elif val_loss is not None and self.y_var:
                val_metric = 1.0 - val_loss**2 / self.y_var
            train_loss = self._value(evals_log, "train", self.loss)
            log = EpochLog(self.rounds, float("nan") if train_loss is None else train_loss, val_loss, val_metric,
                           now - self._last, {"trees": float(epoch + 1)})
            self._last = now
            self.history.append(log)
            for cb in self.callbacks:
                if cb(log):
                    stop, self.stopped_by = True, "callback"
        if self.max_time is not None and time.perf_counter() - self._start > self.max_time and not last:
            stop, self.stopped_by = True, self.stopped_by or "max_time"
        return stop


def _agree(stop: bool) -> bool:
    """``stop`` of any rank, on every rank (the value itself in one process)."""
    from xgboost import collective

    if not collective.is_distributed():
        return stop
    import numpy as np

    return bool(collective.allreduce(np.array([1.0 if stop else 0.0]), collective.Op.MAX)[0] > 0)
