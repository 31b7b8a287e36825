"""Data-parallel gradient boosting: the ⊕ (sum of gradient histograms) and its laws, N ranks equal to one process
on the union of the shards, and a dead rank failing the run in bounded time."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import modelyard as my
from modelyard.data.dataset import Dataset
from modelyard.errors import DistributedError
from modelyard.train.aggregate import Shard, fold
from modelyard.train.boost_dist import HistogramSum

HERE = Path(__file__).parent


def logistic_gradients(X, y):
    p = np.full(len(y), 0.3)  # the margin of a first round: a constant
    return p - y, p * (1 - p)


def agg(d=3, bins=6):
    cuts = np.tile(np.concatenate([np.linspace(-1.5, 1.5, bins - 1), [np.inf]]), (d, 1))
    return HistogramSum(cuts, logistic_gradients, reg_lambda=1.0)


rows = st.integers(0, 40).flatmap(lambda n: st.tuples(
    st.lists(st.lists(st.floats(-3, 3), min_size=3, max_size=3), min_size=n, max_size=n),
    st.lists(st.integers(0, 1), min_size=n, max_size=n)))


def shard(data, start=0):
    X, y = data
    return Shard(np.asarray(X, dtype=np.float64).reshape(-1, 3), np.asarray(y, dtype=np.float64), start)


@settings(max_examples=60, deadline=None)
@given(a=rows, b=rows, c=rows)
def test_histogram_sum_is_associative_commutative_and_equals_the_histogram_of_the_union(a, b, c):
    h = agg()
    sa, sb, sc = (h.local(None, shard(x)) for x in (a, b, c))
    left = h.combine(h.combine(sa, sb), sc)
    right = h.combine(sa, h.combine(sb, sc))
    swapped = h.combine(sb, sa)
    np.testing.assert_allclose(left.G, right.G, atol=1e-9)
    np.testing.assert_allclose(h.combine(sa, sb).H, swapped.H, atol=1e-9)
    union = h.local(None, shard((a[0] + b[0] + c[0], a[1] + b[1] + c[1])))
    np.testing.assert_allclose(left.G, union.G, atol=1e-9)
    np.testing.assert_allclose(left.H, union.H, atol=1e-9)
    assert left.n == union.n


def test_the_split_from_summed_shard_histograms_is_the_split_of_the_union():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(900, 3))
    y = (X[:, 1] > 0.4).astype(float)
    h = agg()
    parts = [h.local(None, Shard(X[a:b], y[a:b], a)) for a, b in ((0, 100), (100, 550), (550, 900))]
    split = h.apply(None, fold(h, parts))
    whole = h.apply(None, h.local(None, Shard(X, y)))
    assert (split.feature, split.threshold_bin) == (whole.feature, whole.threshold_bin)
    assert split.gain == pytest.approx(whole.gain, rel=1e-12)  # sums in another order: equal up to rounding
    assert split.feature == 1  # the informative feature, cut at one of the bin edges around 0.4
    assert h.cuts[1][split.threshold_bin] in (0.0, 0.75)


def table(n=2400, seed=0):
    """Integer-valued features (fewer distinct values than max_bin: the quantile cuts are exact), NaN, a category."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 40, size=(n, 4)).astype(np.float32)
    X[:, 3] = rng.integers(0, 4, n)
    X[rng.random(n) < 0.1, 0] = np.nan
    score = np.nan_to_num(X[:, 0], nan=25) + X[:, 1] + 15 * np.isin(X[:, 3], [1, 2]) + rng.normal(0, 5, n)
    y = (score > np.median(score)).astype(np.int64)
    from modelyard.schema import Column, Schema, Task

    cols = tuple(Column(f"x{j}", "numeric", "float32") for j in range(3))
    schema = Schema((*cols, Column("kind", "categorical", "object", ("a", "b", "c", "d"))), "y", Task.CLASSIFICATION,
                    (0, 1))
    return Dataset(X, y, schema)  # NaN rows built directly: loading refuses them until the data layer takes NaN


def test_two_ranks_grow_the_trees_one_process_grows_on_the_union_of_their_shards():
    ds = table()
    params = {"n_estimators": 60, "max_depth": 4, "learning_rate": 0.2}
    one = my.train(ds, model="gradient_boosting", params=params, threads=1, seed=2)
    two = my.train(ds, model="gradient_boosting", params=params, nodes=2, seed=2, dist_timeout=120)
    assert two.extra["distributed"]["aggregate"] == "histogram_sum"
    assert two.extra["distributed"]["rows_per_rank"] == [780, 780]
    assert one.model.model.booster_.get_dump() == two.model.model.booster_.get_dump()  # the same trees
    np.testing.assert_allclose(two.model.proba_codes(ds.X), one.model.proba_codes(ds.X), rtol=1e-6, atol=1e-7)
    assert two.best_epoch == one.best_epoch and two.stop_reason == one.stop_reason
    for a, b in zip(one.history, two.history, strict=True):  # validation metrics reduced over both ranks
        assert a.val_loss == pytest.approx(b.val_loss, rel=1e-6) and a.train_loss == pytest.approx(b.train_loss, rel=1e-6)
    assert two.metrics["accuracy"] == pytest.approx(one.metrics["accuracy"])


def test_a_rank_that_dies_while_boosting_fails_the_run_naming_it(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("MODELYARD_TEST_FAULT", "exit,1,3")
    t0 = time.monotonic()
    with pytest.raises(DistributedError, match=r"rank 1 died with exit code 9 without reporting an error.*nothing "
                                               r"was registered"):
        my.train(table(), model="dist_helpers:FaultyBoosting", params={"n_estimators": 50}, nodes=2, dist_timeout=60)
    assert time.monotonic() - t0 < 60
    from test_distributed import _workers_of_this_process

    assert _workers_of_this_process() == []


def test_a_hung_rank_fails_the_run_within_the_timeout(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("MODELYARD_TEST_FAULT", "hang,0,2")
    t0 = time.monotonic()
    with pytest.raises(DistributedError, match=r"rank 0 made no progress for .* while boosting .* it is hung"):
        my.train(table(), model="dist_helpers:FaultyBoosting", params={"n_estimators": 50}, nodes=2, dist_timeout=4)
    assert time.monotonic() - t0 < 45
