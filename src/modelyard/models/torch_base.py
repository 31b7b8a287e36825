"""Shared machinery of the PyTorch families: standardization, the output head, losses, state as arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError
from ..records.training import EpochLog, FitConfig
from ..schema import Task
from .base import EvalSet, ParamSpec, check_task
from .loop import LoopResult, StepHook, numpy_state, pick_device, train_module

__all__ = ["TorchModel", "column_mean_std"]

DEFAULT_CONFIG = FitConfig()


def column_mean_std(X: NDArray) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-column mean and standard deviation of ``X: (n, d)``, accumulated in float64 in one pass over row chunks."""
    from .solvers.design import moments

    m = moments(X)
    return m.mean, m.std


def _unit_mean(weight: NDArray | None, n: int) -> NDArray[np.float32] | None:
    """Row weights scaled to mean 1 (``None`` stays ``None``); ModelError for a wrong length or bad values."""
    if weight is None:
        return None
    w = np.asarray(weight, dtype=np.float64).reshape(-1)
    if len(w) != n:
        raise ModelError(f"sample_weight has {len(w)} values for {n} rows; pass one weight per row")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ModelError("sample_weight must be finite and >= 0 with a positive sum; fix the weights")
    return (w / w.mean()).astype(np.float32)


class TorchModel:
    """Base of torch families: subclasses declare ``family``, ``tasks``, ``params`` and implement ``build``.

    Calling ``fit`` on a model that already has weights (e.g. made by ``from_state``)
    continues from those weights: that is how a registry branch warm-starts.
    """

    family: ClassVar[str]
    tasks: ClassVar[tuple[Task, ...]] = (Task.CLASSIFICATION, Task.REGRESSION)
    params: ClassVar[ParamSpec]
    encoding: ClassVar[str] = "onehot"

    def __init__(self, *, task: Task | str = Task.CLASSIFICATION, n_classes: int = 0, **params: Any):
        self.task = Task(task)
        check_task(self.family, self.task, self.tasks)
        self.n_classes = int(n_classes)
        self.hparams = self.params.validate(params, self.family)
        self.module_: Any = None
        self.history_: list[EpochLog] = []
        self.notes_: list[str] = []
        self.mean_: NDArray | None = None
        self.scale_: NDArray | None = None
        self.y_mean_ = 0.0
        self.y_scale_ = 1.0

    # --- to implement ---------------------------------------------------------------
    def build(self, n_in: int, n_out: int) -> Any:
        """The torch module mapping ``(n, n_in)`` to ``(n, n_out)``."""
        raise NotImplementedError

    # --- protocol ----------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The hyperparameters, defaults filled in."""
        return dict(self.hparams)

    @property
    def n_out(self) -> int:
        """Width of the output layer: 1 for regression and binary, else one logit per class."""
        return 1 if self.task is Task.REGRESSION or self.n_classes == 2 else self.n_classes

    def fit(
        self,
        X: NDArray,
        y: NDArray,
        *,
        sample_weight: NDArray | None = None,
        eval_set: EvalSet | None = None,
        config: FitConfig = DEFAULT_CONFIG,
        callbacks: Sequence[Any] = (),
        hook: StepHook | None = None,
        eval_sample_weight: NDArray | None = None,
    ) -> Self:
        """Train with the shared minibatch loop (warm-starting when weights exist).

        ``sample_weight``/``eval_sample_weight``: row weights of the training/validation rows; each is
        scaled to mean 1, so the losses are weighted means over their rows.
        """
        import torch

        if self.task is Task.CLASSIFICATION and self.n_classes < 2:
            self.n_classes = int(np.max(y)) + 1 if len(y) else 2
        device = pick_device(config.device)
        old_threads = torch.get_num_threads()
        if config.threads:
            torch.set_num_threads(config.threads)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed)
                if self.module_ is None:
                    self._fit_scaling(X, y, hook)
                    self.module_ = self.build(X.shape[1], self.n_out)
                self.module_.to(device)
                Xs, ys = self._prepare(X, y)
                ev = self._prepare(*eval_set) if eval_set is not None else None
                result: LoopResult = train_module(
                    self.module_, self._loss, Xs, ys, eval_set=ev, hp=self._loop_hparams(), config=config,
                    callbacks=callbacks, metric=self._metric, hook=hook,
                    weights=_unit_mean(sample_weight, len(Xs)),
                    eval_weights=_unit_mean(eval_sample_weight, len(ev[0])) if ev is not None else None,
                )
        finally:
            torch.set_num_threads(old_threads)
        self.module_.to("cpu")
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.stop_reason_ = result.stop_reason
        self.notes_ = list(result.notes)
        return self

    def predict(self, X: NDArray) -> NDArray:
        """Class indices for classification, values for regression."""
        out = self._raw(X)
        if self.task is Task.REGRESSION:
            return out[:, 0].astype(np.float64) * self.y_scale_ + self.y_mean_
        if self.n_out == 1:
            return (out[:, 0] > 0).astype(np.int64)
        return out.argmax(axis=1).astype(np.int64)

    def predict_proba(self, X: NDArray) -> NDArray:
        """Class probabilities ``(n, n_classes)``."""
        if self.task is not Task.CLASSIFICATION:
            raise ModelError(f"{self.family} is a regressor; predict_proba applies to classifiers only, use predict")
        out = self._raw(X).astype(np.float64)
        if self.n_out == 1:
            p = 1.0 / (1.0 + np.exp(-out[:, 0]))
            return np.stack([1 - p, p], axis=1)
        out -= out.max(axis=1, keepdims=True)
        e = np.exp(out)
        return e / e.sum(axis=1, keepdims=True)

    def state(self) -> dict[str, NDArray]:
        """Weights and scaling as named arrays."""
        if self.module_ is None:
            raise ModelError(f"{self.family} is not fitted; call fit first")
        return {**numpy_state(self.module_), **self._scaling_state()}

    def _scaling_state(self) -> dict[str, NDArray]:
        """The input standardization and a regression target's, as the ``scaling.*`` state arrays."""
        return {
            "scaling.mean": np.asarray(self.mean_, dtype=np.float32),
            "scaling.scale": np.asarray(self.scale_, dtype=np.float32),
            "scaling.y": np.array([self.y_mean_, self.y_scale_], dtype=np.float64),
        }

    def _restore_scaling(self, state: Mapping[str, NDArray]) -> None:
        """Set the standardization from the ``scaling.*`` state arrays."""
        self.mean_ = np.asarray(state["scaling.mean"], dtype=np.float32)
        self.scale_ = np.asarray(state["scaling.scale"], dtype=np.float32)
        self.y_mean_, self.y_scale_ = (float(v) for v in state["scaling.y"])

    @classmethod
    def from_state(
        cls, params: Mapping[str, Any], state: Mapping[str, NDArray], *, task: Task | str, n_classes: int = 0
    ) -> Self:
        """Rebuild a fitted model from ``get_params()`` and ``state()``."""
        import torch

        self = cls(task=task, n_classes=n_classes, **params)
        self._restore_scaling(state)
        self.module_ = self.build(len(self.mean_), self.n_out)
        weights = {k[len("module."):]: torch.from_numpy(np.array(v)) for k, v in state.items() if k.startswith("module.")}
        try:
            self.module_.load_state_dict(weights)
        except RuntimeError as e:
            raise ModelError(f"the stored weights do not fit {cls.family} with params {dict(params)} "
                f"({' '.join(str(e).split())[:300]}); rebuild with the params the weights were trained with") from e
        return self

    # --- internals -----------------------------------------------------------------------
    def _loop_hparams(self) -> Mapping[str, Any]:
        """The hyperparameters the minibatch loop reads (``optimizer``, ``weight_decay``, ``learning_rate``, ...)."""
        return self.hparams

    def _fit_scaling(
        self, X: NDArray, y: NDArray, hook: StepHook | None = None, stats: tuple[NDArray, NDArray] | None = None
    ) -> None:
        """Set the standardization (and a regression target's) from the rows, all ranks' rows, or given ``stats``."""
        d = X.shape[1]
        shared = hook.moments(X, y if self.task is Task.REGRESSION else None) if hook is not None else None
        if self.hparams.get("standardize", True) and shared is not None:  # data-parallel: moments of all shards
            mean, std, y_mean, y_std = shared
            self.mean_ = mean.astype(np.float32)
            self.scale_ = np.where(std > 1e-12, std, 1.0).astype(np.float32)
            if self.task is Task.REGRESSION:
                self.y_mean_, self.y_scale_ = float(y_mean), (float(y_std) if y_std > 1e-12 else 1.0)
        elif self.hparams.get("standardize", True):
            mean, std = stats if stats is not None else column_mean_std(X)
            self.mean_ = mean.astype(np.float32)
            self.scale_ = np.where(std > 1e-12, std, 1.0).astype(np.float32)
            if self.task is Task.REGRESSION and len(y):
                self.y_mean_ = float(np.mean(y))
                s = float(np.std(y))
                self.y_scale_ = s if s > 1e-12 else 1.0
        else:
            self.mean_ = np.zeros(d, dtype=np.float32)
            self.scale_ = np.ones(d, dtype=np.float32)

    def _prepare(self, X: NDArray, y: NDArray) -> tuple[NDArray, NDArray]:
        Xs = self._scale(X)
        if self.task is Task.REGRESSION:
            ys = ((np.asarray(y, dtype=np.float64) - self.y_mean_) / self.y_scale_).astype(np.float32)
        elif self.n_out == 1:
            ys = np.asarray(y, dtype=np.float32)
        else:
            ys = np.asarray(y, dtype=np.int64)
        return Xs, ys

    def _scale(self, X: NDArray) -> NDArray:
        if self.hparams.get("standardize", True):
            X = np.subtract(X, self.mean_, dtype=np.float32)  # one new array, scaled in place
            X /= self.scale_
        return np.ascontiguousarray(X, dtype=np.float32)

    def _raw(self, X: NDArray, chunk: int = 65536) -> NDArray:
        import torch

        if self.module_ is None:
            raise ModelError(f"{self.family} is not fitted; call fit first")
        Xs = self._scale(np.asarray(X, dtype=np.float32))
        self.module_.eval()
        with torch.no_grad():
            outs = [self.module_(torch.from_numpy(Xs[i : i + chunk])).numpy() for i in range(0, len(Xs), chunk)]
        return np.concatenate(outs) if outs else np.zeros((0, self.n_out), dtype=np.float32)

    def _loss(self, out: Any, target: Any, weight: Any = None) -> Any:
        """Mean loss over the rows, or ``mean(weight * loss)`` (a weighted mean: weights have mean 1)."""
        import torch.nn.functional as F

        reduction = "mean" if weight is None else "none"
        if self.task is Task.REGRESSION:
            loss = F.mse_loss(out[:, 0], target, reduction=reduction)
        elif self.n_out == 1:
            loss = F.binary_cross_entropy_with_logits(out[:, 0], target, reduction=reduction)
        else:
            loss = F.cross_entropy(out, target, reduction=reduction)
        return loss if weight is None else (loss * weight).mean()

    def _metric(self, out: Any, target: Any) -> float:
        """Validation metric: accuracy for classification, R² for regression."""
        if self.task is Task.REGRESSION:
            pred = out[:, 0]
            ss_res = ((pred - target) ** 2).sum()
            ss_tot = ((target - target.mean()) ** 2).sum()
            return float(1 - ss_res / ss_tot) if float(ss_tot) > 0 else 0.0
        if self.n_out == 1:
            return float(((out[:, 0] > 0).float() == target).float().mean())
        return float((out.argmax(dim=1) == target).float().mean())
