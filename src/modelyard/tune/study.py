"""Study: ask/tell/optimize over a trial store; shared by processes and machines, resumable after a crash.

A study owns a search space, a direction and its trials. ``ask`` claims the next trial
atomically from the store (the optimizer sees every finished and running trial, of every
worker); ``tell`` records its end. ``optimize`` loops ask -> objective -> tell on
``n_workers`` threads until the study's trial budget, a wall-clock timeout or a target value
is reached (``running.py``; with ``trial_timeout`` each trial runs in a process that can be
ended, ``isolation.py``). While a trial runs, a background thread refreshes its heartbeat; a trial whose
heartbeat stops (its process was killed) is marked failed by the next claim of any worker,
and its slot is reused. Values are stored as the objective returns them; the optimizer and
pruners, which minimize, see them negated when the study maximizes.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import StudyError
from ..records.trials import StudyInfo, Trial, TrialState
from ..store.trialstore import INTERRUPTED_REASON, MemoryTrialStore, TrialStore, check_study_name
from .optimizers import Optimizer, TrialView, get_optimizer
from .pruners import Pruner, get_pruner
from .running import OptimizeRun
from .space import SearchSpace
from .trial import ActiveTrial, TrialPruned, as_value

__all__ = ["ActiveTrial", "Study", "TrialPruned", "open_trial_store"]

log = logging.getLogger("modelyard.tune.study")

DIRECTIONS = ("minimize", "maximize")


def open_trial_store(storage: Any) -> TrialStore:
    """A trial store from None (memory), a TrialStore, a Yard, a Database, a store folder or a database URL."""
    if storage is None:
        return MemoryTrialStore()
    if isinstance(storage, TrialStore):
        return storage
    from ..store.trials import SqlTrialStore

    if hasattr(storage, "db") and hasattr(storage, "registry"):  # a Yard
        return SqlTrialStore(storage.db)
    from ..store.db import Database

    if isinstance(storage, Database):
        return SqlTrialStore(storage)
    if isinstance(storage, (str, os.PathLike)):
        from ..store.location import open_database

        durable = os.environ.get("MODELYARD_DURABLE", "") not in ("", "0")
        return SqlTrialStore(open_database(storage, durable=durable))
    raise StudyError(
        f"storage must be None, a store folder, a database URL or a Yard, got {type(storage).__name__}; "
        "e.g. storage='sqlite:///tune.db'"
    )


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


class Study:
    """A hyperparameter search: ask/tell or optimize; in memory unless ``storage`` is given.

    ``storage``: a store folder, a database URL (``sqlite:///...``, ``postgresql+psycopg://...``),
    a ``Yard`` or a ``TrialStore``. With a name that exists in the storage, the study is resumed
    (its direction and space must match). ``optimizer``: ``"gp"``, ``"random"`` or an Optimizer;
    ``pruner``: ``"median"``, ``"asha"``, ``"none"`` or a Pruner.
    """

    def __init__(
        self,
        space: SearchSpace | Mapping[str, Any] | None = None,
        direction: str = "minimize",
        optimizer: str | Optimizer = "gp",
        pruner: str | Pruner = "median",
        seed: int = 0,
        storage: Any = None,
        name: str | None = None,
        *,
        attrs: Mapping[str, Any] | None = None,
        heartbeat_interval: float = 10.0,
        grace_period: float | None = None,
    ):
        if direction not in DIRECTIONS:
            raise StudyError(f"direction must be 'minimize' or 'maximize', got {direction!r}; pass direction='maximize'")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise StudyError(f"seed must be an int, got {seed!r}; pass e.g. seed=0")
        if not heartbeat_interval > 0:
            raise StudyError(f"heartbeat_interval must be > 0 seconds, got {heartbeat_interval!r}; e.g. 10")
        self.heartbeat_interval = float(heartbeat_interval)
        self.grace_period = float(grace_period) if grace_period is not None else 6.0 * self.heartbeat_interval
        if self.grace_period <= self.heartbeat_interval:
            raise StudyError(
                f"grace_period ({self.grace_period}s) must exceed heartbeat_interval ({self.heartbeat_interval}s), "
                "or live trials would be failed; use e.g. 6 times the interval"
            )
        self._store = open_trial_store(storage)
        self.seed = int(seed)
        self._optimizer, self._optimizer_name = self._resolve(optimizer, get_optimizer, "optimizer")
        self._pruner, self._pruner_name = self._resolve(pruner, get_pruner, "pruner")
        name = check_study_name(name) if name is not None else f"study-{os.urandom(4).hex()}"
        if space is None:
            info = self._store.get_study(name)  # resume: the space comes from the store
        else:
            if not isinstance(space, SearchSpace):
                space = SearchSpace.from_dict(space)
            info, created = self._store.create_study(StudyInfo(
                name=name, direction=direction, space=space.to_dict(), optimizer=self._optimizer_name,
                pruner=self._pruner_name, seed=self.seed, created_at=time.time(), attrs=dict(attrs or {}),
            ))
            if not created:
                self._check_same(info, space, direction)
        self.name: str = info.name
        self.direction: str = info.direction
        self.space: SearchSpace = SearchSpace.from_dict(info.space)
        self.attrs: dict[str, Any] = dict(info.attrs)
        self._sign = -1.0 if self.direction == "maximize" else 1.0
        self._stop = threading.Event()
        self._active: dict[int, ActiveTrial] = {}
        self._active_lock = threading.Lock()
        self._beat_thread: threading.Thread | None = None

    @classmethod
    def load(cls, name: str, storage: Any, **kwargs: Any) -> Study:
        """Open an existing study (space and direction from the store); NotFoundError if there is none."""
        store = open_trial_store(storage)
        info = store.get_study(check_study_name(name))
        return cls(None, direction=info.direction, storage=store, name=name, **kwargs)

    @staticmethod
    def _resolve(obj: Any, factory: Callable[[str], Any], kind: str) -> tuple[Any, str]:
        if isinstance(obj, str):
            try:
                return factory(obj), obj
            except ValueError as e:
                raise StudyError(str(e)) from None
        method = "suggest" if kind == "optimizer" else "should_prune"
        if not callable(getattr(obj, method, None)):
            raise StudyError(f"{kind} must be a name or an object with a {method}() method, got {obj!r}")
        return obj, type(obj).__name__

    def _check_same(self, info: StudyInfo, space: SearchSpace, direction: str) -> None:
        if info.direction != direction:
            raise StudyError(
                f"study {info.name!r} exists with direction {info.direction}, not {direction}; resume it with "
                f"direction={info.direction!r} (or the same --metric) or choose a new study name"
            )
        if SearchSpace.from_dict(info.space) != space:
            raise StudyError(
                f"study {info.name!r} exists with a different search space ({sorted(info.space)}); resume it with the "
                "same space (the --space file it was created with) or choose a new study name"
            )

    # --- records ---------------------------------------------------------------------------
    @property
    def info(self) -> StudyInfo:
        """The study's definition and current tallies."""
        return self._store.get_study(self.name)

    @property
    def trials(self) -> list[Trial]:
        """Every trial so far, as frozen records in number order."""
        return self._store.trials(self.name)

    @property
    def best_trial(self) -> Trial:
        """The complete trial with the best value (the earliest on ties)."""
        done = self._store.trials(self.name, [TrialState.COMPLETE])
        if not done:
            raise StudyError(f"study {self.name!r} has no complete trial yet; run optimize() or tell() a value first")
        return min(done, key=lambda t: (self._sign * t.value, t.number))  # type: ignore[operator]

    @property
    def best_value(self) -> float:
        """The best value of a complete trial."""
        return float(self.best_trial.value)  # type: ignore[arg-type]

    @property
    def best_params(self) -> dict[str, Any]:
        """The params of the best complete trial."""
        return dict(self.best_trial.params)

    def _view(self, t: Trial) -> TrialView:
        """The trial as optimizers and pruners read it: minimize direction."""
        s = self._sign
        return TrialView(
            params=t.params, value=None if t.value is None else s * t.value, state=t.state.value,
            intermediate={k: s * v for k, v in t.intermediate.items()},
        )

    # --- ask / tell ---------------------------------------------------------------------------
    def record_report(self, number: int, step: int, value: float) -> None:
        """Store an intermediate value of a running trial (``ActiveTrial.report`` calls this)."""
        self._store.report(self.name, number, step, value)

    def prune_reason(self, trial: ActiveTrial) -> str | None:
        """Why ``trial`` should stop now, or None: the study is stopping, the trial was lost, or the pruner says so."""
        if self._stop.is_set() or trial._lost:
            return "trial lost (heartbeat missed)" if trial._lost else "study stopped"
        if trial.last_step is None:
            return None
        everyone = self._store.trials(self.name)
        me = next((t for t in everyone if t.number == trial.number), None)
        if me is None:
            return None
        others = [self._view(t) for t in everyone if t.number != trial.number]
        if self._pruner.should_prune(self._view(me), others):
            return f"pruned by the {self._pruner_name} pruner at step {trial.last_step} (value {trial.last_value:.6g})"
        return None

    def ask(self, params: Mapping[str, Any] | None = None) -> ActiveTrial:
        """Start the next trial: the optimizer's suggestion, or ``params`` if given (e.g. a known good point)."""
        if params is not None:
            self.space.validate(params)
        trial = self._claim(None, fixed=params)
        assert trial is not None  # no budget, so a claim always succeeds
        return trial

    def _propose(self, history: list[Trial], fixed: Mapping[str, Any] | None) -> dict[str, Any]:
        if fixed is not None:
            return dict(fixed)
        done = [self._view(t) for t in history if t.state is not TrialState.RUNNING]
        pending = [t.params for t in history if t.state is TrialState.RUNNING]
        rng = np.random.default_rng([self.seed, len(history)])  # the trial number: same history, same point
        return dict(self._optimizer.suggest(self.space, done, pending, rng))

    def _claim(self, budget: int | None, fixed: Mapping[str, Any] | None = None) -> ActiveTrial | None:
        grace = self.grace_period if self._store.shared else None
        record = self._store.claim(
            self.name, lambda h: self._propose(h, fixed), budget=budget, grace=grace, worker=_worker_id()
        )
        if record is None:
            return None
        trial = ActiveTrial(self, record)
        with self._active_lock:
            self._active[trial.number] = trial
            self._ensure_heartbeat()
        return trial

    def tell(
        self, trial: ActiveTrial | int, value: Any = None, *, state: TrialState | str | None = None,
        error: str | None = None,
    ) -> Trial:
        """Finish a trial: ``tell(t, 0.12)`` (complete), ``tell(t, state="pruned")``, ``tell(t, state="failed", error=...)``.

        A value that is not a finite number marks the trial failed, with the reason recorded.
        """
        number = trial.number if isinstance(trial, ActiveTrial) else int(trial)
        active = self._active.get(number)
        st = TrialState(state) if state is not None else TrialState.COMPLETE
        counted, reason, final = True, error, None
        if st is TrialState.RUNNING:
            raise StudyError("tell needs a final state: complete, pruned or failed, not running")
        if st is TrialState.COMPLETE:
            final, err = as_value(value)
            if err is not None:
                st, reason = TrialState.FAILED, err
        elif st is TrialState.PRUNED:
            final = value if value is not None else (active.last_value if active else None)
            if reason is None:
                reason = active.prune_reason if active and active.prune_reason else "pruned"
        elif reason is None:
            reason = "failed (no reason given)"
        if st is TrialState.FAILED and reason == INTERRUPTED_REASON:
            counted = False
        try:
            return self._store.finish(self.name, number, st, final, reason, counted=counted)
        finally:
            with self._active_lock:
                self._active.pop(number, None)

    # --- heartbeats ---------------------------------------------------------------------------
    def _ensure_heartbeat(self) -> None:
        """Start the heartbeat thread if a shared store has running trials of ours (call with the lock held)."""
        if not self._store.shared or (self._beat_thread is not None and self._beat_thread.is_alive()):
            return
        self._beat_thread = threading.Thread(target=self._beat, name=f"heartbeat-{self.name}", daemon=True)
        self._beat_thread.start()

    def _beat(self) -> None:
        while True:
            time.sleep(self.heartbeat_interval)
            with self._active_lock:
                numbers = list(self._active)
                if not numbers:
                    self._beat_thread = None
                    return
            try:
                alive = self._store.heartbeat(self.name, numbers)
            except Exception as e:  # noqa: BLE001  (a transient database error must not kill the beat)
                log.warning("heartbeat of study %r failed (%s); retrying in %.0fs", self.name, e, self.heartbeat_interval)
                continue
            with self._active_lock:
                for n in numbers:
                    if n not in alive and n in self._active:
                        self._active[n]._lost = True

    # --- optimize -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask ``optimize`` to start no new trial (running ones see ``should_prune() == True``)."""
        self._stop.set()

    def optimize(
        self,
        fn: Callable[[ActiveTrial], Any],
        n_trials: int | None = None,
        n_workers: int = 1,
        timeout: float | None = None,
        target: float | None = None,
        catch: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        callbacks: Sequence[Callable[[Study, Trial], Any]] = (),
        trial_timeout: float | None = None,
    ) -> None:
        """Run trials until the study holds ``n_trials`` trials, ``timeout`` seconds pass or ``target`` is reached.

        ``fn`` gets the running trial, which reads like the params dict (``fn(params)``
        works) and offers ``report``/``should_prune``; it returns the value. ``n_trials`` is
        the study's total budget: trials already in it (from earlier runs, other processes or
        machines) count, so a resumed study runs only the remainder. Exceptions in ``catch``
        (and NaN or non-numeric returns) mark the trial failed and the study goes on; others
        stop it. Ctrl-C stops it and leaves it resumable.

        ``timeout`` bounds the whole call: at the deadline no trial starts and running ones see
        ``should_prune() == True``; 2 s later (``running.STOP_GRACE_S``) those still running are
        stopped and failed, and the call returns. ``trial_timeout`` limits each trial: it runs
        in a process of its own (forked; spawned where fork is missing, so ``fn`` must pickle
        there), which is ended when it outlives the limit, and the trial is failed with the
        reason; every exception it raises fails just that trial. Without it, a trial runs on a
        thread, which nothing can end (see ``tune/running.py``).
        """
        for label, v, low in (("n_trials", n_trials, 1), ("n_workers", n_workers, 1)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low):
                raise StudyError(f"{label} must be an int >= {low}, got {v!r}; e.g. {label}=20")
        for label, v in (("timeout", timeout), ("trial_timeout", trial_timeout)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.number))
                                  or not math.isfinite(v) or not v > 0):
                raise StudyError(f"{label} must be a finite number of seconds > 0 (or None: no limit), got {v!r}; "
                                 f"e.g. {label}=600")
        if not callable(fn):
            raise StudyError(f"the objective must be callable, got {type(fn).__name__}; pass fn(params) -> float")
        self._stop.clear()
        run = OptimizeRun(self, fn, n_trials, timeout, target, catch if isinstance(catch, tuple) else (catch,),
                          callbacks, trial_timeout)
        run.run(n_workers)

    def _abandon_active(self) -> None:
        """Give back the slots of this process's running trials (Ctrl-C): failed, uncounted, so a resume reruns them."""
        with self._active_lock:
            numbers = set(self._active)
        # a Ctrl-C that lands between a claim's commit and its registration above leaves a trial that only the
        # store knows about: find it by this process's worker id
        me = _worker_id().rsplit(":", 1)[0]  # host:pid, any thread of this process
        try:
            numbers |= {t.number for t in self._store.trials(self.name, [TrialState.RUNNING])
                        if (t.worker or "").rsplit(":", 1)[0] == me}
        except Exception as e:  # noqa: BLE001  (best effort while stopping; the heartbeat check is the backstop)
            log.debug("could not list running trials while stopping: %s", e)
        for n in numbers:
            try:
                self.tell(n, state=TrialState.FAILED, error=INTERRUPTED_REASON)
            except StudyError:
                pass
