"""What versions cost (inference latency measured now, size, parameters) and how far their weights lie apart.

Latency notation: a batch is ``batch_size`` consecutive rows of the comparison data
(fewer if the data is smaller), a row call predicts a ``(1, d)`` matrix. Each model is
warmed up first (caches, lazy torch initialisation, thread pools), then timed calls of
all models are interleaved so that a slow phase of the machine hits every model alike.

Parameter distance: for arrays ``a, b`` of the same name and shape, ``l2 = ||b - a||``,
``relative_l2 = ||b - a|| / ||a||`` and ``cosine = a.b / (||a|| ||b||)``; "overall" treats
all floating-point weight arrays as one vector. Preprocessing statistics (``scaling.*``: feature
means and scales, fitted from the data) get their own rows but stay out of "overall": feature
means in the thousands would otherwise swamp the weights (relative L2 5e-4 and cosine 1.000 for
a logistic regression whose weights moved by 42%). Integer arrays (tree structure, counts) are
not parameters: they must be equal for the float arrays to be aligned at all.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..models.predictor import is_statistic
from ..records.comparisons import ArrayDistance, Latency, ParamDistance

__all__ = ["measure_latency", "parameter_distance", "state_bytes"]

_WARMUP = 3
_MIN_REPEATS = 5
_MAX_REPEATS = 500


def state_bytes(predictor: Any) -> int:
    """Bytes of the predictor's learned arrays in memory."""
    return int(sum(np.asarray(v).nbytes for v in predictor.state().values()))


def _timed(fn: Any, X: NDArray) -> float:
    t0 = time.perf_counter()
    fn(X)
    return time.perf_counter() - t0


def measure_latency(
    predictors: Sequence[Any],
    matrices: Sequence[NDArray[np.float32]],
    *,
    batch_size: int = 1024,
    budget_s: float = 1.0,
) -> list[Latency]:
    """p50/p95 latency per batch and per row and rows/s of each predictor on its own coded rows ``(n, d_v)``.

    ``budget_s`` is the timing budget per model; repeats are sized from the warm-up so the
    whole measurement takes about ``budget_s * len(predictors)`` seconds (at least 5 calls each).
    """
    n = int(matrices[0].shape[0])
    bs = max(1, min(int(batch_size), n))
    starts = np.arange(0, n - bs + 1, bs)  # batches cycle over the data
    cost = 0.0
    for p, X in zip(predictors, matrices, strict=True):
        b_min = r_min = float("inf")
        for r in range(_WARMUP):
            r_min = min(r_min, _timed(p.predict_codes, X[r % n : r % n + 1]))
            s = starts[r % len(starts)]
            b_min = min(b_min, _timed(p.predict_codes, X[s : s + bs]))
        cost += b_min + r_min  # the fastest warm-up call: first calls pay one-off setup
    repeats = int(min(_MAX_REPEATS, max(_MIN_REPEATS, budget_s * len(predictors) / max(cost, 1e-9))))
    batch = np.empty((len(predictors), repeats))
    row = np.empty((len(predictors), repeats))
    m = len(predictors)
    for r in range(repeats):
        s = starts[r % len(starts)]
        i0 = r % n
        for k in range(m):
            i = (k + r) % m  # rotate who goes first
            X = matrices[i]
            batch[i, r] = _timed(predictors[i].predict_codes, X[s : s + bs])
            row[i, r] = _timed(predictors[i].predict_codes, X[i0 : i0 + 1])
    out = []
    for i in range(m):
        b50, b95 = np.quantile(batch[i], [0.5, 0.95])
        r50, r95 = np.quantile(row[i], [0.5, 0.95])
        out.append(Latency(bs, repeats, float(b50), float(b95), float(r50), float(r95), float(bs / max(b50, 1e-12))))
    return out


def _norm(v: NDArray) -> float:
    return float(np.sqrt(np.dot(v, v)))


def _distances(a: NDArray, b: NDArray) -> tuple[float, float | None, float | None]:
    na, nb = _norm(a), _norm(b)
    l2 = _norm(b - a)
    rel = l2 / na if na > 0 else None
    cos = float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0)) if na > 0 and nb > 0 else None
    return l2, rel, cos


def parameter_distance(a_label: str, a: Any, b_label: str, b: Any) -> ParamDistance:
    """L2, relative L2 and cosine between the weights of two predictors, per array and overall (or why not)."""
    def no(reason: str) -> ParamDistance:
        return ParamDistance(a_label, b_label, comparable=False, reason=reason)

    if a.family != b.family:
        return no(f"different families ({a.family} and {b.family})")
    sa, sb = a.state(), b.state()
    if set(sa) != set(sb):
        only_a, only_b = sorted(set(sa) - set(sb)), sorted(set(sb) - set(sa))
        return no(f"different arrays (only in {a_label}: {', '.join(only_a) or '-'}; "
                  f"only in {b_label}: {', '.join(only_b) or '-'})")
    names = sorted(sa)
    if not any(np.asarray(sa[nm]).dtype.kind in "fc" for nm in names):  # e.g. trees stored as a library's bytes
        return no("the models have no floating-point parameters (their state is tree structure or model bytes)")
    for name in names:
        x, y = np.asarray(sa[name]), np.asarray(sb[name])
        if x.shape != y.shape:
            return no(f"array {name!r} has shape {x.shape} in {a_label} and {y.shape} in {b_label}")
    floats = [nm for nm in names if np.asarray(sa[nm]).dtype.kind in "fc"]
    structure = [nm for nm in names if nm not in floats and not np.array_equal(sa[nm], sb[nm])]
    if structure:
        return no(f"their structure differs ({', '.join(structure[:3])}), so the weights are not aligned")
    if not floats:
        return no("the models have no floating-point parameters")
    arrays = []
    for nm in floats:
        x = np.asarray(sa[nm], dtype=np.float64).ravel()
        y = np.asarray(sb[nm], dtype=np.float64).ravel()
        arrays.append(ArrayDistance(nm, tuple(np.asarray(sa[nm]).shape), *_distances(x, y)))
    weights = [nm for nm in floats if not is_statistic(nm)]
    if not weights:
        return no("the models have no floating-point weights, only preprocessing statistics")
    va = np.concatenate([np.asarray(sa[nm], dtype=np.float64).ravel() for nm in weights])
    vb = np.concatenate([np.asarray(sb[nm], dtype=np.float64).ravel() for nm in weights])
    l2, rel, cos = _distances(va, vb)
    return ParamDistance(a_label, b_label, True, None, l2, rel, cos, tuple(arrays))
