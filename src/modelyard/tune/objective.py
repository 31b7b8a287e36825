"""The training objective: train a family with a trial's params and score it on the validation split.

The data is split once, exactly as ``modelyard.train`` splits it (same fractions and seed),
so the best trial retrained with ``train`` is the same model, and its held-out test rows
were never seen by the search. Each epoch the chosen metric is measured on the validation
rows and reported to the trial, which may prune it; the value returned is the metric of the
model training kept (its best epoch on the validation loss).

With ``cv=K`` a trial is instead scored by K-fold cross-validation over all rows, with the
folds and inner validation rows ``train(..., cv=K)`` uses (``train/cv.py``); the value is the
mean over folds, and after fold ``i`` the trial reports the mean of folds ``1..i`` at step ``i``,
so pruners compare trials fold by fold. The pruner is asked from fold ``CV_WARMUP_FOLDS`` on: a
single fold of a small table is a noisy estimate, and a pruned trial tells the GP "as bad as the
worst". Even so, median pruning cost the search more than it saved on small tables (penguins, seed
0, 40 trials of 5 folds: best log loss 0.076 asking the median pruner from fold 1, 0.072 from fold 2,
0.065 without a pruner), so ``modelyard tune --cv`` prunes only when ``--pruner`` is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ParamError
from ..records.training import EpochLog, FitConfig
from ..schema import Task
from .defaults import check_space, to_family_params
from .space import SearchSpace

__all__ = ["CLASSIFICATION_METRICS", "CV_WARMUP_FOLDS", "REGRESSION_METRICS", "TrainingObjective", "resolve_metric"]

CV_WARMUP_FOLDS = 2
"""With ``cv``, the pruner is consulted from this fold on (the mean of at least this many folds)."""

CLASSIFICATION_METRICS = ("f1", "accuracy", "precision", "recall", "log_loss", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2")
_MAXIMIZE = {"f1", "accuracy", "precision", "recall", "roc_auc", "r2"}


def resolve_metric(metric: str | None, task: Task, n_classes: int = 0) -> tuple[str, str]:
    """``(metric, direction)`` for the task: f1 / rmse by default; ParamError for a metric the task lacks."""
    if metric is None:
        metric = "f1" if task is Task.CLASSIFICATION else "rmse"
    allowed = CLASSIFICATION_METRICS if task is Task.CLASSIFICATION else REGRESSION_METRICS
    if metric not in allowed:
        raise ParamError(
            f"metric {metric!r} does not apply to {task.value}; use one of {', '.join(allowed)} with --metric"
        )
    if metric == "roc_auc" and n_classes != 2:
        raise ParamError(
            f"metric 'roc_auc' needs a binary target, this one has {n_classes} classes; use --metric f1"
        )
    return metric, "maximize" if metric in _MAXIMIZE else "minimize"


class TrainingObjective:
    """``objective(trial) -> validation metric``: one training run of ``family`` per trial."""

    def __init__(
        self,
        dataset: Any,
        family: str,
        space: SearchSpace,
        *,
        metric: str | None = None,
        epochs: int = 20,
        patience: int | None = None,
        seed: int = 0,
        val_size: float = 0.15,
        test_size: float = 0.2,
        threads: int | None = None,
        fixed: Mapping[str, Any] | None = None,
        impute: str | None = None,
        cv: int | None = None,
    ):
        from ..data.split import split
        from ..models import get_family
        from ..train.fit import _check_options

        if dataset.y is None:
            from ..errors import DataError

            raise DataError("the dataset has no target; pass --target COLUMN")
        if not val_size > 0 and cv is None:
            raise ParamError(
                f"tuning scores trials on validation rows, so val_size must be > 0, got {val_size}"
            )
        self.family = family
        self.cls = get_family(family)
        check_space(family, space, self.cls.params)
        self.space = space
        self.metric, self.direction = resolve_metric(metric, dataset.task, dataset.schema.n_classes)
        self.config = FitConfig(epochs=epochs, patience=patience, seed=seed, device="cpu", threads=threads)
        self.fixed = dict(fixed or {})
        if threads and "n_jobs" in self.cls.params.params and "n_jobs" not in self.fixed:
            self.fixed["n_jobs"] = int(threads)  # forests: one worker's share of the cores
        unknown = sorted(set(self.fixed) - set(self.cls.params.params) - {"n_jobs"})
        if unknown:
            raise ParamError(f"{family} has no hyperparameter(s) {', '.join(map(repr, unknown))}; drop them")
        self.fixed = {k: v for k, v in self.fixed.items() if k in self.cls.params.params}
        _check_options(dataset, family, self.fixed, impute, None)  # impute strategy, class weights, NaN
        self.impute = impute
        self.cv = None
        if cv is not None:  # trials are scored by K-fold cross-validation over all rows (train/cv.py)
            from ..train.cv import check_cv

            self.cv = check_cv(dataset, cv)
            self.dataset, self.val_size = dataset, val_size
            return
        self.train_ds, self.val_ds, _ = split(dataset, val_size=val_size, test_size=test_size, seed=seed)
        self.imputer = None
        if impute is not None and not getattr(self.cls, "handles_missing", False):
            from ..data.impute import Imputer

            self.imputer = Imputer(impute).fit(self.train_ds.X, self.train_ds.schema)  # as train fits it
        if not len(self.val_ds):
            raise ParamError(
                f"val_size={val_size} leaves no validation rows in {len(dataset)}; raise --val-size"
            )

    def params_for(self, trial_params: Mapping[str, Any]) -> dict[str, Any]:
        """The family hyperparameters a trial trains with (fixed ones included, validated)."""
        return self.cls.params.validate({**self.fixed, **to_family_params(trial_params)}, self.family)

    def _score(self, predictor: Any) -> float:
        from ..train.metrics import evaluate

        return float(evaluate(predictor, self.val_ds.X, self.val_ds.y)[self.metric])

    def __call__(self, trial: Any) -> float:
        """Train with ``trial``'s params, reporting the validation metric each epoch; returns the final one."""
        from .trial import TrialPruned

        params = self.params_for(trial)
        if self.cv is not None:
            return self._cross_validate(params, trial)
        report = getattr(trial, "report", None)
        holder: dict[str, Any] = {}
        pruned = False
        # boosting logs every round: score for the pruner about 20 times a trial, not after every tree
        rounds = params.get(getattr(self.cls, "progress_param", None) or "", None)
        every = max(1, int(rounds) // 20) if isinstance(rounds, int) else 1

        def on_epoch(log: EpochLog) -> bool:
            nonlocal pruned
            if report is None or "predictor" not in holder or log.epoch % every:
                return False
            report(log.epoch, self._score(holder["predictor"]))
            pruned = bool(trial.should_prune())
            return pruned

        predictor = self._fit(params, on_epoch, holder)
        if pruned:
            raise TrialPruned(getattr(trial, "prune_reason", None) or "pruned")
        return self._score(predictor)

    def _cross_validate(self, params: dict[str, Any], trial: Any) -> float:
        """The mean of the metric over the folds; after fold i the pruner sees the mean of folds 1..i."""
        from ..train.cv import cross_validate
        from .trial import TrialPruned

        report = getattr(trial, "report", None)
        scores: list[float] = []
        pruned = False

        def on_fold(i: int, metrics: dict[str, Any]) -> bool:
            nonlocal pruned
            scores.append(float(metrics[self.metric]))
            if report is None:
                return False
            report(i, sum(scores) / len(scores))
            if i < CV_WARMUP_FOLDS:  # one fold's score is too noisy to stop a trial on (see the module docstring)
                return False
            pruned = bool(trial.should_prune())
            return pruned

        cross_validate(self.dataset, self.family, params, k=self.cv, config=self.config, val_size=self.val_size,
                       on_fold=on_fold, impute=self.impute)
        if pruned:
            raise TrialPruned(getattr(trial, "prune_reason", None) or "pruned")
        return sum(scores) / len(scores)

    def _fit(self, params: dict[str, Any], on_epoch: Any, holder: dict[str, Any]) -> Any:
        """Fit as ``train.fit_predictor`` does, but expose the predictor to the epoch callback while it trains."""
        from ..models.predictor import Predictor
        from ..train.fit import weight_kwargs

        schema = self.train_ds.schema
        model = self.cls(task=schema.task, n_classes=schema.n_classes, **params)
        predictor = Predictor(self.family, model, schema, self.imputer)
        holder["predictor"] = predictor
        X = predictor.features(self.train_ds.X)
        eval_set = (predictor.features(self.val_ds.X), self.val_ds.y)
        model.fit(X, self.train_ds.y, eval_set=eval_set, config=self.config, callbacks=[on_epoch],
                  **weight_kwargs(model, self.train_ds, self.val_ds))
        return predictor
