"""Pruners on crafted histories (minimize direction)."""

from __future__ import annotations

import pytest

from modelyard.tune import ASHAPruner, MedianPruner, NopPruner, Pruner, TrialView, get_pruner


def _t(curve, state="complete"):
    return TrialView({}, curve.get(max(curve)) if curve else None, state, dict(curve))


def test_registry_and_protocol():
    assert isinstance(get_pruner("median"), MedianPruner)
    assert isinstance(get_pruner("asha", reduction_factor=2), ASHAPruner)
    assert isinstance(get_pruner("none"), NopPruner) and isinstance(NopPruner(), Pruner)
    with pytest.raises(ValueError, match="unknown pruner"):
        get_pruner("hyperband")
    with pytest.raises(ValueError, match="reduction_factor"):
        ASHAPruner(reduction_factor=1)


def test_median_prunes_worse_than_median_only_after_startup_and_warmup():
    done = [_t({1: v, 2: v - 0.1, 3: v - 0.2}) for v in (1.0, 2.0, 3.0, 4.0, 5.0)]
    bad, good = _t({1: 9.0, 2: 9.0}, "running"), _t({1: 9.0, 2: 1.5}, "running")
    p = MedianPruner(n_startup_trials=5)
    assert p.should_prune(bad, done) and not p.should_prune(good, done)
    assert not MedianPruner(n_startup_trials=6).should_prune(bad, done)
    assert not MedianPruner(n_startup_trials=5, n_warmup_steps=3).should_prune(bad, done)
    # pruned and failed trials do not count towards the median
    assert not p.should_prune(bad, done[:4] + [_t({1: 0.0, 2: 0.0}, "pruned")])
    assert p.should_prune(_t({1: float("nan")}, "running"), done)
    assert not NopPruner().should_prune(bad, done)


def test_asha_keeps_top_third_at_each_rung():
    p = ASHAPruner(min_resource=1, reduction_factor=3)
    assert p.rungs(30) == [1, 3, 9, 27]
    hist = [_t({1: v, 3: v}) for v in (1.0, 2.0, 3.0, 4.0, 5.0)]
    # 6 values at rung 1 -> keep the best 2
    assert not p.should_prune(_t({1: 1.5}, "running"), hist)
    assert p.should_prune(_t({1: 2.5}, "running"), hist)
    # between rungs no decision is taken, however bad the value
    assert not p.should_prune(_t({1: 1.5, 2: 100.0}, "running"), hist)
    # at rung 3 (first report at or after step 3)
    assert p.should_prune(_t({1: 0.5, 2: 0.5, 4: 3.0}, "running"), hist)
    assert not p.should_prune(_t({1: 0.5, 2: 0.5, 4: 0.9}, "running"), hist)


def test_asha_first_trial_is_promoted_and_min_early_stopping_rate_shifts_rungs():
    p = ASHAPruner(min_resource=2, reduction_factor=2, min_early_stopping_rate=1)
    assert p.rungs(20) == [4, 8, 16]
    assert not p.should_prune(_t({4: 10.0}, "running"), [])
    assert not p.should_prune(_t({1: 100.0, 2: 100.0}, "running"), [_t({4: 0.0})])
    assert p.should_prune(_t({4: 10.0}, "running"), [_t({4: 0.0}), _t({4: 1.0})])
