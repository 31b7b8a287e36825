"""The loop hook of data-parallel training: global data order, gradient all-reduce through DDP, or parameter averaging.

See ``distributed.py`` for the notation (ranks, blocks of the global order) and the gradient
scaling that makes N ranks compute the gradient one process computes on the same batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ParamError
from ..models.loop import LoopState, StepHook
from .aggregate import Moments, MomentStats
from .distributed import AGGREGATES, RankContext

__all__ = ["DataParallel", "steps_per_epoch"]


class DataParallel(StepHook):
    """Data-parallel training inside the shared loop: global data order, gradient all-reduce or averaging.

    ``start`` is this rank's first position in the global training order. ``aggregate`` is
    ``"gradient"`` (synchronous SGD through DDP: same parameters as one process) or
    ``"average"`` (local SGD: parameters averaged, weighted by shard size, every ``sync_every``
    steps and at the end of every epoch). ``checkpoint`` (a ``Checkpointer``) saves and resumes.
    """

    deadline_every = 16  # steps between agreements on the wall-clock budget

    def __init__(
        self,
        ctx: RankContext,
        *,
        start: int,
        rows: int,
        aggregate: str = "gradient",
        sync_every: int = 8,
        seed: int = 0,
        checkpoint: Any = None,
    ):
        if aggregate not in AGGREGATES:
            raise ParamError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
        if not isinstance(sync_every, int) or sync_every < 1:
            raise ParamError(f"sync_every must be an int >= 1, got {sync_every!r}; e.g. --sync-every 8")
        self.ctx = ctx
        self.comm = ctx.comm
        self.world = ctx.world_size
        self.start = start
        self.rows = rows
        self.mode = aggregate
        self.sync_every = sync_every
        self.seed = seed
        self.checkpoint = checkpoint
        self.watch = ctx.watch
        self.first_step_at: float | None = None
        self._weight = 0.0
        self._since_sync = 0
        self._loss_sum: Any = 0.0
        self._seen = 0

    # -- model and data order --
    def wrap(self, module: Any) -> Any:
        """Same initial parameters everywhere (rank 0's); per-rank randomness from seed + rank; DDP for gradients."""
        import torch

        total = self.comm.all_sum([self.rows])[0]
        self._weight = self.rows / total if total else 0.0
        torch.manual_seed(self.seed + self.ctx.rank)
        if self.world == 1:
            return module
        if self.mode == "gradient":
            from torch.nn.parallel import DistributedDataParallel as DDP

            dev = next(module.parameters()).device
            with self.comm._collective("the DDP setup"):
                return DDP(module, device_ids=[dev] if dev.type == "cuda" else None)
        self.comm.broadcast_params(module)
        return module

    def total_rows(self, n: int) -> int:
        """Rows across all ranks."""
        return round(self.comm.all_sum([n])[0])

    def batches(self, perm: Any, batch_size: int) -> Iterator[tuple[Any, int]]:
        """This rank's rows of each global minibatch, in the global order (possibly none)."""
        import torch

        n = len(perm)
        lo, hi = self.start, self.start + self.rows
        pos = torch.nonzero((perm >= lo) & (perm < hi)).squeeze(1)  # where my rows sit in the global order
        local = perm[pos] - lo
        cuts = torch.searchsorted(pos, torch.arange(0, n + batch_size, batch_size, device=pos.device)).tolist()
        watch = self.watch
        for j, a in enumerate(range(0, n, batch_size)):
            if watch is not None:
                watch.last = time.monotonic()
                watch.step += 1
            yield local[cuts[j] : cuts[j + 1]], min(batch_size, n - a)

    def backward(self, loss: Any, rows: int, batch: int) -> None:
        """Scale so that the ranks' gradients add up to the global mean; count the loss for the epoch."""
        if rows:
            self._loss_sum = self._loss_sum + loss.detach() * rows
            self._seen += rows
        if self.mode == "gradient":
            # DDP averages over ranks: rows * N / batch turns my mean into my share of the global mean
            scaled = loss * (rows * self.world / batch)
            if self.world > 1:
                with self.comm._collective("the gradient all-reduce"):
                    scaled.backward()
            else:
                scaled.backward()
        elif rows:
            loss.backward()  # local SGD: a rank with no rows in this batch takes no step (its grads stay None)
        if self.first_step_at is None:
            self.first_step_at = time.time()

    def after_step(self, module: Any, step: int) -> None:
        """Local SGD: average the parameters every ``sync_every`` steps."""
        if self.mode == "average" and self.world > 1:
            self._since_sync += 1
            if self._since_sync >= self.sync_every:
                self._average(module)

    def _average(self, module: Any) -> None:
        """θ := Σ_r (n_r / n) θ_r — ``ParameterAverage`` executed as one all-reduce."""
        import torch
        import torch.distributed as dist

        params = [p for p in module.parameters()]
        flat = torch.cat([p.detach().reshape(-1) for p in params]).to(torch.float64) * self._weight
        flat = flat.to(self.comm.device)
        with self.comm._collective("parameter averaging"):
            dist.all_reduce(flat)
        with torch.no_grad():
            i = 0
            for p in params:
                k = p.numel()
                p.copy_(flat[i : i + k].reshape(p.shape).to(p.dtype))
                i += k
        self._since_sync = 0

    def past(self, deadline: float, step: int) -> bool:
        """Rank 0's clock decides, every ``deadline_every`` steps."""
        if self.world == 1:
            return time.perf_counter() > deadline
        if step % self.deadline_every:
            return False
        return self.comm.flag(time.perf_counter() > deadline)

    def reduce_epoch(self, loss_sum: float, count: int) -> tuple[float, int]:
        """Sum of losses and rows over all ranks (counted here: local minibatches vary in size)."""
        if self.mode == "average" and self.world > 1 and self._since_sync:
            self._average(self._module)
        total, rows = self.comm.all_sum([float(self._loss_sum), self._seen])
        self._loss_sum, self._seen = 0.0, 0
        return float(total), round(rows)

    def evaluate(self, module: Any, loss_fn: Any, metric: Any, Xv: Any, yv: Any) -> tuple[float, float | None]:
        """Loss and metric over the validation rows of every rank, as if they were one set."""
        import torch

        module.eval()
        with torch.no_grad():
            out = module(Xv) if len(Xv) else module(Xv[:0])
            outs = self.comm.gather(out.detach().cpu().numpy())
            ys = self.comm.gather(yv.detach().cpu().numpy())
            dev = out.device
            out_all = torch.from_numpy(np.concatenate(outs)).to(dev)
            y_all = torch.from_numpy(np.concatenate(ys)).to(dev)
            loss = float(loss_fn(out_all, y_all))
            value = float(metric(out_all, y_all)) if metric is not None else None
        return loss, value

    def decide(self, stop: bool) -> bool:
        """Rank 0's stop decision, on every rank."""
        return self.comm.flag(stop)

    def all_sum(self, values: NDArray) -> NDArray:
        """The exact solvers' ⊕: a float64 vector (loss and gradient, Gram sums, a Hessian) summed over every rank."""
        if self.watch is not None:
            self.watch.beat("an exact-solver pass")
            self.watch.step += 1
        return self.comm.all_sum(values)

    def restore(self, state: LoopState) -> None:
        """Remember the module (for averaging) and resume from a checkpoint if one was asked for."""
        self._module = state.module
        if self.checkpoint is not None:
            self.checkpoint.restore(state, self)

    def end_epoch(self, state: LoopState, stopping: bool) -> None:
        """Write a checkpoint every K epochs (rank 0 writes; every rank contributes its state)."""
        if self.watch is not None:
            self.watch.beat(f"ending epoch {state.epoch}")
        if self.checkpoint is not None:
            self.checkpoint.maybe_save(state, self)

    def moments(self, X: NDArray, y: NDArray | None) -> tuple[NDArray, NDArray, float, float]:
        """Feature (and regression target) mean and std over every rank's rows, merged with ``Moments``."""
        d = X.shape[1]
        mine = Moments.of(X)
        my_y = Moments.of(np.asarray(y, dtype=np.float64)[:, None]) if y is not None else MomentStats(0.0, np.zeros(1), np.zeros(1))
        packed = np.concatenate([[mine.count], mine.mean, mine.m2, my_y.mean, my_y.m2])[None, :]
        agg = Moments()
        xs, ys = [], []
        for p in self.comm.gather(packed):
            v = p[0]
            xs.append(MomentStats(v[0], v[1 : 1 + d], v[1 + d : 1 + 2 * d]))
            ys.append(MomentStats(v[0], v[1 + 2 * d : 2 + 2 * d], v[2 + 2 * d :]))
        tx, ty = xs[0], ys[0]
        for a, b in zip(xs[1:], ys[1:], strict=True):
            tx, ty = agg.combine(tx, a), agg.combine(ty, b)
        if y is None:
            return tx.mean, tx.std(), 0.0, 1.0
        return tx.mean, tx.std(), float(ty.mean[0]), float(ty.std()[0])


def steps_per_epoch(rows: int, batch_size: int) -> int:
    """Optimizer steps in one epoch over ``rows`` global rows."""
    return math.ceil(rows / min(batch_size, rows))
