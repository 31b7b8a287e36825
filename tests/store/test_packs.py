"""Pack files of a local artifact store: several writers, crashes, deletion and compaction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from modelyard.errors import ArtifactError
from modelyard.store.artifacts import ArtifactStore, digest_of

WRITER = """
import sys
from modelyard.store.artifacts import ArtifactStore
store = ArtifactStore(sys.argv[1])
for i in range(int(sys.argv[3])):
    store.put(f"{sys.argv[2]}-{i}".encode() * 50)
    if i == 0:
        print("started", flush=True)
"""


def _packs(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "packs").iterdir() if p.suffix == ".pack")


def test_writers_in_parallel_processes_each_get_a_pack_and_every_blob_is_readable(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"w{k}", "200"]) for k in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    store = ArtifactStore(tmp_path)
    expected = {digest_of(f"w{k}-{i}".encode() * 50) for k in range(4) for i in range(200)}
    assert {d for d, _ in store.digests()} == expected
    assert all(store.get(d) for d in expected)
    assert 1 <= len(_packs(tmp_path)) <= 4


def test_a_later_process_adopts_a_free_pack_instead_of_making_one(tmp_path):
    for k in range(3):
        subprocess.run([sys.executable, "-c", WRITER, str(tmp_path), f"run{k}", "5"], check=True)
    assert len(_packs(tmp_path)) == 1 and len(list(ArtifactStore(tmp_path).digests())) == 15


def test_a_killed_writer_leaves_only_whole_blobs_and_the_next_one_carries_on(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "k", "1000000"], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"started"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    store = ArtifactStore(tmp_path)
    listed = [d for d, _ in store.digests()]
    assert listed and all(digest_of(store.get(d)) == d for d in listed)
    idx = next((tmp_path / "packs").glob("*.idx"))
    with open(idx, "ab") as f:  # a torn entry, as a kill between two writes of it would leave
        f.write(b"\x01" * 33)
    with open(idx.with_suffix(".pack"), "ab") as f:  # and a torn record
        f.write(b"MYPK" + b"\x02" * 20)
    after = ArtifactStore(tmp_path)
    fresh = after.put(b"after the crash")
    assert after.get(fresh) == b"after the crash"
    again = ArtifactStore(tmp_path)
    assert sorted(d for d, _ in again.digests()) == sorted([*listed, fresh])
    assert all(digest_of(again.get(d)) == d for d in [*listed, fresh])


def test_compaction_skips_a_pack_a_live_process_holds_and_keeps_its_deletions(tmp_path):
    live = ArtifactStore(tmp_path)
    held = live.put(b"in the live writer's pack")
    subprocess.run([sys.executable, "-c", WRITER, str(tmp_path), "p", "3"], check=True)  # a second pack
    assert len(_packs(tmp_path)) == 2
    gc = ArtifactStore(tmp_path)
    assert gc.delete(held)  # its bytes sit in ``live``'s pack, which gc cannot rewrite
    victim = digest_of(b"p-0" * 50)
    assert gc.delete(victim)
    assert gc.compact() > 0
    fresh = ArtifactStore(tmp_path)
    assert not fresh.exists(held) and not fresh.exists(victim)
    assert fresh.get(digest_of(b"p-1" * 50)) == b"p-1" * 50
    with pytest.raises(ArtifactError, match="missing"):
        fresh.get(held)
    live.close()
    assert ArtifactStore(tmp_path).compact() > 0  # now that pack is free too
    assert not ArtifactStore(tmp_path).exists(held)


def test_a_reader_with_a_stale_index_finds_blobs_moved_by_compaction(tmp_path):
    writer = ArtifactStore(tmp_path)
    keep = writer.put(b"keep me")
    gone = writer.put(b"drop me")
    reader = ArtifactStore(tmp_path)
    assert reader.get(keep) == b"keep me"  # the reader now caches where ``keep`` was
    writer.delete(gone)
    writer.close()
    ArtifactStore(tmp_path).compact()
    assert reader.get(keep) == b"keep me" and reader.put(b"keep me") == keep
    assert ArtifactStore(tmp_path).get(keep) == b"keep me"


def test_re_putting_a_blob_refreshes_its_time_for_the_gc_age_guard(tmp_path):
    store = ArtifactStore(tmp_path)
    d = store.put(b"reused")
    first = dict(store.digests())[d]
    time.sleep(0.01)
    store.put(b"reused")
    assert dict(ArtifactStore(tmp_path).digests())[d] > first


def test_orphan_pack_files_without_an_index_are_removed_when_old(tmp_path):
    store = ArtifactStore(tmp_path)
    store.put(b"x")
    orphan = tmp_path / "packs" / ("ab" * 16 + ".pack")
    orphan.write_bytes(b"MYPK")
    store.compact()
    assert orphan.exists()  # young: a writer may be about to create its index
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    store.compact()
    assert not orphan.exists() and store.get(digest_of(b"x")) == b"x"


class TwoStores(RuleBasedStateMachine):
    """Two store objects on one folder (two processes' views), against a dict of what must be there."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)
        self.stores = [ArtifactStore(self.root), ArtifactStore(self.root)]
        self.model: dict[str, bytes] = {}

    @rule(k=st.integers(0, 1), data=st.binary(max_size=64))
    def put(self, k: int, data: bytes) -> None:
        self.model[self.stores[k].put(data)] = data

    @rule(k=st.integers(0, 1), data=st.binary(max_size=64))
    def delete(self, k: int, data: bytes) -> None:
        d = digest_of(data)
        assert self.stores[k].delete(d) == (d in self.model)
        self.model.pop(d, None)

    @rule(k=st.integers(0, 1))
    def compact(self, k: int) -> None:
        self.stores[1 - k].close()  # compaction rewrites only packs no writer holds
        self.stores[k].compact()

    @rule(k=st.integers(0, 1))
    def reopen(self, k: int) -> None:
        self.stores[k].close()
        self.stores[k] = ArtifactStore(self.root)

    @invariant()
    def both_views_agree_with_the_model(self) -> None:
        for store in self.stores:
            assert {d for d, _ in store.digests()} == set(self.model)
            for d, data in self.model.items():
                assert store.get(d) == data

    def teardown(self) -> None:
        for store in self.stores:
            store.close()
        self.tmp.cleanup()


TestTwoStores = TwoStores.TestCase
TestTwoStores.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)


def test_a_pack_file_removed_by_hand_reads_as_missing(tmp_path):
    store = ArtifactStore(tmp_path)
    d = store.put(b"in a pack whose file goes")
    store.close()
    next((tmp_path / "packs").glob("*.pack")).unlink()  # its index stays
    with pytest.raises(ArtifactError, match="missing"):
        ArtifactStore(tmp_path).get(d)


def test_a_clock_stepping_back_does_not_reorder_a_blobs_entries(tmp_path, monkeypatch):
    """Entries are ordered by their stamp; a delete after a put stays newer even if the wall clock went back."""
    store = ArtifactStore(tmp_path)
    d = store.put(b"weights")
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() - 3_600 * 10**9)  # an hour back (NTP step, VM restore)
    assert store.delete(d)
    monkeypatch.undo()
    assert not store.exists(d) and not ArtifactStore(tmp_path).exists(d)
    assert store.put(b"weights") == d and ArtifactStore(tmp_path).get(d) == b"weights"
