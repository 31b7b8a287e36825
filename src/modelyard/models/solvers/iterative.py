"""The iterative exact solvers: L-BFGS (scipy's L-BFGS-B, strong-Wolfe line search) and Newton.

Both minimize a ``LinearObjective`` (one pass over the rows per evaluation, float64 sums, the
same numbers on every rank) from ``θ0``. After every iteration ``on_iteration(k, θ, f)`` logs it
and may ask to stop (a callback or pruner); the wall-clock ``deadline`` stops at the current
iterate, which for both methods is the best so far (each accepted step lowers f). The decision to
stop is rank 0's (``collective.decide``), so every rank leaves the loop at the same iteration.

Stopping rules: ``tol`` on the gradient (L-BFGS: the largest |component|; Newton: the Euclidean
norm), ``ftol`` on the relative decrease ``(f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1)`` (L-BFGS),
and ``max_iter`` iterations.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .objective import LinearObjective

__all__ = ["NEWTON_DENSE_MAX", "SolveResult", "lbfgs", "newton"]

NEWTON_DENSE_MAX = 1500
"""Newton forms the Hessian when it has at most this many rows (one output); else it uses CG on Hessian-vector products."""

OnIteration = Callable[[int, NDArray, float], bool]


@dataclass(frozen=True)
class SolveResult:
    """Where a solver stopped and why."""

    theta: NDArray[np.float64]
    iterations: int
    evaluations: int
    reason: str  # "converged", "max_iter", "max_time", "callback", "line_search"
    grad_norm: float  # largest |component| of the gradient at theta
    method: str = ""  # the scipy method that ran
    message: str = ""

    @property
    def converged(self) -> bool:
        """Whether a convergence criterion was met."""
        return self.reason == "converged"


class _Monitor:
    """scipy's per-iteration callback: log, callbacks, deadline, one stop decision for every rank."""

    def __init__(self, objective: LinearObjective, on_iteration: OnIteration, deadline: float | None):
        self.objective = objective
        self.on_iteration = on_iteration
        self.deadline = deadline
        self.k = 0
        self.theta: NDArray | None = None
        self.why: str | None = None

    def __call__(self, intermediate_result: object) -> None:
        self.k += 1
        theta = np.array(intermediate_result.x, dtype=np.float64)  # type: ignore[attr-defined]
        self.theta = theta
        stop = bool(self.on_iteration(self.k, theta, float(intermediate_result.fun)))  # type: ignore[attr-defined]
        late = self.deadline is not None and time.perf_counter() > self.deadline
        collective = self.objective.collective
        if collective.decide(stop):  # rank 0's callbacks and rank 0's clock decide for every rank
            self.why = "callback"
        elif collective.decide(late):
            self.why = "max_time"
        if self.why is not None:
            raise StopIteration


def _grad_norm(objective: LinearObjective, theta: NDArray) -> float:
    return float(np.max(np.abs(objective.gradient(theta)))) if theta.size else 0.0


def _result(objective: LinearObjective, monitor: _Monitor, res: Any, tol: float, method: str) -> SolveResult:
    theta = monitor.theta if monitor.why is not None and monitor.theta is not None else np.asarray(res.x)
    grad = _grad_norm(objective, theta)
    if monitor.why is not None:
        reason = monitor.why
    elif res.status == 0 or grad <= tol:
        reason = "converged"  # (a line search that fails below tol is the precision limit, not a failure)
    elif res.status == 1:
        reason = "max_iter"
    else:
        reason = "line_search"  # no step lowered f any further
    return SolveResult(theta, monitor.k, objective.evaluations, reason, grad, method, str(res.message))


def lbfgs(
    objective: LinearObjective,
    theta0: NDArray,
    *,
    tol: float,
    ftol: float,
    max_iter: int,
    on_iteration: OnIteration,
    deadline: float | None = None,
    memory: int = 10,
) -> SolveResult:
    """Minimize with L-BFGS-B (no bounds) from ``θ0``."""
    import scipy.optimize

    monitor = _Monitor(objective, on_iteration, deadline)
    res = scipy.optimize.minimize(
        objective.value_grad, np.asarray(theta0, dtype=np.float64), jac=True, method="L-BFGS-B", callback=monitor,
        options={"maxiter": max_iter, "gtol": tol, "ftol": ftol, "maxcor": memory, "maxls": 50},
    )
    return _result(objective, monitor, res, tol, "L-BFGS-B")


def newton(
    objective: LinearObjective,
    theta0: NDArray,
    *,
    tol: float,
    max_iter: int,
    on_iteration: OnIteration,
    deadline: float | None = None,
) -> SolveResult:
    """Minimize with a trust-region Newton method: the exact Hessian when it is small, else CG on Hessian-vector products."""
    import scipy.optimize

    monitor = _Monitor(objective, on_iteration, deadline)
    dense = objective.k == 1 and objective.size <= NEWTON_DENSE_MAX
    kwargs = {"hess": objective.hessian} if dense else {"hessp": objective.hessp}
    res = scipy.optimize.minimize(
        objective.value_grad, np.asarray(theta0, dtype=np.float64), jac=True,
        method="trust-exact" if dense else "trust-ncg", callback=monitor,
        options={"maxiter": max_iter, "gtol": tol}, **kwargs,
    )
    return _result(objective, monitor, res, tol, "trust-exact" if dense else "trust-ncg")
