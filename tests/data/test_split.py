"""split(): seeded, stratified, disjoint; shard(): n disjoint shards covering every row exactly once."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import modelyard as my
from modelyard.data.split import shard_indices, split_indices
from modelyard.errors import DataError


def _rows(ds) -> set[tuple]:
    return {tuple(r) for r in np.column_stack([ds.X, ds.y])}


def _labelled(n: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.arange(n), rng.normal(size=n)])  # first column makes every row unique
    return my.from_arrays(X, rng.integers(0, k, n), task="classification")


def test_split_is_deterministic_under_a_seed():
    ds = my.load_dataset("sklearn:wine")
    a = my.split(ds, seed=7)
    b = my.split(ds, seed=7)
    c = my.split(ds, seed=8)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.X, y.X) and np.array_equal(x.y, y.y)
    assert not np.array_equal(a[2].X, c[2].X)


def test_split_parts_are_disjoint_and_cover():
    ds = _labelled(500, 3)
    parts = my.split(ds, val_size=0.15, test_size=0.2, seed=1)
    sets = [_rows(p) for p in parts]
    assert sum(len(s) for s in sets) == len(ds) == len(set.union(*sets))
    assert [len(p) for p in parts] == pytest.approx([325, 75, 100], abs=3)


def test_split_is_stratified():
    ds = _labelled(1000, 4, seed=3)
    overall = np.bincount(ds.y, minlength=4) / len(ds)
    for part in my.split(ds, seed=0):
        frac = np.bincount(part.y, minlength=4) / len(part)
        np.testing.assert_allclose(frac, overall, atol=0.01)


def test_regression_split_keeps_sizes():
    ds = my.load_dataset("sklearn:diabetes")
    train, val, test = my.split(ds, val_size=0.1, test_size=0.3, seed=0)
    assert len(test) == round(0.3 * len(ds)) and len(val) == round(0.1 * len(ds))
    assert len(train) + len(val) + len(test) == len(ds)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(10, 400), k=st.integers(2, 5), seed=st.integers(0, 2**32 - 1),
    val=st.floats(0.05, 0.4), test=st.floats(0.05, 0.4),
)
def test_split_indices_partition_the_rows(n, k, seed, val, test):
    y = np.arange(n) % k
    parts = split_indices(y, n, (val, test), seed=seed, stratify=True)
    joined = np.concatenate(parts)
    assert np.array_equal(np.sort(joined), np.arange(n))
    assert all(np.all(np.diff(p) > 0) for p in parts)
    again = split_indices(y, n, (val, test), seed=seed, stratify=True)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 5000), n_shards=st.integers(1, 64))
def test_shard_indices_are_disjoint_and_cover(n, n_shards):
    if n_shards > n:
        with pytest.raises(DataError):
            shard_indices(n, n_shards)
        return
    slices = shard_indices(n, n_shards)
    assert len(slices) == n_shards
    covered = np.concatenate([np.arange(n)[s] for s in slices])
    assert np.array_equal(covered, np.arange(n))  # disjoint, covering, in order
    sizes = [s.stop - s.start for s in slices]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


@settings(max_examples=25, deadline=None)
@given(n=st.integers(10, 300), n_shards=st.integers(1, 10))
def test_shard_of_a_dataset(n, n_shards):
    ds = _labelled(n, 2)
    shards = my.shard(ds, n_shards)
    assert sum(len(s) for s in shards) == len(ds)
    assert set.union(*(_rows(s) for s in shards)) == _rows(ds)
    assert all(s.schema == ds.schema for s in shards)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3"])
def test_shard_refuses_bad_counts(bad):
    with pytest.raises(DataError, match="number of shards"):
        my.shard(_labelled(20, 2), bad)


# --- the split record: enough to re-derive the split, and the training rows by content -----------------------

def test_split_record_re_derives_exactly_the_split_of_the_same_data():
    from modelyard.data import load_dataset
    from modelyard.data.split import rederive, split_record, split_rows

    ds = load_dataset("sklearn:wine")
    rows = split_rows(ds, val_size=0.1, test_size=0.3, seed=7)
    record = split_record(ds, rows, val_size=0.1, test_size=0.3, seed=7)
    assert {k: record[k] for k in ("train", "validation", "test", "rows", "seed", "stratify")} == {
        "train": len(rows[0]), "validation": len(rows[1]), "test": len(rows[2]), "rows": len(ds), "seed": 7,
        "stratify": True}
    again = rederive(ds, record)
    assert again is not None and all(np.array_equal(a, b) for a, b in zip(again, rows, strict=True))
    assert rederive(ds.take(np.arange(len(ds) - 1)), record) is None  # other data: no guess
    assert rederive(ds, {k: v for k, v in record.items() if k != "seed"}) is None  # an old record: no guess


@pytest.mark.parametrize("fractions", [(float("nan"), 0.2), (0.15, float("nan")), (float("inf"), 0.1),
                                       (0.15, -float("inf"))])
def test_split_fractions_refuse_nan_and_infinity(fractions):
    with pytest.raises(DataError, match="must each be >= 0 and sum to less than 1"):
        split_indices(None, 100, fractions, seed=0, stratify=False)
