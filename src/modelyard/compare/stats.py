"""Paired statistics on the predictions of several models on the same rows: McNemar, paired bootstrap, Holm.

Notation and shapes::

    n               rows evaluated; m models; k classes; B bootstrap resamples
    y: (n,)         true class indices 0..k-1 (classification) or values (regression)
    pred: (m, n)    predicted class indices or values, one row per model
    proba: m x (n, k) or None per model    class probabilities
    I: (b, n)       a block of resample indices, I[r, j] uniform on 0..n-1 (b <= B rows at a time)
    C: (b, n)       multiplicities, C[r, i] = #{j : I[r, j] = i}; a resample's sum of a per-row
                    quantity v is C @ v, so losses and errors need one matrix product per block
    stats[name]: (m, B)         the metric of every model on every resample; the paired difference
                                of models i and j is stats[name][j] - stats[name][i] (same resamples)
    per-class stats: (m, B, k)  precision, recall and F1 of each class

The same index matrix serves every model, which makes the bootstrap *paired*: a resample
that happens to hold many hard rows hurts both models alike, so the interval of the
difference is much narrower than two independent intervals would suggest.

Point metrics follow ``train.metrics`` exactly (macro averages over the classes present in
the truth or the predictions, log loss on clipped, renormalized probabilities, ROC-AUC as
Mann-Whitney U with midranks), so a resample made of every row once gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError
from ..records.comparisons import McNemarTest

__all__ = [
    "bootstrap_classification",
    "bootstrap_regression",
    "holm",
    "mcnemar",
    "mcnemar_chi2",
    "mcnemar_exact_p",
    "mcnemar_midp",
    "paired_interval",
    "resample_blocks",
    "row_log_loss",
]

_BLOCK_CELLS = 1 << 18  # index cells per block: small blocks stay in cache (measured faster than 4M)


# --- McNemar ----------------------------------------------------------------------------


def mcnemar_exact_p(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of ``a_only`` successes in ``a_only + b_only`` at 1/2."""
    from scipy.stats import binom

    n = int(a_only) + int(b_only)
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(a_only, b_only), n, 0.5)))


def mcnemar_midp(a_only: int, b_only: int) -> float:
    """Mid-p McNemar p-value (exact p less the probability of the observed split); closer to nominal size."""
    from scipy.stats import binom

    n = int(a_only) + int(b_only)
    if n == 0:
        return 1.0
    if a_only == b_only:
        return 1.0  # 2 P(X <= n/2) - P(X = n/2) is exactly 1 by symmetry; skip the rounding error
    lo = min(a_only, b_only)
    return float(min(1.0, 2.0 * binom.cdf(lo, n, 0.5) - binom.pmf(lo, n, 0.5)))


def mcnemar_chi2(a_only: int, b_only: int, *, correction: bool = True) -> tuple[float, float]:
    """McNemar chi-square statistic (with Edwards' continuity correction by default) and its p-value (1 df)."""
    from scipy.stats import chi2

    n = int(a_only) + int(b_only)
    if n == 0:
        return 0.0, 1.0
    diff = abs(int(a_only) - int(b_only)) - (1 if correction else 0)
    stat = max(diff, 0) ** 2 / n
    return float(stat), float(chi2.sf(stat, 1))


def mcnemar(correct_a: NDArray[np.bool_], correct_b: NDArray[np.bool_]) -> McNemarTest:
    """McNemar's test of whether A and B are right equally often on the same rows (``correct_*: (n,)`` bool)."""
    ca = np.asarray(correct_a, dtype=bool)
    cb = np.asarray(correct_b, dtype=bool)
    if ca.shape != cb.shape or ca.ndim != 1:
        raise DataError(f"McNemar needs two boolean vectors of the same length, got shapes {ca.shape} and {cb.shape}")
    a_only = int((ca & ~cb).sum())
    b_only = int((~ca & cb).sum())
    stat, p_chi2 = mcnemar_chi2(a_only, b_only)
    return McNemarTest(
        both_right=int((ca & cb).sum()),
        a_only=a_only,
        b_only=b_only,
        both_wrong=int((~ca & ~cb).sum()),
        p_exact=mcnemar_exact_p(a_only, b_only),
        p_midp=mcnemar_midp(a_only, b_only),
        statistic=stat,
        p_chi2=p_chi2,
    )


# --- multiple comparisons ------------------------------------------------------------------


def holm(pvalues: Sequence[float] | NDArray) -> NDArray[np.float64]:
    """Holm step-down adjusted p-values (same order as given); reject where adjusted p < alpha."""
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise DataError(f"holm expects a 1-D sequence of p-values, got shape {p.shape}")
    if p.size and (np.isnan(p).any() or (p < 0).any() or (p > 1).any()):
        raise DataError(f"p-values must lie in [0, 1], got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]  # (m - i) p_(i) for i = 0..m-1
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate(scaled))
    out = np.empty(m)
    out[order] = adjusted_sorted
    return out


# --- bootstrap ---------------------------------------------------------------------------


def resample_blocks(
    n: int, resamples: int, rng: np.random.Generator, *, block_cells: int = _BLOCK_CELLS
) -> Iterator[tuple[NDArray[np.intp], NDArray[np.float64]]]:
    """Yield blocks ``(I, C)`` of ``resamples`` row-resamples of ``0..n-1``: indices ``(b, n)`` and counts ``(b, n)``."""
    if n < 1:
        raise DataError("the bootstrap needs at least one row; evaluate on data with rows")
    if resamples < 1:
        raise DataError(f"resamples must be >= 1, got {resamples}")
    per_block = max(1, block_cells // n)
    done = 0
    while done < resamples:
        b = min(per_block, resamples - done)
        idx = rng.integers(0, n, size=(b, n))
        offsets = (np.arange(b) * n)[:, None]
        counts = np.bincount((idx + offsets).ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        yield idx, counts
        done += b


def row_log_loss(y: NDArray[np.integer], proba: NDArray) -> NDArray[np.float64]:
    """Per-row log loss ``(n,)`` with the clipping and renormalization of ``train.metrics``."""
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-15, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(len(y)), np.asarray(y, dtype=np.int64)])


def _confusions(y: NDArray, pred: NDArray, idx: NDArray, k: int) -> NDArray[np.float64]:
    """Confusion matrices ``(b, k, k)`` of one model over a block of resamples (one bincount)."""
    b = idx.shape[0]
    cell = y * k + pred  # (n,)
    flat = (np.arange(b) * (k * k))[:, None] + cell[idx]
    return np.bincount(flat.ravel(), minlength=b * k * k).reshape(b, k, k).astype(np.float64)


def _scores_from_confusion(cm: NDArray) -> dict[str, NDArray]:
    """Accuracy, macro precision/recall/F1 ``(b,)`` and per-class ``(b, k)`` from confusion matrices ``(b, k, k)``."""
    tp = np.diagonal(cm, axis1=1, axis2=2)
    pred_pos = cm.sum(axis=1)
    true_pos = cm.sum(axis=2)
    n = cm.sum(axis=(1, 2))
    precision = np.divide(tp, pred_pos, out=np.zeros_like(tp), where=pred_pos > 0)
    recall = np.divide(tp, true_pos, out=np.zeros_like(tp), where=true_pos > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = (true_pos > 0) | (pred_pos > 0)
    n_present = np.maximum(present.sum(axis=1), 1)

    def macro(v: NDArray) -> NDArray:
        return np.where(present, v, 0.0).sum(axis=1) / n_present

    return {
        "accuracy": tp.sum(axis=1) / np.maximum(n, 1),
        "precision": macro(precision),
        "recall": macro(recall),
        "f1": macro(f1),
        "per_class.precision": precision,
        "per_class.recall": recall,
        "per_class.f1": f1,
    }


class _AucGroups:
    """Rows of one binary model grouped by distinct score, so a resampled Mann-Whitney U needs one bincount."""

    def __init__(self, y: NDArray, score: NDArray):
        uniq, group = np.unique(score, return_inverse=True)
        self.n_groups = len(uniq)
        # column of each row: its score group, shifted by n_groups for negatives
        self.col = group.ravel() + self.n_groups * (np.asarray(y) != 1)

    def auc(self, idx: NDArray) -> NDArray:
        """ROC-AUC ``(b,)`` of the resamples ``idx: (b, n)`` (NaN where a resample lacks a class)."""
        b, g = idx.shape[0], self.n_groups
        flat = (np.arange(b) * (2 * g))[:, None] + self.col[idx]
        sums = np.bincount(flat.ravel(), minlength=b * 2 * g).reshape(b, 2, g)
        pos, neg = sums[:, 0], sums[:, 1]  # (b, G) integer counts per score group, ascending score
        below = np.cumsum(neg, axis=1)
        below -= neg  # negatives with a strictly lower score
        # U = sum pos * (below + neg / 2), kept in exact integers as 2U
        twice_u = 2 * np.einsum("ij,ij->i", pos, below) + np.einsum("ij,ij->i", pos, neg)
        wp, wn = pos.sum(axis=1), neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((wp > 0) & (wn > 0), twice_u / (2.0 * wp * wn), np.nan)


def bootstrap_classification(
    y: NDArray[np.integer],
    pred: NDArray[np.integer],
    proba: Sequence[NDArray | None],
    k: int,
    resamples: int,
    rng: np.random.Generator,
) -> dict[str, NDArray[np.float64]]:
    """Every classification metric of every model on the same ``resamples`` paired resamples.

    Returns ``(m, B)`` arrays for accuracy, precision, recall, f1, log_loss and (k = 2)
    roc_auc, and ``(m, B, k)`` arrays for per_class.precision/recall/f1. Models without
    probabilities get NaN rows for log_loss and roc_auc.
    """
    y = np.asarray(y, dtype=np.int64)
    pred = np.atleast_2d(np.asarray(pred, dtype=np.int64))
    m, n = pred.shape
    if len(proba) != m:
        raise DataError(f"got {m} prediction rows but {len(proba)} probability entries; pass one per model")
    has_proba = [p is not None for p in proba]
    losses = np.stack([row_log_loss(y, p) if p is not None else np.zeros(n) for p in proba], axis=1)  # (n, m)
    aucs = [_AucGroups(y, np.asarray(p, dtype=np.float64)[:, 1]) if p is not None and k == 2 else None for p in proba]

    parts: dict[str, list[NDArray]] = {}
    for idx, counts in resample_blocks(n, resamples, rng):
        block: dict[str, list[NDArray]] = {}
        for i in range(m):
            for name, v in _scores_from_confusion(_confusions(y, pred[i], idx, k)).items():
                block.setdefault(name, []).append(v)
        ll = counts @ losses / n  # (b, m)
        block["log_loss"] = [np.where(has_proba[i], ll[:, i], np.nan) for i in range(m)]
        if k == 2:
            b = idx.shape[0]
            block["roc_auc"] = [a.auc(idx) if a is not None else np.full(b, np.nan) for a in aucs]
        for name, rows in block.items():
            parts.setdefault(name, []).append(np.stack(rows))  # (m, b) or (m, b, k)
    return {name: np.concatenate(blocks, axis=1) for name, blocks in parts.items()}


def bootstrap_regression(
    y: NDArray[np.floating], pred: NDArray[np.floating], resamples: int, rng: np.random.Generator
) -> dict[str, NDArray[np.float64]]:
    """RMSE, MAE and R² ``(m, B)`` of every model on the same ``resamples`` paired resamples."""
    y = np.asarray(y, dtype=np.float64)
    pred = np.atleast_2d(np.asarray(pred, dtype=np.float64))
    m, n = pred.shape
    err = (pred - y).T  # (n, m)
    yc = y - y.mean()  # centring keeps sum(C y^2) - (sum C y)^2 / n free of cancellation
    rhs = np.column_stack([err**2, np.abs(err), yc, yc**2])  # (n, 2m + 2)
    parts: dict[str, list[NDArray]] = {"rmse": [], "mae": [], "r2": []}
    for _, counts in resample_blocks(n, resamples, rng):
        s = counts @ rhs  # (b, 2m + 2)
        sse, sae = s[:, :m], s[:, m : 2 * m]
        ss_tot = s[:, 2 * m + 1] - s[:, 2 * m] ** 2 / n
        scale = max(float((yc**2).sum()), 1e-300)
        ok = ss_tot > 1e-12 * scale
        with np.errstate(invalid="ignore", divide="ignore"):
            r2 = np.where(ok[:, None], 1.0 - sse / ss_tot[:, None], 0.0)
        parts["rmse"].append(np.sqrt(sse / n).T)
        parts["mae"].append((sae / n).T)
        parts["r2"].append(r2.T)
    return {name: np.concatenate(blocks, axis=1) for name, blocks in parts.items()}


def paired_interval(diffs: NDArray, alpha: float) -> tuple[float | None, float | None, float | None]:
    """Percentile interval ``(low, high)`` at level 1 - alpha and two-sided p-value of bootstrap differences ``(B,)``.

    The p-value inverts the percentile interval: twice the smaller tail share of
    differences on either side of 0, with the +1 correction that keeps it above 0.
    NaN resamples (a metric undefined on that resample) are left out; all NaN gives Nones.
    """
    d = np.asarray(diffs, dtype=np.float64)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return None, None, None
    low, high = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    below = (np.count_nonzero(d <= 0) + 1) / (d.size + 1)
    above = (np.count_nonzero(d >= 0) + 1) / (d.size + 1)
    return float(low), float(high), float(min(1.0, 2 * min(below, above)))
