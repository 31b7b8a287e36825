"""Folder-specific behaviour of the artifact store and the safetensors state format."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelyard.errors import ArtifactError, CorruptArtifactError
from modelyard.store.artifacts import (
    ArtifactStore,
    digest_of,
    split_storage_url,
    state_from_bytes,
    state_to_bytes,
)


def test_layout_is_content_addressed_and_leaves_no_temporary_files(tmp_path):
    store = ArtifactStore(tmp_path)
    d = store.put(b"abc")
    assert d == digest_of(b"abc")
    assert (tmp_path / "sha256" / d[:2] / d).read_bytes() == b"abc"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_put_replaces_a_damaged_copy(tmp_path):
    store = ArtifactStore(tmp_path)
    d = store.put(b"good bytes")
    (tmp_path / "sha256" / d[:2] / d).write_bytes(b"bad bytes!")
    with pytest.raises(CorruptArtifactError):
        store.get(d)
    assert store.put(b"good bytes") == d and store.get(d) == b"good bytes"


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path)

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(ArtifactError, match=r"cannot write artifact .*No space left"):
        store.put(b"data")
    monkeypatch.undo()
    assert list((tmp_path / "tmp").iterdir()) == [] and list(store.digests()) == []


def test_unwritable_location_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ArtifactError, match="cannot write artifact"):
        ArtifactStore(blocker / "artifacts").put(b"x")


def test_file_urls_and_digests_listing(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}")
    assert store.url == str(tmp_path)
    a, b = store.put(b"1"), store.put(b"2")
    listed = dict(store.digests())
    assert sorted(listed) == sorted([a, b]) and all(t > 0 for t in listed.values())


def test_storage_options_come_from_the_query_string():
    assert split_storage_url("s3://b/p?endpoint_url=http://127.0.0.1:9000&anon=false&use_ssl=true") == (
        "s3://b/p", {"endpoint_url": "http://127.0.0.1:9000", "anon": False, "use_ssl": True})
    assert split_storage_url("/plain/folder") == ("/plain/folder", {})
    store = ArtifactStore("s3://b/p?endpoint_url=http://h:1", storage_options={"anon": True})
    assert store.url == "s3://b/p" and store.storage_options == {"endpoint_url": "http://h:1", "anon": True}


_arrays = st.dictionaries(
    st.text("abcdefghij._", min_size=1, max_size=8),
    hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    ),
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(_arrays)
def test_state_round_trips_exactly_and_deterministically(state):
    data = state_to_bytes(state)
    assert data == state_to_bytes(dict(reversed(list(state.items()))))  # key order does not matter
    back = state_from_bytes(data)
    assert set(back) == set(state)
    for k, v in state.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k], v)


def test_state_refuses_object_arrays_and_reads_no_garbage():
    with pytest.raises(ArtifactError, match="dtype object"):
        state_to_bytes({"x": np.array(["a", None], dtype=object)})
    with pytest.raises(CorruptArtifactError, match="not valid safetensors"):
        state_from_bytes(b"\x80\x04\x95 this is a pickle header, not safetensors")
