"""The one minibatch loop that trains every PyTorch family (and custom ``nn.Module`` factories).

It owns: the optimizer (SGD or Adam, weight decay = L2), the learning-rate schedule
(constant, inverse time ``eta_t = eta0 / (1 + eta0 * mu * t)``, cosine, step), seeded
shuffling, per-epoch validation, early stopping that restores the best weights, the
wall-clock budget, and callbacks. Shapes: ``X: (n, d)`` float32, ``y: (n,)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import TrainingError
from ..records import EpochLog, FitConfig
from .base import Param

__all__ = ["LOOP_PARAMS", "LoopResult", "StepHook", "pick_device", "preload_torch", "train_module"]

LOOP_PARAMS = (
    Param("optimizer", str, "adam", choices=("adam", "sgd"), help="update rule"),
    Param("learning_rate", float, 1e-2, low=1e-7, high=10.0, help="initial step size eta0"),
    Param("batch_size", int, 256, low=1, high=10_000_000, help="rows per minibatch"),
    Param("weight_decay", float, 0.0, low=0.0, high=100.0, help="L2 penalty strength"),
    Param("momentum", float, 0.0, low=0.0, high=0.999, help="SGD momentum"),
    Param(
        "lr_schedule", str, "constant", choices=("constant", "inverse_time", "cosine", "step"), help="step-size schedule"
    ),
    Param("lr_decay", float, 1e-3, low=0.0, high=1e6, help="mu of inverse_time; factor 0.5 per epochs/3 for step"),
    Param("standardize", bool, True, help="scale features (and a regression target) to zero mean, unit variance"),
)


def preload_torch() -> None:
    """Import torch and what its first optimizer imports (``torch._dynamo``, ~1 s), so timings exclude it."""
    import torch._dynamo  # noqa: F401


def pick_device(name: str | None) -> Any:
    """The torch device to train on: the one named, else CUDA when available, else CPU."""
    import torch

    if name:
        try:
            dev = torch.device(name)
        except RuntimeError as e:
            raise TrainingError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from e
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise TrainingError(f"device {name!r} was asked for but CUDA is not available; use --device cpu")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class LoopResult:
    """What the loop measured: the per-epoch log, the epoch whose weights were kept, and why it stopped."""

    history: list[EpochLog]
    best_epoch: int
    stop_reason: str  # "epochs", "early_stopping", "max_time", "callback"


class StepHook:
    """Extension points for data-parallel training; the default does nothing (single process)."""

    def wrap(self, module: Any) -> Any:
        """The module to train (e.g. wrapped for gradient all-reduce)."""
        return module

    def after_step(self, module: Any, step: int) -> None:
        """Called after each optimizer step (e.g. parameter averaging every k steps)."""

    def reduce_epoch(self, loss_sum: float, count: int) -> tuple[float, int]:
        """Combine the epoch's loss sum and row count across workers."""
        return loss_sum, count

    def decide(self, stop: bool) -> bool:
        """Make one stop decision for all workers (rank 0's)."""
        return stop


def _schedule(hp: Mapping[str, Any], epochs: int, steps_per_epoch: int) -> Callable[[int], float]:
    kind = hp["lr_schedule"]
    eta0, mu = hp["learning_rate"], hp["lr_decay"]
    total = max(1, epochs * steps_per_epoch)
    if kind == "inverse_time":
        return lambda t: 1.0 / (1.0 + eta0 * mu * t)
    if kind == "cosine":
        return lambda t: 0.5 * (1.0 + math.cos(math.pi * min(t, total) / total))
    if kind == "step":
        every = max(1, (epochs // 3) * steps_per_epoch)
        return lambda t: 0.5 ** (t // every)
    return lambda t: 1.0


def train_module(
    module: Any,
    loss_fn: Callable[[Any, Any], Any],
    X: NDArray,
    y: NDArray,
    *,
    eval_set: tuple[NDArray, NDArray] | None,
    hp: Mapping[str, Any],
    config: FitConfig,
    callbacks: Sequence[Callable[[EpochLog], bool | None]] = (),
    metric: Callable[[Any, Any], float] | None = None,
    hook: StepHook | None = None,
    start_epoch: int = 1,
) -> LoopResult:
    """Train ``module`` in place with minibatches; return its history. Deterministic for a given seed on CPU."""
    import torch

    hook = hook or StepHook()
    device = next(module.parameters()).device
    Xt = torch.as_tensor(X, device=device)
    yt = torch.as_tensor(y, device=device)
    n = len(Xt)
    if n == 0:
        raise TrainingError("there are no training rows; use more data or a smaller validation/test split")
    bs = min(int(hp["batch_size"]), n)
    steps_per_epoch = math.ceil(n / bs)
    model = hook.wrap(module)
    params = [p for p in model.parameters() if p.requires_grad]
    if hp["optimizer"] == "sgd":
        opt = torch.optim.SGD(params, lr=hp["learning_rate"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])
    else:
        opt = torch.optim.Adam(params, lr=hp["learning_rate"], weight_decay=hp["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(hp, config.epochs, steps_per_epoch))
    gen = torch.Generator().manual_seed(config.seed)
    Xv = yv = None
    if eval_set is not None and len(eval_set[0]):
        Xv = torch.as_tensor(eval_set[0], device=device)
        yv = torch.as_tensor(eval_set[1], device=device)

    history: list[EpochLog] = []
    best_loss, best_epoch, best_state, bad = math.inf, 0, None, 0
    t0 = time.perf_counter()
    deadline = t0 + config.max_time if config.max_time else None
    reason, step = "epochs", 0
    for epoch in range(start_epoch, config.epochs + 1):
        model.train()
        te = time.perf_counter()
        perm = torch.randperm(n, generator=gen).to(device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        seen = 0
        out_of_time = False
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            hook.after_step(module, step)
            loss_sum += loss.detach() * len(idx)
            seen += len(idx)
            if deadline is not None and time.perf_counter() > deadline:
                out_of_time = True
                break
        total, count = hook.reduce_epoch(float(loss_sum), seen)
        train_loss = total / max(count, 1)
        if not math.isfinite(train_loss):
            raise TrainingError(
                f"training diverged at epoch {epoch} (loss {train_loss}); lower learning_rate or enable standardize"
            )
        val_loss = val_metric = None
        if Xv is not None:
            val_loss, val_metric = _evaluate(module, loss_fn, metric, Xv, yv)
        log = EpochLog(epoch, train_loss, val_loss, val_metric, time.perf_counter() - te)
        history.append(log)
        watched = val_loss if val_loss is not None else train_loss
        if watched < best_loss - config.min_delta:
            best_loss, best_epoch, bad = watched, epoch, 0
            if config.patience is not None or deadline is not None or Xv is not None:
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            bad += 1
        stop = False
        for cb in callbacks:
            if cb(log):
                stop, reason = True, "callback"
        if out_of_time:
            stop, reason = True, "max_time"
        elif config.patience is not None and bad >= config.patience:
            stop, reason = True, "early_stopping"
        if hook.decide(stop):
            break
    if best_state is not None and best_epoch != (history[-1].epoch if history else 0):
        module.load_state_dict(best_state)
    return LoopResult(history, best_epoch or (history[-1].epoch if history else 0), reason)


def _evaluate(module: Any, loss_fn: Any, metric: Any, Xv: Any, yv: Any, chunk: int = 65536) -> tuple[float, float | None]:
    import torch

    module.eval()
    with torch.no_grad():
        outs = [module(Xv[i : i + chunk]) for i in range(0, len(Xv), chunk)]
        out = torch.cat(outs) if len(outs) > 1 else outs[0]
        loss = float(loss_fn(out, yv))
        value = float(metric(out, yv)) if metric is not None else None
    return loss, value


def numpy_state(module: Any, prefix: str = "module.") -> dict[str, np.ndarray]:
    """A module's state_dict as contiguous CPU numpy arrays."""
    return {prefix + k: np.ascontiguousarray(v.detach().cpu().numpy()) for k, v in module.state_dict().items()}
