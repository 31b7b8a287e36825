"""The closed-form solve of linear regression: weighted Gram sums in one pass, then Cholesky (or least squares).

Notation: rows ``x_i: (d,)`` shifted by a reference point ``s`` (the same on every rank):
``u_i = x_i − s``; target ``ỹ_i`` (standardized), weights ``w_i``, ``W = Σ w_i``. One pass gives
the sums ``S = [W, Σ w u, Σ w u uᵀ, Σ w u ỹ, Σ w ỹ, Σ w ỹ², n, Σ u, Σ u²]`` (the last three
unweighted: the column moments that standardization uses, from the same pass); they are a
plain sum over shards, so ranks all-reduce them. The model works on ``x̃ = (x − mu) / sigma``;
covariances do not depend on the shift, so with weighted means ``ū, ȳ``,
``C = D⁻¹ (Σ w u uᵀ / W − ū ūᵀ) D⁻¹`` and ``c = D⁻¹ (Σ w u ỹ / W − ū ȳ)`` (``D = diag(sigma)``),
the minimizer of ``(1/W) Σ w (ỹ − x̃ᵀβ − b)² + (λ/2)‖β‖²`` solves ``(C + (λ/2) I) β = c``, and
``b = ȳ − x̄ᵀβ`` with ``x̄ = (s + ū − mu) / sigma``. Shifting by ``s`` near the mean keeps the
float64 sums free of cancellation.

The solve is a Cholesky factorization with LAPACK's reciprocal condition estimate. A
constant column (zero weighted variance) gets coefficient 0. Without a penalty a singular
``C`` (reciprocal condition below ``SINGULAR``) has no unique solution: that is refused,
naming the penalty to set. An ill-conditioned one (below ``ILL_CONDITIONED``) is solved by
SVD least squares instead of Cholesky, and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ...errors import DataError
from .design import CHUNK_BYTES, row_chunks
from .workers import Workers

__all__ = ["ILL_CONDITIONED", "SINGULAR", "GramSolution", "gram_moments", "gram_size", "gram_sums", "solve_gram"]

ILL_CONDITIONED = 1e-10
SINGULAR = 1e-13


def gram_size(d: int) -> int:
    """Length of the packed sums for ``d`` features."""
    return 1 + d + d * d + d + 2 + 1 + 2 * d


def gram_sums(
    X: NDArray, y: NDArray, weight: NDArray | None, shift: NDArray, *, chunk_bytes: int = CHUNK_BYTES,
    workers: Workers | None = None,
) -> NDArray[np.float64]:
    """The packed sums ``S`` over the rows of ``X: (n, d)`` (encoded features) and ``y: (n,)``, shifted by ``shift``."""
    X = np.asarray(X)
    n, d = X.shape
    shift = np.asarray(shift, dtype=np.float64)
    chunks = row_chunks(n, d, chunk_bytes)
    if not chunks:
        return np.zeros(gram_size(d))

    def block(group: list[slice]) -> NDArray:
        G = np.zeros((d, d))
        su = np.zeros(d)
        suy = np.zeros(d)
        sw = sy = syy = 0.0
        plain = np.zeros(d)
        squares = np.zeros(d)
        scratch = np.empty((chunks[0].stop - chunks[0].start, d))
        for sl in group:
            U = scratch[: sl.stop - sl.start]
            np.copyto(U, X[sl])
            U -= shift
            yc = np.asarray(y[sl], dtype=np.float64)
            ones = np.ones(len(yc))
            total = ones @ U
            plain += total
            if weight is None:
                G += U.T @ U
                su += total
                suy += yc @ U
                sw += len(yc)
                sy += float(yc.sum())
                syy += float(yc @ yc)
            else:
                wc = np.asarray(weight[sl], dtype=np.float64)
                wy = wc * yc
                G += U.T @ (U * wc[:, None])
                su += wc @ U
                suy += wy @ U
                sw += float(wc.sum())
                sy += float(wy.sum())
                syy += float(wy @ yc)
                squares += np.einsum("ij,ij->j", U, U)
        if weight is None:
            squares = np.diag(G).copy()
        return np.concatenate([[sw], su, G.ravel(), suy, [sy, syy, float(sum(sl.stop - sl.start for sl in group))],
                               plain, squares])

    total = np.zeros(gram_size(d))
    for part in (workers or Workers(1)).map(block, chunks):
        total += part
    return total


def gram_moments(S: NDArray, d: int, shift: NDArray) -> tuple[NDArray, NDArray]:
    """The unweighted column mean and standard deviation of the rows the sums ``S`` were taken over."""
    n = float(S[3 + 2 * d + d * d])
    tail = S[gram_size(d) - 2 * d :]
    offset = tail[:d] / max(n, 1.0)
    std = np.sqrt(np.maximum(tail[d:] / max(n, 1.0) - offset * offset, 0.0))
    return np.asarray(shift, dtype=np.float64) + offset, std


@dataclass(frozen=True)
class GramSolution:
    """Coefficients on standardized features, the intercept, the mean loss, and how they were found."""

    coef: NDArray[np.float64]
    intercept: float
    mean_loss: float  # (1/W) Σ w (ỹ − x̃ᵀβ − b)², in standardized-target units
    method: str  # "cholesky" or "lstsq"
    rcond: float
    constant: tuple[int, ...]  # columns without variance (coefficient 0)

    def note(self) -> str | None:
        """What the output should say about the solve, when it is not a plain Cholesky solve."""
        if self.method == "lstsq":
            return (f"the Gram matrix is ill-conditioned (reciprocal condition {self.rcond:.1e} < {ILL_CONDITIONED:g}), "
                    "so it was solved by SVD least squares instead of Cholesky; a small alpha would make it well-posed")
        return None


def _unpack(S: NDArray, d: int) -> tuple[float, NDArray, NDArray, NDArray, float, float]:
    sw = float(S[0])
    su = S[1 : 1 + d]
    G = S[1 + d : 1 + d + d * d].reshape(d, d)
    suy = S[1 + d + d * d : 1 + 2 * d + d * d]
    return sw, su, G, suy, float(S[1 + 2 * d + d * d]), float(S[2 + 2 * d + d * d])


def solve_gram(
    S: NDArray, d: int, lam: float, mean: NDArray, scale: NDArray, shift: NDArray, *, family: str = "linear_regression"
) -> GramSolution:
    """Solve the penalized normal equations on ``x̃ = (x − mean) / scale`` from the packed sums ``S``."""
    import scipy.linalg
    from scipy.linalg import lapack

    sw, su, G, suy, sy, syy = _unpack(np.asarray(S, dtype=np.float64), d)
    if not sw > 0:
        raise DataError("the training rows have total weight 0; give some rows a positive sample weight")
    inv = 1.0 / np.asarray(scale, dtype=np.float64)
    ubar, ybar = su / sw, sy / sw
    C = (G / sw - np.outer(ubar, ubar)) * np.outer(inv, inv)
    c = (suy / sw - ubar * ybar) * inv
    xbar = (np.asarray(shift, dtype=np.float64) + ubar - np.asarray(mean, dtype=np.float64)) * inv
    var_y = syy / sw - ybar * ybar
    diag = np.diag(C)
    live = np.flatnonzero(diag > 1e-12 * max(float(diag.max(initial=0.0)), 1.0))
    constant = tuple(int(j) for j in np.setdiff1d(np.arange(d), live))
    A = C[np.ix_(live, live)] + 0.5 * lam * np.eye(len(live))
    rhs = c[live]
    beta = np.zeros(d)
    method, rcond = "cholesky", 1.0
    if len(live):
        try:
            L, info = lapack.dpotrf(A, lower=1, clean=1)
            if info != 0:
                raise np.linalg.LinAlgError("not positive definite")
            rcond, _ = lapack.dpocon(L, float(np.abs(A).sum(axis=0).max()), uplo="L")
            rcond = float(rcond)
        except np.linalg.LinAlgError:
            L, rcond = None, 0.0
        if lam == 0 and rcond < SINGULAR:
            raise DataError(_singular_message(A, live, family))
        if rcond >= ILL_CONDITIONED and L is not None:
            beta[live] = scipy.linalg.cho_solve((L, True), rhs)
        else:
            method = "lstsq"
            beta[live] = scipy.linalg.lstsq(A, rhs, lapack_driver="gelsd")[0]
    intercept = ybar - float(xbar @ beta)
    # (1/W) Σ w (ỹ − x̃ᵀβ − b)² = var(ỹ) − 2 βᵀc + βᵀ C β, with the weighted (co)variances
    mean_loss = max(var_y - 2.0 * float(beta @ c) + float(beta @ C @ beta), 0.0)
    return GramSolution(beta, intercept, mean_loss, method, rcond, constant)


def _singular_message(A: NDArray, live: NDArray, family: str) -> str:
    values, vectors = np.linalg.eigh(A)
    rank = int((values > SINGULAR * max(float(values[-1]), 1e-300)).sum())
    null = vectors[:, 0]
    cols = live[np.argsort(-np.abs(null))[: min(3, len(live))]]
    involved = [int(j) for j in cols if abs(null[np.flatnonzero(live == j)[0]]) > 1e-3]
    which = ", ".join(map(str, sorted(involved))) if involved else "several"
    return (
        f"{family} without a penalty has no unique solution: the Gram matrix XᵀX of the encoded features is singular "
        f"(rank {rank} of {len(live)}; encoded columns {which} are linearly dependent); set a penalty, e.g. "
        "--set alpha=1e-3 (or weight_decay), or drop the dependent columns"
    )
