"""Row hashes and the record of a version's training rows: laws of the hash, exact lookups, honest samples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from modelyard.data.rowhash import SeenRows, row_hashes, seen_record

finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 30), st.integers(1, 6)), elements=finite),
       st.integers(0, 2**31 - 1))
def test_a_row_hash_depends_on_the_row_alone_not_its_position(X, seed):
    y = np.arange(len(X)) % 3
    perm = np.random.default_rng(seed).permutation(len(X))
    assert np.array_equal(row_hashes(X, y)[perm], row_hashes(X[perm], y[perm]))


def test_signed_zero_and_nan_payloads_hash_alike_and_any_change_differs():
    X = np.array([[0.0, np.nan, 1.5]], dtype=np.float32)
    other_nan = np.frombuffer(np.uint32(0x7FC00001).tobytes(), dtype=np.float32)[0]
    same = np.array([[-0.0, other_nan, 1.5]], dtype=np.float32)
    assert row_hashes(X, [1]) == row_hashes(same, [1])
    for changed, y in ((np.array([[0.0, np.nan, 1.25]], np.float32), [1]), (X, [2]), (X[:, [1, 0, 2]], [1])):
        assert row_hashes(changed, y) != row_hashes(X, [1])
    assert row_hashes(X, None) != row_hashes(X, [0])  # the target is part of a row


def test_a_complete_record_finds_exactly_its_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4)).astype(np.float32)
    y = rng.integers(0, 2, 500)
    record = seen_record(row_hashes(X[:300], y[:300]))
    assert record["complete"] and record["rows"] == 300
    seen, known = SeenRows(record).match(row_hashes(X, y))
    assert known.all() and seen[:300].all() and not seen[300:].any()


def test_a_sampled_record_knows_only_part_of_the_space_and_never_misses_there():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 3)).astype(np.float32)
    h = row_hashes(X, None)
    rows = SeenRows(seen_record(h[:3000], max_kept=300))
    assert not rows.complete and 0.05 < rows.sampled_fraction < 0.2  # about 300 / 3000 of the hash space
    seen, known = rows.match(h)
    assert known.sum() < len(h)  # most rows cannot be told apart from a sample
    assert seen[:3000][known[:3000]].all() and not seen[3000:].any()  # where it can tell, it is right
    assert seen[:3000].sum() == 300


def test_the_record_is_small_and_json_safe():
    import json

    h = row_hashes(np.random.default_rng(2).normal(size=(16384, 5)).astype(np.float32), None)
    text = json.dumps(seen_record(h))
    assert len(text) < 16384 * 4.5  # about 3 bytes per row, base64


def test_an_unknown_hash_name_is_refused():
    with pytest.raises(ValueError, match="unknown row hash"):
        SeenRows({"hash": "md5", "kept": "", "rows": 0, "complete": True})
