"""A hung trial cannot hold a study: per-trial time limits end the trial's process, the study's timeout bounds the call.

Objectives here hang on purpose (``time.sleep`` far past every limit). The bounds asserted on
elapsed time are generous (the machine may be loaded): what they check is that the call
returns at all, which it never did before.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import time

import pytest

from modelyard import tune
from modelyard.errors import StudyError
from modelyard.records.trials import TrialState
from modelyard.store.trialstore import INTERRUPTED_REASON

SPACE = tune.SearchSpace({"x": tune.Float(-1.0, 1.0)})
FOREVER = 3600.0


def hang_when_positive(trial):
    if trial["x"] > 0:
        time.sleep(FOREVER)
    return trial["x"] ** 2


def always_hang(trial):
    time.sleep(FOREVER)


def _by_state(study):
    out: dict[TrialState, list] = {}
    for t in study.trials:
        out.setdefault(t.state, []).append(t)
    return out


def test_a_hung_trial_is_ended_at_its_limit_and_the_study_goes_on():
    study = tune.Study(SPACE, optimizer="random", seed=3)
    t0 = time.monotonic()
    study.optimize(hang_when_positive, n_trials=6, trial_timeout=0.5)
    assert time.monotonic() - t0 < 60
    states = _by_state(study)
    hung = [t for t in study.trials if t.params["x"] > 0]
    assert hung and len(study.trials) == 6  # the budget was used: the study went on after each hung trial
    assert states[TrialState.FAILED] == hung
    assert all(t.reason == "timed out after 0.5 s (the trial time limit); its process was ended" for t in hung)
    assert all(t.state is TrialState.COMPLETE and t.value == t.params["x"] ** 2 for t in study.trials
               if t.params["x"] <= 0)
    assert mp.active_children() == []  # every trial's process is gone


def test_the_study_timeout_bounds_the_call_when_every_trial_hangs_on_threads():
    study = tune.Study(SPACE, optimizer="random")
    t0 = time.monotonic()
    study.optimize(always_hang, n_trials=10, n_workers=2, timeout=0.5)
    assert time.monotonic() - t0 < 30  # 0.5 s, then 2 s of grace; it used to never return
    (running,) = [t for t in _by_state(study).values()]
    assert len(running) == 2 and all(t.state is TrialState.FAILED for t in running)
    assert all(t.reason.startswith("stopped: the study's timeout expired while it ran") for t in running)
    assert "trial_timeout" in running[0].reason  # says how to have them ended


def test_the_study_timeout_ends_trial_processes_too():
    study = tune.Study(SPACE, optimizer="random")
    t0 = time.monotonic()
    study.optimize(always_hang, n_trials=10, n_workers=2, timeout=0.5, trial_timeout=FOREVER)
    assert time.monotonic() - t0 < 30
    trials = study.trials
    assert len(trials) == 2 and all(t.state is TrialState.FAILED for t in trials)
    assert all(t.reason == "stopped: the study's timeout expired while it ran; its process was ended" for t in trials)
    assert mp.active_children() == []


def test_a_cooperative_objective_is_pruned_at_the_study_timeout():
    def patient(trial):
        for step in range(10_000):
            trial.report(step, 1.0)
            if trial.should_prune():
                raise tune.TrialPruned()
            time.sleep(0.02)
        return 1.0

    for limit in (None, FOREVER):
        study = tune.Study(SPACE, optimizer="random", pruner="none")
        study.optimize(patient, n_trials=5, timeout=0.4, trial_timeout=limit)
        (trial,) = study.trials
        assert trial.state is TrialState.PRUNED and "study stopped" in trial.reason, (limit, trial.reason)
        assert len(trial.intermediate) >= 2  # reports from the child reached the store


def test_reports_and_pruning_cross_the_process_boundary():
    def curve(trial):
        for step in range(6):
            trial.report(step, trial["x"] + 1.0 + step * 0.0)
            if trial.should_prune():
                raise tune.TrialPruned()
        return trial["x"] + 1.0

    runs = []
    for limit in (30, None):  # in a process of its own, and on the calling thread: the same study
        study = tune.Study(SPACE, optimizer="random", pruner=tune.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
                           seed=1)
        study.optimize(curve, n_trials=12, trial_timeout=limit)
        runs.append([(t.state, t.value, t.reason, t.intermediate) for t in study.trials])
    assert runs[0] == runs[1]
    states = _by_state(study)
    assert len(states[TrialState.COMPLETE]) >= 2 and states.get(TrialState.PRUNED)
    done = states[TrialState.COMPLETE][0]
    assert sorted(done.intermediate) == list(range(6)) and done.value == pytest.approx(done.params["x"] + 1.0)
    assert all(t.reason.startswith("pruned by the MedianPruner pruner at step") for t in states[TrialState.PRUNED])


def test_what_the_objective_does_wrong_in_its_process_fails_just_that_trial():
    def wrong(trial):
        n = trial.number
        if n == 0:
            raise ValueError("bad batch")
        if n == 1:
            return math.nan
        if n == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # the trial's process dies (out of memory looks like this)
        if n == 3:
            os._exit(3)
        return 0.5

    study = tune.Study(SPACE, optimizer="random")
    study.optimize(wrong, n_trials=5, trial_timeout=30)
    reasons = [t.reason for t in study.trials]
    assert reasons[0] == "ValueError: bad batch"
    assert "returned nan" in reasons[1]
    assert "killed by SIGKILL" in reasons[2]
    assert "ended with exit code 3" in reasons[3]
    assert study.trials[4].state is TrialState.COMPLETE and study.best_value == 0.5


def test_a_closure_runs_in_the_trial_process_without_pickling():
    offset = 0.25
    data = [1.0, 2.0, 3.0]  # captured by the closure, as a dataset would be

    study = tune.Study(SPACE, optimizer="random")
    study.optimize(lambda t: (t["x"] - offset) ** 2 + sum(data), n_trials=3, trial_timeout=30)
    assert all(t.state is TrialState.COMPLETE for t in study.trials)


def hang_when_odd(trial):
    if trial.number % 2:
        time.sleep(FOREVER)
    return float(trial.number)


def test_a_shared_study_keeps_a_hung_trial_alive_by_heartbeat_until_its_limit(tmp_path):
    # the limit (2 s) outlasts the grace after a missed heartbeat (6 x 0.2 s): the parent beats for its child
    study = tune.Study(SPACE, optimizer="random", storage=str(tmp_path / "store"), name="s", heartbeat_interval=0.2)
    study.optimize(hang_when_odd, n_trials=4, trial_timeout=2.0)
    again = tune.Study.load("s", str(tmp_path / "store"))
    assert [t.state for t in again.trials] == [TrialState.COMPLETE, TrialState.FAILED] * 2
    assert all(t.reason.startswith("timed out after 2 s") for t in again.trials[1::2])  # not reaped as lost
    assert again.info.counts.get("running", 0) == 0


@pytest.mark.parametrize("kwargs, needle", [
    ({"trial_timeout": math.nan}, "trial_timeout must be a finite number of seconds > 0"),
    ({"trial_timeout": math.inf}, "trial_timeout must be a finite number of seconds > 0"),
    ({"trial_timeout": 0}, "trial_timeout must be a finite number of seconds > 0"),
    ({"timeout": math.nan}, "timeout must be a finite number of seconds > 0"),
    ({"timeout": math.inf}, "timeout must be a finite number of seconds > 0"),
    ({"timeout": -1}, "timeout must be a finite number of seconds > 0"),
])
def test_time_limits_must_be_finite_and_positive(kwargs, needle):
    study = tune.Study(SPACE)
    with pytest.raises(StudyError, match=needle):
        study.optimize(lambda t: 0.0, n_trials=1, **kwargs)
    assert study.trials == []


def test_ctrl_c_ends_the_trial_processes_and_gives_their_slots_back(tmp_path):
    import threading

    study = tune.Study(SPACE, optimizer="random", storage=str(tmp_path / "store"), name="s")
    threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        study.optimize(always_hang, n_trials=4, n_workers=2, trial_timeout=FOREVER)
    deadline = time.monotonic() + 10
    while mp.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mp.active_children() == []
    trials = tune.Study.load("s", str(tmp_path / "store")).trials
    assert trials and all(t.state is TrialState.FAILED and t.reason == INTERRUPTED_REASON for t in trials)
