"""One trial in a process of its own, so a hung objective can be ended: what ``optimize(trial_timeout=...)`` runs.

A Python thread cannot be stopped from outside, so a trial with a time limit runs in a child
process (forked where the platform can, so the objective and its data need no pickling;
spawned elsewhere, where the objective must pickle). The child calls the objective with a
trial (an ``ActiveTrial`` over ``ParentHost``) that sends ``report`` and ``should_prune`` to the
parent over a pipe as JSON lines; the parent answers from the real trial (the store, the
pruner, the study's stop flag) and ends the child when the trial outlives its limit or the
study's deadline: SIGTERM, then SIGKILL a second later. On Linux the child also dies with the
thread that started it, so a killed worker leaves no orphan trial behind.

``run_isolated`` returns an ``Outcome``: the objective's value, a prune, an error, a timeout,
a stop at the study's deadline, or an interruption (Ctrl-C reached the child).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import StudyError
from ..records.trials import Trial, TrialState
from .trial import ActiveTrial, TrialPruned, as_value

__all__ = ["Outcome", "ParentHost", "run_isolated"]

_POLL_S = 0.1
_TERM_GRACE_S = 1.0  # after SIGTERM, before SIGKILL


@dataclass(frozen=True)
class Outcome:
    """How an isolated trial ended: ``kind`` is value, pruned, error, timeout, stopped or interrupted."""

    kind: str
    value: float | None = None
    reason: str | None = None


class ParentHost:
    """The study as a trial in the child process sees it (a ``TrialHost``): reports and questions go to the parent.

    The child's trial is an ordinary ``ActiveTrial`` over this host, so it checks and reads exactly as
    a trial in the parent's process does.
    """

    def __init__(self, name: str, conn: Any):
        self.name = name
        self._conn = conn

    def record_report(self, number: int, step: int, value: float) -> None:
        """Send the intermediate value to the parent, which stores it."""
        _send(self._conn, {"kind": "report", "step": int(step), "value": float(value)})

    def prune_reason(self, trial: ActiveTrial) -> str | None:
        """Ask the parent (the pruner, the study stopping, a lost trial)."""
        _send(self._conn, {"kind": "ask"})
        return json.loads(self._conn.recv_bytes())["reason"]


def run_isolated(fn: Callable[[Any], Any], trial: ActiveTrial, *, limit: float | None, deadline: float | None,
                 grace: float, register: Callable[[Any], None], unregister: Callable[[Any], None]) -> Outcome:
    """Run ``fn`` on ``trial`` in a child process, ending it after ``limit`` seconds or ``grace`` past ``deadline``.

    ``deadline`` is a ``time.monotonic()`` instant (the study's timeout); from then on the trial's
    ``should_prune`` says so, and after ``grace`` more seconds the child is ended. ``register`` and
    ``unregister`` let the caller end the child itself (Ctrl-C in the parent).
    """
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=_child_main, args=(fn, trial.study.name, trial.number, trial.params, child_conn, os.getpid()),
                       name=f"modelyard-trial-{trial.number}", daemon=True)
    try:
        proc.start()
    except Exception as e:  # e.g. an objective that does not pickle where processes are spawned
        raise StudyError(
            f"cannot start trial {trial.number} in a process of its own ({type(e).__name__}: {e}); with "
            "trial_timeout the objective runs in a child process: pass a module-level function or a picklable object"
        ) from e
    child_conn.close()
    register(proc)
    started = time.monotonic()
    try:
        return _supervise(proc, parent_conn, trial, started, limit, deadline, grace)
    finally:
        _end(proc)
        parent_conn.close()
        unregister(proc)


def _supervise(proc: Any, conn: Any, trial: ActiveTrial, started: float, limit: float | None,
               deadline: float | None, grace: float) -> Outcome:
    """Relay the child's reports and questions until it ends, outlives its limit, or the study's deadline passes."""
    while True:
        now = time.monotonic()
        if limit is not None and now - started >= limit:
            return Outcome("timeout", reason=f"timed out after {_seconds(limit)} (the trial time limit); its "
                                             "process was ended")
        if deadline is not None and now >= deadline + grace:
            return Outcome("stopped", reason="stopped: the study's timeout expired while it ran; its process "
                                             "was ended")
        try:
            ready = conn.poll(_POLL_S)
            message = json.loads(conn.recv_bytes()) if ready else None
        except (EOFError, OSError):  # the child ended without a word: killed, crashed, or os._exit
            proc.join(1.0)
            return Outcome("error", reason=_died(proc))
        if message is None:
            if not proc.is_alive() and not conn.poll(0):
                return Outcome("error", reason=_died(proc))
            continue
        kind = message["kind"]
        if kind == "report":
            trial.report(message["step"], message["value"])
        elif kind == "ask":
            past_deadline = deadline is not None and time.monotonic() >= deadline
            reason = "study stopped (its timeout expired)" if past_deadline else (
                trial.prune_reason if trial.should_prune() else None)
            _send(conn, {"kind": "answer", "reason": reason})
        elif kind == "value":
            return Outcome("value", value=message["value"])
        else:  # pruned, error, interrupted
            return Outcome(kind, reason=message.get("reason"))


def _child_main(fn: Callable[[Any], Any], study: str, number: int, params: Mapping[str, Any], conn: Any,
                parent: int) -> None:
    """The child process: run the objective once and send how it ended."""
    _die_with_parent(parent)
    trial = ActiveTrial(ParentHost(study, conn), Trial(study=study, number=number, state=TrialState.RUNNING,
                                                       params=dict(params)))
    try:
        raw = fn(trial)
    except TrialPruned as e:
        _send(conn, {"kind": "pruned", "reason": trial.prune_reason or str(e) or
                     f"pruned by the objective at step {trial.last_step}"})
    except KeyboardInterrupt:
        _send(conn, {"kind": "interrupted"})
    except BaseException as e:  # noqa: BLE001  (whatever the objective raised fails the trial)
        _send(conn, {"kind": "error", "reason": f"{type(e).__name__}: {e}"})
    else:
        value, err = as_value(raw)
        _send(conn, {"kind": "value", "value": value} if err is None else {"kind": "error", "reason": err})
    conn.close()


def _send(conn: Any, message: dict[str, Any]) -> None:
    try:
        conn.send_bytes(json.dumps(message).encode())
    except (OSError, ValueError):  # the other side is gone (the parent ended us, or we ended the child)
        pass


def _end(proc: Any) -> None:
    """SIGTERM, then SIGKILL if the child is still there a second later; reap it."""
    if proc.is_alive():
        proc.terminate()
        proc.join(_TERM_GRACE_S)
        if proc.is_alive():
            proc.kill()
    proc.join(5.0)


def _died(proc: Any) -> str:
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the trial's process was killed by {name} (out of memory, or killed from outside)"
    return f"the trial's process ended with exit code {code} before returning a value"


def _seconds(s: float) -> str:
    return f"{s:g} s" if s < 100 or not math.isfinite(s) else f"{s:.0f} s"


def _die_with_parent(parent: int) -> None:
    """On Linux: SIGKILL this child when the thread that started it ends (so a killed worker leaves no orphan)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - best effort
        pass
    if os.getppid() != parent:  # the parent was gone already
        os._exit(1)

