"""Pack files under stress: races with compaction, killed writers and compactors, threads and fork.

The races that need one precise interleaving are forced by running the other party from inside
a call of an ``os`` function (the compactor's or the reader's); the stress tests run real
processes and threads against each other. Every writer owns its byte strings, so each blob's expected state
is known exactly, and is checked from a fresh ``ArtifactStore`` (what another process would see).
Workers are this file run as a script (see the bottom).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from modelyard.errors import ArtifactError, CorruptArtifactError
from modelyard.store.artifacts import ArtifactStore, digest_of


def _before(monkeypatch, name: str, action, *, once: bool = True, after: bool = False) -> None:
    """Run ``action`` just before (or ``after``) the first (or every) call of ``os.NAME``."""
    real = getattr(os, name)
    busy: list[bool] = []

    def hook(*args, **kwargs):
        if once:
            monkeypatch.setattr(os, name, real)
        result = real(*args, **kwargs) if after else None
        if not busy:  # the action's own calls of os.NAME go straight through
            busy.append(True)
            try:
                action()
            finally:
                busy.pop()
        return result if after else real(*args, **kwargs)

    monkeypatch.setattr(os, name, hook)


def _spawn(*args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *map(str, args)], stdout=subprocess.DEVNULL)


def _started(proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while not (log.exists() and log.read_bytes().startswith(b"go\n")):
        assert proc.poll() is None and time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.005)


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


# --- one interleaving at a time ------------------------------------------------------------------
def test_a_re_put_after_another_process_deleted_the_blob_survives_a_compaction_in_flight(tmp_path, monkeypatch):
    writer = ArtifactStore(tmp_path)
    data = b"weights two versions share" * 10
    d = writer.put(data)
    for i in range(20):
        writer.put(b"another model %d" % i)
    writer.close()  # its pack is free: a compaction may rewrite it
    user = ArtifactStore(tmp_path)
    assert user.get(d) == data  # ``user`` now knows where the blob is
    gc = ArtifactStore(tmp_path)
    assert gc.delete(d)  # done before ``user`` stores the same bytes again
    _before(monkeypatch, "unlink", lambda: user.put(data))  # gc has copied the live blobs, not yet removed a file
    gc.compact()
    assert ArtifactStore(tmp_path).get(d) == data
    assert user.get(d) == data


def test_no_deleted_blob_shows_while_a_compaction_removes_the_old_indexes(tmp_path, monkeypatch):
    a, b = ArtifactStore(tmp_path), ArtifactStore(tmp_path)
    x, y, z = a.put(b"x" * 100), b.put(b"y" * 100), a.put(b"z" * 100)
    assert a.delete(y) and b.delete(x)  # each pack's index holds the deletion of a blob in the other pack
    a.close()
    seen: list[tuple[bool, bool, bool]] = []

    def look() -> None:
        fresh = ArtifactStore(tmp_path)
        seen.append((fresh.exists(x), fresh.exists(y), fresh.exists(z)))
        fresh.close()

    _before(monkeypatch, "unlink", look, once=False)
    b.compact()  # every pack is free: the deletions are settled
    look()
    assert len(seen) >= 5 and set(seen) == {(False, False, True)}


def test_a_deletion_is_kept_while_a_pack_made_during_the_compaction_holds_the_blob(tmp_path, monkeypatch):
    holder = ArtifactStore(tmp_path)
    holder.put(b"the only pack, held")
    late: list[ArtifactStore] = []
    blob = b"put while gc lists the packs" * 4

    def meanwhile() -> None:  # between gc listing the packs and locking them
        late.append(ArtifactStore(tmp_path))
        late[0].put(blob)  # the only pack is held: a new pack, which gc did not list
        holder.close()
        deleter = ArtifactStore(tmp_path)
        assert deleter.delete(digest_of(blob))  # written to the index of the pack gc is about to rewrite
        deleter.close()

    gc = ArtifactStore(tmp_path)
    _before(monkeypatch, "open", meanwhile)
    gc.compact()
    monkeypatch.undo()
    assert not ArtifactStore(tmp_path).exists(digest_of(blob))
    late[0].close()  # now every pack is free
    seen: list[bool] = []
    _before(monkeypatch, "unlink", lambda: seen.append(ArtifactStore(tmp_path).exists(digest_of(blob))), once=False)
    gc.compact()
    gc.compact()
    assert seen and not any(seen) and not ArtifactStore(tmp_path).exists(digest_of(blob))


@pytest.mark.parametrize(("call", "after"), [("listdir", True), ("open", False)], ids=["listing", "opening"])
def test_a_reader_keeps_up_with_compactions_that_follow_each_other(tmp_path, monkeypatch, call, after):
    writer = ArtifactStore(tmp_path)
    blobs = {writer.put(b"blob %d" % i * 20): b"blob %d" % i * 20 for i in range(10)}
    extra = [writer.put(b"extra %d" % i) for i in range(2)]
    writer.close()
    reader = ArtifactStore(tmp_path)
    assert all(reader.get(d) == data for d, data in blobs.items())  # the reader holds the first pack open
    other = ArtifactStore(tmp_path)
    other.delete(extra[0])
    other.compact()  # every blob moves to a second pack ...
    other.delete(extra[1])  # ... which holds dead bytes too
    other.close()
    # the reader finds the first pack gone and lists the indexes again; a compaction moves every blob on
    # to a third pack right after that listing, or as the reader opens the second pack
    _before(monkeypatch, call, lambda: ArtifactStore(tmp_path).compact(), after=after)
    assert all(reader.get(d) == data for d, data in blobs.items())
    assert len(list((tmp_path / "packs").glob("*.idx"))) == 1


def _open_deleted_files(folder: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(folder)) and target.endswith(" (deleted)"):
                found.append(target)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_a_long_lived_reader_lets_go_of_packs_another_process_compacted_away(tmp_path):
    reader = ArtifactStore(tmp_path)
    kept = []
    for round_ in range(3):
        writer = ArtifactStore(tmp_path)
        kept.append((writer.put(b"keep %d" % round_ * 100), b"keep %d" % round_ * 100))
        gone = writer.put(os.urandom(200_000))
        assert reader.get(kept[-1][0]) == kept[-1][1]  # the reader opens the pack
        writer.delete(gone)
        writer.close()
        subprocess.run([sys.executable, __file__, "compact", tmp_path], check=True)
        assert {d for d, _ in reader.digests()} == {d for d, _ in kept}
        assert all(reader.get(d) == data for d, data in kept)
    assert _open_deleted_files(tmp_path) == []  # their disk space is given back


def test_get_finds_a_blob_another_process_moved_by_compaction(tmp_path):
    writer = ArtifactStore(tmp_path)
    blobs = {writer.put(b"blob %d" % i * 30): b"blob %d" % i * 30 for i in range(50)}
    gone = writer.put(b"deleted")
    writer.close()
    cached_fd, cached_place = ArtifactStore(tmp_path), ArtifactStore(tmp_path)
    assert all(cached_fd.get(d) == data for d, data in blobs.items())  # holds the pack open
    assert len(list(cached_place.digests())) == 51  # knows the places, opened nothing
    subprocess.run([sys.executable, __file__, "delete-and-compact", tmp_path, gone], check=True)
    for store in (cached_fd, cached_place):
        assert all(store.get(d) == data for d, data in blobs.items())
        assert all(store.locate(d).path.exists() for d in blobs)
        assert not store.exists(gone) and sorted(d for d, _ in store.digests()) == sorted(blobs)


# --- fork ---------------------------------------------------------------------------------------
def _fork(child) -> int:
    """Run ``child()`` in a forked process (exit code 0 when it returns True); its exit code, or -9 if hung."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            code = 0 if child() else 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -9


needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@needs_fork
def test_a_forked_child_reads_writes_and_deletes_through_the_parents_store(tmp_path):
    store = ArtifactStore(tmp_path)
    parent = {store.put(b"parent %d" % i * 20): b"parent %d" % i * 20 for i in range(30)}
    doomed = next(iter(parent))

    def child() -> bool:
        ok = all(store.get(d) == data for d, data in parent.items())
        mine = store.put(b"written by the child")
        return ok and store.get(mine) == b"written by the child" and store.delete(doomed)

    assert _fork(child) == 0
    late = store.put(b"parent after the fork")
    fresh = ArtifactStore(tmp_path)
    assert fresh.get(digest_of(b"written by the child")) == b"written by the child"
    assert not fresh.exists(doomed) and fresh.get(late) == b"parent after the fork"
    assert all(fresh.get(d) == data for d, data in parent.items() if d != doomed)


@needs_fork
def test_a_child_forked_while_another_thread_writes_can_use_the_store(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path)
    known = store.put(b"there before the fork")
    inside, release = threading.Event(), threading.Event()
    real_pwrite = os.pwrite

    def slow_pwrite(fd, data, offset):
        if threading.current_thread().name == "writer":
            inside.set()
            release.wait(30)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", slow_pwrite)
    writer = threading.Thread(target=store.put, args=(b"written by a thread",), name="writer")
    writer.start()
    assert inside.wait(30)  # the thread is inside put (and holds the store's lock)
    try:
        code = _fork(lambda: store.get(known) == b"there before the fork" and bool(store.put(b"child")))
    finally:
        release.set()
        writer.join()
    assert code == 0
    assert ArtifactStore(tmp_path).get(digest_of(b"child")) == b"child"


@needs_fork
def test_a_forked_child_does_not_keep_the_parents_pack_from_compaction(tmp_path):
    store = ArtifactStore(tmp_path)
    gone = store.put(os.urandom(50_000))
    store.put(b"kept")
    ready_read, ready_write = os.pipe()
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: a worker that lives on (a data loader, a pool process)
        os.write(ready_write, b"r")
        os.read(go_read, 1)
        os._exit(0)
    assert os.read(ready_read, 1) == b"r"
    try:
        store.delete(gone)
        store.close()  # the parent is done with its pack
        assert ArtifactStore(tmp_path).compact() >= 50_000
    finally:
        os.write(go_write, b"g")
        os.waitpid(pid, 0)
        for fd in (ready_read, ready_write, go_read, go_write):
            os.close(fd)
    assert ArtifactStore(tmp_path).get(digest_of(b"kept")) == b"kept"


# --- stress -------------------------------------------------------------------------------------
def _blob(owner: str, i: int, rng: random.Random) -> bytes:
    return f"{owner}-{i}|".encode() * rng.randint(1, 400)


def _check_final(root: Path, live: dict[str, bytes], dead: set[str]) -> None:
    fresh = ArtifactStore(root)
    assert {d for d, _ in fresh.digests()} == set(live)
    assert all(fresh.get(d) == data for d, data in live.items())
    assert not any(fresh.exists(d) for d in dead)


@pytest.mark.timeout(120)
def test_processes_put_get_delete_while_two_others_compact(tmp_path):
    logs = [tmp_path / f"compactor{k}.log" for k in range(2)]
    compactors = [_spawn("compact-loop", tmp_path, log) for log in logs]
    for proc, log in zip(compactors, logs):
        _started(proc, log)
    workers = [_spawn("mix", tmp_path, k, 1500, tmp_path / f"w{k}.json") for k in range(3)]
    try:
        assert [w.wait(timeout=100) for w in workers] == [0, 0, 0]
    finally:
        for proc in compactors:
            _stop(proc)
    assert sum(log.read_text().count("freed") for log in logs) >= 3  # blobs really moved under the workers
    live: dict[str, bytes] = {}
    dead: set[str] = set()
    for k in range(3):
        result = json.loads((tmp_path / f"w{k}.json").read_text())
        assert result["errors"] == []
        live.update({d: bytes.fromhex(v) for d, v in result["live"].items()})
        dead.update(result["dead"])
    _check_final(tmp_path, live, dead)


@pytest.mark.timeout(120)
def test_re_puts_after_deletions_elsewhere_survive_a_compactor_running_meanwhile(tmp_path):
    compactor = _spawn("compact-loop", tmp_path)
    rng = random.Random(7)
    lost = []
    user, gc = ArtifactStore(tmp_path), ArtifactStore(tmp_path)
    try:
        for i in range(30):
            writer = ArtifactStore(tmp_path)
            for _ in range(150):
                writer.put(rng.randbytes(8000))  # bytes for the compactor to copy
            data = b"version %d" % i * 40
            d = writer.put(data)
            writer.close()
            assert user.get(d) == data
            assert gc.delete(d)
            gc.close()
            time.sleep(rng.random() * 0.01)
            user.put(data)  # after the deletion: it must stay
            time.sleep(0.03)
            if not ArtifactStore(tmp_path).exists(d):
                lost.append(i)
    finally:
        _stop(compactor)
    assert lost == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_threads_share_one_store_while_others_compact(tmp_path):
    shared = ArtifactStore(tmp_path)
    results: dict[str, tuple[dict[str, bytes], set[str]]] = {}
    errors: list[object] = []
    stop = threading.Event()

    def work(name: str, store: ArtifactStore, seed: int) -> None:
        try:
            results[name] = _mix(tmp_path, name, store, 400, random.Random(seed), errors)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(repr(e))

    def compact(store: ArtifactStore) -> None:
        while not stop.is_set():
            try:
                store.compact()
            except BaseException as e:  # noqa: BLE001
                errors.append(repr(e))
                return

    own = ArtifactStore(tmp_path)
    threads = [threading.Thread(target=work, args=(f"t{k}", shared, k)) for k in range(3)]
    threads.append(threading.Thread(target=work, args=("own", own, 9)))
    compactors = [threading.Thread(target=compact, args=(s,)) for s in (shared, ArtifactStore(tmp_path))]
    for t in threads + compactors:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    for t in compactors:
        t.join()
    assert errors == []
    live = {d: data for lv, _ in results.values() for d, data in lv.items()}
    _check_final(tmp_path, live, {d for _, dead in results.values() for d in dead})


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_writers_killed_at_random_moments_never_hand_readers_wrong_bytes(tmp_path):
    stop = threading.Event()
    problems: list[str] = []
    missing: set[str] = set()

    def read_everything() -> None:
        while not stop.is_set():
            store = ArtifactStore(tmp_path)
            for d, _ in store.digests():  # listed: its write was whole
                try:
                    store.get(d)
                except CorruptArtifactError as e:
                    problems.append(str(e))
                except ArtifactError:
                    missing.add(d)  # fine if a writer deleted it since
            store.close()

    def compact() -> None:
        store = ArtifactStore(tmp_path)
        while not stop.is_set():
            store.compact()
            time.sleep(0.02)

    helpers = [threading.Thread(target=read_everything), threading.Thread(target=compact)]
    for t in helpers:
        t.start()
    rng = random.Random(3)
    totals = {"put": 0, "deleted": 0}
    kept: set[str] = set()
    deleting: set[str] = set()
    try:
        for k in range(20):
            log = tmp_path / f"writer{k}.log"
            proc = _spawn("writer", tmp_path, k, log)
            _started(proc, log)
            time.sleep(rng.uniform(0, 0.05))
            _stop(proc)
            seen: dict[str, set[str]] = {"put": set(), "deleting": set(), "deleted": set()}
            for line in log.read_text().splitlines(keepends=True)[1:]:
                if line.endswith("\n"):  # a whole line: the call returned
                    what, d = line.split()
                    seen[what].add(d)
            fresh = ArtifactStore(tmp_path)  # every put that returned is there, every delete that returned holds
            assert all(digest_of(fresh.get(d)) == d for d in seen["put"] - seen["deleting"])
            assert not seen["deleted"] & {d for d, _ in fresh.digests()}
            fresh.close()
            totals = {what: totals[what] + len(seen[what]) for what in totals}
            kept |= seen["put"] - seen["deleting"]
            deleting |= seen["deleting"]
    finally:
        stop.set()
        for t in helpers:
            t.join()
    assert problems == [] and missing <= deleting and totals["put"] > 100 and totals["deleted"] > 10
    fresh = ArtifactStore(tmp_path)  # and every round's blobs after all the compactions
    assert kept <= {d for d, _ in fresh.digests()} and all(digest_of(fresh.get(d)) == d for d in kept)


@pytest.mark.timeout(120)
def test_compactors_killed_at_random_moments_lose_and_revive_nothing(tmp_path):
    rng = random.Random(5)
    live: dict[str, bytes] = {}
    dead: set[str] = set()
    for k in range(12):
        store = ArtifactStore(tmp_path)
        for i in range(200):
            data = _blob(f"r{k}", i, rng)
            live[store.put(data)] = data
        for d in rng.sample(sorted(live), 100):
            assert store.delete(d)
            dead.add(d)
            del live[d]
        store.close()
        log = tmp_path / f"compactor{k}.log"
        proc = _spawn("compact-loop", tmp_path, log)
        _started(proc, log)
        time.sleep(rng.uniform(0, 0.05))
        _stop(proc)
        _check_final(tmp_path, live, dead)


# --- the workers ------------------------------------------------------------------------------
def _mix(root: Path, owner: str, store: ArtifactStore, ops: int, rng: random.Random,
         errors: list) -> tuple[dict[str, bytes], set[str]]:
    """Random puts, gets, deletes and re-puts of ``owner``'s own blobs, each checked as it goes."""
    live: dict[str, bytes] = {}
    dead: dict[str, bytes] = {}
    for i in range(ops):
        r = rng.random()
        if r < 0.35 or not live:
            data = _blob(owner, i, rng)
            live[store.put(data)] = data
        elif r < 0.6:
            d = rng.choice(sorted(live))
            if store.get(d) != live[d]:
                errors.append(f"{owner}: wrong bytes for {d}")
        elif r < 0.75:
            d = rng.choice(sorted(live))
            if not store.delete(d):
                errors.append(f"{owner}: {d} was not there to delete")
            dead[d] = live.pop(d)
        elif r < 0.85 and dead:
            data = dead.pop(rng.choice(sorted(dead)))
            live[store.put(data)] = data
        elif r < 0.9:
            store.close()  # its pack is free: another may adopt or compact it; the next write takes one again
        else:  # what another process sees meanwhile
            fresh = ArtifactStore(root)
            for d in rng.sample(sorted(live), min(3, len(live))):
                if fresh.get(d) != live[d]:
                    errors.append(f"{owner}: a fresh store reads wrong bytes for {d}")
            for d in rng.sample(sorted(dead), min(3, len(dead))):
                if fresh.exists(d):
                    errors.append(f"{owner}: a fresh store sees the deleted {d}")
            fresh.close()
    return live, set(dead)


def _main(mode: str, root: str, *args: str) -> None:
    store = ArtifactStore(root)
    if mode == "compact":
        store.compact()
    elif mode == "delete-and-compact":
        store.delete(args[0])
        store.compact()
    elif mode == "compact-loop":
        with open(args[0] if args else os.devnull, "w", buffering=1) as log:
            log.write("go\n")
            while True:
                if store.compact():
                    log.write("freed\n")
    elif mode == "mix":
        errors: list[str] = []
        live, dead = _mix(Path(root), f"p{args[0]}", store, int(args[1]), random.Random(int(args[0])), errors)
        Path(args[2]).write_text(json.dumps({"live": {d: v.hex() for d, v in live.items()}, "dead": sorted(dead),
                                             "errors": errors}))
    elif mode == "writer":  # until killed
        rng = random.Random(int(args[0]))
        with open(args[1], "w", buffering=1) as log:
            log.write("go\n")
            for i in range(10**9):
                d = store.put(_blob(f"k{args[0]}", i, rng))
                log.write(f"put {d}\n")
                if rng.random() < 0.2:
                    log.write(f"deleting {d}\n")
                    store.delete(d)
                    log.write(f"deleted {d}\n")


if __name__ == "__main__":
    _main(*sys.argv[1:])
