"""train(): split the data, fit a family with early stopping, measure held-out metrics and timings."""

from __future__ import annotations

import functools
import platform
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

from ..data.dataset import Dataset
from ..data.split import split, split_rows
from ..errors import DataError, ParamError
from ..models import get_family
from ..models.forest import RandomForest
from ..models.glm import EXACT_SOLVERS
from ..models.loop import preload_torch
from ..models.predictor import Predictor
from ..models.solvers import preload as preload_solvers
from ..models.torch_base import TorchModel
from ..records.training import EpochLog, FitConfig
from .metrics import predict_outputs, score
from .result import TrainResult

__all__ = ["check_training", "fit_extra", "fit_predictor", "library_versions", "train"]


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a model depends on."""
    return dict(_library_versions())


@functools.cache
def _library_versions() -> dict[str, str]:  # reading package metadata costs ~10 ms; versions do not change in a run
    out = {"python": platform.python_version()}
    for name in ("modelyard", "numpy", "torch", "scikit-learn", "scipy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def fit_predictor(
    family: str,
    params: Mapping[str, Any] | None,
    train_ds: Dataset,
    val_ds: Dataset | None,
    config: FitConfig,
    callbacks: Sequence[Any] = (),
    init: Predictor | None = None,
    **fit_kwargs: Any,
) -> Predictor:
    """Fit one model of ``family`` on ``train_ds`` (validating on ``val_ds``); ``init`` warm-starts from its weights."""
    schema = train_ds.schema
    cls = get_family(family)
    if init is not None:
        model = init.model
    else:
        model = cls(task=schema.task, n_classes=schema.n_classes, **dict(params or {}))
    predictor = Predictor(family, model, schema)
    X = predictor.encoder.transform(train_ds.X)
    eval_set = None
    if val_ds is not None and len(val_ds):
        eval_set = (predictor.encoder.transform(val_ds.X), val_ds.y)
    model.fit(X, train_ds.y, eval_set=eval_set, config=config, callbacks=callbacks, **fit_kwargs)
    return predictor


def _check_target(dataset: Dataset) -> None:
    """Refuse a dataset without a target column."""
    if dataset.y is None:
        raise DataError("the dataset has no target; load it with target=COLUMN")


def _check_held_out(val_size: float, test_size: float) -> None:
    """Refuse a split that leaves no rows to measure the model on."""
    if not val_size > 0 and not test_size > 0:
        raise DataError(
            f"val_size={val_size} and test_size={test_size} leave no held-out rows to measure the model on; "
            "make at least one of them > 0 (e.g. --test-size 0.2)"
        )


def train(
    dataset: Dataset,
    model: str = "logistic_regression",
    params: Mapping[str, Any] | None = None,
    *,
    epochs: int | None = None,
    patience: int | None = None,
    max_time: float | None = None,
    seed: int = 0,
    val_size: float = 0.15,
    test_size: float = 0.2,
    callbacks: Sequence[Any] = (),
    device: str | None = None,
    threads: int | None = None,
    init: Predictor | None = None,
    nodes: int = 1,
    aggregate: str = "gradient",
    sync_every: int = 8,
    checkpoint_every: int | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
    dist_timeout: float = 600.0,
) -> TrainResult:
    """Train ``model`` on ``dataset``: seeded split, fit with early stopping, metrics on the untouched test rows.

    ``epochs=None`` lets the family budget itself: the exact solvers of the linear families run to
    convergence (``max_iter``), the minibatch loop gets a step budget; an explicit ``epochs`` caps
    either (epochs of the loop, iterations of an exact solver). ``patience=None`` is early stopping
    after 10 epochs without a better validation loss (minibatch loop; ``0`` turns it off).

    ``nodes > 1`` trains data-parallel on that many local processes (``aggregate``: ``"gradient"``,
    synchronous SGD equal to one process, or ``"average"``, parameters averaged every ``sync_every``
    steps); ``checkpoint_every``/``checkpoint_dir``/``resume`` save and continue a run (see
    ``train/dist_fit.py``).
    """
    _check_target(dataset)
    config = FitConfig(epochs=epochs, patience=patience, max_time=max_time, seed=seed, device=device, threads=threads)
    if nodes != 1 or checkpoint_every or resume:
        from .dist_fit import train_distributed

        if init is not None:
            raise ParamError("init (warm start) cannot be combined with nodes > 1 or checkpointing; train with nodes=1")
        return train_distributed(
            dataset, model, params, config, nodes=nodes, aggregate=aggregate, sync_every=sync_every,
            val_size=val_size, test_size=test_size, callbacks=callbacks, checkpoint_every=checkpoint_every,
            checkpoint_dir=checkpoint_dir, resume=resume, timeout=dist_timeout,
        )
    cls = get_family(model)
    full_params = cls.params.validate(params, model) if init is None else init.model.get_params()
    _check_held_out(val_size, test_size)
    train_ds, val_ds, test_ds = split(dataset, val_size=val_size, test_size=test_size, seed=seed)

    if issubclass(cls, TorchModel) and full_params.get("solver") not in ("auto", *EXACT_SOLVERS):
        preload_torch()  # import cost is not training time
    elif issubclass(cls, TorchModel):
        preload_solvers()  # the exact solvers import scipy's, not torch's optimizers
    elif issubclass(cls, RandomForest):
        import sklearn.ensemble  # noqa: F401

    t0 = time.perf_counter()
    predictor = fit_predictor(model, full_params, train_ds, val_ds, config, callbacks, init=init)
    train_time = time.perf_counter() - t0

    eval_ds = test_ds if len(test_ds) else val_ds
    t1 = time.perf_counter()
    pred, proba = predict_outputs(predictor, eval_ds.X)  # timed alone: the model's work, not the metrics'
    infer_time = time.perf_counter() - t1
    metrics = score(dataset.schema, eval_ds.y, pred, proba)
    metrics["train_time_s"] = train_time
    metrics["inference_time_per_row_s"] = infer_time / len(eval_ds)
    metrics["evaluated_on"] = "test" if len(test_ds) else "validation"

    inner = predictor.model
    history: list[EpochLog] = list(getattr(inner, "history_", []))
    return TrainResult(
        model=predictor,
        family=model,
        params=predictor.get_params(),
        config=config,
        metrics=metrics,
        history=history,
        schema=dataset.schema,
        fingerprint=dataset.fingerprint,
        seed=config.seed,
        library_versions=library_versions(),
        split={"train": len(train_ds), "validation": len(val_ds), "test": len(test_ds)},
        source=dataset.source,
        best_epoch=getattr(inner, "best_epoch_", None),
        stop_reason=getattr(inner, "stop_reason_", None),
        extra=fit_extra(inner),
    )


def fit_extra(model: Any) -> dict[str, Any]:
    """What a fitted model reports beyond its history: the solver that ran and notes for the user (if any)."""
    out: dict[str, Any] = {}
    if getattr(model, "solver_info_", None):
        out["solver"] = dict(model.solver_info_)
    if getattr(model, "notes_", None):
        out["notes"] = list(model.notes_)
    return out


def check_training(
    dataset: Dataset,
    model: str = "logistic_regression",
    params: Mapping[str, Any] | None = None,
    *,
    epochs: int | None = None,
    patience: int | None = None,
    max_time: float | None = None,
    seed: int = 0,
    val_size: float = 0.15,
    test_size: float = 0.2,
) -> None:
    """Refuse, without training, what ``train`` would refuse: no target, bad config, family, params, task or split."""
    _check_target(dataset)
    FitConfig(epochs=epochs, patience=patience, max_time=max_time, seed=seed)
    cls = get_family(model)
    cls(task=dataset.task, n_classes=dataset.schema.n_classes, **cls.params.validate(params, model))
    _check_held_out(val_size, test_size)
    split_rows(dataset, val_size=val_size, test_size=test_size, seed=seed)
