"""Data-parallel gradient boosting on XGBoost's own collective: the ⊕ is the sum of gradient histograms.

Notation: rank ``r`` of ``N`` holds rows ``D_r`` (its shard, read by ``shards.py``); ``g_i, h_i``
are the first and second derivatives of row ``i``'s loss at the current margin; feature ``f`` is
cut into bins ``b`` by shared cut points. For every tree node being split, each rank builds

    S_r = (G_r[f, b], H_r[f, b]) = (Σ_{i ∈ D_r ∩ node, x_if ∈ b} g_i,  Σ_{i ∈ D_r ∩ node, x_if ∈ b} h_i)

and ``S_1 ⊕ ... ⊕ S_N`` adds them element-wise: an all-reduce (sum), associative and commutative,
which gives exactly the histogram of the union of the shards. The best split is then chosen
from the total, ``gain = G_L²/(H_L+λ) + G_R²/(H_R+λ) - G²/(H+λ)`` (``HistogramSum`` below states
the same round in numpy for the tests), so every rank grows the same tree. The cut points
themselves come from XGBoost's distributed quantile sketch (per-rank weighted summaries merged
by an all-reduce): exact whenever a feature has at most ``max_bin`` distinct values, otherwise
an ε-approximate quantile summary, so N ranks can cut a continuous feature slightly differently
from one process and grow slightly different trees (accuracy is unaffected within noise; see
docs/distributed.md). Evaluation metrics (and the early-stopping decision) are reduced over all
ranks too, and a stop request of any rank is reduced with ``max`` (``models/boosting/rounds.py``).

Runtime: rank 0 starts XGBoost's ``RabitTracker`` on the master address (the torchrun contract's
``MASTER_ADDR``) and broadcasts its port over the rank session's process group; every rank then
joins XGBoost's collective with its own rank as task id, so XGBoost's rank order is ours. The
collective's timeout is the run's ``--dist-timeout``. Failures end the run in bounded time: a rank
that dies makes the launcher stop the run naming it (``launch.py``); a rank whose Python work between
rounds (callbacks) stops progressing is named by its watchdog, which counts XGBoost's own run as a
wait on the peers and the callbacks as the rank's own work; a frozen process is named by the
launcher's heartbeat check; and a rank whose peer stopped answering inside XGBoost's collective
(after the collective's timeout) reports a ``LostPeerError``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..records.training import EpochLog, FitConfig
from .aggregate import Shard
from .distributed import LostPeerError, RankContext

__all__ = ["Heartbeat", "Histogram", "HistogramSum", "Split", "boost_on_rank", "xgboost_collective"]


@contextmanager
def xgboost_collective(ctx: RankContext) -> Iterator[None]:
    """Inside: XGBoost's collective joins this run's ranks (nothing to do for one process)."""
    if ctx.world_size == 1:
        yield
        return
    from xgboost import collective
    from xgboost.tracker import RabitTracker

    host = socket.gethostbyname(ctx.env.master_addr)
    wait = ctx.watch.waiting if ctx.watch is not None else _null
    tracker = None
    port = 0
    timeout = max(1, round(ctx.timeout))
    if ctx.is_main:
        tracker = RabitTracker(n_workers=ctx.world_size, host_ip=host, port=0, sortby="task", timeout=timeout)
        tracker.start()
        port = int(tracker.worker_args()["dmlc_tracker_port"])
    with wait():
        port = int(ctx.comm.all_sum([float(port)])[0])  # rank 0's port on every rank (the others add 0)
        try:
            collective.init(dmlc_tracker_uri=host, dmlc_tracker_port=port, dmlc_task_id=str(ctx.rank),
                            dmlc_timeout=timeout)
        except Exception as e:  # XGBoostError: the tracker or a peer is unreachable
            raise LostPeerError(f"rank {ctx.rank} could not join XGBoost's collective at {host}:{port} "
                                f"({_first_line(e)}); check that every rank started and can reach rank 0") from e
    ok = False
    try:
        yield
        ok = True
    finally:
        if ok:  # after a failure a peer may be gone: finalizing would wait for it
            with wait():
                collective.finalize()
                if tracker is not None:
                    tracker.wait_for(timeout)


@contextmanager
def _null() -> Iterator[None]:
    yield


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(e).__name__)[:300]


def peer_lost(e: BaseException) -> bool:
    """Whether an XGBoost failure inside a distributed fit says a peer went away (not a local error)."""
    text = str(e).lower()
    return any(w in text for w in ("connection", "socket", "timeout", "timed out", "broken pipe", "peer", "recv",
                                   "send", "poll"))


def boost_on_rank(ctx: RankContext, model: Any, X: NDArray, y: NDArray, eval_set: tuple[NDArray, NDArray],
                   config: FitConfig, callbacks: Sequence[Callable[[EpochLog], bool | None]]) -> None:
    """Boost on this rank's rows inside XGBoost's collective (⊕ = sum of gradient histograms, ``boost_dist.py``)."""
    from ..errors import TrainingError

    with xgboost_collective(ctx):
        try:
            model.fit(X, y, eval_set=eval_set, config=config, callbacks=list(callbacks) if ctx.is_main else [],
                      hook=Heartbeat(ctx.watch))
        except TrainingError as e:
            if ctx.world_size > 1 and e.__cause__ is not None and peer_lost(e.__cause__):
                raise LostPeerError(f"rank {ctx.rank} lost contact with another rank while boosting ({e}); "
                                    "the rank that failed first has the cause") from e
            raise


class Heartbeat:
    """A boosting rank's watchdog link: a beat after every round, and the waits on other ranks marked as such."""

    def __init__(self, watch: Any):
        self.watch = watch

    def __call__(self, booster: Any) -> None:
        if self.watch is not None:
            self.watch.beat("boosting")

    def waiting(self) -> Any:
        """Inside: XGBoost's collectives may wait on the others (bounded by the collective's timeout)."""
        from contextlib import nullcontext

        return self.watch.waiting() if self.watch is not None else nullcontext()

    def working(self) -> Any:
        """Inside a wait: this rank's own Python work between rounds, which its watchdog times."""
        from contextlib import nullcontext

        return self.watch.working() if self.watch is not None else nullcontext()


# --- the ⊕ in numpy: what the collective computes, stated small enough to test ---------------------------------


@dataclass(frozen=True)
class Histogram:
    """Per feature and bin: gradient sum ``G: (d, B)``, hessian sum ``H: (d, B)``, and the row count ``n``."""

    n: float
    G: NDArray[np.float64]
    H: NDArray[np.float64]


@dataclass(frozen=True)
class Split:
    """The best split of a node: rows with ``bin <= threshold_bin`` of ``feature`` go left."""

    feature: int
    threshold_bin: int
    gain: float


class HistogramSum:
    """One node's split search as an Aggregate: local gradient histograms, ⊕ = add, apply = the best split.

    ``cuts[f]``: the increasing upper bin edges of feature ``f`` (shared by every rank; ``B`` bins
    each, the last edge +inf). ``gradients(X, y) -> (g, h)`` gives each row's first and second
    derivative at the current margin. ``reg_lambda`` is the L2 penalty λ in the gain.
    """

    def __init__(self, cuts: NDArray[np.float64], gradients: Callable[[NDArray, NDArray], tuple[NDArray, NDArray]],
                 reg_lambda: float = 1.0):
        self.cuts = np.asarray(cuts, dtype=np.float64)
        self.gradients = gradients
        self.reg_lambda = float(reg_lambda)

    def bins(self, X: NDArray) -> NDArray[np.int64]:
        """The bin of every value ``(n, d)``."""
        return np.stack([np.searchsorted(self.cuts[f], X[:, f], side="left") for f in range(X.shape[1])], axis=1)

    def local(self, model: Any, shard: Shard) -> Histogram:
        """(G_r, H_r) of this shard's rows."""
        d, B = self.cuts.shape
        g, h = self.gradients(shard.X, shard.y)
        G = np.zeros((d, B))
        H = np.zeros((d, B))
        if len(shard):
            b = self.bins(shard.X)
            for f in range(d):
                G[f] = np.bincount(b[:, f], weights=g, minlength=B)
                H[f] = np.bincount(b[:, f], weights=h, minlength=B)
        return Histogram(float(len(shard)), G, H)

    def combine(self, a: Histogram, b: Histogram) -> Histogram:
        """⊕: element-wise sum."""
        return Histogram(a.n + b.n, a.G + b.G, a.H + b.H)

    def apply(self, model: Any, total: Histogram) -> Split:
        """The split with the largest gain over every feature and bin boundary of the total histogram."""
        lam = self.reg_lambda
        GL, HL = np.cumsum(total.G, axis=1)[:, :-1], np.cumsum(total.H, axis=1)[:, :-1]
        G, H = total.G.sum(axis=1, keepdims=True), total.H.sum(axis=1, keepdims=True)
        gain = GL**2 / (HL + lam) + (G - GL) ** 2 / (H - HL + lam) - G**2 / (H + lam)
        f, b = np.unravel_index(int(np.argmax(gain)), gain.shape)
        return Split(int(f), int(b), float(gain[f, b]))
