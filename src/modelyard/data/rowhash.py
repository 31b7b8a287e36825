"""Content hashes of rows, and the compact record of a set of them that a version keeps of its training rows.

Notation: ``X: (n, d)`` float32 features coded in one schema (numeric values, category
codes), ``y: (n,)`` the target coded in the same schema (class indices or float values).
A row's hash is a 64-bit mix of a weighted sum of its 32-bit words; the record keeps the top 32 bits of each distinct
hash, sorted, delta-coded and compressed, for at most ``MAX_KEPT`` hashes: the smallest ones
(a bottom-k sample) when there are more. For rows whose hash is at most the largest kept
one, membership is exact up to 32-bit collisions, which can only make a row look seen (the
safe side); above it, nothing is known. With every hash kept the record is ``complete``.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["MAX_KEPT", "ROW_HASH", "SeenRows", "row_hashes", "seen_record"]

ROW_HASH = "rowlin64-v1"  # the hash's name in records: a different function gets a different name
MAX_KEPT = 16384  # hashes kept per version: about 2.5 bytes each once compressed

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(h: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64's finalizer, elementwise (wrapping uint64 arithmetic)."""
    h = h ^ (h >> np.uint64(30))
    h = h * _M1
    h = h ^ (h >> np.uint64(27))
    h = h * _M2
    return h ^ (h >> np.uint64(31))


def _multipliers(k: int) -> NDArray[np.uint64]:
    """``k`` fixed odd 64-bit constants, one per word of a row (the same in every process and version)."""
    with np.errstate(over="ignore"):
        return _mix(np.arange(1, k + 1, dtype=np.uint64) * _GOLDEN) | np.uint64(1)


def row_hashes(X: NDArray, y: NDArray | None, *, chunk: int = 65536) -> NDArray[np.uint64]:
    """A 64-bit hash of each row of ``X`` (as float32, -0.0 as 0.0, one NaN) and its target value.

    Each 32-bit word of the row (its features, then the target as float64) is multiplied by its
    own odd constant and the products summed modulo 2**64 (one integer matrix product per chunk
    of rows), then mixed: rows that differ in one word never collide, and the mixed high bits
    are what records keep.
    """
    X = np.asarray(X, dtype=np.float32)
    n, d = X.shape
    a = _multipliers(d + 2)
    out = np.empty(n, dtype=np.uint64)
    t_all = None if y is None else np.asarray(y, dtype=np.float64)
    with np.errstate(over="ignore"):
        for start in range(0, n, chunk):
            x = X[start : start + chunk] + np.float32(0.0)  # -0.0 + 0.0 == +0.0
            x[np.isnan(x)] = np.float32(np.nan)
            h = x.view(np.uint32).astype(np.uint64) @ a[:d]
            if t_all is not None:
                t = t_all[start : start + chunk] + 0.0
                h = h + np.ascontiguousarray(t).view(np.uint32).reshape(len(t), 2).astype(np.uint64) @ a[d:]
            else:
                h = h ^ _GOLDEN  # no target: a row without one differs from the same row with target 0
            out[start : start + chunk] = _mix(h)
    return out


def _top32(h: NDArray[np.uint64]) -> NDArray[np.uint32]:
    return (np.asarray(h, dtype=np.uint64) >> np.uint64(32)).astype(np.uint32)


def seen_record(hashes: NDArray[np.uint64], *, max_kept: int | None = None) -> dict[str, Any]:
    """The JSON-safe record of a set of row hashes (at most ``max_kept``, default ``MAX_KEPT``, of them kept):
    ``{"hash", "rows", "complete", "kept"}``."""
    max_kept = MAX_KEPT if max_kept is None else max_kept
    top = _top32(hashes)
    if len(top) > max_kept > 0:  # the smallest max_kept values in O(n), then sorted: no sort of them all
        kept = _distinct_sorted(np.partition(top, max_kept - 1)[:max_kept])
        complete = False
        if len(kept) < max_kept:  # duplicates among the smallest: count the distinct values exactly
            distinct = _distinct_sorted(top)
            kept, complete = distinct[:max_kept], len(distinct) <= max_kept
    else:
        distinct = _distinct_sorted(top)
        kept, complete = distinct[:max_kept], len(distinct) <= max_kept
    deltas = np.diff(kept, prepend=np.uint32(0)).astype("<u4")
    return {
        "hash": ROW_HASH,
        "rows": len(hashes),
        "complete": bool(complete),
        "kept": base64.b64encode(zlib.compress(deltas.tobytes(), 6)).decode("ascii"),
    }


def _distinct_sorted(values: NDArray[np.uint32]) -> NDArray[np.uint32]:
    """The distinct values, sorted (a sort and a neighbour compare: np.unique is far slower on a million values)."""
    top = np.sort(values)
    if len(top):
        top = top[np.concatenate([[True], top[1:] != top[:-1]])]
    return top


class SeenRows:
    """Membership of rows in a recorded set of training rows, as far as the record allows."""

    def __init__(self, record: Mapping[str, Any]):
        if record.get("hash") != ROW_HASH:
            raise ValueError(f"unknown row hash {record.get('hash')!r}")
        deltas = np.frombuffer(zlib.decompress(base64.b64decode(record["kept"])), dtype="<u4")
        self.kept = np.cumsum(deltas, dtype=np.uint64).astype(np.uint32)
        self.rows = int(record["rows"])
        self.complete = bool(record["complete"])

    def match(self, hashes: NDArray[np.uint64]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """``(seen, known)`` per row: ``seen`` where the row is in the set; ``known`` where the record can tell."""
        top = _top32(hashes)
        if len(self.kept) == 0:
            return np.zeros(len(top), dtype=bool), np.full(len(top), self.complete)
        pos = np.minimum(np.searchsorted(self.kept, top), len(self.kept) - 1)
        seen = self.kept[pos] == top
        known = np.ones(len(top), dtype=bool) if self.complete else top <= self.kept[-1]
        return seen, known

    @property
    def sampled_fraction(self) -> float:
        """The chance that a row of the set falls where the record can tell (1.0 when complete)."""
        if self.complete:
            return 1.0
        return (float(self.kept[-1]) + 1.0) / 2.0**32 if len(self.kept) else 0.0
