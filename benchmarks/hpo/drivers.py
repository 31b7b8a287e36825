"""Ask/tell loops: one run of one optimizer on one problem, timing only the optimizer.

Times are CPU seconds of the process (``time.process_time``) with every thread pool at one
thread, i.e. single-core time that other jobs on a busy machine do not inflate.

modelyard has no Study yet, so ``run_modelyard`` is a tiny ask/tell driver over
``Optimizer.suggest``; Optuna runs through its own ``study.ask``/``study.tell``.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from modelyard.tune.optimizers import GPOptimizer, RandomOptimizer, TrialView
from modelyard.tune.space import Categorical, Float, Int

from .problems import Problem

OPTIMIZERS = ("random", "optuna-tpe", "optuna-gp", "modelyard-gp")


def _modelyard(name: str):
    if name == "random":
        return RandomOptimizer()
    kwargs: dict[str, Any] = {}
    for part in name.split(":")[1:]:  # ablations, e.g. modelyard-gp:warp=none:acquisition=ucb
        k, v = part.split("=")
        kwargs[k] = int(v) if v.isdigit() else v
    return GPOptimizer(**kwargs)


def run_modelyard(name: str, problem: Problem, budget: int, seed: int) -> tuple[list[float], list[float]]:
    """Values and per-suggestion seconds of one modelyard run."""
    opt = _modelyard(name)
    rng = np.random.default_rng(seed)
    history: list[TrialView] = []
    values, times = [], []
    for _ in range(budget):
        t0 = time.process_time()
        params = opt.suggest(problem.space, history, [], rng)
        times.append(time.process_time() - t0)
        v = problem.objective(params)
        history.append(TrialView(params, v, "complete"))
        values.append(v)
    return values, times


def _optuna_params(trial: Any, problem: Problem) -> dict[str, Any]:
    out = {}
    for n, d in problem.space.params.items():
        if isinstance(d, Float):
            out[n] = trial.suggest_float(n, d.low, d.high, log=d.log)
        elif isinstance(d, Int):
            out[n] = trial.suggest_int(n, d.low, d.high, step=d.step, log=d.log)
        elif isinstance(d, Categorical):
            out[n] = trial.suggest_categorical(n, list(d.choices))
    return out


def run_optuna(name: str, problem: Problem, budget: int, seed: int) -> tuple[list[float], list[float]]:
    """Values and per-suggestion seconds (ask + suggest_* calls) of one Optuna run."""
    import optuna
    import torch  # Optuna's GPSampler computes with torch: hold it to one thread too

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if name == "optuna-tpe":
        sampler = optuna.samplers.TPESampler(multivariate=True, seed=seed)
    elif name == "optuna-gp":
        sampler = optuna.samplers.GPSampler(seed=seed)
    else:
        raise ValueError(name)
    study = optuna.create_study(sampler=sampler, direction="minimize")
    values, times = [], []
    for _ in range(budget):
        t0 = time.process_time()
        trial = study.ask()
        params = _optuna_params(trial, problem)
        times.append(time.process_time() - t0)
        v = problem.objective(params)
        study.tell(trial, v)
        values.append(v)
    return values, times


def run_one(name: str, problem: Problem, budget: int, seed: int) -> tuple[list[float], list[float]]:
    """Dispatch on the optimizer name."""
    if name.startswith("optuna-"):
        return run_optuna(name, problem, budget, seed)
    return run_modelyard(name, problem, budget, seed)
