"""What linear and logistic regression share: one objective, its L2 knob, and the choice of solver.

Every solver minimizes the same objective on standardized features ``x̃ = (x − mu) / sigma``
(see ``solvers/objective.py``)::

    f(B, b) = (1/W) Σ_i w_i ℓ(y_i, x̃_iᵀB + b) + (λ/2) ‖B‖²        W = Σ_i w_i (n without sample weights)

with ``ℓ`` the squared error ``(z − y)²`` for linear regression and the cross-entropy for logistic
regression (one logit for two classes, softmax over K logits for K > 2); the intercept ``b`` is
not penalized. One L2 strength, three spellings (set at most one):

| knob           | λ                 | reproduces scikit-learn (with ``StandardScaler``, fit on the same rows) |
| -------------- | ----------------- | ----------------------------------------------------------------------- |
| ``weight_decay``| λ                | ``LogisticRegression(C=1/(λ·W))``, ``Ridge(alpha=λ·W/2)``              |
| ``C``          | 1 / (C·W)         | ``LogisticRegression(C=C)``                                             |
| ``alpha``      | 2·alpha / W       | ``Ridge(alpha=alpha)`` (``alpha=0``: ``LinearRegression()``)             |

None of them set: scikit-learn's defaults, ``C=1`` for logistic and ``alpha=1`` for linear
regression. ``solver``: ``lbfgs`` (L-BFGS, float64, strong-Wolfe line search), ``newton``
(trust-region Newton: exact Hessian for one output and few features, else CG), ``exact`` (linear
regression: Cholesky of the Gram matrix), ``sgd``/``adam`` (the minibatch loop, with ``weight_decay``
= λ, which as torch's weight decay also shrinks the bias), or ``auto``: the exact solver when its
working memory (the Gram matrix; or a float64 copy of the rows up to ``KEEP_BYTES``, streamed in
chunks beyond, and the targets) fits in half of the available memory, else ``adam``.
``get_params`` records the solver that ran.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError, ModelError, ParamError, TrainingError
from ..records.training import EpochLog, FitConfig
from ..schema import Task
from .base import EvalSet, Param
from .loop import StepHook
from .solvers.design import KEEP_BYTES, design
from .solvers.gram import gram_moments, gram_sums, solve_gram
from .solvers.iterative import SolveResult, lbfgs, newton
from .solvers.losses import LOSSES
from .solvers.objective import LOCAL, LinearObjective
from .solvers.workers import Workers, cpu_count
from .torch_base import TorchModel

__all__ = ["EXACT_SOLVERS", "MINIBATCH_SOLVERS", "LinearModel", "available_memory", "linear_params"]

EXACT_SOLVERS = ("lbfgs", "newton", "exact")
MINIBATCH_SOLVERS = ("sgd", "adam")
GRAM_MAX_FEATURES = 5000
"""``auto`` solves linear regression in closed form up to this many encoded features (a d x d Gram), else by L-BFGS."""

DEFAULT_CONFIG = FitConfig()


def linear_params(family_penalty: Param, *, closed_form: bool) -> tuple[Param, ...]:
    """The hyperparameters of a linear family: solver, one L2 strength, convergence, and the minibatch loop's."""
    solvers = ("auto", "lbfgs", "newton", *(("exact",) if closed_form else ()), *MINIBATCH_SOLVERS)
    return (
        Param("solver", str, "auto", choices=solvers,
              help="auto: the exact solver when the data fits in memory, else adam; sgd/adam: the minibatch loop"),
        Param("weight_decay", float, None, low=0.0, high=100.0, nullable=True,
              help="L2 strength λ of mean loss + λ/2·‖w‖² on standardized features (not the intercept)"),
        family_penalty,
        Param("tol", float, 1e-4, low=0.0, high=1.0, help="exact solvers stop when no gradient component exceeds this"),
        Param("ftol", float, 1e-10, low=0.0, high=1.0, help="lbfgs also stops when an iteration lowers the loss by less (relative)"),
        Param("max_iter", int, 200, low=1, high=1_000_000, help="iteration cap of the exact solvers"),
        Param("standardize", bool, True, help="scale features (and a regression target) to zero mean, unit variance"),
        Param("learning_rate", float, 1e-2, low=1e-7, high=10.0, help="sgd/adam: initial step size eta0"),
        Param("batch_size", int, 256, low=1, high=10_000_000, help="sgd/adam: rows per minibatch"),
        Param("momentum", float, 0.0, low=0.0, high=0.999, help="sgd: momentum"),
        Param("lr_schedule", str, "constant", choices=("constant", "inverse_time", "cosine", "step"),
              help="sgd/adam: step-size schedule"),
        Param("lr_decay", float, 1e-3, low=0.0, high=1e6, help="sgd/adam: mu of inverse_time; factor 0.5 per epochs/3 for step"),
    )


def available_memory() -> int:
    """Bytes of memory available to this process now (MemAvailable on Linux), or a large number if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 1 << 50


class LinearModel(TorchModel):
    """Base of the linear families: exact solvers on float64 passes, or the shared minibatch loop.

    State arrays are those of every torch family (``module.weight: (K, d)``, ``module.bias: (K,)``
    on standardized features, ``scaling.*``), whichever solver trained the model.
    """

    penalty_name: ClassVar[str]  # "C" or "alpha"
    closed_form: ClassVar[bool] = False

    def __init__(self, *, task: Task | str = Task.CLASSIFICATION, n_classes: int = 0, **params: Any):
        super().__init__(task=task, n_classes=n_classes, **params)
        alias = self.hparams.get(self.penalty_name)
        if alias is not None and self.hparams["weight_decay"] is not None:
            raise ParamError(
                f"{self.family}: {self.penalty_name}={alias} and weight_decay={self.hparams['weight_decay']} are the same "
                f"L2 strength in two spellings; set only one of them"
            )
        self.solver_: str | None = None
        self.solver_info_: dict[str, Any] = {}
        self.aggregate_: str | None = None
        self._lam = 0.0

    # --- weights without torch ---------------------------------------------------------------------
    # A rebuilt model holds its coefficients as numpy arrays and predicts with one matrix product, so loading
    # and scoring a linear model (``modelyard predict``, ``serve``) never imports torch; the torch module is
    # built from them only when something needs it (training on, the minibatch loop, the ONNX layers).
    @property
    def module_(self) -> Any:
        """The torch ``Linear`` layer, built from the stored coefficients on first use."""
        if self._module is None and self._weights is not None:
            import torch

            W, b = self._weights
            module = self.build(W.shape[1], W.shape[0])
            module.load_state_dict({"weight": torch.from_numpy(W.copy()), "bias": torch.from_numpy(b.copy())})
            self._module, self._weights = module, None
        return self._module

    @module_.setter
    def module_(self, module: Any) -> None:
        self._module, self._weights = module, None

    def _coefficients(self) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """``(W: (K, d), b: (K,))`` in float32, on standardized features."""
        if self._weights is not None:
            return self._weights
        if self._module is None:
            raise ModelError(f"{self.family} is not fitted; call fit first")
        return (self._module.weight.detach().cpu().numpy().astype(np.float32, copy=False),
                self._module.bias.detach().cpu().numpy().astype(np.float32, copy=False))

    def _raw(self, X: NDArray, chunk: int = 65536) -> NDArray:
        W, b = self._coefficients()
        out = self._scale(np.asarray(X, dtype=np.float32)) @ W.T
        out += b
        return out

    def state(self) -> dict[str, NDArray]:
        """Weights and scaling as named arrays (``module.weight: (K, d)``, ``module.bias: (K,)``, ``scaling.*``)."""
        W, b = self._coefficients()
        return {"module.weight": np.ascontiguousarray(W), "module.bias": np.ascontiguousarray(b),
                **self._scaling_state()}

    @classmethod
    def from_state(
        cls, params: Mapping[str, Any], state: Mapping[str, NDArray], *, task: Task | str, n_classes: int = 0
    ) -> Self:
        """Rebuild a fitted model from ``get_params()`` and ``state()`` (numpy only: torch is not imported)."""
        self = cls(task=task, n_classes=n_classes, **params)
        self._restore_scaling(state)
        d, k = len(self.mean_), self.n_out
        weights = {key for key in state if key.startswith("module.")}
        W = np.asarray(state.get("module.weight", np.zeros(0)), dtype=np.float32)
        b = np.asarray(state.get("module.bias", np.zeros(0)), dtype=np.float32)
        if weights != {"module.weight", "module.bias"} or W.shape != (k, d) or b.shape != (k,):
            found = ", ".join(f"{key} {tuple(np.shape(state[key]))}" for key in sorted(weights)) or "none"
            raise ModelError(f"the stored weights do not fit {cls.family} with params {dict(params)} (expected "
                             f"module.weight ({k}, {d}) and module.bias ({k},), found {found}); rebuild with the "
                             "params the weights were trained with")
        self._weights = (np.ascontiguousarray(W), np.ascontiguousarray(b))
        return self

    # --- the knob ---------------------------------------------------------------------------------
    def l2_strength(self, total_weight: float) -> float:
        """λ of the objective for ``total_weight = W`` training rows (the sum of their weights)."""
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters, with the solver that trained the model in place of ``auto``."""
        out = dict(self.hparams)
        if self.solver_ is not None:
            out["solver"] = self.solver_
        return out

    def _loop_hparams(self) -> dict[str, Any]:
        return {**self.hparams, "optimizer": self.solver_, "weight_decay": self._lam}

    # --- fit --------------------------------------------------------------------------------------
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
        """Fit with the chosen solver (warm-starting from existing weights); ``sample_weight`` weighs each row's loss
        (``eval_sample_weight`` each validation row's, so the validation loss is the same weighted mean)."""
        if self.task is Task.CLASSIFICATION and self.n_classes < 2:
            self.n_classes = int(np.max(y)) + 1 if len(y) else 2
        X = np.asarray(X)
        weight = _check_weight(sample_weight, len(X))
        collective = hook if hook is not None else LOCAL
        solver = self._choose_solver(X, collective)
        self.solver_ = solver
        mine = float(len(X) if weight is None else weight.sum())
        total_weight = float(collective.all_sum(np.array([mine]))[0])
        if not total_weight > 0:
            raise TrainingError("there are no training rows (or their sample weights sum to 0); use more data or a "
                                "smaller validation/test split")
        self._lam = self.l2_strength(total_weight)
        if solver in MINIBATCH_SOLVERS:
            self.aggregate_ = None
            extra = {} if weight is None else {"sample_weight": weight}
            if eval_sample_weight is not None:
                extra["eval_sample_weight"] = eval_sample_weight
            super().fit(X, y, eval_set=eval_set, config=config, callbacks=callbacks, hook=hook, **extra)
            self.solver_info_ = {"solver": solver, "weight_decay": self._lam}
            return self
        from threadpoolctl import threadpool_limits

        # each of our threads passes over its own block of rows with single-threaded BLAS (see solvers/workers.py)
        with threadpool_limits(limits=1, user_api="blas"), Workers(config.threads or cpu_count()) as workers:
            self._eval_weight = eval_sample_weight
            return self._fit_exact(solver, X, y, weight, total_weight, eval_set, config, callbacks, hook, workers)

    def _choose_solver(self, X: NDArray, collective: Any) -> str:
        """``auto``: the exact solver if its working memory fits in half the available memory on every rank."""
        asked = self.hparams["solver"]
        if asked != "auto":
            return asked
        n, d = X.shape
        gram = self.closed_form and d <= GRAM_MAX_FEATURES
        # the Gram matrix and its copy; or the float64 rows (kept up to KEEP_BYTES, streamed beyond) and the targets
        need = 16 * d * d if gram else min(8 * n * d, KEEP_BYTES) + 16 * n
        short = float(need > available_memory() // 2)
        if collective.all_sum(np.array([short]))[0] > 0:
            return "adam"
        return "exact" if gram else "lbfgs"

    def _fit_exact(
        self, solver: str, X: NDArray, y: NDArray, weight: NDArray | None, total_weight: float,
        eval_set: EvalSet | None, config: FitConfig, callbacks: Sequence[Any], hook: StepHook | None, workers: Workers,
    ) -> Self:
        collective = hook if hook is not None else LOCAL
        t0 = time.perf_counter()
        closed = solver == "exact" or (solver == "newton" and self.task is Task.REGRESSION)
        warm = self.module_ is not None  # a model with weights warm-starts from them and keeps its standardization
        d = X.shape[1]
        history: list[EpochLog] = []
        if closed:
            if not warm and hook is None:  # one pass: the Gram sums and the column moments together
                self._scale_target(y)
                shift = X[: min(len(X), 4096)].mean(axis=0, dtype=np.float64) if len(X) else np.zeros(d)
                S = gram_sums(X, self._target(y), weight, shift, workers=workers)
                self._start(X, y, None, gram_moments(S, d, shift))
            else:
                if not warm:
                    self._start(X, y, hook, None)
                shift = np.asarray(self.mean_, dtype=np.float64)  # the same on every rank
                S = collective.all_sum(gram_sums(X, self._target(y), weight, shift, workers=workers))
            sol = solve_gram(S, d, self._lam, self.mean_.astype(np.float64), self.scale_.astype(np.float64), shift,
                             family=self.family)
            theta = np.concatenate([sol.coef, [sol.intercept]])
            self._set_theta(theta)
            log = EpochLog(1, sol.mean_loss, seconds=time.perf_counter() - t0, extra={"passes": 1.0})
            history.append(log)
            for cb in callbacks:  # one pass, nothing left to stop: callbacks only see it
                cb(log)
            result = SolveResult(theta, 1, 1, "converged", 0.0, sol.method)
            notes = [n for n in (sol.note(),) if n]
            self.aggregate_ = "gram_sum"
            info = {"method": sol.method, "rcond": sol.rcond, "constant_columns": list(sol.constant)}
        else:
            des = None
            if not warm:
                stats = None
                if hook is None:
                    des = design(X, workers=workers)
                    stats = (des.moments.mean, des.moments.std)
                self._start(X, y, hook, stats)
            theta0 = self._get_theta() if warm else np.zeros((d + 1) * self.n_out)
            des = des if des is not None else design(X, workers=workers)
            mean, scale = self.mean_.astype(np.float64), self.scale_.astype(np.float64)
            result, history = self._iterate(solver, des, self._target(y), weight, total_weight, mean, scale, theta0,
                                             config, callbacks, collective, t0, workers)
            self._set_theta(result.theta)
            notes = self._notes(solver, result, config)
            self.aggregate_ = "loss_gradient_sum"
            info = {"method": result.method}
        if eval_set is not None:
            history[-1] = self._validate(history[-1], eval_set, hook)
        self.history_ = history
        self.best_epoch_ = history[-1].epoch
        self.stop_reason_ = "solved" if closed else result.reason
        self.notes_ = notes
        self.solver_info_ = {
            "solver": solver, "iterations": result.iterations, "evaluations": result.evaluations,
            "reason": self.stop_reason_, "converged": result.converged, "grad_max": result.grad_norm,
            "weight_decay": self._lam, **info,
        }
        return self

    def _iterate(
        self, solver: str, des: Any, target: NDArray, weight: NDArray | None, total_weight: float, mean: NDArray,
        scale: NDArray, theta0: NDArray, config: FitConfig, callbacks: Sequence[Any], collective: Any, t0: float,
        workers: Workers,
    ) -> tuple[SolveResult, list[EpochLog]]:
        loss = LOSSES["squared" if self.task is Task.REGRESSION else "logistic" if self.n_out == 1 else "multinomial"]()
        obj = LinearObjective(des, target, weight, loss, self.n_out, mean, scale, self._lam, collective, total_weight,
                              workers)
        history: list[EpochLog] = []
        last = [t0]

        def on_iteration(k: int, theta: NDArray, f: float) -> bool:
            now = time.perf_counter()
            g = obj.gradient(theta)
            log = EpochLog(k, obj.mean_loss(theta), seconds=now - last[0],
                           extra={"objective": f, "grad_max": float(np.max(np.abs(g))), "evaluations": float(obj.evaluations)})
            last[0] = now
            history.append(log)
            if not callbacks:
                return False
            self._set_theta(theta)  # callbacks (a pruner scoring the model) see the current iterate
            stops = [bool(cb(log)) for cb in callbacks]  # every callback sees every iteration
            return any(stops)

        hp = self.hparams
        max_iter = hp["max_iter"] if config.epochs is None else min(hp["max_iter"], config.epochs)
        deadline = t0 + config.max_time if config.max_time else None
        if solver == "newton":
            result = newton(obj, theta0, tol=hp["tol"], max_iter=max_iter, on_iteration=on_iteration, deadline=deadline)
        else:
            result = lbfgs(obj, theta0, tol=hp["tol"], ftol=hp["ftol"], max_iter=max_iter, on_iteration=on_iteration,
                           deadline=deadline)
        if not history:  # converged where it started (a warm start at the optimum): log that point
            g = obj.gradient(result.theta)
            history.append(EpochLog(1, obj.mean_loss(result.theta), seconds=time.perf_counter() - t0,
                                    extra={"objective": obj.value_grad(result.theta)[0],
                                           "grad_max": float(np.max(np.abs(g))), "evaluations": float(obj.evaluations)}))
        return result, history

    def _notes(self, solver: str, result: SolveResult, config: FitConfig) -> list[str]:
        tol, max_iter = self.hparams["tol"], self.hparams["max_iter"]
        grad = f"largest gradient component {result.grad_norm:.2g} > tol {tol:g}"
        if result.reason == "max_iter":
            if config.epochs is not None and config.epochs < max_iter:
                return [(f"{solver} stopped at the --epochs cap of {config.epochs} iterations before converging "
                         f"({grad}); raise --epochs or drop it (the exact solvers stop when they converge)")]
            return [(f"{solver} reached its iteration cap max_iter={max_iter} before converging ({grad}); "
                     f"raise it with --set max_iter={2 * max_iter}")]
        if result.reason == "max_time":
            return [(f"--max-time stopped {solver} after {result.iterations} iterations before it converged ({grad}); "
                     "the model is its best iterate so far")]
        if result.reason == "line_search" and result.grad_norm > tol:
            return [(f"{solver} stopped after {result.iterations} iterations because no step lowered the loss any "
                     f"further ({grad}); nearly collinear features do this: a larger penalty (weight_decay or "
                     f"{self.penalty_name}) helps")]
        return []

    def _validate(self, log: EpochLog, eval_set: EvalSet, hook: StepHook | None) -> EpochLog:
        """The last log with the validation loss and metric of the final model (over every rank's rows)."""
        import torch

        hook = hook or StepHook()
        if not hook.total_rows(len(eval_set[0])):
            return log
        Xv, yv = self._prepare(*eval_set)
        loss_fn = self._loss
        wv = getattr(self, "_eval_weight", None)
        if wv is not None:  # the validation loss is the weighted mean, as the minibatch loop reports it
            wt = torch.as_tensor(np.asarray(wv, dtype=np.float32))
            loss_fn = lambda out, target: self._loss(out, target, wt)
        loss, metric = hook.evaluate(self.module_, loss_fn, self._metric, torch.as_tensor(Xv), torch.as_tensor(yv))
        return dataclasses.replace(log, val_loss=loss, val_metric=metric)

    # --- coefficients <-> module ------------------------------------------------------------------
    def _start(self, X: NDArray, y: NDArray, hook: StepHook | None, stats: tuple[NDArray, NDArray] | None) -> None:
        """A fresh model: its standardization (from ``stats``, all ranks' moments, or the rows) and its module."""
        import torch

        self._fit_scaling(X, y, hook, stats)
        with torch.random.fork_rng(devices=[]):  # the module's random init is overwritten: leave torch's RNG alone
            self.module_ = self.build(X.shape[1], self.n_out)
        self.module_.to("cpu")

    def _scale_target(self, y: NDArray) -> None:
        """A regression target's standardization, as ``_fit_scaling`` sets it (it needs only ``y``)."""
        if self.task is Task.REGRESSION and self.hparams["standardize"] and len(y):
            self.y_mean_ = float(np.mean(y))
            s = float(np.std(y))
            self.y_scale_ = s if s > 1e-12 else 1.0

    def _target(self, y: NDArray) -> NDArray:
        if self.task is Task.REGRESSION:
            return (np.asarray(y, dtype=np.float64) - self.y_mean_) / self.y_scale_
        if self.n_out == 1:
            return np.asarray(y, dtype=np.float64)
        return np.asarray(y, dtype=np.int64)

    def _get_theta(self) -> NDArray[np.float64]:
        """``θ = [B.ravel(), b]`` from the module (``B = weightᵀ: (d, K)``)."""
        w = self.module_.weight.detach().double().numpy()
        b = self.module_.bias.detach().double().numpy()
        return np.concatenate([w.T.ravel(), b])

    def _set_theta(self, theta: NDArray) -> None:
        import torch

        k = self.n_out
        d = (len(theta) - k) // k
        B = np.asarray(theta[: d * k]).reshape(d, k)
        with torch.no_grad():
            self.module_.weight.copy_(torch.from_numpy(np.ascontiguousarray(B.T, dtype=np.float32)))
            self.module_.bias.copy_(torch.from_numpy(np.asarray(theta[d * k :], dtype=np.float32)))


def _check_weight(sample_weight: NDArray | None, n: int) -> NDArray[np.float64] | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if len(w) != n:
        raise DataError(f"sample_weight has {len(w)} values for {n} rows; pass one weight per training row")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise DataError("sample_weight must be finite and >= 0; fix or drop the rows with negative or missing weights")
    return w
