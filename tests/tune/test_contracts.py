"""Every optimizer and pruner the package offers passes the tuning contract suite, and the suite
catches implementations that break its laws."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest

from modelyard.testing.tuning import optimizer_checks, pruner_checks
from modelyard.tune import GPOptimizer, RandomOptimizer, SearchSpace
from modelyard.tune.optimizers import OPTIMIZERS, get_optimizer
from modelyard.tune.pruners import PRUNERS, MedianPruner, get_pruner

# subject -> factory: every registered name with its defaults, plus settings that change the code path
OPTIMIZER_SUBJECTS: dict[str, Callable[[], Any]] = {
    **{name: (lambda name=name: get_optimizer(name)) for name in OPTIMIZERS},
    "gp[rbf,ucb]": lambda: get_optimizer("gp", kernel="rbf", acquisition="ucb"),
    "gp[warp=select,n_initial=3]": lambda: get_optimizer("gp", warp="select", n_initial=3),
}
PRUNER_SUBJECTS: dict[str, Callable[[], Any]] = {
    **{name: (lambda name=name: get_pruner(name)) for name in PRUNERS},
    "median[startup=3,warmup=4,interval=3]": lambda: get_pruner(
        "median", n_startup_trials=3, n_warmup_steps=4, interval_steps=3
    ),
    "asha[min_resource=2,eta=2,rate=1]": lambda: get_pruner(
        "asha", min_resource=2, reduction_factor=2, min_early_stopping_rate=1
    ),
}
NEVER_PRUNE = {"none"}

OPTIMIZER_CASES = [
    (f"{subject}::{name}", check)
    for subject, make in OPTIMIZER_SUBJECTS.items()
    for name, check in optimizer_checks(make)
]
PRUNER_CASES = [
    (f"{subject}::{name}", check)
    for subject, make in PRUNER_SUBJECTS.items()
    for name, check in pruner_checks(make, prunes=subject not in NEVER_PRUNE)
]


def test_every_registered_optimizer_and_pruner_is_a_subject():
    assert set(OPTIMIZERS) <= set(OPTIMIZER_SUBJECTS) and set(PRUNERS) <= set(PRUNER_SUBJECTS)
    assert get_pruner("nop").should_prune is not None  # the alias still resolves


def test_model_based_optimizers_are_held_to_beating_random_search():
    names = {name for name, _ in optimizer_checks(GPOptimizer)}
    assert "concentrates_where_better" in names
    assert "concentrates_where_better" not in {name for name, _ in optimizer_checks(RandomOptimizer)}


@pytest.mark.parametrize("name, check", OPTIMIZER_CASES, ids=[c[0] for c in OPTIMIZER_CASES])
def test_optimizer_contract(name, check):
    check()


@pytest.mark.parametrize("name, check", PRUNER_CASES, ids=[c[0] for c in PRUNER_CASES])
def test_pruner_contract(name, check):
    check()


# --- the suite fails implementations that break a law --------------------------------------------


class _Counting(RandomOptimizer):
    """Hidden state: every call advances its own generator instead of using the one passed in."""

    def __init__(self) -> None:
        self._rng = np.random.default_rng(0)

    def suggest(self, space: SearchSpace, history, pending, rng) -> dict[str, Any]:
        return super().suggest(space, history, pending, self._rng)


class _Unchecked(RandomOptimizer):
    """Returns numpy integers, which JSON stores and model constructors do not take as ints."""

    def suggest(self, space: SearchSpace, history, pending, rng) -> dict[str, Any]:
        p = super().suggest(space, history, pending, rng)
        return {k: (np.int64(v) if type(v) is int else v) for k, v in p.items()}


class _Repeating(RandomOptimizer):
    """Forgets the running trials: with the same seed a second worker gets the first one's point."""

    def suggest(self, space: SearchSpace, history, pending, rng) -> dict[str, Any]:
        return super().suggest(space, history, [], rng)


class _FakeModel(RandomOptimizer):
    """Declares itself model-based but draws at random."""

    model_based = True


class _Eager(MedianPruner):
    """Prunes whatever has a report, ignoring warm-up and the other trials."""

    def should_prune(self, trial, history) -> bool:
        return bool(getattr(trial, "intermediate", None))


class _Moody(MedianPruner):
    """Alternates its answer for the same question: a decision that depends on call history."""

    def __init__(self) -> None:
        super().__init__()
        self._calls = 0

    def should_prune(self, trial, history) -> bool:
        self._calls += 1
        return super().should_prune(trial, history) != (self._calls % 2 == 0)


class _Trigger(MedianPruner):
    """Prunes every trial it is asked about, even one with nothing reported."""

    def should_prune(self, trial, history) -> bool:
        return True


class _Lazy(MedianPruner):
    """Never prunes, though it claims to."""

    def should_prune(self, trial, history) -> bool:
        return False


BROKEN = [
    (optimizer_checks, _Counting, "no_hidden_state"),
    (optimizer_checks, _Unchecked, "suggestions_in_space"),
    (optimizer_checks, _Repeating, "differs_from_pending"),
    (optimizer_checks, _FakeModel, "concentrates_where_better"),
    (pruner_checks, _Eager, "never_prunes_best"),
    (pruner_checks, _Eager, "respects_warmup"),
    (pruner_checks, _Trigger, "waits_for_reports"),
    (pruner_checks, _Moody, "no_hidden_state"),
    (pruner_checks, _Lazy, "prunes_the_worst"),
    (partial(pruner_checks, prunes=False), MedianPruner, "never_prunes"),
]


@pytest.mark.parametrize(
    "suite, make, check", BROKEN, ids=[f"{make.__name__.strip('_')}::{check}" for _, make, check in BROKEN]
)
def test_suite_catches_broken_implementations(suite, make, check):
    with pytest.raises(AssertionError):
        dict(suite(make))[check]()
