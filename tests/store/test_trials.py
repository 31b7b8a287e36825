"""Trial stores: one contract over memory, SQLite and PostgreSQL; atomic claims shared by several processes."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.errors import NotFoundError, StudyError
from modelyard.records.trials import StudyInfo, TrialState
from modelyard.store.trialstore import HEARTBEAT_REASON, MemoryTrialStore, TrialStore

SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0, "log": False}}


def _info(name: str = "s", direction: str = "minimize") -> StudyInfo:
    return StudyInfo(name=name, direction=direction, space=SPACE, optimizer="random", pruner="none", seed=0,
                     created_at=time.time(), attrs={"metric": "rmse"})


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request, tmp_path) -> TrialStore:
    if request.param == "memory":
        return MemoryTrialStore()
    from modelyard.store.db import Database
    from modelyard.store.trials import SqlTrialStore

    url = f"sqlite:///{tmp_path / 's.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    return SqlTrialStore(Database(url))


def _params(x: float):
    return lambda history: {"x": x}


def test_create_is_idempotent_and_lists_tallies(store):
    info, created = store.create_study(_info("a", "maximize"))
    assert created and info.name == "a" and info.n_trials == 0 and info.attrs == {"metric": "rmse"}
    again, created = store.create_study(_info("a", "minimize"))
    assert not created and again.direction == "maximize"
    store.create_study(_info("b"))
    for v in (0.2, 0.7, 0.5):
        t = store.claim("a", _params(v), budget=None, grace=None, worker="w")
        store.finish("a", t.number, TrialState.COMPLETE, v, None)
    t = store.claim("a", _params(0.9), budget=None, grace=None, worker="w")
    store.finish("a", t.number, TrialState.FAILED, None, "ValueError: x")
    listed = {i.name: i for i in store.list_studies()}
    assert [i.name for i in store.list_studies()] == ["a", "b"]
    assert listed["a"].counts == {"complete": 3, "failed": 1}
    assert listed["a"].best_value == 0.7 and listed["a"].best_number == 1  # maximize
    assert listed["b"].n_trials == 0 and listed["b"].best_value is None
    with pytest.raises(NotFoundError, match="no study named 'zz'"):
        store.get_study("zz")
    with pytest.raises(StudyError, match="study name"):
        store.create_study(_info("bad name"))


def test_claim_numbers_params_history_and_budget(store):
    store.create_study(_info())
    seen = []

    def propose(history):
        seen.append([(t.number, t.state) for t in history])
        return {"x": len(history) / 10}

    a = store.claim("s", propose, budget=2, grace=None, worker="w1")
    b = store.claim("s", propose, budget=2, grace=None, worker="w2")
    assert (a.number, b.number) == (0, 1) and b.params == {"x": 0.1}
    assert seen[1] == [(0, TrialState.RUNNING)]  # the proposal saw the running trial
    assert store.claim("s", propose, budget=2, grace=None, worker="w3") is None
    assert store.counted("s") == 2
    store.finish("s", 0, TrialState.COMPLETE, 1.0, None)
    assert store.claim("s", propose, budget=2, grace=None, worker="w3") is None  # complete still counts
    assert store.claim("s", propose, budget=3, grace=None, worker="w3").number == 2


def test_report_finish_and_records(store):
    store.create_study(_info())
    t = store.claim("s", _params(0.3), budget=None, grace=None, worker="host:1")
    store.report("s", t.number, 1, 0.9)
    store.report("s", t.number, 2, float("nan"))
    store.report("s", t.number, 1, 0.8)  # a repeated step overwrites
    running = store.trial("s", t.number)
    assert running.state is TrialState.RUNNING and running.worker == "host:1"
    assert running.intermediate[1] == 0.8 and math.isnan(running.intermediate[2])
    done = store.finish("s", t.number, TrialState.PRUNED, 0.8, "pruned by the median pruner at step 2")
    assert done.state is TrialState.PRUNED and done.reason.startswith("pruned by")
    assert done.finished_at >= done.started_at and done.duration >= 0
    with pytest.raises(StudyError, match="already pruned"):
        store.finish("s", t.number, TrialState.COMPLETE, 0.1, None)
    with pytest.raises(StudyError, match="already pruned"):
        store.report("s", t.number, 3, 0.1)
    with pytest.raises(NotFoundError, match="no trial 9"):
        store.trial("s", 9)
    assert [x.number for x in store.trials("s", [TrialState.PRUNED])] == [0]
    assert store.trials("s", [TrialState.COMPLETE]) == []
    assert store.finish.__doc__  # every store documents its operations


def test_interrupted_failure_gives_its_slot_back(store):
    store.create_study(_info())
    t = store.claim("s", _params(0.1), budget=1, grace=None, worker="w")
    store.finish("s", t.number, TrialState.FAILED, None, "interrupted", counted=False)
    assert store.counted("s") == 0
    assert store.claim("s", _params(0.2), budget=1, grace=None, worker="w").number == 1


def test_delete_study_removes_its_trials(store):
    store.create_study(_info("gone"))
    t = store.claim("gone", _params(0.1), budget=None, grace=None, worker="w")
    store.report("gone", t.number, 1, 0.5)
    store.delete_study("gone")
    with pytest.raises(NotFoundError):
        store.trials("gone")
    store.create_study(_info("gone"))
    assert store.trials("gone") == []


@pytest.fixture(params=["sqlite", "postgres"])
def sql_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 's.db'}"
    return request.getfixturevalue("postgres_url")


def test_missed_heartbeat_fails_the_trial_and_frees_its_slot(sql_url):
    from modelyard.store.db import Database
    from modelyard.store.trials import SqlTrialStore

    store = SqlTrialStore(Database(sql_url))
    store.create_study(_info())
    alive = store.claim("s", _params(0.1), budget=2, grace=0.5, worker="alive")
    dead = store.claim("s", _params(0.2), budget=2, grace=0.5, worker="dead")
    time.sleep(0.3)
    assert store.heartbeat("s", [alive.number]) == {alive.number}
    time.sleep(0.35)  # dead: 0.65 s silent; alive: 0.35 s
    third = store.claim("s", _params(0.3), budget=2, grace=0.5, worker="new")
    assert third is not None and third.number == 2
    assert store.trial("s", alive.number).state is TrialState.RUNNING
    failed = store.trial("s", dead.number)
    assert failed.state is TrialState.FAILED and failed.reason == HEARTBEAT_REASON
    assert store.heartbeat("s", [alive.number, dead.number]) == {alive.number}
    with pytest.raises(StudyError, match="heartbeat"):
        store.finish("s", dead.number, TrialState.COMPLETE, 1.0, None)


WORKER = textwrap.dedent("""
    import sys, time
    from modelyard import tune
    url, optimizer, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
    space = tune.SearchSpace({"k": tune.Int(0, budget - 1)})
    study = tune.Study(space, optimizer=optimizer, seed=0, storage=url, name="shared", heartbeat_interval=1.0)
    def objective(p):
        time.sleep(0.01)
        return (p["k"] - 7) ** 2
    study.optimize(objective, n_trials=budget)
""")


def test_processes_sharing_a_study_claim_every_value_once(sql_url, tmp_path):
    """A discrete space with exactly ``budget`` values: any duplicate proposal or lost claim would show.

    The GP optimizer deduplicates against finished and running trials; that only works if each
    proposal is made while holding the study, seeing the other processes' running trials.
    """
    budget, n_procs, optimizer = 20, 3, "gp"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = [subprocess.Popen([sys.executable, str(script), sql_url, optimizer, str(budget)],
                              stderr=subprocess.PIPE, text=True) for _ in range(n_procs)]
    errors = [p.communicate(timeout=240)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    from modelyard import tune

    trials = tune.Study.load("shared", sql_url).trials
    assert [t.number for t in trials] == list(range(budget))  # no duplicate or skipped numbers
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert sorted(t.params["k"] for t in trials) == list(range(budget))  # no duplicate proposals
    assert len({t.worker.rsplit(":", 1)[0] for t in trials}) >= 2  # the processes really shared the work


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("claim"), st.integers(1, 6)),
        st.tuples(st.just("finish"), st.sampled_from(["complete", "pruned", "failed", "interrupted"])),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_any_sequence_of_claims_and_finishes_keeps_the_budget_and_numbers(tmp_path_factory, ops):
    """Invariants: numbers are 0..n-1; a claim succeeds iff the counted trials are under the budget;
    only slots given back (interrupted, heartbeat) stop counting."""
    from modelyard.store.db import Database
    from modelyard.store.trials import SqlTrialStore

    folder = tmp_path_factory.mktemp("h")
    for store in (MemoryTrialStore(), SqlTrialStore(Database(f"sqlite:///{folder / 's.db'}"))):
        store.create_study(_info())
        running: list[int] = []
        given_back = 0
        for op, arg in ops:
            if op == "claim":
                before = store.counted("s")
                t = store.claim("s", _params(0.5), budget=arg, grace=None, worker="w")
                assert (t is not None) == (before < arg)
                if t is not None:
                    running.append(t.number)
            elif running:
                number = running.pop(0)
                state = TrialState.FAILED if arg in ("failed", "interrupted") else TrialState(arg)
                store.finish("s", number, state, 1.0 if arg == "complete" else None, arg,
                             counted=arg != "interrupted")
                given_back += arg == "interrupted"
        trials = store.trials("s")
        assert [t.number for t in trials] == list(range(len(trials)))
        assert store.counted("s") == len(trials) - given_back
        assert sorted(t.number for t in trials if t.state is TrialState.RUNNING) == sorted(running)


@given(
    number=st.integers(0, 10**6),
    value=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    steps=st.dictionaries(st.integers(0, 1000), st.floats(allow_nan=False, allow_infinity=False), max_size=5),
    state=st.sampled_from(list(TrialState)),
)
def test_trial_records_round_trip_through_json(number, value, steps, state):
    import json

    from modelyard.records.trials import Trial

    t = Trial(study="s", number=number, state=state, params={"x": 0.5, "act": "relu", "n": 3}, value=value,
              intermediate=steps, reason="why", worker="h:1:2", started_at=1.7e9, finished_at=1.7e9 + 2.5)
    back = Trial.from_dict(json.loads(json.dumps(t.to_dict())))
    assert back == t
