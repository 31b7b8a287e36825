"""The one minibatch loop that trains every PyTorch family (and custom ``nn.Module`` factories).

It owns: the optimizer (SGD or Adam, weight decay = L2), the learning-rate schedule
(constant, inverse time ``eta_t = eta0 / (1 + eta0 * mu * t)``, cosine, step), seeded
shuffling, per-epoch validation, early stopping that restores the best weights, the
wall-clock budget, and callbacks. Shapes: ``X: (n, d)`` float32, ``y: (n,)``; optional
row weights ``w: (n,)`` (mean 1, see ``models/weights.py``) make each step's loss
``mean(w_i * loss_i)`` and the validation loss the same weighted mean over its rows
(``loss_fn(out, target, weight)``), so early stopping watches the weighted objective.

The budget: an explicit ``epochs`` caps the run. Without one the loop budgets optimizer steps,
not epochs: ``DEFAULT_STEPS`` steps, as epochs between ``MIN_EPOCHS`` and ``MAX_EPOCHS`` (a
344-row table with batches of 256 gets 500 epochs, a million rows 20), and early stopping
(``DEFAULT_PATIENCE`` epochs without a better validation loss; ``patience=0`` turns it off)
ends it once the validation loss stops improving. A run whose budget ran out while the loss was
still improving says so in ``LoopResult.notes``, naming the flag that gives it more.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import TrainingError
from ..records.training import EpochLog, FitConfig
from .base import Param

__all__ = [
    "DEFAULT_PATIENCE",
    "DEFAULT_STEPS",
    "LOOP_PARAMS",
    "LoopResult",
    "LoopState",
    "StepHook",
    "budget_epochs",
    "pick_device",
    "preload_torch",
    "train_module",
]

DEFAULT_STEPS = 4000
MIN_EPOCHS = 20
MAX_EPOCHS = 500
DEFAULT_PATIENCE = 10


def budget_epochs(epochs: int | None, rows: int, batch_size: int) -> int:
    """The epochs a run gets: ``epochs`` when given, else ``DEFAULT_STEPS`` optimizer steps within [MIN, MAX] epochs."""
    if epochs is not None:
        return int(epochs)
    per_epoch = math.ceil(rows / max(1, min(batch_size, rows)))
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(DEFAULT_STEPS / per_epoch))))

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
    notes: list[str] = field(default_factory=list)  # what the user should know (e.g. still improving at the end)


@dataclass
class LoopState:
    """The loop's resumable state at the end of an epoch (what a checkpoint saves and restores)."""

    module: Any
    optimizer: Any
    scheduler: Any
    generator: Any  # torch.Generator of the data order
    epoch: int = 0  # last completed epoch
    step: int = 0  # optimizer steps taken so far
    history: list[EpochLog] = field(default_factory=list)
    best_loss: float = math.inf
    best_epoch: int = 0
    best_state: dict[str, Any] | None = None
    bad: int = 0  # epochs without improvement


class StepHook:
    """Extension points for data-parallel training; the default does nothing (single process).

    Data order: every worker draws the same permutation of ``total_rows`` global row
    positions; ``batches`` turns each global minibatch into the rows this worker holds, and
    ``backward`` makes the workers' gradients add up to the single-process gradient.
    """

    def wrap(self, module: Any) -> Any:
        """The module to train (e.g. wrapped for gradient all-reduce)."""
        return module

    def total_rows(self, n: int) -> int:
        """Rows across all workers, given this worker's ``n``."""
        return n

    def batches(self, perm: Any, batch_size: int) -> Iterator[tuple[Any, int]]:
        """(local row indices, global minibatch size) per step, from a permutation of the global rows."""
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            yield idx, len(idx)

    def backward(self, loss: Any, rows: int, batch: int) -> None:
        """Backpropagate the mean loss over this worker's ``rows`` of a global minibatch of ``batch`` rows."""
        loss.backward()

    def after_step(self, module: Any, step: int) -> None:
        """Called after each optimizer step (e.g. parameter averaging every k steps)."""

    def past(self, deadline: float, step: int) -> bool:
        """Whether the wall-clock budget is spent (one answer for all workers)."""
        return time.perf_counter() > deadline

    def reduce_epoch(self, loss_sum: float, count: int) -> tuple[float, int]:
        """Combine the epoch's loss sum and row count across workers."""
        return loss_sum, count

    def evaluate(self, module: Any, loss_fn: Any, metric: Any, Xv: Any, yv: Any) -> tuple[float, float | None]:
        """Validation loss and metric over every worker's validation rows."""
        return _evaluate(module, loss_fn, metric, Xv, yv)

    def decide(self, stop: bool) -> bool:
        """Make one stop decision for all workers (rank 0's)."""
        return stop

    def restore(self, state: LoopState) -> None:
        """Load a checkpoint into ``state`` before the first epoch (resume); the default starts fresh."""

    def end_epoch(self, state: LoopState, stopping: bool) -> None:
        """Called after each epoch's stop decision (e.g. to write a checkpoint)."""

    def moments(self, X: NDArray, y: NDArray | None) -> tuple[NDArray, NDArray, float, float] | None:
        """Global (mean, std) of the features and (mean, std) of the target, or None to use the local rows."""
        return None

    def all_sum(self, values: NDArray) -> NDArray:
        """Element-wise float64 sum over every worker (the exact solvers' ⊕); the identity in one process."""
        return np.asarray(values, dtype=np.float64)


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
    weights: NDArray | None = None,
    eval_weights: NDArray | None = None,
) -> LoopResult:
    """Train ``module`` in place with minibatches; return its history. Deterministic for a given seed on CPU."""
    import torch

    hook = hook or StepHook()
    device = next(module.parameters()).device
    Xt = torch.as_tensor(X, device=device)
    yt = torch.as_tensor(y, device=device)
    wt = None if weights is None else torch.as_tensor(weights, device=device)
    n = hook.total_rows(len(Xt))
    if n == 0:
        raise TrainingError("there are no training rows; use more data or a smaller validation/test split")
    bs = min(int(hp["batch_size"]), n)
    steps_per_epoch = math.ceil(n / bs)
    epochs = budget_epochs(config.epochs, n, bs)
    model = hook.wrap(module)
    params = [p for p in model.parameters() if p.requires_grad]
    if hp["optimizer"] == "sgd":
        opt = torch.optim.SGD(params, lr=hp["learning_rate"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])
    else:
        opt = torch.optim.Adam(params, lr=hp["learning_rate"], weight_decay=hp["weight_decay"])
    # a constant schedule needs no scheduler: that saves a Python call per step
    sched = None
    if hp["lr_schedule"] != "constant":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(hp, epochs, steps_per_epoch))
    after_step = hook.after_step if type(hook).after_step is not StepHook.after_step else None
    backward = hook.backward if type(hook).backward is not StepHook.backward else None
    gen = torch.Generator().manual_seed(config.seed)
    Xv = yv = None
    if eval_set is not None and hook.total_rows(len(eval_set[0])):
        Xv = torch.as_tensor(eval_set[0], device=device)
        yv = torch.as_tensor(eval_set[1], device=device)
    eval_loss = loss_fn
    if Xv is not None and eval_weights is not None:
        wv = torch.as_tensor(eval_weights, device=device)
        eval_loss = lambda out, target: loss_fn(out, target, wv)
    # early stopping is on by default when there are validation rows to watch; patience=0 turns it off
    patience = config.patience if config.patience is not None else (DEFAULT_PATIENCE if Xv is not None else 0)
    keep_best = bool(patience) or config.max_time is not None or Xv is not None

    st = LoopState(module, opt, sched, gen, epoch=start_epoch - 1)
    hook.restore(st)
    history = st.history
    t0 = time.perf_counter()
    deadline = t0 + config.max_time if config.max_time else None
    reason, step = "epochs", st.step
    for epoch in range(st.epoch + 1, epochs + 1):
        model.train()
        te = time.perf_counter()
        perm = torch.randperm(n, generator=gen).to(device)
        losses = []  # one detached scalar per step, summed once per epoch (no per-step arithmetic)
        out_of_time = False
        for idx, size in hook.batches(perm, bs):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[idx]), yt[idx]) if wt is None else loss_fn(model(Xt[idx]), yt[idx], wt[idx])
            if backward is None:
                loss.backward()
            else:
                backward(loss, len(idx), size)
            opt.step()
            losses.append(loss.detach())
            step += 1
            if sched is not None:
                sched.step()
            if after_step is not None:
                after_step(module, step)
            if deadline is not None and hook.past(deadline, step):
                out_of_time = True
                break
        seen = min(len(losses) * bs, n)
        batch_rows = torch.full((len(losses),), float(bs), dtype=torch.float64, device=device)
        batch_rows[-1] = seen - (len(losses) - 1) * bs  # the last batch may be short
        loss_sum = float((torch.stack(losses).to(torch.float64) * batch_rows).sum())
        total, count = hook.reduce_epoch(loss_sum, seen)
        train_loss = total / max(count, 1)
        if not math.isfinite(train_loss):
            raise TrainingError(
                f"training diverged at epoch {epoch} (loss {train_loss}); lower learning_rate or enable standardize"
            )
        val_loss = val_metric = None
        if Xv is not None:
            val_loss, val_metric = hook.evaluate(module, eval_loss, metric, Xv, yv)
        lr = float(opt.param_groups[0]["lr"])
        log = EpochLog(epoch, train_loss, val_loss, val_metric, time.perf_counter() - te, {"lr": lr, "steps": float(step)})
        history.append(log)
        watched = val_loss if val_loss is not None else train_loss
        if watched < st.best_loss - config.min_delta:
            st.best_loss, st.best_epoch, st.bad = watched, epoch, 0
            if keep_best:
                st.best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            st.bad += 1
        stop = False
        for cb in callbacks:
            if cb(log):
                stop, reason = True, "callback"
        if out_of_time:
            stop, reason = True, "max_time"
        elif patience and st.bad >= patience:
            stop, reason = True, "early_stopping"
        stop = hook.decide(stop)
        st.epoch, st.step = epoch, step
        hook.end_epoch(st, stop)
        if stop:
            break
    best_epoch, best_state = st.best_epoch, st.best_state
    if best_state is not None and best_epoch != (history[-1].epoch if history else 0):
        module.load_state_dict(best_state)
    best = best_epoch or (history[-1].epoch if history else 0)
    return LoopResult(history, best, reason, still_improving(history, best, reason, config.epochs))


def still_improving(history: Sequence[EpochLog], best_epoch: int, reason: str, asked: int | None) -> list[str]:
    """A note when the epoch budget ran out while the watched loss was still falling, naming the flag for more."""
    if reason != "epochs" or not history or best_epoch < history[-1].epoch - 1:
        return []
    n = len(history)
    watched = [h.val_loss if h.val_loss is not None else h.train_loss for h in history]
    back = min(5, n - 1)
    what = "validation" if history[-1].val_loss is not None else "training"
    trend = f" ({what} loss {watched[-1 - back]:.4g} -> {watched[-1]:.4g} over the last {back} epochs)" if back else ""
    budget = f"its {n} epochs" if asked is not None else f"the default budget of {n} epochs"
    return [(f"still improving at the end of {budget}{trend}; allow more with --epochs {2 * n} "
             "(or a time budget with --max-time)")]


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
