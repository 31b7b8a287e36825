"""Cross-validation (part of A and S): K folds, a fit per fold, held-out metrics as mean and standard deviation.

Notation: ``n`` rows, ``K`` folds. Classification folds are stratified: each class's rows are
shuffled (one ``numpy.random.Generator`` seeded with ``seed``) and dealt round-robin to the folds,
so every fold holds ``⌊n_c/K⌋`` or ``⌈n_c/K⌉`` rows of class ``c`` (scikit-learn's
StratifiedKFold with shuffling does the same); regression folds are the shuffled rows cut into
``K`` near-equal parts (KFold). Fold ``i`` trains on the other ``K-1`` folds, of which a seeded,
stratified ``val_size`` fraction is kept for validation (early stopping, the per-epoch history),
exactly as a single ``train`` keeps its validation rows, and is scored on fold ``i``, which it never
saw. The summary is, per metric, the mean over folds and the sample standard deviation
(``ddof=1``). ``train(..., cv=K)`` then refits the model on all ``n`` rows with the same recipe
(the same ``val_size`` fraction set aside for validation), and that refit is what gets registered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.dataset import Dataset
from ..data.split import split_indices
from ..errors import ParamError
from ..records.training import FitConfig
from ..schema import Task

__all__ = ["CVResult", "check_cv", "check_folds", "cross_validate", "fold_indices", "inner_split", "summarize", "train_cv"]

FoldHook = Callable[[int, dict[str, Any]], bool | None]
"""Called after each fold with (fold number from 1, its metrics); returning True stops (a pruned trial)."""


def check_folds(k: Any) -> int:
    """``k`` if it is a number of folds (an int >= 2), else ParamError in one sentence."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 2:
        raise ParamError(
            f"cv must be a number of folds >= 2, got {k!r}; use e.g. --cv 5, or leave --cv out to train once on a "
            "train/validation/test split"
        )
    return int(k)


def check_cv(dataset: Dataset, k: Any) -> int:
    """``k`` if K-fold cross-validation of ``dataset`` is possible, else ParamError in one sentence."""
    k = check_folds(k)
    n = len(dataset)
    if dataset.y is None:
        from ..errors import DataError

        raise DataError("the dataset has no target; load it with target=COLUMN")
    if dataset.task is Task.CLASSIFICATION:
        codes, counts = np.unique(np.asarray(dataset.y), return_counts=True)
        smallest = int(counts.min())
        if k > smallest:
            label = dataset.labels(codes[[int(counts.argmin())]])[0]
            fix = f"use --cv {smallest} or fewer" if smallest >= 2 else "add rows of that class or drop it"
            raise ParamError(
                f"--cv {k} needs at least {k} rows of every class for stratified folds, but class {label!r} has "
                f"{smallest}; {fix}"
            )
    elif k > n:
        raise ParamError(f"--cv {k} needs at least {k} rows, the data has {n}; use --cv {max(2, n)} or fewer")
    return k


def fold_indices(y: NDArray | None, n: int, k: int, *, seed: int, stratify: bool) -> list[NDArray[np.int64]]:
    """The held-out rows of each of ``k`` folds (sorted, disjoint, covering ``range(n)``)."""
    rng = np.random.default_rng(seed)
    folds: list[list[NDArray[np.int64]]] = [[] for _ in range(k)]
    if stratify and y is not None:
        offset = 0
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            for i in range(k):
                # deal round-robin, continuing where the previous class stopped so fold sizes stay even
                folds[i].append(idx[(i - offset) % k :: k])
            offset = (offset + len(idx)) % k
    else:
        for i, part in enumerate(np.array_split(rng.permutation(n), k)):
            folds[i].append(part)
    return [np.sort(np.concatenate(f)).astype(np.int64) for f in folds]


def inner_split(ds: Dataset, val_size: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """The rows to fit on and the validation rows (None when ``val_size`` is 0), stratified for classification."""
    if not val_size > 0:
        return ds, None
    fit, val = split_indices(ds.y, len(ds), (val_size,), seed=seed, stratify=ds.task is Task.CLASSIFICATION)
    if not len(val) or not len(fit):
        return ds, None
    return ds.take(fit), ds.take(val)


@dataclass(frozen=True)
class CVResult:
    """Per-fold held-out metrics and their mean and sample standard deviation."""

    k: int
    folds: list[dict[str, Any]]  # held-out metrics of each fold (scalars only)
    sizes: list[int]  # held-out rows of each fold
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"k": self.k, "folds": self.folds, "sizes": self.sizes, "mean": self.mean, "std": self.std}


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def summarize(k: int, folds: list[dict[str, Any]], sizes: list[int]) -> CVResult:
    """Mean and sample standard deviation (ddof=1) of every metric all folds have."""
    names = [m for m in folds[0] if all(m in f for f in folds)] if folds else []
    mean = {m: float(np.mean([f[m] for f in folds])) for m in names}
    std = {m: float(np.std([f[m] for f in folds], ddof=1)) if len(folds) > 1 else 0.0 for m in names}
    return CVResult(k, folds, sizes, mean, std)


def cross_validate(
    dataset: Dataset,
    model: str,
    params: Mapping[str, Any] | None,
    *,
    k: int,
    config: FitConfig,
    val_size: float = 0.15,
    callbacks: Sequence[Any] = (),
    on_fold: FoldHook | None = None,
    impute: str | None = None,
) -> CVResult:
    """Fit ``model`` on each fold's other rows and measure it on the fold; stops early if ``on_fold`` says so.

    ``impute`` is fitted on each fold's training rows, as ``train`` fits it on its training rows."""
    from .fit import fit_predictor
    from .metrics import evaluate

    k = check_cv(dataset, k)
    classification = dataset.task is Task.CLASSIFICATION
    folds = fold_indices(dataset.y, len(dataset), k, seed=config.seed, stratify=classification)
    everything = np.arange(len(dataset))
    results: list[dict[str, Any]] = []
    sizes: list[int] = []
    for i, held in enumerate(folds):
        rest = dataset.take(np.setdiff1d(everything, held, assume_unique=True))
        fit_ds, val_ds = inner_split(rest, val_size, config.seed)
        t0 = time.perf_counter()
        predictor = fit_predictor(model, params, fit_ds, val_ds, config, callbacks, impute=impute)
        seconds = time.perf_counter() - t0
        test = dataset.take(held)
        metrics = _scalars(evaluate(predictor, test.X, test.y))
        metrics["train_time_s"] = seconds
        results.append(metrics)
        sizes.append(len(held))
        if on_fold is not None and on_fold(i + 1, metrics):
            break
    return summarize(k, results, sizes)


def train_cv(
    dataset: Dataset,
    model: str,
    params: Mapping[str, Any] | None,
    config: FitConfig,
    *,
    k: int,
    val_size: float = 0.15,
    callbacks: Sequence[Any] = (),
    on_fold: FoldHook | None = None,
    impute: str | None = None,
    notes: tuple[str, ...] = (),
) -> Any:
    """``train(..., cv=K)``: K-fold metrics (mean, ``NAME_std``), then the model refit on all rows (a TrainResult).

    ``callbacks`` see the refit's epochs only; ``on_fold`` sees each fold's metrics.
    """
    from ..models import get_family
    from .fit import fit_predictor, library_versions, preload
    from .result import TrainResult

    cls = get_family(model)
    full = cls.params.validate(params, model)
    k = check_cv(dataset, k)
    preload(cls, full)
    cv = cross_validate(dataset, model, full, k=k, config=config, val_size=val_size, on_fold=on_fold,
                        impute=impute)
    fit_ds, val_ds = inner_split(dataset, val_size, config.seed)
    t0 = time.perf_counter()
    predictor = fit_predictor(model, full, fit_ds, val_ds, config, callbacks, impute=impute)
    train_time = time.perf_counter() - t0
    t1 = time.perf_counter()
    predictor.predict_codes(dataset.X)  # timing only: there are no rows the refit has not seen
    infer_time = time.perf_counter() - t1
    metrics: dict[str, Any] = {m: v for m, v in cv.mean.items() if m != "train_time_s"}
    metrics.update({f"{m}_std": v for m, v in cv.std.items() if m != "train_time_s"})
    metrics["train_time_s"] = train_time
    metrics["inference_time_per_row_s"] = infer_time / max(len(dataset), 1)
    metrics["evaluated_on"] = f"{k}-fold cross-validation"
    metrics["cv_folds"] = k
    inner = predictor.model
    n_val = 0 if val_ds is None else len(val_ds)
    return TrainResult(
        model=predictor, family=model, params=predictor.get_params(), config=config, metrics=metrics,
        history=list(getattr(inner, "history_", [])), schema=dataset.schema, fingerprint=dataset.fingerprint,
        seed=config.seed, library_versions=library_versions(),
        split=_refit_split(dataset, len(fit_ds), n_val, val_size, config.seed), source=dataset.source,
        best_epoch=getattr(inner, "best_epoch_", None), stop_reason=getattr(inner, "stop_reason_", None),
        extra={"cv": {**cv.to_dict(), "refit_rows": len(dataset), "refit_fit_rows": len(fit_ds),
                      "refit_validation_rows": n_val}},
        notes=tuple(notes),
    )


def _refit_split(dataset: Dataset, n_fit: int, n_val: int, val_size: float, seed: int) -> dict[str, Any]:
    """The split record of a refit on all rows: every row was seen, so ``compare`` holds none of them out."""
    from ..data.split import split_record

    everything = np.arange(len(dataset))
    record = split_record(dataset, (everything, everything[:0], everything[:0]), val_size=val_size, test_size=0.0,
                          seed=seed)
    return {**record, "train": n_fit, "validation": n_val, "test": 0}
