"""Optimizers through their public protocol: validity, determinism, parallel and failed trials,
and that the GP beats random search."""

from __future__ import annotations

import enum

import numpy as np
import pytest

from modelyard.tune import (
    Categorical,
    Float,
    GPOptimizer,
    Int,
    Optimizer,
    RandomOptimizer,
    SearchSpace,
    TrialView,
    get_optimizer,
)

MIXED = SearchSpace(
    {
        "lr": Float(1e-4, 1e-1, log=True),
        "units": Int(4, 256, log=True),
        "depth": Int(1, 5),
        "act": Categorical(["relu", "tanh", "gelu"]),
    }
)


def _mixed_objective(p):
    return (
        (np.log10(p["lr"]) + 2.5) ** 2
        + (np.log2(p["units"]) - 5) ** 2 / 4
        + abs(p["depth"] - 3)
        + {"relu": 0.0, "tanh": 0.5, "gelu": 1.0}[p["act"]]
    )


def branin(p):
    x1, x2 = p["x1"], p["x2"]
    b, c, t = 5.1 / (4 * np.pi**2), 5 / np.pi, 1 / (8 * np.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * np.cos(x1) + 10


BRANIN = SearchSpace({"x1": Float(-5, 10), "x2": Float(0, 15)})
BRANIN_MIN = 0.397887

_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])
_C = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann3(p):
    x = np.array([p["a"], p["b"], p["c"]])
    return float(-(_C * np.exp(-(_A * (x - _P) ** 2).sum(1))).sum())


HARTMANN3 = SearchSpace({k: Float(0, 1) for k in "abc"})
HARTMANN3_MIN = -3.86278


def _run(opt, space, f, n, seed):
    rng = np.random.default_rng(seed)
    hist = []
    for _ in range(n):
        p = opt.suggest(space, hist, [], rng)
        hist.append(TrialView(p, f(p)))
    return hist


def test_protocol_and_registry():
    assert isinstance(GPOptimizer(), Optimizer) and isinstance(RandomOptimizer(), Optimizer)
    assert isinstance(get_optimizer("gp", kernel="rbf"), GPOptimizer)
    assert isinstance(get_optimizer("random"), RandomOptimizer)
    with pytest.raises(ValueError, match="unknown optimizer"):
        get_optimizer("tpe")
    with pytest.raises(ValueError, match="kernel"):
        GPOptimizer(kernel="linear")


@pytest.mark.parametrize(
    "space, f, fmin", [(BRANIN, branin, BRANIN_MIN), (HARTMANN3, hartmann3, HARTMANN3_MIN)]
)
def test_gp_beats_random_on_median_regret(space, f, fmin):
    budget, seeds = 25, range(5)
    gp = [min(t.value for t in _run(GPOptimizer(), space, f, budget, s)) - fmin for s in seeds]
    rnd = [min(t.value for t in _run(RandomOptimizer(), space, f, budget, s)) - fmin for s in seeds]
    assert np.median(gp) < 0.2 * np.median(rnd)
    assert np.median(gp) < 0.05


def test_suggestions_in_mixed_space_are_valid_and_improve():
    hist = _run(GPOptimizer(), MIXED, _mixed_objective, 25, 0)
    for t in hist:
        MIXED.validate(t.params)
        assert type(t.params["units"]) is int and type(t.params["depth"]) is int
    assert min(t.value for t in hist) < 0.3


@pytest.mark.parametrize(
    "opt", [GPOptimizer(), GPOptimizer(kernel="rbf", acquisition="ucb"), RandomOptimizer()]
)
def test_same_seed_and_history_give_the_same_suggestion(opt):
    hist = _run(RandomOptimizer(), MIXED, _mixed_objective, 12, 5)
    a = opt.suggest(MIXED, hist, [hist[0].params], np.random.default_rng(7))
    b = opt.suggest(MIXED, list(hist), [dict(hist[0].params)], np.random.default_rng(7))
    assert a == b


@pytest.mark.parametrize("space, f", [(BRANIN, branin), (MIXED, _mixed_objective)])
def test_parallel_workers_get_distinct_points(space, f):
    hist = _run(GPOptimizer(), space, f, 12, 1)
    pending = []
    for w in range(4):
        p = GPOptimizer().suggest(space, hist, pending, np.random.default_rng(100))  # same rng on purpose
        assert p not in pending and p not in [t.params for t in hist]
        pending.append(p)
    u = space.to_unit_many(pending)
    assert min(np.linalg.norm(u[i] - u[j]) for i in range(4) for j in range(i)) > 1e-3


class _State(enum.Enum):
    COMPLETE = "complete"
    FAILED = "failed"
    PRUNED = "pruned"


def test_failed_and_pruned_points_are_not_suggested_again():
    # a discrete space of 6 points; the best region has failed and been pruned
    space = SearchSpace({"a": Int(0, 2), "b": Categorical(["x", "y"])})
    f = {(0, "x"): 5.0, (0, "y"): 4.0, (1, "x"): 3.0, (1, "y"): 2.0}
    hist = [TrialView({"a": a, "b": b}, v, _State.COMPLETE) for (a, b), v in f.items()]
    hist.append(TrialView({"a": 2, "b": "y"}, None, _State.FAILED))
    seen = {(t.params["a"], t.params["b"]) for t in hist}
    for s in range(5):
        p = GPOptimizer().suggest(space, hist, [], np.random.default_rng(s))
        assert (p["a"], p["b"]) == (2, "x")  # the only point neither tried nor failed
        assert (p["a"], p["b"]) not in seen
    hist.append(TrialView({"a": 2, "b": "x"}, None, "pruned", {1: 9.0}))
    p = GPOptimizer().suggest(space, hist, [], np.random.default_rng(0))  # exhausted: still valid
    space.validate(p)


def test_failed_region_is_avoided_in_continuous_space():
    hist = _run(RandomOptimizer(), BRANIN, branin, 10, 3)
    bad = {"x1": 9.42478, "x2": 2.475}  # a global minimizer of branin, marked failed
    hist.append(TrialView(bad, None, "failed"))
    p = GPOptimizer().suggest(BRANIN, hist, [], np.random.default_rng(0))
    u, ub = BRANIN.to_unit(p), BRANIN.to_unit(bad)
    assert np.linalg.norm(u - ub) > 1e-3


def test_first_points_fill_the_space_and_all_failed_history_works():
    hist = _run(GPOptimizer(), HARTMANN3, hartmann3, 5, 0)
    U = HARTMANN3.to_unit_many([t.params for t in hist])
    assert min(np.linalg.norm(U[i] - U[j]) for i in range(5) for j in range(i)) > 0.2
    failed = [TrialView(t.params, None, "failed") for t in hist] * 3
    HARTMANN3.validate(GPOptimizer().suggest(HARTMANN3, failed, [], np.random.default_rng(0)))
