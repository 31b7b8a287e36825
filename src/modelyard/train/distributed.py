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
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DistributedError, ParamError
from .watchdog import Watchdog

__all__ = [
    "AGGREGATES",
    "Comm",
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


_SOURCE_REF = re.compile(r"\[[^\]\s]*\.(?:cc|cpp|cxx|c|h|hpp):\d+\]\s*")  # gloo's "[../gloo/pair.cc:534] "


def _first_line(e: BaseException) -> str:
    """The first line of a collective's error, without the C++ source locations gloo and c10d prefix."""
    text = [ln for ln in (_SOURCE_REF.sub("", ln).strip() for ln in str(e).strip().splitlines()) if ln]
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
