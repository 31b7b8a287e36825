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
from modelyard.store.packs import PACK_LIMIT
from modelyard.testing.results import overwrite_artifact

SMALL, LARGE = b"abc", bytes(range(256)) * (PACK_LIMIT // 256 + 1)


def test_small_blobs_are_packed_and_large_ones_get_a_file(tmp_path):
    store = ArtifactStore(tmp_path)
    small, large = store.put(SMALL), store.put(LARGE)
    assert small == digest_of(SMALL) and large == digest_of(LARGE)
    where = store.locate(small)
    assert where.path.parent == tmp_path / "packs" and where.path.read_bytes()[where.offset:][:3] == SMALL
    assert store.locate(large).path == tmp_path / "sha256" / large[:2] / large
    assert (tmp_path / "sha256" / large[:2] / large).read_bytes() == LARGE
    assert list((tmp_path / "tmp").iterdir()) == []
    assert store.size(small) == 3 and store.size(large) == len(LARGE)


@pytest.mark.parametrize("data", [SMALL, LARGE], ids=["packed", "file"])
def test_put_replaces_a_damaged_copy(tmp_path, data):
    store = ArtifactStore(tmp_path)
    d = store.put(data)
    overwrite_artifact(store, d, bytes([data[0] ^ 1]) + data[1:])
    with pytest.raises(CorruptArtifactError, match=d):
        store.get(d)
    assert store.put(data) == d and store.get(d) == data
    assert ArtifactStore(tmp_path).get(d) == data  # a new reader finds the good copy too


@pytest.mark.parametrize(("data", "call"), [(SMALL, "pwrite"), (LARGE, "replace")], ids=["packed", "file"])
def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch, data, call):
    store = ArtifactStore(tmp_path)
    store.put(b"before")

    def boom(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, call, boom)
    with pytest.raises(ArtifactError, match=r"cannot write artifact .*No space left"):
        store.put(data)
    monkeypatch.undo()
    assert [d for d, _ in store.digests()] == [digest_of(b"before")]
    assert [d for d, _ in ArtifactStore(tmp_path).digests()] == [digest_of(b"before")]
    assert not (tmp_path / "tmp").exists() or list((tmp_path / "tmp").iterdir()) == []
    assert store.put(data) == digest_of(data) and ArtifactStore(tmp_path).get(digest_of(data)) == data


def test_delete_then_compact_gives_the_bytes_back(tmp_path):
    store = ArtifactStore(tmp_path)
    keep, gone, big = store.put(b"keep" * 100), store.put(b"gone" * 100), store.put(LARGE)
    assert store.delete(gone) and store.delete(big) and not store.delete(gone)
    assert [d for d, _ in store.digests()] == [keep]
    before = sum(f.stat().st_size for f in (tmp_path / "packs").iterdir())
    assert store.compact() >= 400
    assert sum(f.stat().st_size for f in (tmp_path / "packs").iterdir()) < before
    assert ArtifactStore(tmp_path).get(keep) == b"keep" * 100 and store.get(keep) == b"keep" * 100
    assert not ArtifactStore(tmp_path).exists(gone) and store.compact() == 0


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
