"""Optimizers: propose the next parameters from the finished and running trials.

An optimizer holds no hidden state: ``suggest(space, history, pending, rng)`` reads the
history every time, so any process sharing the store can ask for the next trial and the
same ``rng`` seed with the same history gives the same suggestion.

Direction: ``suggest`` always MINIMIZES ``value``; the Study negates values of a study
that maximizes before calling it.

``history`` is any sequence of objects with ``.params`` (dict), ``.value`` (float or None),
``.state`` ("complete", "pruned" or "failed", or an Enum whose ``.value`` is one of them) and
``.intermediate`` (dict step -> value). ``pending`` holds the params of running trials.

How the GP optimizer treats each kind of trial:
- complete: observations; the GP's hyperparameters are fitted on these alone.
- running (pending): Kriging-believer fantasies, observed at the posterior mean. This keeps
  the mean but collapses the variance there, so N parallel workers propose N different points.
- failed: fantasies at the worst completed value, so their neighbourhood is avoided (a crash
  often marks a bad region, e.g. a learning rate that diverges) without bending the fit.
- pruned: also fantasies at the worst completed value. Their last intermediate value is not on
  the scale of final values (a loss after 1 epoch is not a loss after 50), so feeding it to the
  GP would distort the fit; the pruner already judged the trial worse than its peers, and the
  worst completed value is the scale-safe statement of that.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, runtime_checkable

import numpy as np
from threadpoolctl import ThreadpoolController

from modelyard.errors import ParamError, SpaceError

from .space import Categorical, Float, Int, SearchSpace

if TYPE_CHECKING:
    from .gp.optimize import Layout

# the GP modules (and scipy under them) load on the first GP suggestion, so that reading studies, the
# dashboard and `modelyard studies` do not pay for them
ACQUISITIONS = ("logei", "ucb")

__all__ = [
    "OPTIMIZERS",
    "GPOptimizer",
    "Optimizer",
    "RandomOptimizer",
    "TrialView",
    "get_optimizer",
    "layout_of",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")


@dataclass(frozen=True)
class TrialView:
    """The minimal finished-trial record an optimizer or pruner reads."""

    params: dict[str, Any]
    value: float | None = None
    state: str = "complete"
    intermediate: dict[int, float] = field(default_factory=dict)


@runtime_checkable
class Optimizer(Protocol):
    """Proposes the next parameters; reads ``history``, holds no hidden state; minimizes."""

    def suggest(
        self,
        space: SearchSpace,
        history: Sequence[Any],
        pending: Sequence[Mapping[str, Any]],
        rng: np.random.Generator,
    ) -> dict[str, Any]: ...


def _state(trial: Any) -> str:
    s = getattr(trial, "state", "complete")
    return str(getattr(s, "value", s)).lower()


def _key(u: np.ndarray) -> bytes:
    return np.round(u, 9).tobytes()


def _encode(space: SearchSpace, params: Mapping[str, Any]) -> np.ndarray | None:
    try:
        return space.to_unit(params)
    except SpaceError:  # a trial from an older version of the space: skip it
        return None


def _split(space: SearchSpace, history: Sequence[Any], pending: Sequence[Mapping[str, Any]]):
    """Unit points of complete (with values), failed-or-pruned, and pending trials."""
    Xc, yc, Xbad, Xp = [], [], [], []
    for t in history:
        u = _encode(space, t.params)
        if u is None:
            continue
        st = _state(t)
        v = t.value
        if st == "complete" and v is not None and np.isfinite(float(v)):
            Xc.append(u)
            yc.append(float(v))
        elif st in ("failed", "fail", "pruned", "complete"):
            Xbad.append(u)
    for p in pending:
        u = _encode(space, p)
        if u is not None:
            Xp.append(u)
    D = space.n_dims
    as2d = lambda rows: np.array(rows, dtype=float).reshape(-1, D)
    return as2d(Xc), np.array(yc, dtype=float), as2d(Xbad), as2d(Xp)


def _unseen(space: SearchSpace, X: np.ndarray, taken: set[bytes], rng: np.random.Generator) -> dict[str, Any]:
    """The first candidate of ``X`` (ranked best first) not yet taken, else a random untaken point."""
    for x in X:
        params = space.from_unit(x)
        if _key(space.to_unit(params)) not in taken:
            return params
    return _random_unseen(space, taken, rng)


def _random_unseen(space: SearchSpace, taken: set[bytes], rng: np.random.Generator) -> dict[str, Any]:
    for params in space.sample(rng, 64):
        if _key(space.to_unit(params)) not in taken:
            return params
    return space.sample(rng, 1)[0]  # the space is (nearly) exhausted: a repeat is unavoidable


class RandomOptimizer:
    """Independent uniform draws in the unit cube, skipping points already tried or running."""

    model_based = False  # the contract suite holds only model-based optimizers to beating random search

    def suggest(
        self,
        space: SearchSpace,
        history: Sequence[Any],
        pending: Sequence[Mapping[str, Any]],
        rng: np.random.Generator,
    ) -> dict[str, Any]:
        """One uniform draw not equal to any finished or running trial (when possible)."""
        taken = {_key(u) for u in (_encode(space, t.params) for t in history) if u is not None}
        taken |= {_key(u) for u in (_encode(space, p) for p in pending) if u is not None}
        return _random_unseen(space, taken, rng)


def layout_of(space: SearchSpace) -> Layout:
    """Describe the space's unit-cube columns for the acquisition optimizer."""
    from .gp.optimize import Layout

    floats, ints, groups = [], [], []
    for name, d in space.params.items():
        s = space.slices[name]
        if isinstance(d, Float):
            floats.append(s.start)
        elif isinstance(d, Int):
            grid = np.array([d.encode(d.low + k * d.step)[0] for k in range(d.n_values)])
            ints.append((s.start, grid))
        elif isinstance(d, Categorical):
            groups.append(np.arange(s.start, s.stop))
    return Layout(space.n_dims, tuple(floats), tuple(ints), tuple(groups))


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _one_blas_thread(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``method`` with BLAS limited to one thread: the GP's matrices are tiny, threads only add
    overhead (and contention)."""

    @functools.wraps(method)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _blas_controller().limit(limits=1, user_api="blas"):
            return method(*args, **kwargs)

    return run


class GPOptimizer:
    """Gaussian-process Bayesian optimization: Sobol maximin start, then log-EI (or UCB).

    ``kernel``: "matern52" (ARD, default) or "rbf". ``acquisition``: "logei" or "ucb" (with
    ``beta``). ``n_initial``: space-filling points before the GP (default min(10, max(5, D + 1))
    for D unit-cube columns). ``warp``: output warping before standardization, "yeo-johnson"
    (default), "none", "log", "auto" (log when positive and spanning decades) or "select"
    (none or Yeo-Johnson, whichever gives the GP the higher evidence).
    """

    model_based = True

    def __init__(
        self,
        kernel: str = "matern52",
        acquisition: str = "logei",
        n_initial: int | None = None,
        warp: str = "yeo-johnson",
        beta: float = 2.0,
    ) -> None:
        if kernel not in ("matern52", "rbf"):
            raise ParamError(f"kernel must be 'matern52' or 'rbf', got {kernel!r}; pick one of them.")
        if acquisition not in ACQUISITIONS:
            raise ParamError(f"acquisition must be one of {ACQUISITIONS}, got {acquisition!r}; pick one.")
        if warp not in ("none", "log", "yeo-johnson", "auto", "select"):
            raise ParamError(
                f"warp must be 'none', 'log', 'yeo-johnson', 'auto' or 'select', got {warp!r}; pick one."
            )
        if n_initial is not None and n_initial < 1:
            raise ParamError(f"n_initial must be >= 1 or None, got {n_initial}; use e.g. 10.")
        self.kernel = kernel
        self.acquisition = acquisition
        self.n_initial = n_initial
        self.warp = warp
        self.beta = beta

    def initial_size(self, space: SearchSpace) -> int:
        """Number of space-filling points before the GP takes over."""
        return self.n_initial if self.n_initial is not None else int(min(10, max(5, space.n_dims + 1)))

    @_one_blas_thread
    def suggest(
        self,
        space: SearchSpace,
        history: Sequence[Any],
        pending: Sequence[Mapping[str, Any]],
        rng: np.random.Generator,
    ) -> dict[str, Any]:
        """Next params to evaluate (minimizing ``value``), distinct from finished and running trials."""
        from .gp.acquisition import log_ei, ucb
        from .gp.optimize import maximize
        from .gp.regressor import GaussianProcess, fit_with_warp_selection, warp_outputs

        layout = layout_of(space)
        Xc, yc, Xbad, Xp = _split(space, history, pending)
        taken = {_key(u) for u in np.vstack([Xc, Xbad, Xp])}
        n_seen = len(Xc) + len(Xbad) + len(Xp)
        if n_seen < self.initial_size(space) or len(Xc) < 2 or np.ptp(yc) == 0:
            return self._space_filling(space, layout, np.vstack([Xc, Xbad, Xp]), taken, rng)
        if self.warp == "select":
            gp, z = fit_with_warp_selection(Xc, yc, self.kernel, rng)
        else:
            z = warp_outputs(yc, self.warp)
            gp = GaussianProcess(self.kernel).fit(Xc, z, rng)
        if len(Xbad):
            gp = gp.condition(Xbad, np.full(len(Xbad), z.max()))
        best = float(z.min())
        if len(Xp):
            fantasy = gp.predict(Xp)[0]
            gp = gp.condition(Xp, fantasy)
            # the believer's incumbent includes its fantasies, else EI stays positive at a
            # pending point whose mean beats the incumbent and workers pile up there
            best = min(best, float(fantasy.min()))

        def acq(X: np.ndarray, grad: bool = False):
            if not grad:
                m, v = gp.predict(X)
                return log_ei(m, v, best) if self.acquisition == "logei" else ucb(m, v, self.beta)
            m, v, dm, dv = gp.predict(X, grad=True)
            if self.acquisition == "logei":
                return log_ei(m, v, best, dm, dv)
            return ucb(m, v, self.beta, dm, dv)

        seeds = Xc[np.argsort(z, kind="stable")[:5]]
        ranked, _ = maximize(acq, layout, rng, seeds=seeds)
        return _unseen(space, ranked, taken, rng)

    def _space_filling(
        self, space: SearchSpace, layout: Layout, X: np.ndarray, taken: set[bytes], rng: np.random.Generator
    ) -> dict[str, Any]:
        """Greedy maximin: the Sobol point farthest from every point tried or running."""
        from .gp.optimize import sobol_points

        cand = sobol_points(layout, 256, rng)
        if len(X):
            d2 = ((cand[:, None, :] - X[None, :, :]) ** 2).sum(-1).min(1)
            cand = cand[np.argsort(-d2, kind="stable")]
        return _unseen(space, cand, taken, rng)


OPTIMIZERS: dict[str, type] = {"gp": GPOptimizer, "random": RandomOptimizer}
"""Every optimizer by the name a Study or the CLI accepts."""


def get_optimizer(name: str, **kwargs: Any) -> Optimizer:
    """Optimizer by name: ``"gp"`` or ``"random"``."""
    if name not in OPTIMIZERS:
        raise ParamError(f"unknown optimizer {name!r}; use one of {', '.join(map(repr, OPTIMIZERS))}.")
    return OPTIMIZERS[name](**kwargs)
