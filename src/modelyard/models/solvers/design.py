"""The design matrix the exact solvers pass over: the encoded rows in float64, with standardization as a map.

Notation: ``X: (n, d)`` encoded float32 features; ``s: (d,)`` a reference point (the mean of the
first rows); ``D = X - s: (n, d)`` float64, C order, what every pass reads; ``mu, sigma: (d,)``
the column mean and standard deviation that standardization uses (``sigma = 1`` for a constant
column; ``mu = 0, sigma = 1`` when standardization is off). A model works on standardized
features ``Xs = (X - mu) / sigma = (D - m) / sigma`` with ``m = mu - s``; the solvers never form
``Xs``: coefficients ``B`` on ``Xs`` act on ``D`` as ``B / sigma`` with an intercept shift, so one
copy of the data serves any standardization (its own, or a parent's when warm-starting, or the
moments of every rank). Subtracting ``s`` keeps the float64 sums free of cancellation when a
column's mean is large next to its spread.

Rows are visited in chunks of about ``CHUNK_BYTES`` so that a chunk stays in cache between the
forward product ``D_c @ V`` and the backward product ``D_cᵀ R``: one pass over memory per
loss-and-gradient evaluation. ``D`` is kept in memory when it takes at most ``KEEP_BYTES``
(each pass then reads float64 and converts nothing); larger data is not copied at all: each
pass converts its chunk of float32 rows into a float64 scratch block (half the bytes read per
pass, no second copy of the data, no allocation of gigabytes per fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .workers import Workers

__all__ = ["CHUNK_BYTES", "KEEP_BYTES", "Design", "Moments", "design", "moments", "row_chunks"]

CHUNK_BYTES = 1 << 20
KEEP_BYTES = 256 << 20


def row_chunks(n: int, width: int, chunk_bytes: int = CHUNK_BYTES) -> list[slice]:
    """Contiguous row slices of ``n`` rows, each about ``chunk_bytes`` of float64 at ``width`` columns."""
    rows = max(256, chunk_bytes // (8 * max(width, 1)))
    return [slice(i, min(i + rows, n)) for i in range(0, n, rows)]


@dataclass(frozen=True)
class Moments:
    """Per-column count, mean and standard deviation (population), accumulated in float64."""

    count: int
    mean: NDArray[np.float64]
    std: NDArray[np.float64]


@dataclass(frozen=True)
class Design:
    """The rows as ``D = X - shift`` in float64 (kept, or made chunk by chunk) and the moments of X."""

    X: NDArray
    D: NDArray[np.float64] | None  # None: convert each chunk of X when it is read
    shift: NDArray[np.float64]
    moments: Moments
    chunks: list[slice]

    @property
    def n(self) -> int:
        """Rows."""
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        """Columns."""
        return int(self.X.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes one pass reads."""
        return int(self.D.nbytes if self.D is not None else self.X.nbytes)

    def scratch(self) -> NDArray[np.float64] | None:
        """A float64 block for one chunk (one per thread), or None when ``D`` is kept."""
        if self.D is not None or not self.chunks:
            return None
        return np.empty((self.chunks[0].stop - self.chunks[0].start, self.d))

    def block(self, sl: slice, scratch: NDArray[np.float64] | None) -> NDArray[np.float64]:
        """``D[sl]``: a view of the kept copy, or the chunk converted into ``scratch``."""
        if self.D is not None:
            return self.D[sl]
        assert scratch is not None
        out = scratch[: sl.stop - sl.start]
        np.copyto(out, self.X[sl])
        out -= self.shift
        return out


def _pass(X: NDArray, chunks: list[slice], out: NDArray | None, workers: Workers) -> tuple[NDArray, Moments]:
    """Copy ``X - s`` into ``out`` (or scratch blocks) chunk by chunk, summing powers for the moments."""
    n, d = X.shape
    if n == 0:
        return np.zeros(d), Moments(0, np.zeros(d), np.ones(d))
    shift = np.asarray(X[: chunks[0].stop].mean(axis=0, dtype=np.float64))

    def block(group: list[slice]) -> tuple[NDArray, NDArray]:
        scratch = np.empty((chunks[0].stop - chunks[0].start, d)) if out is None else None
        total = np.zeros(d)
        squares = np.zeros(d)
        ones = np.ones(chunks[0].stop - chunks[0].start)
        for sl in group:
            b = out[sl] if out is not None else scratch[: sl.stop - sl.start]  # type: ignore[index]
            np.copyto(b, X[sl])
            b -= shift
            total += ones[: len(b)] @ b  # column sums as a matrix-vector product: ~3x numpy's axis-0 sum
            squares += np.einsum("ij,ij->j", b, b)
        return total, squares

    parts = workers.map(block, chunks)
    total = np.sum([p[0] for p in parts], axis=0)
    squares = np.sum([p[1] for p in parts], axis=0)
    offset = total / n  # mean - shift, small: no cancellation below
    std = np.sqrt(np.maximum(squares / n - offset * offset, 0.0))
    return shift, Moments(n, shift + offset, std)


def moments(X: NDArray, *, chunk_bytes: int = CHUNK_BYTES, workers: Workers | None = None) -> Moments:
    """Column count, mean and standard deviation of ``X: (n, d)`` in one float64 pass, without a copy."""
    X = np.asarray(X)
    return _pass(X, row_chunks(X.shape[0], X.shape[1], chunk_bytes), None, workers or Workers(1))[1]


def design(
    X: NDArray, *, chunk_bytes: int = CHUNK_BYTES, workers: Workers | None = None, keep_bytes: int = KEEP_BYTES
) -> Design:
    """One pass over ``X: (n, d)``: the column moments of X, and the float64 copy ``D = X - s`` if it is small."""
    X = np.asarray(X)
    n, d = X.shape
    chunks = row_chunks(n, d, chunk_bytes)
    D = np.empty((n, d), dtype=np.float64) if 8 * n * d <= keep_bytes else None
    shift, mom = _pass(X, chunks, D, workers or Workers(1))
    return Design(X, D, shift, mom, chunks)
