"""train(): split the data, fit a family with early stopping, measure held-out metrics and timings."""

from __future__ import annotations

import functools
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Any

from ..data.dataset import Dataset
from ..data.impute import Imputer, check_strategy, missing_counts
from ..data.split import split_record, split_rows
from ..data.validate import describe_counts
from ..errors import DataError, ParamError
from ..models import FAMILIES, get_family
from ..models.boosting import GradientBoosting
from ..models.forest import RandomForest
from ..models.glm import EXACT_SOLVERS, LinearModel
from ..models.loop import preload_torch
from ..models.predictor import Predictor
from ..models.solvers import preload as preload_solvers
from ..models.solvers.workers import cpu_count
from ..models.torch_base import TorchModel
from ..models.weights import check_class_weight, class_weights, sample_weights
from ..records.training import EpochLog, FitConfig
from .metrics import predict_outputs, score
from .result import TrainResult

__all__ = ["check_missing", "check_training", "fit_extra", "fit_predictor", "impute_note", "library_versions", "train"]


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a model depends on."""
    return dict(_library_versions())


@functools.cache
def _library_versions() -> dict[str, str]:  # reading package metadata costs ~10 ms; versions do not change in a run
    out = {"python": platform.python_version()}
    for name in ("modelyard", "numpy", "torch", "scikit-learn", "scipy", "xgboost"):
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
    impute: str | None = None,
    **fit_kwargs: Any,
) -> Predictor:
    """Fit one model of ``family`` on ``train_ds`` (validating on ``val_ds``); ``init`` warm-starts from its weights.

    ``impute`` (``median``/``most_frequent``) fits the imputation on the training rows, unless the
    family takes NaN natively; a ``class_weight`` hyperparameter becomes ``sample_weight``.
    """
    schema = train_ds.schema
    cls = get_family(family)
    if init is not None:
        model, imputer = init.model, init.imputer
    else:
        model = cls(task=schema.task, n_classes=schema.n_classes, **dict(params or {}))
        imputer = None
        if impute is not None and not getattr(cls, "handles_missing", False):
            imputer = Imputer(impute).fit(train_ds.X, schema)
    predictor = Predictor(family, model, schema, imputer)
    X = predictor.features(train_ds.X)
    eval_set = None
    if val_ds is not None and len(val_ds):
        eval_set = (predictor.features(val_ds.X), val_ds.y)
    fit_kwargs.update(weight_kwargs(model, train_ds, val_ds if eval_set is not None else None))
    model.fit(X, train_ds.y, eval_set=eval_set, config=config, callbacks=callbacks, **fit_kwargs)
    return predictor


def weight_kwargs(model: Any, train_ds: Dataset, val_ds: Dataset | None) -> dict[str, Any]:
    """``sample_weight`` (and ``eval_sample_weight`` where ``fit`` takes it) from the ``class_weight`` hyperparameter."""
    import inspect

    spec = model.get_params().get("class_weight")
    classes = train_ds.schema.classes
    if spec is None or classes is None or train_ds.y is None:
        return {}
    per_class = class_weights(spec, train_ds.y, classes)
    out: dict[str, Any] = {"sample_weight": sample_weights(spec, train_ds.y, classes, per_class)}
    if val_ds is not None and val_ds.y is not None and "eval_sample_weight" in inspect.signature(model.fit).parameters:
        out["eval_sample_weight"] = sample_weights(spec, val_ds.y, classes, per_class)
    return out


def native_families() -> list[str]:
    """Built-in families that take missing values natively (``handles_missing``)."""
    return [name for name, cls in FAMILIES.items() if getattr(cls, "handles_missing", False)]


def check_missing(dataset: Dataset, family: str, *, impute: str | None = None, init: Predictor | None = None) -> None:
    """Refuse NaN features for a family that cannot take them, naming every such column in one message."""
    cls = get_family(family)
    if impute is not None or getattr(cls, "handles_missing", False) or (init is not None and init.imputer is not None):
        return
    refuse_missing(family, missing_counts(dataset.X, dataset.feature_names))


def refuse_missing(family: str, counts: Mapping[str, int]) -> None:
    """The one DataError for NaN a family cannot take, naming every column with its count (nothing if none)."""
    if counts:
        raise DataError(
            f"{family} cannot train on missing values, found in {len(counts)} column(s): "
            f"{describe_counts(counts, 'missing')}; impute them (--impute median, impute='median'), drop those rows "
            f"(--drop-missing), or use a family that takes them natively ({', '.join(native_families()) or 'none'})"
        )


def impute_note(family: str, impute: str | None) -> str | None:
    """The note for ``impute`` on a family that takes missing values natively (where it is not applied)."""
    if impute is not None and getattr(get_family(family), "handles_missing", False):
        return f"{family} takes missing values natively, so --impute {impute} is not applied"
    return None


def _check_options(dataset: Dataset, model: str, params: Mapping[str, Any] | None, impute: str | None,
                   init: Predictor | None) -> None:
    """Refuse a bad ``impute`` strategy, a ``class_weight`` that does not fit the data, and NaN the family cannot take."""
    if impute is not None:
        check_strategy(impute)
    full = init.model.get_params() if init is not None else get_family(model).params.validate(params, model)
    spec = full.get("class_weight")
    if spec is not None:
        check_class_weight(spec, dataset.schema, model)
    check_missing(dataset, model, impute=impute, init=init)


def preload(cls: type, params: Mapping[str, Any] | None = None) -> None:
    """Import what the family trains with before the clock starts: import cost is not training time."""
    if issubclass(cls, TorchModel) and (params or {}).get("solver") in ("auto", *EXACT_SOLVERS):
        preload_solvers()  # the exact solvers import scipy's, not torch's optimizers
    elif issubclass(cls, TorchModel):
        preload_torch()
    elif issubclass(cls, RandomForest):
        import sklearn.ensemble  # noqa: F401
    elif issubclass(cls, GradientBoosting):
        import xgboost  # noqa: F401


class _Background:
    """``fn()`` on a thread of its own; ``result()`` waits for it and returns its value (or raises its error)."""

    def __init__(self, fn: Callable[[], Any]):
        import threading

        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), name="modelyard-split-record", daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self._value = fn()
        except BaseException as e:  # noqa: BLE001  (re-raised in the caller's thread by result())
            self._error = e

    def result(self) -> Any:
        """The value of ``fn()``, once it is computed."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


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
    impute: str | None = None,
    cv: int | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset``: seeded split, fit with early stopping, metrics on the untouched test rows.

    Missing values: a family that declares ``handles_missing`` (random_forest, gradient_boosting)
    trains on NaN as is; the others need ``impute="median"`` or ``"most_frequent"`` (fitted on the
    training rows, stored with the model and applied to every row it predicts).
    ``params={"class_weight": "balanced"}`` (or ``"LABEL=W,..."``) weights the training and
    validation losses by class. ``cv=K`` measures instead by K-fold cross-validation over all rows
    (stratified for classification; metrics are the folds' means, with ``NAME_std`` their standard
    deviations) and then refits the returned model on all rows (``train/cv.py``).
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
    _check_options(dataset, model, params, impute, init)
    notes = [n for n in (dataset.dropped.sentence() if dataset.dropped else None, impute_note(model, impute)) if n]
    if cv is not None:
        if nodes != 1 or checkpoint_every or resume or init is not None:
            raise ParamError("cv cannot be combined with nodes > 1, checkpoints or a warm start; drop one of them")
        from .cv import train_cv

        return train_cv(dataset, model, params, config, k=cv, val_size=val_size, callbacks=callbacks, impute=impute,
                        notes=tuple(notes))
    if nodes != 1 or checkpoint_every or resume:
        from .dist_fit import train_distributed

        if init is not None:
            raise ParamError("init (warm start) cannot be combined with nodes > 1 or checkpointing; train with nodes=1")
        if impute is not None or dict(params or {}).get("class_weight") is not None:
            raise ParamError("impute and class_weight cannot be combined with nodes > 1 or checkpointing yet; "
                             "train with nodes=1")
        return train_distributed(
            dataset, model, params, config, nodes=nodes, aggregate=aggregate, sync_every=sync_every,
            val_size=val_size, test_size=test_size, callbacks=callbacks, checkpoint_every=checkpoint_every,
            checkpoint_dir=checkpoint_dir, resume=resume, timeout=dist_timeout,
        )
    cls = get_family(model)
    full_params = cls.params.validate(params, model) if init is None else init.model.get_params()
    _check_held_out(val_size, test_size)
    rows = split_rows(dataset, val_size=val_size, test_size=test_size, seed=seed)
    train_ds, val_ds, test_ds = (dataset.take(r) for r in rows)
    # the split record (the data's fingerprint, the training rows' hashes) is needed only in the result: it is
    # computed alongside the fit (hashing releases the GIL) while an exact solver fits (our own threads,
    # single-threaded BLAS) or when the fit leaves a core free; a library with OpenMP threads on every core
    # (XGBoost, torch, scikit-learn) spins when a core is taken from it, so there it is computed after the fit
    make_record = lambda: split_record(dataset, rows, val_size=val_size, test_size=test_size, seed=seed,
                                       parts=(train_ds, val_ds))
    alongside = ((issubclass(cls, LinearModel) and full_params.get("solver") in ("auto", *EXACT_SOLVERS))
                 or (threads is not None and threads < cpu_count()))
    record = _Background(make_record) if alongside else None

    preload(cls, full_params)

    t0 = time.perf_counter()
    predictor = fit_predictor(model, full_params, train_ds, val_ds, config, callbacks, init=init, impute=impute)
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
        split=record.result() if record is not None else make_record(),
        source=dataset.source,
        best_epoch=getattr(inner, "best_epoch_", None),
        stop_reason=getattr(inner, "stop_reason_", None),
        notes=tuple(notes),
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
    impute: str | None = None,
    cv: int | None = None,
) -> None:
    """Refuse, without training, what ``train`` would refuse: no target, bad config, family, params, task, split,
    imputation strategy, class weights, or missing values the family cannot take."""
    _check_target(dataset)
    FitConfig(epochs=epochs, patience=patience, max_time=max_time, seed=seed)
    cls = get_family(model)
    cls(task=dataset.task, n_classes=dataset.schema.n_classes, **cls.params.validate(params, model))
    _check_options(dataset, model, params, impute, None)
    if cv is not None:
        from .cv import check_cv

        check_cv(dataset, cv)
        return
    _check_held_out(val_size, test_size)
    split_rows(dataset, val_size=val_size, test_size=test_size, seed=seed)
