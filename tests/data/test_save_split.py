"""Writing a split's rows back out: files that read back as the same rows, all or nothing, never over files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelyard.data import from_frame, load_dataset
from modelyard.data.export import write_split
from modelyard.data.split import split_record, split_rows
from modelyard.errors import DataError


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame({"age": rng.integers(18, 90, n), "income": rng.normal(5e4, 1e4, n).round(2),
                          "plan": rng.choice(["basic", "pro"], n), "churned": rng.choice(["no", "yes"], n)})
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
def test_written_parts_read_back_as_the_same_rows(tmp_path, table, suffix):
    if suffix == ".npz":
        ds = load_dataset("sklearn:iris")
        ds = type(ds)(ds.X, ds.y, ds.schema, str(tmp_path / f"in{suffix}"))
    else:
        ds = from_frame(table, "churned", source=str(tmp_path / f"in{suffix}"))
    rows = split_rows(ds, seed=3)
    files = write_split(ds, rows, tmp_path / "split", record=split_record(ds, rows, val_size=0.15, test_size=0.2,
                                                                             seed=3))
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == sorted(
        [f"train{suffix}", f"validation{suffix}", f"test{suffix}", "split.json"])
    about = json.loads((tmp_path / "split" / "split.json").read_text())
    assert about["seed"] == 3 and "seen" not in about and about["test"] == len(rows[2])
    for part, idx in zip(("train", "validation", "test"), rows, strict=True):
        back = load_dataset(files[part], target=ds.schema.target)
        want = ds.take(idx)
        assert len(back) == len(idx)
        for j, col in enumerate(want.schema.columns):  # same values (categories by name), same labels
            k = back.feature_names.index(col.name)
            if col.kind == "categorical":
                got = np.asarray(back.schema.columns[k].categories, dtype=object)[back.X[:, k].astype(int)]
                assert list(got) == list(np.asarray(col.categories, dtype=object)[want.X[:, j].astype(int)])
            else:
                assert np.array_equal(back.X[:, k], want.X[:, j])
        assert list(map(str, back.labels(back.y))) == list(map(str, want.labels(want.y)))


def test_integer_columns_stay_integers_and_sklearn_sets_become_csv(tmp_path, table):
    ds = from_frame(table, "churned", source="sklearn:made-up")
    write_split(ds, split_rows(ds), tmp_path / "out")
    frame = pd.read_csv(tmp_path / "out" / "test.csv")
    assert frame["age"].dtype.kind == "i" and list(frame.columns) == ["age", "income", "plan", "churned"]


def test_a_folder_with_files_is_refused_and_left_alone(tmp_path, table):
    ds = from_frame(table, "churned")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="is not empty; pass a new or empty folder"):
        write_split(ds, split_rows(ds), tmp_path / "busy")
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        write_split(ds, split_rows(ds), tmp_path / "file")
    write_split(ds, split_rows(ds), tmp_path / "empty")  # an empty folder, or a new one, is fine
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".split-")]  # no temporary folder left
