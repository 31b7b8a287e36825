"""The rank side of data-parallel training on torch.distributed: environment, collectives, the loop hook, hangs.

Notation: N = world size; rank r holds the contiguous block ``[c_r, c_r + n_r)`` of the global
training order, ``n = Σ n_r``. Every rank draws the same permutation of the n global positions
each epoch (one generator, seeded with ``seed``); a global minibatch of B positions is split
into the rows each rank holds, and each rank backpropagates ``mean_loss · n_rb · N / B`` so that
DDP's average of the ranks' gradients is ``Σ_{i∈batch} g_i / B``: exactly the gradient one
process computes on the same batch (Theorem 4.1.5). Randomness that is per rank (dropout)
comes from ``seed + r``.

The same code runs under ``torchrun`` and under our local launcher (``launch.py``): rank, world
size and master address come from the environment (RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT). gloo on CPU, nccl when the model trains on CUDA.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DistributedError, ParamError
from ..models.loop import LoopState, StepHook
from .aggregate import Moments, MomentStats

__all__ = [
    "AGGREGATES",
    "Comm",
    "DataParallel",
    "DistEnv",
    "LostPeerError",
    "RankContext",
    "cpu_cores",
    "rank_session",
    "threads_per_process",
]

AGGREGATES = ("gradient", "average")
DEFAULT_TIMEOUT = 600.0


class LostPeerError(DistributedError):
    """This rank is healthy but another rank stopped answering (crashed, hung or unreachable)."""


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def threads_per_process(processes: int, threads: int | None = None, cores: int | None = None) -> int:
    """Torch threads per worker: ``threads`` if it fits, else ``max(1, cores // processes)``; never oversubscribe."""
    cores = cores or cpu_cores()
    if threads is None:
        return max(1, cores // processes)
    if not isinstance(threads, int) or threads < 1:
        raise ParamError(f"threads must be an int >= 1, got {threads!r}")
    if processes > 1 and threads * processes > cores:
        raise ParamError(
            f"{processes} processes x {threads} threads = {threads * processes} threads on {cores} cores would "
            f"oversubscribe them (and run several times slower); use threads <= {max(1, cores // processes)} "
            "or leave threads unset"
        )
    return threads


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the run, as torchrun's contract puts it in the environment."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    @classmethod
    def from_env(cls) -> DistEnv:
        """Read RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT (a single process if unset)."""
        env = os.environ
        try:
            world = int(env.get("WORLD_SIZE", "1"))
            rank = int(env.get("RANK", "0"))
            local_rank = int(env.get("LOCAL_RANK", str(rank)))
            local_world = int(env.get("LOCAL_WORLD_SIZE", str(world)))
            port = int(env.get("MASTER_PORT", "29500"))
        except ValueError as e:
            raise DistributedError(f"bad torchrun environment ({e}); RANK, WORLD_SIZE, ... must be integers") from e
        if world < 1 or not 0 <= rank < world:
            raise DistributedError(f"RANK={rank} is not in [0, WORLD_SIZE={world}); check the launcher's environment")
        return cls(rank, world, local_rank, local_world, env.get("MASTER_ADDR", "127.0.0.1"), port)

    @property
    def distributed(self) -> bool:
        """Whether there is more than one rank."""
        return self.world_size > 1


def under_launcher() -> bool:
    """Whether this process is one rank of several (started by torchrun or our launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


# --- hang detection -------------------------------------------------------------------------------------------


class Watchdog:
    """Fails this rank when its own work makes no progress for ``timeout`` seconds (waits on peers excluded).

    The main thread calls ``beat()`` at every step and marks collective waits with ``waiting()``;
    a daemon thread checks, writes a heartbeat file for the local launcher, and ends the process
    with the rank and what it was doing. Waits on other ranks are bounded by the collective timeout.
    """

    def __init__(self, rank: int, timeout: float, run_dir: Path | None = None):
        self.rank = rank
        self.timeout = timeout
        self.run_dir = run_dir
        self.last = time.monotonic()
        self.activity = "starting"
        self.step = 0
        self.waits = 0
        self._stop = threading.Event()
        self._parent = int(os.environ.get("MODELYARD_PARENT_PID", "0") or 0)
        self._thread = threading.Thread(target=self._run, name="modelyard-watchdog", daemon=True)

    def start(self) -> Watchdog:
        """Start the checking thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop checking."""
        self._stop.set()

    def beat(self, activity: str | None = None) -> None:
        """Record progress of this rank's own work."""
        self.last = time.monotonic()
        if activity is not None:
            self.activity = activity

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Mark a wait on other ranks (not this rank's hang)."""
        self.waits += 1
        try:
            yield
        finally:
            self.waits -= 1
            self.last = time.monotonic()

    def _run(self) -> None:
        interval = min(1.0, max(0.05, self.timeout / 20))
        while not self._stop.wait(interval):
            now = time.monotonic()
            if self.run_dir is not None:
                hb = self.run_dir / f"heartbeat-{self.rank}"
                try:
                    hb.write_text(f"{time.time():.3f} {self.step}\n")
                except OSError:
                    pass
            if self._parent and os.getppid() != self._parent:
                os._exit(4)  # the launcher is gone: do not linger as an orphan
            if self.waits == 0 and now - self.last > self.timeout:
                message = (
                    f"rank {self.rank} made no progress for {now - self.last:.1f} s while {self.activity} "
                    f"(step {self.step}), more than the {self.timeout:g} s timeout: it is hung; "
                    "fix what blocks it, or raise --dist-timeout if a step legitimately takes that long"
                )
                if self.run_dir is not None:
                    write_error(self.run_dir, self.rank, "hang", "DistributedError", message)
                print(f"error: {message}", file=sys.stderr, flush=True)
                os._exit(3)


def write_error(run_dir: Path, rank: int, kind: str, type_name: str, message: str) -> None:
    """Record why a rank failed (``error-RANK.json``, written atomically) for the launcher to report."""
    path = run_dir / f"error-{rank}.json"
    tmp = run_dir / f".error-{rank}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"rank": rank, "kind": kind, "type": type_name, "message": message, "time": time.time()}))
    os.replace(tmp, path)


# --- collectives ----------------------------------------------------------------------------------------------


class Comm:
    """The collectives the runtime needs, over the default process group; identities for one process."""

    def __init__(self, rank: int = 0, world_size: int = 1, device: Any = "cpu", watch: Watchdog | None = None):
        self.rank = rank
        self.world_size = world_size
        self.device = device
        self.watch = watch

    @contextmanager
    def _collective(self, what: str) -> Iterator[None]:
        import torch.distributed as dist

        ctx = self.watch.waiting() if self.watch is not None else _null()
        try:
            with ctx:
                yield
        except (dist.DistError, RuntimeError) as e:
            raise LostPeerError(
                f"rank {self.rank} lost contact with another rank during {what} ({_first_line(e)}); "
                "the rank that failed first has the cause"
            ) from e

    def all_sum(self, values: Any) -> NDArray[np.float64]:
        """Element-wise sum over ranks of a float vector."""
        arr = np.asarray(values, dtype=np.float64)
        if self.world_size == 1:
            return arr
        import torch
        import torch.distributed as dist

        t = torch.as_tensor(arr.copy(), device=self.device)
        with self._collective("an all-reduce"):
            dist.all_reduce(t)
        return t.cpu().numpy()

    def flag(self, value: bool) -> bool:
        """Rank 0's ``value`` on every rank."""
        if self.world_size == 1:
            return bool(value)
        import torch
        import torch.distributed as dist

        t = torch.tensor([1 if value else 0], dtype=torch.int32, device=self.device)
        with self._collective("a broadcast"):
            dist.broadcast(t, src=0)
        return bool(t.item())

    def gather(self, arr: NDArray) -> list[NDArray]:
        """Every rank's array (same dtype and trailing shape, any number of rows), in rank order."""
        arr = np.ascontiguousarray(arr)
        if self.world_size == 1:
            return [arr]
        import torch
        import torch.distributed as dist

        raw = arr.view(np.uint8).reshape(-1)
        with self._collective("an all-gather"):
            sizes = [torch.zeros(1, dtype=torch.int64, device=self.device) for _ in range(self.world_size)]
            dist.all_gather(sizes, torch.tensor([raw.size], dtype=torch.int64, device=self.device))
            lengths = [int(s.item()) for s in sizes]
            top = max(lengths)
            buf = torch.zeros(top, dtype=torch.uint8, device=self.device)
            buf[: raw.size] = torch.from_numpy(raw.copy()).to(self.device)
            out = [torch.empty(top, dtype=torch.uint8, device=self.device) for _ in range(self.world_size)]
            dist.all_gather(out, buf)
        tail = arr.shape[1:]
        return [o[:n].cpu().numpy().view(arr.dtype).reshape((-1, *tail)) for o, n in zip(out, lengths, strict=True)]

    def gather_counts(self, n: int) -> list[int]:
        """Every rank's ``n``."""
        return [int(x[0]) for x in self.gather(np.array([n], dtype=np.int64))]

    def broadcast_params(self, module: Any) -> None:
        """Rank 0's parameters and buffers on every rank."""
        if self.world_size == 1:
            return
        import torch.distributed as dist

        with self._collective("the initial parameter broadcast"):
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)

    def barrier(self) -> None:
        """Wait until every rank arrives."""
        if self.world_size == 1:
            return
        self.all_sum([0.0])


@contextmanager
def _null() -> Iterator[None]:
    yield


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


# --- the rank session -----------------------------------------------------------------------------------------


@dataclass
class RankContext:
    """What one rank knows: its place, collectives, threads, device and watchdog."""

    env: DistEnv
    comm: Comm
    threads: int
    device: str | None
    backend: str | None
    timeout: float
    watch: Watchdog | None = None

    @property
    def rank(self) -> int:
        """This rank."""
        return self.env.rank

    @property
    def world_size(self) -> int:
        """Number of ranks."""
        return self.env.world_size

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that writes)."""
        return self.env.rank == 0


@contextmanager
def rank_session(
    *, timeout: float = DEFAULT_TIMEOUT, device: str | None = None, threads: int | None = None
) -> Iterator[RankContext]:
    """Join the process group described by the environment (or run alone), with threads, device and watchdog."""
    import torch

    if not timeout > 0:
        raise ParamError(f"the distributed timeout must be > 0 seconds, got {timeout!r}; e.g. --dist-timeout 600")
    env = DistEnv.from_env()
    n_threads = threads_per_process(env.local_world_size, threads)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    run_dir = Path(os.environ["MODELYARD_RUN_DIR"]) if os.environ.get("MODELYARD_RUN_DIR") else None
    cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if device is None or device == "cuda":
        device = f"cuda:{env.local_rank}" if cuda else "cpu"
    backend = None
    watch = None
    if env.distributed:
        import torch.distributed as dist

        backend = "nccl" if cuda else "gloo"
        if cuda:
            torch.cuda.set_device(torch.device(device))
        watch = Watchdog(env.rank, timeout, run_dir).start()
        watch.beat("joining the process group")
        # peers waiting on a hung rank give up a little after its own watchdog has named it
        wait = timeout + max(5.0, 0.25 * timeout)
        try:
            with watch.waiting():
                dist.init_process_group(backend, timeout=datetime.timedelta(seconds=wait))
        except (dist.DistError, RuntimeError, ValueError) as e:
            watch.stop()
            raise LostPeerError(
                f"rank {env.rank} could not join the process group at {env.master_addr}:{env.master_port} "
                f"within {wait:g} s ({_first_line(e)}); check that every rank started and can reach rank 0"
            ) from e
    comm = Comm(env.rank, env.world_size, device if backend == "nccl" else "cpu", watch)
    ctx = RankContext(env, comm, n_threads, device, backend, timeout, watch)
    try:
        yield ctx
    finally:
        torch.set_num_threads(old_threads)
        if watch is not None:
            watch.stop()
        if env.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


# --- the loop hook --------------------------------------------------------------------------------------------


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
