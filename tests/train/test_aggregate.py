"""Laws of ⊕ (hypothesis): associativity, commutativity, and that uneven shards weigh by their size."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.errors import ParamError
from modelyard.models.forest import RandomForest
from modelyard.schema import Task
from modelyard.train.aggregate import (
    GradientSum,
    GramSum,
    LossGradientSum,
    Moments,
    ParameterAverage,
    Shard,
    TreeUnion,
    Weighted,
    fold,
    tree_counts,
)

settings.register_profile("aggregate", max_examples=40, deadline=None)
settings.load_profile("aggregate")

sizes = st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=5)


def _weighted(draw_seed: int, weight: float, shape=(3,)) -> Weighted:
    rng = np.random.default_rng(draw_seed)
    return Weighted(weight, {"w": rng.normal(size=shape), "b": rng.normal(size=1)})


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000), st.floats(0.5, 50), st.floats(0.5, 50))
def test_weighted_sum_is_commutative_and_associative(s1, s2, s3, w1, w2):
    agg = ParameterAverage()
    a, b, c = _weighted(s1, w1), _weighted(s2, w2), _weighted(s3, 3.0)
    ab, ba = agg.combine(a, b), agg.combine(b, a)
    assert ab.weight == ba.weight
    for k in ab.arrays:
        np.testing.assert_array_equal(ab.arrays[k], ba.arrays[k])  # float addition commutes exactly
    left, right = agg.combine(agg.combine(a, b), c), agg.combine(a, agg.combine(b, c))
    for k in left.arrays:
        np.testing.assert_allclose(left.arrays[k], right.arrays[k], rtol=1e-12, atol=1e-12)


def _chunks(n_rows: list[int], d: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(n, d)) * rng.uniform(0.1, 10) + rng.uniform(-5, 5)).astype(np.float32) for n in n_rows]


@given(sizes, st.integers(1, 4), st.integers(0, 10_000))
def test_moments_of_uneven_shards_equal_moments_of_the_union(n_rows, d, seed):
    parts = _chunks(n_rows, d, seed)
    agg = Moments()
    total = fold(agg, [agg.local(None, Shard(p, None)) for p in parts])
    everything = np.concatenate(parts).astype(np.float64)
    assert total.count == len(everything)
    np.testing.assert_allclose(total.mean, everything.mean(axis=0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(total.std(), everything.std(axis=0), rtol=1e-9, atol=1e-9)


@given(st.lists(st.integers(1, 30), min_size=3, max_size=3), st.integers(1, 3), st.integers(0, 10_000))
def test_moments_combine_laws(n_rows, d, seed):
    agg = Moments()
    a, b, c = (agg.local(None, Shard(p, None)) for p in _chunks(n_rows, d, seed))
    ab, ba = agg.combine(a, b), agg.combine(b, a)
    np.testing.assert_array_equal(ab.mean, ba.mean)  # written symmetrically: exactly commutative
    np.testing.assert_array_equal(ab.m2, ba.m2)
    left, right = agg.combine(ab, c), agg.combine(a, agg.combine(b, c))
    np.testing.assert_allclose(left.mean, right.mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(left.m2, right.m2, rtol=1e-10, atol=1e-9)


@given(sizes, st.integers(0, 10_000))
def test_gradient_sum_over_uneven_shards_is_the_full_batch_gradient(n_rows, seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    module = torch.nn.Linear(3, 1).double()
    loss_fn = lambda out, y: torch.nn.functional.mse_loss(out[:, 0], y)
    X = rng.normal(size=(sum(n_rows), 3))
    y = rng.normal(size=sum(n_rows))
    agg = GradientSum(loss_fn)
    bounds = np.concatenate([[0], np.cumsum(n_rows)])
    parts = [agg.local(module, Shard(X[a:b], y[a:b])) for a, b in itertools.pairwise(bounds)]
    agg.apply(module, fold(agg, parts))
    got = {n: p.grad.clone() for n, p in module.named_parameters()}
    module.zero_grad()
    loss_fn(module(torch.as_tensor(X)), torch.as_tensor(y)).backward()
    for n, p in module.named_parameters():
        torch.testing.assert_close(got[n], p.grad, rtol=1e-10, atol=1e-12)
    # and a different order of the same shards gives the same total
    rev = fold(agg, parts[::-1])
    for k, v in fold(agg, parts).arrays.items():
        np.testing.assert_allclose(rev.arrays[k], v, rtol=1e-12, atol=1e-12)


@given(sizes, st.integers(0, 10_000))
def test_parameter_average_weighs_shards_by_their_size(n_rows, seed):
    rng = np.random.default_rng(seed)
    agg = ParameterAverage()
    modules, thetas = [], []
    for _ in n_rows:
        m = torch.nn.Linear(2, 1).double()
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(torch.as_tensor(rng.normal(size=tuple(p.shape))))
        modules.append(m)
        thetas.append(torch.cat([p.detach().reshape(-1) for p in m.parameters()]).numpy())
    parts = [agg.local(m, Shard(np.zeros((n, 2)), None)) for m, n in zip(modules, n_rows, strict=True)]
    target = torch.nn.Linear(2, 1).double()
    agg.apply(target, fold(agg, parts))
    got = torch.cat([p.detach().reshape(-1) for p in target.parameters()]).numpy()
    expected = np.average(np.stack(thetas), axis=0, weights=n_rows)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=8), st.integers(8, 400))
def test_tree_counts_are_proportional_and_sum_to_n_estimators(shard_sizes, n_estimators):
    counts = tree_counts(n_estimators, shard_sizes)
    assert sum(counts) == n_estimators
    assert min(counts) >= 1
    share = np.array(shard_sizes) / sum(shard_sizes) * (n_estimators - len(shard_sizes))
    assert np.all(np.abs(np.array(counts) - 1 - share) <= 1.0)  # within one tree of the exact share


def test_tree_counts_refuse_fewer_trees_than_ranks():
    with pytest.raises(ParamError, match="n_estimators=2 is fewer than the 3 ranks"):
        tree_counts(2, [5, 5, 5])


def _forest_trees(state) -> list[bytes]:
    """Each tree of a forest state as bytes (to compare forests as multisets of trees)."""
    counts = state["tree.node_count"]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    keys = sorted(k for k in state if k.startswith("tree.") and k not in ("tree.node_count", "tree.max_depth"))
    return sorted(b"".join(np.asarray(state[k])[a:b].tobytes() for k in keys) for a, b in itertools.pairwise(offsets))


def test_tree_union_is_commutative_and_associative_as_a_multiset_of_trees():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    sizes_ = [60, 150, 90]
    bounds = np.concatenate([[0], np.cumsum(sizes_)])
    model = RandomForest(task=Task.CLASSIFICATION, n_classes=2, n_estimators=12, n_jobs=1)
    states = []
    for r, (a, b) in enumerate(itertools.pairwise(bounds)):
        states.append(TreeUnion(sizes_, r, seed=0).local(model, Shard(X[a:b], y[a:b], int(a), 300)))
    agg = TreeUnion(sizes_, 0)
    a, b, c = states
    assert _forest_trees(agg.combine(a, b)) == _forest_trees(agg.combine(b, a))
    assert _forest_trees(agg.combine(agg.combine(a, b), c)) == _forest_trees(agg.combine(a, agg.combine(b, c)))
    total = fold(agg, states)
    assert len(total["tree.node_count"]) == 12
    assert [len(s["tree.node_count"]) for s in states] == tree_counts(12, sizes_)  # bigger shard, more trees
    forest = agg.apply(model, total)
    assert (forest.predict(X) == y).mean() > 0.9


# --- the exact solvers' ⊕: full-batch loss/gradient sums and Gram sums ---------------------------------------------

LOSS_CASES = {"squared": 1, "logistic": 1, "multinomial": 3}


def _problem(loss: str, n: int, seed: int, weighted: bool):
    rng = np.random.default_rng(seed)
    d = 4
    X = (rng.normal(size=(n, d)) * [1.0, 3.0, 0.2, 50.0] + [0.0, 5.0, -1.0, 1e3]).astype(np.float32)
    if loss == "squared":
        y = rng.normal(size=n)
    elif loss == "logistic":
        y = (rng.uniform(size=n) < 0.4).astype(np.float64)
    else:
        y = rng.integers(0, 3, size=n)
    w = rng.uniform(0.1, 3.0, size=n) if weighted else None
    return X, y, w


def _shards(X, y, w, n_rows):
    bounds = np.concatenate([[0], np.cumsum(n_rows)])
    return [Shard(X[a:b], y[a:b], int(a), len(X), None if w is None else w[a:b]) for a, b in itertools.pairwise(bounds)]


@given(st.sampled_from(sorted(LOSS_CASES)), st.lists(st.integers(1, 60), min_size=2, max_size=4), st.integers(0, 10_000),
       st.booleans())
def test_loss_and_gradient_summed_over_shards_equal_the_union_to_float64_rounding(loss, n_rows, seed, weighted):
    X, y, w = _problem(loss, sum(n_rows), seed, weighted)
    k = LOSS_CASES[loss]
    mean, scale = X.astype(np.float64).mean(axis=0), X.astype(np.float64).std(axis=0)
    agg = LossGradientSum(loss, k, mean, scale, lam=0.3)
    theta = np.random.default_rng(seed + 1).normal(size=(X.shape[1] + 1) * k)
    parts = [agg.local(theta, sh) for sh in _shards(X, y, w, n_rows)]
    whole = agg.local(theta, Shard(X, y, weight=w))
    total = fold(agg, parts)
    assert total.weight == pytest.approx(whole.weight, rel=1e-14)
    for key in ("loss", "grad"):
        np.testing.assert_allclose(total.arrays[key], whole.arrays[key], rtol=1e-11, atol=1e-11 * len(X))
    f, g = agg.apply(theta, total)
    f1, g1 = agg.apply(theta, whole)
    assert f == pytest.approx(f1, rel=1e-12)
    np.testing.assert_allclose(g, g1, rtol=1e-10, atol=1e-12)


@given(st.sampled_from(sorted(LOSS_CASES)), st.lists(st.integers(1, 30), min_size=3, max_size=3), st.integers(0, 10_000))
def test_loss_gradient_sum_combine_laws(loss, n_rows, seed):
    X, y, w = _problem(loss, sum(n_rows), seed, weighted=True)
    k = LOSS_CASES[loss]
    agg = LossGradientSum(loss, k, np.zeros(X.shape[1]), np.ones(X.shape[1]), lam=0.0)
    theta = np.random.default_rng(seed).normal(size=(X.shape[1] + 1) * k) * 0.01
    a, b, c = (agg.local(theta, sh) for sh in _shards(X, y, w, n_rows))
    ab, ba = agg.combine(a, b), agg.combine(b, a)
    for key in ab.arrays:
        np.testing.assert_array_equal(ab.arrays[key], ba.arrays[key])
    left, right = agg.combine(ab, c), agg.combine(a, agg.combine(b, c))
    for key in left.arrays:
        np.testing.assert_allclose(left.arrays[key], right.arrays[key], rtol=1e-12, atol=1e-9)


@given(st.lists(st.integers(1, 60), min_size=2, max_size=4), st.integers(0, 10_000), st.booleans())
def test_gram_sums_over_shards_equal_the_union_and_solve_the_same(n_rows, seed, weighted):
    X, y, w = _problem("squared", sum(n_rows), seed, weighted)
    mean, scale = X.astype(np.float64).mean(axis=0), X.astype(np.float64).std(axis=0)
    agg = GramSum(X[0].astype(np.float64), mean, scale, lam=0.05)
    parts = [agg.local(None, sh) for sh in _shards(X, y, w, n_rows)]
    whole = agg.local(None, Shard(X, y, weight=w))
    total = fold(agg, parts)
    np.testing.assert_allclose(total.arrays["sums"], whole.arrays["sums"], rtol=1e-11, atol=1e-10)
    ab, ba = agg.combine(parts[0], parts[1]), agg.combine(parts[1], parts[0])
    np.testing.assert_array_equal(ab.arrays["sums"], ba.arrays["sums"])
    a, b = agg.apply(None, total), agg.apply(None, whole)
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-8, atol=1e-10)
    assert a.intercept == pytest.approx(b.intercept, rel=1e-8, abs=1e-10)
