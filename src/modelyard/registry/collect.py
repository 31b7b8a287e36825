"""gc: remove the weights no version references, safely while others register (``Registry.gc`` calls this).

gc deletes a blob only inside a write transaction that holds the store's gc lock and has re-read
that no version references it, and a registration inserts its version only after checking, inside
its own transaction under that lock, that its blob is still stored (writing the bytes again if
not), so no committed version can name deleted bytes (``store/gc_lock.py``). A local store's pack
compaction runs under the lock too: it drops the bytes of deleted blobs, which a registration may
have named again meanwhile.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ..errors import ParamError
from ..store.gc_lock import collect

__all__ = ["BATCH", "collect_garbage"]

BATCH = 256  # blobs removed per transaction: the lock is held per batch, not for the whole sweep


def collect_garbage(db: Any, versions: Any, artifacts: Any, *, older_than: float, dry_run: bool) -> list[str]:
    """Remove (or with ``dry_run`` list) the unreferenced blobs older than ``older_than`` seconds; their digests."""
    if isinstance(older_than, bool) or not isinstance(older_than, (int, float)) or not (
            math.isfinite(older_than) and older_than >= 0):
        raise ParamError(f"older_than must be a finite number of seconds >= 0, got {older_than!r}; e.g. 3600")
    if not dry_run:
        db.require_writable()
    cutoff = time.time() - older_than
    used = versions.artifacts_in_use()  # a first cut; the lock-holding transaction decides
    doomed = [d for d, mtime in artifacts.digests() if d not in used and mtime < cutoff]
    if dry_run:
        return doomed

    def remove(unreferenced: list[str]) -> list[str]:
        return [d for d in unreferenced if artifacts.delete(d)]

    def compact(_: list[str]) -> list[str]:
        artifacts.compact()
        return []

    removed: list[str] = []
    for start in range(0, len(doomed), BATCH):
        removed += collect(db, doomed[start:start + BATCH], remove)
    if removed:  # a local store's packs give the deleted bytes back, under the lock like the deletes
        collect(db, [], compact)
    return removed
