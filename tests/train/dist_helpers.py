"""Code that runs inside worker processes of the distributed tests (importable there through PYTHONPATH).

Fault injection is done the way a user's code would fail: a custom torch module factory
(``dist_helpers:faulty``) whose forward raises or blocks on one rank after some steps.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


class _Faulty(torch.nn.Module):
    """A linear layer that, on rank ``rank`` (env RANK) after ``after`` forward calls in training, fails."""

    def __init__(self, n_in: int, n_out: int, mode: str, rank: int, after: int):
        super().__init__()
        self.lin = torch.nn.Linear(n_in, n_out)
        self.mode, self.rank, self.after, self.calls = mode, rank, after, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and int(os.environ.get("RANK", "0")) == self.rank:
            self.calls += 1
            if self.calls > self.after:
                if self.mode == "crash":
                    raise ValueError(f"injected failure in forward call {self.calls}")
                if self.mode == "hang":
                    time.sleep(3600)
                if self.mode == "exit":
                    os._exit(9)
                if self.mode == "stop":  # suspended, as by kill -STOP or a debugger: no thread runs any more
                    stamp = os.environ.get("MODELYARD_TEST_STOP_STAMP")
                    if stamp:
                        Path(stamp).write_text(repr(time.time()))
                    os.kill(os.getpid(), signal.SIGSTOP)
        return self.lin(x)


def faulty(n_features: int, n_outputs: int, mode: str = "crash", fail_rank: int = 1, after: int = 3) -> torch.nn.Module:
    """Factory for ``--model dist_helpers:faulty`` (params: mode crash|hang|exit|stop, fail_rank, after)."""
    return _Faulty(n_features, n_outputs, mode, fail_rank, after)


def convergence(payload: dict[str, Any]) -> None:
    """Rank job: L2-regularized logistic regression, eta_t = 1/(mu t), sync SGD; rank 0 saves theta after each epoch."""
    from safetensors.numpy import save_file

    from modelyard.models.logistic import LogisticRegression
    from modelyard.records.training import FitConfig
    from modelyard.schema import Task
    from modelyard.train.data_parallel import DataParallel
    from modelyard.train.distributed import rank_session

    X = np.load(payload["X"])
    y = np.load(payload["y"])
    mu = payload["mu"]
    with rank_session(timeout=60) as ctx:
        a = round(len(X) * ctx.rank / ctx.world_size)
        b = round(len(X) * (ctx.rank + 1) / ctx.world_size)
        model = LogisticRegression(
            task=Task.CLASSIFICATION, n_classes=2, optimizer="sgd", learning_rate=1.0 / mu, weight_decay=mu,
            lr_schedule="inverse_time", lr_decay=mu, batch_size=payload["batch_size"], standardize=False,
        )
        thetas: list[np.ndarray] = []

        def record(log: Any) -> None:
            m = model.module_
            thetas.append(np.concatenate([m.weight.detach().double().numpy().ravel(), m.bias.detach().double().numpy()]))

        hook = DataParallel(ctx, start=a, rows=b - a, seed=payload["seed"])
        model.fit(X[a:b], y[a:b], config=FitConfig(epochs=payload["epochs"], seed=payload["seed"]),
                  callbacks=[record], hook=hook)
        if ctx.is_main:
            save_file({"thetas": np.stack(thetas)}, payload["out"])


from modelyard.models.boosting import GradientBoosting


class FaultyBoosting(GradientBoosting):
    """``--model dist_helpers:FaultyBoosting``: gradient boosting whose rank ``fail_rank`` exits (or hangs) in round ``after``.

    Fault parameters come from the environment (MODELYARD_TEST_FAULT=mode,rank,after) so the
    family's declared hyperparameters stay those of gradient_boosting.
    """

    def fit(self, X, y, **kwargs):
        mode, rank, after = os.environ.get("MODELYARD_TEST_FAULT", "exit,1,3").split(",")
        outer = kwargs.pop("hook", None)

        class Hook:
            def __call__(self, booster: Any) -> None:
                if outer is not None:
                    outer(booster)
                if int(os.environ.get("RANK", "0")) == int(rank) and booster.num_boosted_rounds() >= int(after):
                    if mode == "exit":
                        os._exit(9)
                    time.sleep(3600)

            def waiting(self) -> Any:
                return outer.waiting()

            def working(self) -> Any:
                return outer.working()

        return super().fit(X, y, hook=Hook() if outer is not None else None, **kwargs)


def exact_fault(payload: dict[str, Any]) -> None:
    """Rank job: logistic regression by L-BFGS over 2 ranks, where rank ``fail_rank`` hangs or dies in its pass."""
    from modelyard.models.logistic import LogisticRegression
    from modelyard.models.solvers.objective import LinearObjective
    from modelyard.records.training import FitConfig
    from modelyard.schema import Task
    from modelyard.train.data_parallel import DataParallel
    from modelyard.train.distributed import rank_session

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)).astype(np.float32)
    y = (X[:, 0] + rng.normal(size=400) > 0).astype(np.int64)
    calls = [0]
    real_local = LinearObjective.local

    def local(self: Any, theta: Any) -> Any:
        calls[0] += 1
        if int(os.environ.get("RANK", "0")) == payload["fail_rank"] and calls[0] > payload["after"]:
            if payload["mode"] == "hang":
                time.sleep(3600)
            os._exit(9)
        return real_local(self, theta)

    LinearObjective.local = local  # type: ignore[method-assign]
    with rank_session(timeout=payload["timeout"]) as ctx:
        a, b = (0, 200) if ctx.rank == 0 else (200, 400)
        model = LogisticRegression(task=Task.CLASSIFICATION, n_classes=2, tol=1e-12, ftol=0.0)
        model.fit(X[a:b], y[a:b], config=FitConfig(seed=0), hook=DataParallel(ctx, start=a, rows=b - a))


def exact_convergence(payload: dict[str, Any]) -> None:
    """Rank job: the same problem by L-BFGS on the ranks; rank 0 saves the objective and passes after each iteration."""
    from safetensors.numpy import save_file

    from modelyard.models.logistic import LogisticRegression
    from modelyard.records.training import FitConfig
    from modelyard.schema import Task
    from modelyard.train.data_parallel import DataParallel
    from modelyard.train.distributed import rank_session

    X = np.load(payload["X"])
    y = np.load(payload["y"]).astype(np.int64)
    with rank_session(timeout=60) as ctx:
        a = round(len(X) * ctx.rank / ctx.world_size)
        b = round(len(X) * (ctx.rank + 1) / ctx.world_size)
        model = LogisticRegression(task=Task.CLASSIFICATION, n_classes=2, solver="lbfgs", weight_decay=payload["mu"],
                                   standardize=False, tol=1e-13, ftol=0.0, max_iter=payload["iterations"])
        logs: list[Any] = []
        model.fit(X[a:b], y[a:b], config=FitConfig(seed=0), callbacks=[logs.append],
                  hook=DataParallel(ctx, start=a, rows=b - a))
        if ctx.is_main:
            save_file({"objective": np.array([h.extra["objective"] for h in logs]),
                       "passes": np.array([h.extra["evaluations"] for h in logs])}, payload["out"])
