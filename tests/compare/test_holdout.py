"""Comparisons on rows no compared version trained on: the same file, a subset, a superset, a shuffled copy,
old versions without a split record, warm-started children, sampled records, and the refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelyard.compare import CompareOptions, compare
from modelyard.data import from_frame
from modelyard.data.split import split_rows
from modelyard.errors import DataError
from modelyard.train import train
from modelyard.yard import Yard

FAST = {"resamples": 1000, "latency": False}


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], n)
    y = (x1 + 0.5 * x2 + (color == "red") + 0.3 * rng.normal(size=n)) > 0.3
    return pd.DataFrame({"x1": x1, "x2": x2, "color": color, "label": np.where(y, "pos", "neg")})


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    """A registry with t/1 (logistic, seed 0), t/2 (forest, seed 0) and t/3 (forest, seed 1), all on one table."""
    frame = _frame(600, 0)
    ds = from_frame(frame, "label", source="table.csv")
    yard = Yard(tmp_path_factory.mktemp("holdout") / "store")
    registry = yard.registry
    registry.register(train(ds, model="logistic_regression", epochs=3), "t")
    registry.register(train(ds, model="random_forest", params={"n_estimators": 10, "n_jobs": 1}), "t")
    registry.register(train(ds, model="random_forest", params={"n_estimators": 10, "n_jobs": 1}, seed=1), "t")
    yield registry, frame, ds
    yard.close()


def test_the_training_file_is_compared_on_the_rows_held_out_from_every_version(reg):
    registry, _, ds = reg
    c = registry.compare(["t/1", "t/2"], ds, **FAST)
    test = split_rows(ds)[2]  # both were split with seed 0: their common test rows
    assert c.n_rows == c.rows.used == len(test) and c.rows.given == len(ds) == 600
    assert c.rows.training == 600 - len(test) and not c.rows.allowed
    assert [k.how for k in c.rows.checks] == ["split", "split"]  # same data: the split re-derived
    assert c.rows.note.startswith(f"evaluated on the {len(test)} rows held out from every version")
    assert c.data_fingerprint == ds.fingerprint


def test_versions_with_different_splits_leave_out_the_union_of_their_training_rows(reg):
    registry, _, ds = reg
    a, b = split_rows(ds, seed=0), split_rows(ds, seed=1)
    held = np.setdiff1d(np.intersect1d(a[2], b[2]), [])
    c = registry.compare(["t/1", "t/3"], ds, **FAST)
    assert c.n_rows == len(held) and 0 < len(held) < len(a[2])


def test_found_by_content_in_a_subset_a_superset_and_a_shuffled_copy(reg):
    registry, frame, ds = reg
    train_rows, val_rows, test_rows = split_rows(ds)
    fresh = _frame(50, 99)
    # the test rows alone (what --save-split writes): nothing to leave out
    c = registry.compare(["t/1", "t/2"], from_frame(frame.iloc[test_rows], "label"), **FAST)
    assert c.n_rows == len(test_rows) and c.rows.training == 0 and {k.how for k in c.rows.checks} == {"rows"}
    assert "none of them is a training or validation row" in c.rows.note
    # a superset, shuffled: the training file's rows again plus 50 new ones
    bigger = pd.concat([frame, fresh]).sample(frac=1.0, random_state=3).reset_index(drop=True)
    c = registry.compare(["t/1", "t/2"], from_frame(bigger, "label"), **FAST)
    assert c.rows.training == len(train_rows) + len(val_rows) and c.n_rows == len(test_rows) + 50


def test_no_row_held_out_is_refused_unless_training_rows_are_allowed(reg):
    registry, frame, ds = reg
    train_rows = split_rows(ds)[0]
    only_training = from_frame(frame.iloc[train_rows], "label")
    with pytest.raises(DataError, match=r"^every one of the \d+ rows of .* was a training or validation row of t/1 "
                                        r"and t/2, so no row is held out from every version; .*--allow-training-rows"):
        registry.compare(["t/1", "t/2"], only_training, **FAST)
    c = registry.compare(["t/1", "t/2"], only_training, options=CompareOptions(resamples=1000, latency=False,
                                                                               allow_training_rows=True))
    assert c.n_rows == c.rows.training == len(train_rows) and c.rows.allowed
    assert "(--allow-training-rows): their scores there flatter them" in c.rows.note


def test_a_version_without_a_split_record_is_said_to_be_unchecked(reg):
    registry, _, ds = reg
    lr, rf = registry.get("t/1"), registry.get("t/2")
    import dataclasses

    old = dataclasses.replace(lr, split={k: lr.split[k] for k in ("train", "validation", "test")})
    c = compare([("old", registry.load_model("t/1"), old), ("t/2", registry.load_model("t/2"), rf)], ds, **FAST)
    assert [k.how for k in c.rows.checks] == ["unchecked", "split"]
    assert "could not be checked against the training rows of old" in c.rows.note
    c = compare([("a", registry.load_model("t/1"), None), ("b", registry.load_model("t/2"), None)], ds, **FAST)
    assert c.n_rows == len(ds) and "not a registered version" in c.rows.note


def test_a_warm_started_child_carries_its_parents_training_rows(reg):
    registry, _, ds = reg
    child = registry.branch("t/1", {"learning_rate": 0.02}, retrain=ds, epochs=2, seed=5)
    assert child.links["warm_start"] == registry.get("t/1").id
    own = split_rows(ds, seed=5)
    parent = split_rows(ds, seed=0)
    held = np.intersect1d(own[2], parent[2])
    c = registry.compare([child.ref, "t/2"], ds, **FAST)  # t/2 shares the parent's split
    assert c.n_rows == len(held)


def test_a_sampled_record_that_shows_overlap_is_refused(reg, monkeypatch):
    registry, frame, ds = reg
    from modelyard.data import rowhash

    monkeypatch.setattr(rowhash, "MAX_KEPT", 20)  # as if the training set were far larger than the record
    big = train(ds, model="logistic_regression", epochs=1)
    monkeypatch.undo()
    registry.register(big, "sampled")
    shuffled = from_frame(frame.sample(frac=1.0, random_state=1).reset_index(drop=True), "label")  # not same data
    with pytest.raises(DataError, match="only a sample of those training rows is recorded"):
        registry.compare(["sampled/1", "t/2"], shuffled, **FAST)
    c = registry.compare(["sampled/1", "t/2"], shuffled, allow_training_rows=True, **FAST)
    assert c.n_rows == 600 and "at least" in c.rows.note
    fresh = from_frame(_frame(80, 7), "label")  # new rows: the sample finds no overlap
    c = registry.compare(["sampled/1", "t/2"], fresh, **FAST)
    assert c.n_rows == 80 and c.rows.checks[0].how == "sample" and "sample" in c.rows.note


def test_the_row_selection_round_trips_through_the_record(reg):
    registry, _, ds = reg
    from modelyard.records.comparisons import Comparison

    c = registry.compare(["t/1", "t/2"], ds, **FAST)
    assert Comparison.from_dict(c.to_dict()) == c and c.to_dict()["rows"]["used"] == c.n_rows
    legacy = {k: v for k, v in c.to_dict().items() if k != "rows"}
    assert Comparison.from_dict(legacy).rows is None  # a comparison saved before rows were recorded still loads


def test_a_re_derived_split_that_disagrees_with_the_recorded_rows_is_not_trusted(reg):
    registry, _, ds = reg
    import dataclasses

    lr = registry.get("t/1")
    wrong = dataclasses.replace(lr, split={**lr.split, "seed": 5})  # as if the splitting rule had changed
    c = compare([("a", registry.load_model("t/1"), wrong), ("b", registry.load_model("t/2"), None)], ds, **FAST)
    assert c.rows.checks[0].how == "rows"  # found by content instead
    assert c.rows.training == len(ds) - len(split_rows(ds)[2])  # the rows it really trained on
