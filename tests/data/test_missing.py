"""Rows are never lost silently: drop reports per column, the 20% limit, force, --drop-columns, missing targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import modelyard as my
from modelyard.data.dataset import MAX_DROP_SHARE
from modelyard.errors import DataError


def _msg(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text, "an error message is one line"
    return text


def _gappy(n=100, gaps=None, seed=0):
    """Numeric columns a..g; ``gaps[col]`` rows of each column are NaN (the first ones)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: rng.normal(size=n) for c in "abcdefg"})
    df["kind"] = rng.choice(["x", "y"], n)
    df["t"] = rng.choice(["p", "q"], n)
    for col, k in (gaps or {}).items():
        df.loc[: k - 1, col] = np.nan
    return df


def test_drop_missing_reports_rows_and_columns():
    df = _gappy(gaps={"a": 5, "b": 3})  # overlapping: rows 0-2 miss both
    df.loc[10, "t"] = None
    ds = my.load_dataset(df, target="t", drop_missing=True)
    r = ds.dropped
    assert len(ds) == 94 and r.rows == 100 and r.dropped == 6 and r.no_target == 1
    assert r.by_column == {"a": 5, "b": 3}
    text = r.sentence()
    assert "dropped 6 of 100 rows" in text and "1 without a value of target 't'" in text
    assert "'a' (5 rows)" in text and "'b' (3 rows)" in text


def test_drop_missing_refuses_past_the_limit_naming_the_worst_columns():
    df = _gappy(gaps={"a": 30, "b": 25, "c": 2, "d": 1})
    with pytest.raises(DataError) as e:
        my.load_dataset(df, target="t", drop_missing=True)
    msg = _msg(e)
    assert "would drop 30 of 100 rows (30%" in msg and "20%" in msg
    assert "'a' (30 rows)" in msg and "'b' (25 rows)" in msg and "'c' (2 rows)" in msg and "'d'" not in msg
    assert "--impute" in msg and "--drop-columns a,b,c" in msg and "--drop-missing=force" in msg
    ds = my.load_dataset(df, target="t", drop_missing="force")
    assert len(ds) == 70 and ds.dropped.dropped == 30 and not np.isnan(ds.X).any()


def test_the_limit_is_a_share_of_the_rows_with_a_target():
    n_ok = int(MAX_DROP_SHARE * 100)
    assert len(my.load_dataset(_gappy(gaps={"a": n_ok}), target="t", drop_missing=True)) == 100 - n_ok
    with pytest.raises(DataError, match="would drop"):
        my.load_dataset(_gappy(gaps={"a": n_ok + 1}), target="t", drop_missing=True)
    df = _gappy(gaps={"a": 10})
    df.loc[50:69, "t"] = None  # rows without a target are not counted against the limit: 10 of 80, not 30 of 100
    ds = my.load_dataset(df, target="t", drop_missing=True)
    assert ds.dropped.no_target == 20 and ds.dropped.dropped == 30 and len(ds) == 70


def test_drop_missing_removes_inf_rows_too_and_refuses_emptiness():
    df = _gappy()
    df.loc[[4, 9], "c"] = np.inf
    ds = my.load_dataset(df, target="t", drop_missing=True)
    assert len(ds) == 98 and ds.dropped.by_column == {"c": 2}
    empty = _gappy(gaps={"a": 100})
    with pytest.raises(DataError) as e:
        my.load_dataset(empty, target="t", drop_missing="force")
    assert "leaves nothing" in _msg(e) and "--drop-columns a" in _msg(e)


def test_drop_missing_value_is_checked():
    with pytest.raises(DataError, match="True, False or 'force', got 'always'"):
        my.load_dataset(_gappy(), target="t", drop_missing="always")


def test_drop_columns_leaves_columns_out_before_anything_else():
    df = _gappy(gaps={"a": 60})
    ds = my.load_dataset(df, target="t", drop_columns=["a", "kind"], drop_missing=True)
    assert ds.feature_names == list("bcdefg") and len(ds) == 100 and ds.dropped is None
    assert my.load_dataset(df, target="t", drop_columns="a,kind").feature_names == list("bcdefg")


@pytest.mark.parametrize("drop, expect", [
    (["zz", "a"], ["'zz'", "not a column", "a, b, c"]),
    (["t"], ["target column 't'"]),
    (list("abcdefg") + ["kind"], ["leaves no feature column"]),
])
def test_drop_columns_refuses_what_it_cannot_do(drop, expect):
    with pytest.raises(DataError) as e:
        my.load_dataset(_gappy(), target="t", drop_columns=drop)
    for fragment in expect:
        assert fragment in _msg(e)


def test_drop_columns_on_arrays_by_name(tmp_path):
    X = np.arange(60.0).reshape(20, 3)
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(20) % 2, feature_names=np.array(["u", "v", "w"]))
    ds = my.load_dataset(tmp_path / "d.npz", drop_columns=["v"])
    assert ds.feature_names == ["u", "w"]
    np.testing.assert_array_equal(ds.X, X[:, [0, 2]].astype(np.float32))
    with pytest.raises(DataError, match="'x'"):
        my.load_dataset(tmp_path / "d.npz", drop_columns=["x"])


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_drop_report_law(data):
    """Kept rows are exactly those with a target and no gap; each column's count is its gaps among labeled rows."""
    n = data.draw(st.integers(5, 40))
    gap = np.array(data.draw(st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=n, max_size=n)))
    no_y = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    if no_y.all():
        no_y[0] = False
    X = np.where(gap, np.nan, 1.0)
    y = np.where(no_y, np.nan, np.arange(n) + 0.5)
    labeled = ~no_y
    keep = labeled & ~gap.any(axis=1)
    if not keep.any():
        with pytest.raises(DataError):
            my.from_arrays(X, y, drop_missing="force", task="regression")
        return
    ds = my.from_arrays(X, y, drop_missing="force", task="regression")
    assert len(ds) == int(keep.sum()) and not np.isnan(ds.X).any()
    r = ds.dropped
    if keep.all():
        assert r is None
        return
    assert r.dropped == n - int(keep.sum()) and r.no_target == int(no_y.sum())
    assert r.by_column == {f"x{j}": int((gap[:, j] & labeled).sum()) for j in range(3) if (gap[:, j] & labeled).any()}
