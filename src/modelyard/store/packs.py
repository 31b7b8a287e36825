"""Pack files: small artifacts appended to a few shared files, so a registration creates no file of its own.

Creating a file is the slowest part of a small registration on the disks we measured (0.3-0.6 ms
for the inode, the temporary name and the rename, against microseconds to append the same
bytes to an open file), so a local store keeps blobs smaller than ``PACK_LIMIT`` in packs, as
git does. Layout under ``ROOT/packs/``::

    ID.pack   records: b"MYPK" | sha256 (32 bytes) | length (u64) | the bytes
    ID.idx    76-byte entries: sha256 | pack ID (16 bytes) | offset | length (all ones: deleted) | time_ns | crc32
              (a deletion's pack ID is all zeros, or all ones once compaction settled it)

A writer (one store object in one process) appends to one pack at a time, which it holds an
exclusive ``flock`` on; it adopts a pack no live process holds, or creates one. A blob is
appended to the pack first and then indexed, and readers know only indexed blobs, so a reader
never sees a partial blob and a killed writer leaves at most unindexed bytes (entries carry a
CRC, so a torn entry is ignored). Every read checks the record header, and the caller checks
the sha256. Of all entries of a digest, in every index, the newest (by ``time_ns``) says where
it is or that it was deleted; a re-used blob gets a fresh entry, which is what gc's age guard
reads. ``compact`` copies the live blobs of packs that hold dead bytes (and that no writer
holds) into the caller's pack and then removes the old files.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import struct
import threading
import time
import weakref
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PACK_LIMIT", "Location", "PackStore", "fsync_dir"]

PACK_LIMIT = 1 << 20  # blobs below 1 MiB are packed; a larger one is worth a file of its own
_ROLL_BYTES = 256 << 20  # a writer moves to a new pack past this size
_MAGIC = b"MYPK"
_HEAD = struct.Struct("<4s32sQ")  # record header
_BODY = struct.Struct("<32s16sQQQ")  # index entry without its crc
_ENTRY = struct.Struct("<32s16sQQQI")  # 76 bytes
_DELETED = (1 << 64) - 1
_NO_PACK = bytes(16)
_SETTLED = b"\xff" * 16  # the pack of a deletion that outlived every older entry of its blob
_BINARY = getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class Location:
    """Where a packed blob is: ``offset`` and ``length`` of its bytes inside the file ``path``."""

    path: Path
    offset: int
    length: int
    time: float  # seconds since the epoch when it was written or last re-used


@dataclass(frozen=True)
class _Entry:
    pack: bytes
    offset: int
    length: int  # _DELETED for a deletion
    time_ns: int
    index: bytes  # the pack whose index holds this entry


class _Writer:
    """The pack this process appends to, held with an exclusive lock until closed."""

    def __init__(self, folder: Path, fsync: bool, *, adopt: bool = True):
        folder.mkdir(parents=True, exist_ok=True)
        if adopt and any(self._adopt(folder, name) for name in sorted(_pack_ids(folder))):
            return  # any() stops at the first pack adopted
        self.pack = secrets.token_bytes(16)
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | _BINARY
        self.pack_fd = os.open(folder / f"{self.pack.hex()}.pack", flags, 0o644)
        try:
            _lock(self.pack_fd, blocking=True)
            self.idx_fd = os.open(folder / f"{self.pack.hex()}.idx", flags, 0o644)  # listed (so visible) from here on
        except BaseException:
            os.close(self.pack_fd)
            raise
        self.size = self.idx_size = 0
        if fsync:
            fsync_dir(folder)

    def _adopt(self, folder: Path, name: str) -> bool:
        try:
            fd = os.open(folder / f"{name}.pack", os.O_RDWR | _BINARY)
        except FileNotFoundError:
            return False
        try:
            # held by a live process, full, or compacted away between our open and our lock
            if not _lock(fd, blocking=False) or os.fstat(fd).st_size >= _ROLL_BYTES or os.fstat(fd).st_nlink == 0:
                os.close(fd)
                return False
            idx_fd = os.open(folder / f"{name}.idx", os.O_RDWR | _BINARY)
        except OSError:
            os.close(fd)
            return False
        self.pack, self.pack_fd, self.idx_fd = bytes.fromhex(name), fd, idx_fd
        self.size = os.fstat(fd).st_size  # past any torn record a killed writer left
        torn = os.fstat(idx_fd).st_size
        self.idx_size = -(-torn // _ENTRY.size) * _ENTRY.size  # past any torn entry, aligned
        return True

    def close(self) -> None:
        for fd in (self.idx_fd, self.pack_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


class PackStore:
    """Small blobs in append-only pack files with checksummed index entries (see the module docstring)."""

    def __init__(self, root: Path, *, fsync: bool = False):
        self.folder = Path(root) / "packs"
        self.fsync = fsync
        self._lock = threading.RLock()
        self._writer: _Writer | None = None
        self._entries: dict[bytes, _Entry] = {}  # raw digest -> newest entry
        self._read_upto: dict[str, int] = {}  # index file id -> bytes of it already read
        self._fds: dict[bytes, int] = {}  # pack id -> read descriptor
        self._loaded = False
        _STORES.add(self)

    def close(self) -> None:
        """Release this process's pack (and its lock) and the read descriptors."""
        with self._lock:
            self._close_writer()
            for fd in self._fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds.clear()

    # --- lookups --------------------------------------------------------------------------
    def locate(self, digest: str) -> Location | None:
        """Where the live blob ``digest`` is, or None (index entries written meanwhile are read first)."""
        with self._lock:
            entry = self._find(bytes.fromhex(digest), refresh=True)
            if entry is None:
                return None
            return Location(self.folder / f"{entry.pack.hex()}.pack", entry.offset, entry.length, entry.time_ns / 1e9)

    def read(self, digest: str) -> bytes | None:
        """The bytes recorded for ``digest`` (the caller verifies their hash), or None when no pack holds it."""
        raw_digest = bytes.fromhex(digest)
        with self._lock:
            full = False
            while (entry := self._find(raw_digest, refresh=True, full=full)) is not None:
                try:
                    fd = self._read_fd(entry.pack)
                except FileNotFoundError:
                    if (self.folder / f"{entry.pack.hex()}.idx").exists():
                        return None  # the pack file itself was removed: the caller reports the blob missing
                    full = True  # compacted away meanwhile (as often as a compactor in a loop does): look again
                    continue
                raw = os.pread(fd, _HEAD.size + entry.length, entry.offset - _HEAD.size)
                if len(raw) < _HEAD.size:
                    return b""  # truncated: the hash check reports it
                magic, stored, length = _HEAD.unpack_from(raw)
                if magic != _MAGIC or stored != raw_digest or length != entry.length:
                    return raw[:entry.length]  # a damaged header: the hash check reports it
                return raw[_HEAD.size:]
            return None

    def live(self) -> list[tuple[str, float]]:
        """(digest, time written or last re-used) of every live packed blob, sorted."""
        with self._lock:
            self._refresh(full=True)
            return sorted((d.hex(), e.time_ns / 1e9) for d, e in self._entries.items() if e.length != _DELETED)

    def known(self, digest: str, *, fresh: bool = False) -> bool:
        """Whether ``digest`` is a live packed blob: from memory when it is not, else confirmed by the newest entries.

        (Another process may have deleted it since, and a compaction drops the bytes of a deleted blob
        even when a re-use names them meanwhile; ``put`` then appends the bytes again.) ``fresh``:
        read every index up to its end even when memory says the blob is not there.
        """
        raw_digest = bytes.fromhex(digest)
        with self._lock:
            if not fresh and self._find(raw_digest, refresh=False) is None:
                return False
            self._refresh()
            return self._find(raw_digest, refresh=False) is not None

    # --- writes -----------------------------------------------------------------------------
    def append(self, digest: str, data: bytes) -> None:
        """Append ``data`` (whose sha256 is ``digest``) to this process's pack and index it."""
        raw_digest = bytes.fromhex(digest)
        with self._lock:
            w = self._own_writer()
            offset = self._write_record(w, raw_digest, data)
            self._add_entry(w, raw_digest, _Entry(w.pack, offset, len(data), self._stamp(raw_digest), w.pack))

    def touch(self, digest: str) -> None:
        """Record a fresh time for the live blob ``digest`` (gc's age guard then protects it)."""
        raw_digest = bytes.fromhex(digest)
        with self._lock:
            entry = self._find(raw_digest, refresh=False)
            if entry is not None:
                w = self._own_writer()
                self._add_entry(w, raw_digest, _Entry(entry.pack, entry.offset, entry.length, self._stamp(raw_digest),
                                                     w.pack))

    def delete(self, digest: str) -> bool:
        """Mark ``digest`` deleted; returns whether it was live. Its bytes go at the next ``compact``."""
        raw_digest = bytes.fromhex(digest)
        with self._lock:
            if self._find(raw_digest, refresh=True) is None:
                return False
            w = self._own_writer()
            self._add_entry(w, raw_digest, _Entry(_NO_PACK, 0, _DELETED, self._stamp(raw_digest), w.pack))
            return True

    def compact(self, *, orphan_age: float = 3600.0) -> int:
        """Rewrite the packs no live process holds into one new pack without their dead bytes; returns bytes freed.

        Deletions and re-uses recorded in the rewritten indexes are carried over while a pack a live
        process holds may still contain the blob. When every pack is rewritten, a deletion is carried
        once more, marked settled (so no reader meets an older entry of its blob while the old indexes
        are removed one by one), and dropped by the next such compaction: every other entry of its blob
        is newer by then. A ``.pack`` without an index older than ``orphan_age`` seconds (a writer
        killed between creating the two) is removed.
        """
        with self._lock:
            self._close_writer()
            names = _pack_ids(self.folder)
            held: dict[bytes, int] = {}
            try:
                for name in names:
                    try:
                        fd = os.open(self.folder / f"{name}.pack", os.O_RDONLY | _BINARY)
                    except FileNotFoundError:
                        continue
                    if _lock(fd, blocking=False) and os.fstat(fd).st_nlink:
                        held[bytes.fromhex(name)] = fd
                    else:
                        os.close(fd)
                freed = self._remove_orphans(orphan_age)
                if not held:
                    return freed
                # listed after the locks: a pack made later holds only entries newer than every deletion here
                everything = {bytes.fromhex(n) for n in _pack_ids(self.folder)} <= held.keys()
                self._refresh(full=True)  # every entry written before we took the locks
                live = [(d, e) for d, e in self._entries.items() if e.length != _DELETED and e.pack in held]
                carry, settling = [], False
                for d, e in self._entries.items():
                    if e.index not in held or e.pack in held or (everything and e.pack == _SETTLED):
                        continue
                    if everything and e.length == _DELETED:
                        e, settling = _Entry(_SETTLED, e.offset, e.length, e.time_ns, e.index), True
                    carry.append((d, e))
                total = sum(os.fstat(fd).st_size for fd in held.values())
                indexed = sum(_file_size(self.folder / f"{p.hex()}.idx") // _ENTRY.size for p in held)
                dead = total - sum(_HEAD.size + e.length for _, e in live)
                if dead == 0 and indexed == len(live) + len(carry) and len(held) == 1 and not settling:
                    return freed  # one pack, every byte and entry of it live
                w = self._writer = _Writer(self.folder, self.fsync, adopt=False)
                for digest, e in live:
                    data = os.pread(held[e.pack], e.length, e.offset)
                    offset = self._write_record(w, digest, data)
                    # one nanosecond newer, so the copy outranks every entry that named the old pack
                    self._add_entry(w, digest, _Entry(w.pack, offset, e.length, e.time_ns + 1, w.pack))
                for digest, e in carry:
                    self._add_entry(w, digest, _Entry(e.pack, e.offset, e.length, e.time_ns, w.pack))
                for pack in held:
                    for suffix in (".idx", ".pack"):  # the index first: no entry may outlive its pack
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(self.folder / f"{pack.hex()}{suffix}")
                return freed + dead  # (the refresh below closes our descriptors of the removed packs)
            finally:
                for fd in held.values():
                    os.close(fd)
                self._refresh(full=True)

    # --- internals ---------------------------------------------------------------------------
    def _find(self, raw_digest: bytes, *, refresh: bool, full: bool = False) -> _Entry | None:
        if not self._loaded or full:
            self._refresh(full=True)
        entry = self._entries.get(raw_digest)
        if (entry is None or entry.length == _DELETED) and refresh and not full:
            self._refresh()
            entry = self._entries.get(raw_digest)
        return None if entry is None or entry.length == _DELETED else entry

    def _stamp(self, raw_digest: bytes) -> int:
        """Now, or just after the newest entry known for the blob if the clock stepped back (order is by stamp)."""
        current = self._entries.get(raw_digest)
        now = time.time_ns()
        return now if current is None or now > current.time_ns else current.time_ns + 1

    def _own_writer(self) -> _Writer:
        w = self._writer
        if w is None or w.size >= _ROLL_BYTES:
            self._close_writer()
            w = self._writer = _Writer(self.folder, self.fsync)
        return w

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = None

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock and cache, and none of the parent's descriptors.

        A thread of the parent may have held the lock (or been half-way through the cache) at the fork;
        closing the child's copies of the descriptors leaves the parent's pack locked by the parent
        alone, so it can be adopted or compacted once the parent lets it go, however long the child lives.
        """
        self._lock = threading.RLock()
        self._close_writer()
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds, self._entries, self._read_upto, self._loaded = {}, {}, {}, False

    def _write_record(self, w: _Writer, raw_digest: bytes, data: bytes) -> int:
        offset = w.size + _HEAD.size
        _write_all(w.pack_fd, _HEAD.pack(_MAGIC, raw_digest, len(data)) + data, w.size)
        w.size = offset + len(data)
        if self.fsync:  # on disk before the entry that makes it visible
            os.fsync(w.pack_fd)
        return offset

    def _add_entry(self, w: _Writer, raw_digest: bytes, entry: _Entry) -> None:
        body = _BODY.pack(raw_digest, entry.pack, entry.offset, entry.length, entry.time_ns)
        _write_all(w.idx_fd, body + zlib.crc32(body).to_bytes(4, "little"), w.idx_size)
        name = w.pack.hex()
        if self._read_upto.get(name) == w.idx_size:  # read up to here: no need to read our own entry back
            self._read_upto[name] = w.idx_size + _ENTRY.size
        w.idx_size += _ENTRY.size
        if self.fsync:
            os.fsync(w.idx_fd)
        current = self._entries.get(raw_digest)
        if current is None or entry.time_ns >= current.time_ns:
            self._entries[raw_digest] = entry

    def _refresh(self, *, full: bool = False) -> None:
        """Read the index entries written since the last look (``full``: read every index from the start).

        An index listed but gone before it is read was compacted away meanwhile, and the listing may
        lack the compactor's new index, which holds its blobs now: the look starts over.
        """
        while not self._read_indexes(full=full):
            full = True

    def _read_indexes(self, *, full: bool) -> bool:
        names = _pack_ids(self.folder)
        if full or any(n not in names for n in self._read_upto):  # a pack was compacted away: start over
            self._entries.clear()
            self._read_upto = {}
        for pack in [p for p in self._fds if p.hex() not in names]:  # compacted away: give its disk space back
            os.close(self._fds.pop(pack))
        self._loaded = True
        packs = {bytes.fromhex(n) for n in names}
        entries = self._entries
        for name in sorted(names):
            start = self._read_upto.get(name, 0)
            path = os.path.join(self.folder, f"{name}.idx")
            try:
                if start and os.stat(path).st_size == start:
                    continue  # nothing new (a stat costs less than an open)
                with open(path, "rb") as f:
                    f.seek(start)
                    data = f.read()
            except FileNotFoundError:
                return False
            whole = len(data) - len(data) % _ENTRY.size  # a torn last entry is read again next time
            index = bytes.fromhex(name)
            for raw_digest, pack, offset, length, stamp, crc in _ENTRY.iter_unpack(data[:whole]):
                if zlib.crc32(_BODY.pack(raw_digest, pack, offset, length, stamp)) != crc:
                    continue  # torn or damaged
                if length != _DELETED and pack not in packs:
                    continue  # names a pack compacted away (a copy elsewhere has a newer entry)
                current = entries.get(raw_digest)
                if current is None or stamp >= current.time_ns:
                    entries[raw_digest] = _Entry(pack, offset, length, stamp, index)
            self._read_upto[name] = start + whole
        return True

    def _remove_orphans(self, age: float) -> int:
        """Remove ``.pack`` files without an index that are older than ``age`` seconds; returns their bytes."""
        freed = 0
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return 0
        indexed = set(_pack_ids(self.folder))
        for n in names:
            if not n.endswith(".pack") or n[:-5] in indexed:
                continue
            path = self.folder / n
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                if time.time() - st.st_mtime > age:
                    path.unlink()
                    freed += st.st_size
        return freed

    def _read_fd(self, pack: bytes) -> int:
        fd = self._fds.get(pack)
        if fd is not None and os.fstat(fd).st_nlink == 0:  # compacted away since we opened it
            os.close(self._fds.pop(pack))
            raise FileNotFoundError(pack.hex())
        if fd is None:
            fd = self._fds[pack] = os.open(self.folder / f"{pack.hex()}.pack", os.O_RDONLY | _BINARY)
        return fd


_STORES: weakref.WeakSet[PackStore] = weakref.WeakSet()


def _after_fork() -> None:
    for store in list(_STORES):
        store._after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _pack_ids(folder: Path) -> list[str]:
    try:
        return [n[:-4] for n in os.listdir(folder) if n.endswith(".idx") and len(n) == 36]
    except FileNotFoundError:
        return []


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _lock(fd: int, *, blocking: bool) -> bool:
    """An exclusive flock on ``fd``; False when another process holds it (and always False without flock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: packs are neither adopted nor compacted there
        return blocking
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def fsync_dir(path: Path) -> None:
    """fsync a folder, so entries created in it survive a power loss (where the platform allows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
