"""A rank's shard of a Parquet file: only its row groups are read, and the ranks' parts add up to the single-process split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import modelyard as my
from modelyard.data.split import split
from modelyard.train.shards import PARTS, load_rank_data


class OneRankOf:
    """The collectives as rank ``rank`` of ``world`` sees them, with every other rank sending a copy of its data.

    Enough for reading without --drop-missing: the only collective there is the fingerprint's gather.
    """

    def __init__(self, rank: int, world: int):
        self.rank, self.world_size = rank, world

    def gather(self, arr):
        return [np.asarray(arr)] * self.world_size


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    n = 1000
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    frame["kind"] = rng.choice(["x", "y", "z"], n)
    frame["label"] = np.where(frame["a"] + (frame["kind"] == "x") > 0.2, "up", "down")
    path = tmp_path / "t.parquet"
    frame.to_parquet(path, row_group_size=100)
    return path


def test_each_rank_reads_only_its_row_groups_and_the_parts_concatenate_to_the_single_process_split(table, monkeypatch):
    calls = []
    original = pq.ParquetFile.read_row_groups

    def spy(self, row_groups, *args, **kwargs):
        calls.append(list(row_groups))
        return original(self, row_groups, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", spy)
    world = 3
    ranks = [load_rank_data(table, OneRankOf(r, world), target="label", task=None, drop_missing=False,
                            val_size=0.15, test_size=0.2, seed=4) for r in range(world)]
    # rows 0-333, 333-667, 667-1000 in groups of 100: each rank touches 4 groups of 10
    assert calls == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    ds = my.load_dataset(str(table), target="label")
    for r in ranks:
        assert r.schema == ds.schema and r.sharded_read
    for name, part in zip(PARTS, split(ds, val_size=0.15, test_size=0.2, seed=4), strict=True):
        X = np.concatenate([r.parts[name][0] for r in ranks])
        y = np.concatenate([r.parts[name][1] for r in ranks])
        np.testing.assert_array_equal(X, part.X)
        np.testing.assert_array_equal(y, part.y)
        assert ranks[0].sizes[name] == len(part)


def test_a_bad_target_is_refused_with_the_columns_named(table):
    with pytest.raises(my.DataError, match="target column 'nope' is not in .* its columns are: a, b, c, kind, label"):
        load_rank_data(table, OneRankOf(0, 2), target="nope", task=None, drop_missing=False,
                       val_size=0.15, test_size=0.2, seed=0)
