"""One ``Study.optimize`` call: the loop every worker runs, its stop conditions, and the time limits it keeps.

Without time limits, the calling thread runs trials itself beside ``n_workers - 1`` threads (an
objective that needs the main thread keeps it). With ``timeout`` or ``trial_timeout``, every
trial runs off the calling thread, which keeps the clock:

- ``trial_timeout``: each trial runs in a process of its own (``isolation.py``), ended when it
  outlives the limit, and recorded failed with the reason; the study goes on.
- ``timeout`` bounds the whole call: from the deadline no trial starts and running ones see
  ``should_prune() == True``; ``STOP_GRACE_S`` later, those still running are stopped and failed
  ("the study's timeout expired while it ran"), and ``optimize`` returns. A trial in a process
  is ended; a trial on a thread cannot be, so its thread is left behind (a daemon whose result
  is discarded) -- pass ``trial_timeout`` too to have hung objectives ended.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import StudyError
from ..records.trials import TrialState
from ..store.trialstore import INTERRUPTED_REASON
from .isolation import run_isolated
from .trial import ActiveTrial, TrialPruned, as_value

if TYPE_CHECKING:
    from .study import Study

__all__ = ["STOP_GRACE_S", "OptimizeRun"]

log = logging.getLogger("modelyard.tune.study")

STOP_GRACE_S = 2.0  # after the study's timeout: how long running trials get to notice should_prune() and finish
_REAP_S = 10.0  # how long the caller waits for worker threads ending their trials' processes
_THREAD_STOPPED = ("stopped: the study's timeout expired while it ran (a trial on a thread cannot be ended; "
                   "pass trial_timeout to run trials in processes that can be)")


class OptimizeRun:
    """The stop conditions of one ``optimize`` call and the loop every worker runs."""

    def __init__(self, study: Study, fn: Callable, n_trials: int | None, timeout: float | None,
                 target: float | None, catch: tuple[type[BaseException], ...], callbacks: Sequence[Callable],
                 trial_timeout: float | None):
        self.study, self.fn, self.n_trials, self.target, self.catch, self.callbacks = (
            study, fn, n_trials, target, catch, callbacks)
        self.deadline = time.monotonic() + timeout if timeout is not None else None
        self.trial_timeout = trial_timeout
        self.interrupted = False
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._running: dict[int, ActiveTrial] = {}  # trials this call runs now
        self._children: set[Any] = set()  # their processes, with trial_timeout

    # --- the call ----------------------------------------------------------------------------------
    def run(self, n_workers: int) -> None:
        """Run the workers until a stop condition holds; re-raises what stopped the study."""
        s = self.study
        supervised = self.deadline is not None or self.trial_timeout is not None
        threads = [threading.Thread(target=self.loop, name=f"{s.name}-worker-{i}", daemon=True)
                   for i in range(0 if supervised else 1, n_workers)]
        for t in threads:
            t.start()
        try:
            if not supervised:
                self.loop()
            self._wait(threads)
        except BaseException:
            self.interrupted = True
            s._stop.set()
            self._end_children()
            s._abandon_active()
            raise
        if self.error is not None:
            raise self.error

    def _wait(self, threads: list[threading.Thread]) -> None:
        """Join the workers; past the deadline and its grace, stop what still runs instead of waiting for it."""
        while any(t.is_alive() for t in threads):
            now = time.monotonic()
            if self.deadline is not None and now >= self.deadline:
                self.study._stop.set()  # running trials now see should_prune() == True ("study stopped")
            if self.deadline is not None and now >= self.deadline + STOP_GRACE_S:
                if self.trial_timeout is None:
                    self._fail_running(_THREAD_STOPPED)
                    return  # threads still inside the objective are left behind (daemons; results discarded)
                end = time.monotonic() + _REAP_S  # each worker ends its trial's process and records it
                for t in threads:
                    t.join(max(0.0, end - time.monotonic()))
                return
            for t in threads:
                t.join(0.05)

    def _fail_running(self, reason: str) -> None:
        with self._lock:
            running = list(self._running.values())
        for trial in running:
            trial._lost = True  # its late reports and result are dropped
            try:
                self.study.tell(trial, state=TrialState.FAILED, error=reason)
            except StudyError:
                pass  # finished meanwhile

    def _end_children(self) -> None:
        with self._lock:
            children = list(self._children)
        for proc in children:
            if proc.is_alive():
                proc.terminate()

    # --- one worker ---------------------------------------------------------------------------------
    def _reached_target(self) -> bool:
        if self.target is None:
            return False
        best = self.study.info.best_value
        return best is not None and self.study._sign * best <= self.study._sign * self.target

    def _should_stop(self) -> bool:
        s = self.study
        return (s._stop.is_set() or (self.deadline is not None and time.monotonic() >= self.deadline)
                or self._reached_target())

    def loop(self) -> None:
        """Claim and run trials until a stop condition holds."""
        s = self.study
        poll = min(1.0, s.grace_period / 4)
        try:
            while not self._should_stop():
                trial = s._claim(self.n_trials)
                if trial is None:
                    # budget full; in a shared study a running trial may still die and give its slot back
                    if s._store.shared and s.info.counts.get(TrialState.RUNNING.value, 0) > 0:
                        s._stop.wait(poll)
                        continue
                    return
                with self._lock:
                    self._running[trial.number] = trial
                try:
                    self._run_isolated(trial) if self.trial_timeout is not None else self._run_one(trial)
                finally:
                    with self._lock:
                        self._running.pop(trial.number, None)
        except BaseException as e:
            if threading.current_thread() is threading.main_thread():
                raise
            self.error = e
            s._stop.set()

    def _run_one(self, trial: ActiveTrial) -> None:
        s = self.study
        try:
            raw = self.fn(trial)
        except TrialPruned as e:
            if self.interrupted:
                self._finish(trial, TrialState.FAILED, None, INTERRUPTED_REASON)
            else:
                reason = trial.prune_reason or (str(e) or f"pruned by the objective at step {trial.last_step}")
                self._finish(trial, TrialState.PRUNED, trial.last_value, reason)
            return
        except self.catch as e:
            reason = f"{type(e).__name__}: {e}"
            log.warning("trial %d of study %r failed: %s", trial.number, s.name, reason)
            self._finish(trial, TrialState.FAILED, None, reason)
            return
        except BaseException as e:
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                self._finish(trial, TrialState.FAILED, None, INTERRUPTED_REASON)
            else:
                self._finish(trial, TrialState.FAILED, None, f"{type(e).__name__}: {e}")
            raise
        value, err = as_value(raw)
        if err is not None:
            log.warning("trial %d of study %r failed: %s", trial.number, s.name, err)
            self._finish(trial, TrialState.FAILED, None, err)
        else:
            self._finish(trial, TrialState.COMPLETE, value, None)

    def _run_isolated(self, trial: ActiveTrial) -> None:
        """The trial in a process of its own, ended at its time limit or the study's deadline."""
        out = run_isolated(self.fn, trial, limit=self.trial_timeout, deadline=self.deadline, grace=STOP_GRACE_S,
                           register=self._add_child, unregister=self._drop_child)
        if self.interrupted or out.kind == "interrupted":
            self._finish(trial, TrialState.FAILED, None, INTERRUPTED_REASON)
        elif out.kind == "value":
            self._finish(trial, TrialState.COMPLETE, out.value, None)
        elif out.kind == "pruned":
            self._finish(trial, TrialState.PRUNED, trial.last_value, out.reason)
        else:  # error, timeout, stopped
            log.warning("trial %d of study %r failed: %s", trial.number, self.study.name, out.reason)
            self._finish(trial, TrialState.FAILED, None, out.reason)

    def _add_child(self, proc: Any) -> None:
        with self._lock:
            self._children.add(proc)
        if self.interrupted:  # Ctrl-C came while it started
            proc.terminate()

    def _drop_child(self, proc: Any) -> None:
        with self._lock:
            self._children.discard(proc)

    def _finish(self, trial: ActiveTrial, state: TrialState, value: float | None, reason: str | None) -> None:
        s = self.study
        try:
            record = s.tell(trial, value, state=state, error=reason) if state is not TrialState.COMPLETE \
                else s.tell(trial, value)
        except StudyError as e:  # failed meanwhile (a missed heartbeat, the study's timeout): its result is dropped
            log.warning("result of trial %d of study %r discarded: %s", trial.number, s.name, e)
            return
        for cb in self.callbacks:
            cb(s, record)
