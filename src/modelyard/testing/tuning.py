"""The contract every optimizer and pruner passes: the built-in ones, and yours before a Study relies on it.

Run it in a test suite (one pytest case per check), giving a factory of fresh instances::

    from modelyard.testing.tuning import optimizer_checks, pruner_checks

    @pytest.mark.parametrize("name, check", optimizer_checks(lambda: MyOptimizer()))
    def test_optimizer_contract(name, check):
        check()

Histories are lists of ``records.Trial`` (what a Study reads from its store, states as
``TrialState``), built from seeded draws, so a check passes or fails the same way on every run.
Both protocols minimize.

Optimizers (``suggest(space, history, pending, rng)``): every suggestion lies in the space, for a
mixed space and one with single-valued parameters (floats finite and in bounds, log-scaled ones
positive, ints Python ints on their grid, categoricals one of the choices, type and all); the
same history, pending and seed give the same suggestion, also from another instance; histories
with failed, pruned and running trials, only failed or pruned trials, equal values or trials of
an older space are accepted; ``Trial`` records and ``TrialView`` with string states give the same
suggestion; a suggestion differs from the running trials it is given (a worker that asks with
the previous suggestion pending gets another point) and, while untried points remain, from
every trial tried; calls in between with other inputs change nothing and the inputs are left as
they were (no hidden state). An optimizer that declares ``model_based = True`` must also, on a
1-d quadratic whose history shows where it is low, land near the minimum in 6 more of 20 seeded
draws than random search does (and than the 6 a uniform draw expects).

Pruners (``should_prune(trial, history)``): a trial without reports is not pruned; the best trial
(better than every other at every step; alone, too) is never pruned; a trial worse than every
completed trial at every step, and one that reports NaN, is pruned within the horizon (``prunes=
False`` instead checks that the pruner never prunes); the answer depends only on (trial,
history): repeated, reordered and fresh-instance queries agree and the inputs are left as they
were; ``Trial`` records and ``TrialView`` with string states agree. Warm-up settings are read
where the pruner declares them, under the names the built-in pruners use: fewer completed
trials than ``n_startup_trials``, steps before ``n_warmup_steps`` or off ``interval_steps``
(MedianPruner), and steps that reach no rung of ``rungs(max_step)`` (ASHAPruner) never prune.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from ..records.trials import Trial, TrialState
from ..tune.optimizers import Optimizer, RandomOptimizer, TrialView
from ..tune.pruners import Pruner
from ..tune.space import Categorical, Float, Int, SearchSpace

__all__ = ["MIXED", "optimizer_checks", "pruner_checks"]

# --- shared records -----------------------------------------------------------------------------

_ACT = Categorical(("relu", 3, 0.5, None, True))
MIXED = SearchSpace(
    {
        "lr": Float(1e-5, 1e-1, log=True),
        "momentum": Float(-1.0, 1.0),
        "units": Int(1, 512, log=True),
        "depth": Int(2, 20, step=3),
        "act": _ACT,
    }
)
"""A space with every kind of parameter: log and plain floats, log and stepped ints, mixed-type choices."""

_DEGENERATE = SearchSpace({"fixed": Int(3, 3), "only": Categorical(("one",)), "x": Float(0.0, 1.0)})
_SMALL = SearchSpace({"a": Int(0, 3), "b": Categorical(("x", "y", "z"))})  # 12 points
_LINE = SearchSpace({"x": Float(0.0, 1.0)})


def _objective(p: Mapping[str, Any]) -> float:
    """A smooth function of MIXED with its minimum inside the space."""
    return float(
        (math.log10(p["lr"]) + 3) ** 2
        + (p["momentum"] - 0.3) ** 2
        + (math.log2(p["units"]) - 6) ** 2 / 8
        + abs(p["depth"] - 8) / 6
        + 0.3 * _ACT.index(p["act"])
    )


def _trial(
    number: int,
    params: Mapping[str, Any],
    state: TrialState = TrialState.COMPLETE,
    value: float | None = None,
    intermediate: Mapping[int, float] | None = None,
) -> Trial:
    return Trial(
        study="contract",
        number=number,
        state=state,
        params=dict(params),
        value=value,
        intermediate=dict(intermediate or {}),
    )


def _view(t: Trial) -> TrialView:
    """The same trial with its state as a plain string."""
    return TrialView(dict(t.params), t.value, t.state.value, dict(t.intermediate))


def _snapshot(*inputs: Any) -> str:
    """A NaN-safe picture of the inputs, to see that a call left them as they were."""
    return repr(copy.deepcopy(inputs))


# --- optimizers ---------------------------------------------------------------------------------

MakeOptimizer = Callable[[], Optimizer]


def _history(n: int, seed: int, *, states: bool = False) -> list[Trial]:
    """``n`` seeded trials on MIXED; ``states`` cycles complete, failed, pruned and running."""
    out = []
    for i, p in enumerate(MIXED.sample(np.random.default_rng(seed), n)):
        f = _objective(p)
        kind = i % 4 if states else 0
        if kind == 0:
            out.append(_trial(i, p, TrialState.COMPLETE, f, {1: f + 1.0, 2: f}))
        elif kind == 1:
            out.append(_trial(i, p, TrialState.FAILED))
        elif kind == 2:
            out.append(_trial(i, p, TrialState.PRUNED, f + 1.0, {1: f + 2.0, 2: f + 1.0}))
        else:
            out.append(_trial(i, p, TrialState.RUNNING, None, {1: f + 2.0}))
    return out


def _assert_in_space(space: SearchSpace, params: Any, where: str) -> None:
    """Exactly the space's names, each value valid and of its JSON-safe Python type."""
    assert isinstance(params, dict), f"{where}: suggest returned a {type(params).__name__}, not a dict"
    assert set(params) == set(space.names), (
        f"{where}: suggested names {sorted(params)}, expected {sorted(space.names)}"
    )
    for name, d in space.params.items():
        v = params[name]
        if isinstance(d, Float):
            assert isinstance(v, float) and math.isfinite(v), f"{where}: {name}={v!r} is not a finite float"
            assert d.low <= v <= d.high, f"{where}: {name}={v!r} is outside [{d.low}, {d.high}]"
            assert not d.log or v > 0, f"{where}: log-scaled {name}={v!r} is not positive"
        elif isinstance(d, Int):
            assert type(v) is int, f"{where}: {name}={v!r} is a {type(v).__name__}, not a Python int"
            assert d.low <= v <= d.high, f"{where}: {name}={v!r} is outside [{d.low}, {d.high}]"
            assert (v - d.low) % d.step == 0, f"{where}: {name}={v!r} is off the grid {d.low} + k * {d.step}"
        else:
            assert any(type(c) is type(v) and c == v for c in d.choices), (
                f"{where}: {name}={v!r} ({type(v).__name__}) is not one of the choices {list(d.choices)!r}"
            )


def check_suggestions_in_space(make_optimizer: MakeOptimizer) -> None:
    """Suggestions lie in the space, from the first trial until the model has taken over."""
    for space, n in ((MIXED, 14), (_DEGENERATE, 9)):
        opt = make_optimizer()
        rng = np.random.default_rng(0)
        history: list[Trial] = []
        for i in range(n):
            p = opt.suggest(space, history, [], rng)
            _assert_in_space(space, p, f"suggestion {i} in {sorted(space.names)}")
            value = _objective(p) if space is MIXED else float((p["x"] - 0.3) ** 2)
            history.append(_trial(i, p, value=value))


def check_determinism(make_optimizer: MakeOptimizer) -> None:
    """The same history, pending trials and seed give the same suggestion, from two instances."""
    pending = MIXED.sample(np.random.default_rng(2), 1)
    for n in (3, 12):
        history = _history(n, seed=1)
        a = make_optimizer().suggest(MIXED, history, pending, np.random.default_rng(7))
        b = make_optimizer().suggest(
            MIXED, copy.deepcopy(history), copy.deepcopy(pending), np.random.default_rng(7)
        )
        assert a == b, f"with {n} trials the same inputs and seed gave {a} and then {b}"


def check_accepts_every_state(make_optimizer: MakeOptimizer) -> None:
    """Failed, pruned and running trials, no complete one, equal values and stale trials are accepted."""
    mixed = _history(14, seed=3, states=True)
    stale = [_trial(100 + i, {"old_param": i}, value=float(i)) for i in range(6)]  # from an older space
    histories = {
        "complete, failed, pruned and running trials": mixed,
        "only failed trials": [_trial(t.number, t.params, TrialState.FAILED) for t in mixed],
        "only pruned trials": [
            _trial(t.number, t.params, TrialState.PRUNED, 5.0, {1: 6.0, 2: 5.0}) for t in mixed
        ],
        "equal values": [_trial(t.number, t.params, value=1.0) for t in mixed],
        "trials of an older space": stale + mixed[:4],
        "only trials of an older space": stale,
    }
    for label, history in histories.items():
        p = make_optimizer().suggest(MIXED, history, [], np.random.default_rng(0))
        _assert_in_space(MIXED, p, f"history with {label}")


def check_records_and_views_agree(make_optimizer: MakeOptimizer) -> None:
    """``Trial`` records (TrialState) and ``TrialView`` (string states) of one history give one suggestion."""
    for n in (3, 14):
        history = _history(n, seed=4, states=True)
        pending = [history[-1].params]
        a = make_optimizer().suggest(MIXED, history, pending, np.random.default_rng(3))
        b = make_optimizer().suggest(MIXED, [_view(t) for t in history], pending, np.random.default_rng(3))
        assert a == b, f"with {n} trials, Trial records gave {a} but TrialViews gave {b}"


def check_differs_from_pending(make_optimizer: MakeOptimizer) -> None:
    """Asking again with the previous suggestions pending (same seed) gives new points, none tried before."""
    for n in (3, 12):
        for seed in range(3):
            history = _history(n, seed=10 + seed)
            tried = [t.params for t in history]
            opt, pending = make_optimizer(), []
            for _ in range(3):
                p = opt.suggest(MIXED, history, pending, np.random.default_rng(seed))
                assert p not in pending, f"with {n} trials and seed {seed}, {p} was suggested while running"
                assert p not in tried, f"with {n} trials and seed {seed}, {p} was suggested though tried"
                pending.append(p)


def check_avoids_tried_points(make_optimizer: MakeOptimizer) -> None:
    """In a 12-point space the suggestion is an untried point; once none is left, still a valid one."""
    points = [{"a": a, "b": b} for a in range(4) for b in ("x", "y", "z")]
    order = np.random.default_rng(0).permutation(len(points))
    states = [TrialState.COMPLETE] * 4 + [TrialState.FAILED, TrialState.PRUNED]
    history = [
        _trial(i, points[k], st, None if st is TrialState.FAILED else float(k), {1: float(k)})
        for i, (k, st) in enumerate(zip(order[:6], states, strict=True))
    ]
    pending = [points[k] for k in order[6:9]]
    free = [points[k] for k in order[9:]]
    for seed in range(5):
        p = make_optimizer().suggest(_SMALL, history, pending, np.random.default_rng(seed))
        assert p in free, f"seed {seed}: suggested {p}, but only {free} were neither tried nor running"
    full = history + [_trial(6 + i, points[k], value=float(k)) for i, k in enumerate(order[6:])]
    _assert_in_space(
        _SMALL, make_optimizer().suggest(_SMALL, full, [], np.random.default_rng(0)), "exhausted space"
    )


def check_no_hidden_state(make_optimizer: MakeOptimizer) -> None:
    """Calls with other inputs in between change no suggestion, and suggest leaves its inputs as they were."""
    history, pending = _history(12, seed=5, states=True), MIXED.sample(np.random.default_rng(6), 2)
    before = _snapshot(history, pending)
    opt = make_optimizer()
    first = opt.suggest(MIXED, history, pending, np.random.default_rng(11))
    opt.suggest(MIXED, _history(4, seed=6), [], np.random.default_rng(12))
    opt.suggest(
        _LINE,
        [_trial(i, {"x": x}, value=x) for i, x in enumerate((0.1, 0.5, 0.9))],
        [],
        np.random.default_rng(13),
    )
    again = opt.suggest(MIXED, history, pending, np.random.default_rng(11))
    fresh = make_optimizer().suggest(MIXED, history, pending, np.random.default_rng(11))
    assert first == again, (
        f"the same inputs gave {first}, then after other calls {again}: the optimizer keeps state"
    )
    assert first == fresh, (
        f"a used instance suggested {first}, a fresh one {fresh}: the optimizer keeps state"
    )
    assert _snapshot(history, pending) == before, "suggest changed the history or pending trials it was given"


def _hits_near_minimum(
    make_optimizer: MakeOptimizer, n_history: int, seeds: range, centre: float, half: float
) -> int:
    """How many seeded 1-d quadratic histories lead the optimizer within ``half`` of the minimum."""
    hits = 0
    for seed in seeds:
        xs = np.random.default_rng(seed).random(n_history)
        history = [_trial(i, {"x": float(x)}, value=float((x - centre) ** 2)) for i, x in enumerate(xs)]
        x = make_optimizer().suggest(_LINE, history, [], np.random.default_rng(1000 + seed))["x"]
        hits += abs(x - centre) < half
    return hits


def check_concentrates_where_better(make_optimizer: MakeOptimizer) -> None:
    """A model-based optimizer lands near a quadratic's minimum in 6 more of 20 seeds than random search."""
    initial = getattr(make_optimizer(), "initial_size", None)
    n = max(10, initial(_LINE) if callable(initial) else 0)  # past the space-filling start
    seeds, centre, half = range(20), 0.75, 0.15
    model = _hits_near_minimum(make_optimizer, n, seeds, centre, half)
    baseline = _hits_near_minimum(RandomOptimizer, n, seeds, centre, half)
    # a uniform draw lands in the window with p = 0.3 (6 of 20 expected); judged against the larger of
    # that and the measured baseline, an optimizer no better than random passes with p < 0.01
    expected = 2 * half * len(seeds)
    assert model >= max(baseline, expected) + expected, (
        f"within {half} of the minimum in {model} of {len(seeds)} draws, random search in {baseline} "
        f"(uniform: {expected:.0f}): the model does not concentrate where the history is better"
    )


OPTIMIZER_CHECKS: dict[str, Callable[[MakeOptimizer], None]] = {
    "suggestions_in_space": check_suggestions_in_space,
    "determinism": check_determinism,
    "accepts_every_state": check_accepts_every_state,
    "records_and_views_agree": check_records_and_views_agree,
    "differs_from_pending": check_differs_from_pending,
    "avoids_tried_points": check_avoids_tried_points,
    "no_hidden_state": check_no_hidden_state,
}


def optimizer_checks(make_optimizer: MakeOptimizer) -> list[tuple[str, Callable[[], None]]]:
    """``(name, check)`` pairs for pytest parametrize; ``make_optimizer`` builds a fresh optimizer."""
    out = [(name, partial(fn, make_optimizer)) for name, fn in OPTIMIZER_CHECKS.items()]
    if getattr(make_optimizer(), "model_based", False):
        out.append(("concentrates_where_better", partial(check_concentrates_where_better, make_optimizer)))
    return out


# --- pruners ------------------------------------------------------------------------------------

MakePruner = Callable[[], Pruner]

_BEST, _WORST = 1.0, 1000.0  # every peer's curve lies between these levels at every step


def _curve(level: float, last: int) -> dict[int, float]:
    """Reports at steps 1..last that improve towards ``level``."""
    return {s: level + 1.0 / s for s in range(1, last + 1)}


def _peers(k: int, horizon: int, state: TrialState = TrialState.COMPLETE, first: int = 0) -> list[Trial]:
    """``k`` trials at levels 2, 3, ... with reports at every step up to ``horizon``."""
    out = []
    for i in range(first, first + k):
        curve = _curve(2.0 + i, horizon)
        out.append(_trial(i, {"i": i}, state, curve[horizon], curve))
    return out


def _others(horizon: int) -> list[Trial]:
    """Trials that are not complete: a pruned one, a failed one without reports, a running one."""
    pruned = _trial(500, {"i": 500}, TrialState.PRUNED, 50.0, _curve(50.0, 3))
    failed = _trial(501, {"i": 501}, TrialState.FAILED)
    running = _trial(502, {"i": 502}, TrialState.RUNNING, None, _curve(60.0, horizon // 2))
    return [pruned, failed, running]


def _running(level: float, step: int) -> Trial:
    """The trial asking, after reporting steps 1..step."""
    return _trial(999, {"i": 999}, TrialState.RUNNING, None, _curve(level, step))


def _horizon(pruner: Any) -> int:
    """Steps to follow a trial for: 30, or past the pruner's declared warm-up and first rung."""
    h = 30 + getattr(pruner, "n_warmup_steps", 0) + getattr(pruner, "interval_steps", 1)
    rungs = getattr(pruner, "rungs", None)
    first = rungs(10**6)[:1] if callable(rungs) else []
    return max(h, 2 * first[0]) if first else h


def _enough_peers(pruner: Any) -> int:
    """Completed trials past the pruner's declared startup."""
    return max(8, getattr(pruner, "n_startup_trials", 0) + 3)


def _first_prune(pruner: Pruner, level: float, history: Sequence[Any], horizon: int) -> int | None:
    """The first step at which a trial reporting at ``level`` step by step is pruned (None: never)."""
    for step in range(1, horizon + 1):
        if pruner.should_prune(_running(level, step), history):
            return step
    return None


def check_waits_for_reports(make_pruner: MakePruner) -> None:
    """A trial that has reported nothing is not pruned, whatever the other trials."""
    p = make_pruner()
    h = _horizon(p)
    silent = _trial(999, {"i": 999}, TrialState.RUNNING)
    for history in ([], _peers(_enough_peers(p), h), _peers(3, h) + _others(h)):
        assert not p.should_prune(silent, history), (
            f"a trial without reports was pruned among {len(history)} trials"
        )


def check_never_prunes_best(make_pruner: MakePruner) -> None:
    """A trial better than every other at every step (or alone) is never pruned, at any step."""
    p = make_pruner()
    h = _horizon(p)
    for k in sorted({0, 1, 2, 3, 5, _enough_peers(p)}):
        for history in (_peers(k, h), _peers(k, h) + _others(h)):
            step = _first_prune(p, _BEST, history, h)
            assert step is None, f"the best trial was pruned at step {step} among {len(history)} trials"
    step = _first_prune(p, _WORST, [], h)
    assert step is None, f"a trial alone (so the best so far) was pruned at step {step}"


def check_prunes_the_worst(make_pruner: MakePruner) -> None:
    """Past warm-up, a trial worse than every completed trial at every step, or reporting NaN, is pruned."""
    p = make_pruner()
    h = _horizon(p)
    history = _peers(_enough_peers(p), h) + _others(h)
    assert _first_prune(p, _WORST, history, h) is not None, (
        f"a trial worse than all {len(history)} others at every step was never pruned in {h} steps"
    )
    assert _first_prune(p, math.nan, history, h) is not None, (
        f"a trial reporting NaN was never pruned in {h} steps"
    )


def check_never_prunes(make_pruner: MakePruner) -> None:
    """A pruner declared not to prune never does: not the worst trial, not one reporting NaN."""
    p = make_pruner()
    h = _horizon(p)
    for history in ([], _peers(_enough_peers(p), h) + _others(h)):
        for level in (_WORST, math.nan, _BEST):
            step = _first_prune(p, level, history, h)
            assert step is None, (
                f"a pruner declared not to prune pruned a trial at level {level} at step {step}"
            )


def check_respects_warmup(make_pruner: MakePruner) -> None:
    """No pruning below n_startup_trials completed trials, before n_warmup_steps, off interval or rungs."""
    p = make_pruner()
    h = _horizon(p)
    startup = getattr(p, "n_startup_trials", 0)
    if startup > 0:
        history = _peers(startup - 1, h) + _peers(3, h, TrialState.PRUNED, first=50) + _others(h)
        step = _first_prune(p, _WORST, history, h)
        assert step is None, (
            f"pruned at step {step} with {startup - 1} completed trials, n_startup_trials={startup}"
        )
    history = _peers(_enough_peers(p), h) + _others(h)
    warmup, interval = getattr(p, "n_warmup_steps", 0), getattr(p, "interval_steps", 1)
    rungs = getattr(p, "rungs", None)
    decisive = sorted(rungs(h)) if callable(rungs) else list(range(1, h + 1))
    allowed = {s for s in decisive if s >= warmup and (s - warmup) % interval == 0}
    for step in range(1, h + 1):
        if step not in allowed:
            assert not p.should_prune(_running(_WORST, step), history), (
                f"pruned at step {step}, which n_warmup_steps={warmup}, interval_steps={interval} "
                f"or the rungs ({decisive if callable(rungs) else 'none'}) rule out"
            )


def _queries(horizon: int, enough: int) -> list[tuple[Trial, list[Trial]]]:
    """(trial, history) pairs at several levels, steps and history sizes."""
    histories = [_peers(3, horizon), _peers(enough, horizon) + _others(horizon), []]
    steps = sorted({1, 2, 3, 4, 9, 10, 27, horizon})
    return [(_running(level, s), hist) for hist in histories for level in (_BEST, 3.5, _WORST) for s in steps]


def check_pruner_no_hidden_state(make_pruner: MakePruner) -> None:
    """Decisions depend only on (trial, history): repeated, reordered and fresh-instance answers agree."""
    p = make_pruner()
    queries = _queries(_horizon(p), _enough_peers(p))
    before = _snapshot(queries)
    first = [p.should_prune(t, h) for t, h in queries]
    twice = [p.should_prune(t, h) for t, h in queries]
    backwards = [p.should_prune(t, h) for t, h in reversed(queries)][::-1]
    fresh = [make_pruner().should_prune(t, h) for t, h in queries]
    for label, answers in (
        ("asked again", twice),
        ("asked in reverse order", backwards),
        ("a fresh pruner", fresh),
    ):
        changed = [i for i, (a, b) in enumerate(zip(first, answers, strict=True)) if a != b]
        assert not changed, (
            f"{len(changed)} of {len(queries)} decisions changed when {label}: the pruner keeps state"
        )
    assert _snapshot(queries) == before, "should_prune changed the trial or history it was given"


def check_pruner_records_and_views_agree(make_pruner: MakePruner) -> None:
    """``Trial`` records (TrialState) and ``TrialView`` (string states) of one query get one decision."""
    p = make_pruner()
    queries = _queries(_horizon(p), _enough_peers(p))
    records = [p.should_prune(t, h) for t, h in queries]
    views = [p.should_prune(_view(t), [_view(o) for o in h]) for t, h in queries]
    differ = sum(a != b for a, b in zip(records, views, strict=True))
    assert not differ, f"{differ} of {len(queries)} decisions differ between Trial records and TrialViews"


def pruner_checks(make_pruner: MakePruner, *, prunes: bool = True) -> list[tuple[str, Callable[[], None]]]:
    """``(name, check)`` pairs for pytest parametrize; ``prunes=False`` for a pruner that never prunes."""
    checks: dict[str, Callable[[MakePruner], None]] = {
        "waits_for_reports": check_waits_for_reports,
        "never_prunes_best": check_never_prunes_best,
        "no_hidden_state": check_pruner_no_hidden_state,
        "records_and_views_agree": check_pruner_records_and_views_agree,
    }
    if prunes:
        checks["prunes_the_worst"] = check_prunes_the_worst
    else:
        checks["never_prunes"] = check_never_prunes
    sample = make_pruner()
    if any(hasattr(sample, a) for a in ("n_startup_trials", "n_warmup_steps", "interval_steps", "rungs")):
        checks["respects_warmup"] = check_respects_warmup
    return [(name, partial(fn, make_pruner)) for name, fn in checks.items()]
