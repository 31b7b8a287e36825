"""Threads over row chunks: each worker passes over its own contiguous block of chunks with single-threaded BLAS.

The blocks' partial sums are added in block order, so a result depends only on the data and
the number of workers (the same ⊕ as across ranks, inside one process); there are a few blocks
per worker, handed out as workers free up. Multi-threaded BLAS
on the tall, narrow products of a pass (``(c, d) @ (d, K)`` with small ``d``, ``K``) scales
badly and, on a busy machine, collapses; one thread per block of rows does not.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Self, TypeVar

__all__ = ["Workers", "cpu_count"]

T = TypeVar("T")


def cpu_count() -> int:
    """CPU cores this process may run on."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class Workers:
    """``n`` threads mapping a function over contiguous groups of row chunks (inline when ``n == 1``)."""

    def __init__(self, n: int = 1):
        self.n = max(1, int(n))
        self._pool = ThreadPoolExecutor(self.n, thread_name_prefix="modelyard-pass") if self.n > 1 else None

    def groups(self, chunks: Sequence[slice]) -> list[list[slice]]:
        """``chunks`` cut into contiguous groups of nearly equal count: one per worker, or four per worker when
        there are several, so that a worker slowed by another process on its core takes fewer of them."""
        k = min(self.n if self.n == 1 else 4 * self.n, len(chunks)) or 1
        bounds = [round(i * len(chunks) / k) for i in range(k + 1)]
        return [list(chunks[a:b]) for a, b in itertools.pairwise(bounds) if b > a]

    def map(self, fn: Callable[[list[slice]], T], chunks: Sequence[slice]) -> list[T]:
        """``fn(group)`` for each group, in group order."""
        groups = self.groups(chunks)
        if self._pool is None or len(groups) == 1:
            return [fn(g) for g in groups]
        return list(self._pool.map(fn, groups))

    def close(self) -> None:
        """Stop the threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
