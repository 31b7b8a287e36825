"""Benchmark problems: BBOB functions from cocoex and cheap scikit-learn tuning tasks.

Each problem is ``Problem(name, space, objective, f_opt, kind)``; ``objective(params) -> float``
is minimized; ``f_opt`` is the known optimum (BBOB) or ``None`` (tuning tasks: regret is then
measured against the best value any optimizer found on that problem and seed).
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.tune.space import Categorical, Float, Int, SearchSpace

BBOB_FUNCTIONS = {
    3: "rastrigin-sep",
    6: "attractive-sector",
    11: "discus",
    12: "bent-cigar",
    14: "different-powers",
    17: "schaffers-f7",
    1: "sphere",
    2: "ellipsoid-sep",
    7: "step-ellipsoid",
    8: "rosenbrock",
    10: "ellipsoid",
    15: "rastrigin",
    20: "schwefel",
    21: "gallagher101",
}


@dataclass
class Problem:
    """One minimization problem of the benchmark."""

    name: str
    space: SearchSpace
    objective: Callable[[dict[str, Any]], float]
    f_opt: float | None
    kind: str  # "continuous" or "mixed"


def _bbob(fid: int, dim: int, instance: int):
    import cocoex

    suite = cocoex.Suite("bbob", "", f"dimensions:{dim} function_indices:{fid} instance_indices:{instance}")
    return suite, next(iter(suite))


@functools.cache
def bbob_fopt(fid: int, dim: int, instance: int) -> float:
    """The optimal f-value of a BBOB problem, read from the header cocoex's bbob logger writes.

    cocoex 2.8 does not expose ``final_target_fvalue1`` in Python, but its logger records
    ``Fopt`` in every .dat header, so one observed evaluation in a scratch folder reveals it.
    """
    import cocoex

    cocoex.log_level("warning")
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            suite, p = _bbob(fid, dim, instance)
            obs = cocoex.Observer("bbob", "result_folder: probe")
            p.observe_with(obs)
            p(np.zeros(dim))
            p.free()
            del obs, suite
            dat = next(Path(tmp).rglob("*.dat"))
            m = re.search(r"Fopt \(([-+0-9.eE]+)\)", dat.read_text())
        finally:
            os.chdir(cwd)
    if m is None:
        raise RuntimeError(f"could not read Fopt of bbob f{fid} d{dim} i{instance}")
    return float(m.group(1))


def bbob_problem(fid: int, dim: int, instance: int) -> Problem:
    """BBOB ``f{fid}`` in ``dim`` dimensions on [-5, 5]^dim."""
    _, p = _bbob(fid, dim, instance)
    names = [f"x{i}" for i in range(dim)]
    space = SearchSpace({n: Float(-5.0, 5.0) for n in names})

    def objective(params: dict[str, Any], _p=p) -> float:
        return float(_p(np.array([params[n] for n in names])))

    return Problem(
        f"f{fid}-{BBOB_FUNCTIONS.get(fid, '')}-d{dim}",
        space,
        objective,
        bbob_fopt(fid, dim, instance),
        "continuous",
    )


def hgb_problem(seed: int) -> Problem:
    """HistGradientBoosting on breast_cancer, 3-fold CV log loss; mixed int/float/categorical."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    X, y = load_breast_cancer(return_X_y=True)
    cv = StratifiedKFold(3, shuffle=True, random_state=seed)
    space = SearchSpace(
        {
            "learning_rate": Float(1e-3, 1.0, log=True),
            "max_leaf_nodes": Int(4, 32, log=True),
            "min_samples_leaf": Int(2, 100, log=True),
            "l2_regularization": Float(1e-6, 10.0, log=True),
            "max_features": Float(0.2, 1.0),
            "max_depth": Categorical([None, 2, 4, 8]),
            "max_iter": Int(10, 100, step=10),
        }
    )

    def objective(params: dict[str, Any]) -> float:
        model = HistGradientBoostingClassifier(early_stopping=False, random_state=0, **params)
        return float(-cross_val_score(model, X, y, cv=cv, scoring="neg_log_loss").mean())

    return Problem("hgb-breast_cancer", space, objective, None, "mixed")


def mlp_problem(seed: int) -> Problem:
    """MLPClassifier on 600 digits, 3-fold CV log loss; mixed int/float/categorical."""
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    cv = StratifiedKFold(3, shuffle=True, random_state=seed)
    space = SearchSpace(
        {
            "n_layers": Int(1, 3),
            "n_units": Int(8, 128, log=True),
            "activation": Categorical(["relu", "tanh", "logistic"]),
            "alpha": Float(1e-6, 1e-1, log=True),
            "learning_rate_init": Float(1e-4, 1e-1, log=True),
            "batch_size": Categorical([32, 64, 128]),
        }
    )

    def objective(params: dict[str, Any]) -> float:
        p = dict(params)
        layers = (p.pop("n_units"),) * p.pop("n_layers")
        model = make_pipeline(StandardScaler(), MLPClassifier(layers, max_iter=25, random_state=0, **p))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            v = -cross_val_score(model, X, y, cv=cv, scoring="neg_log_loss", error_score=np.nan).mean()
        return float(v) if np.isfinite(v) else 10.0

    return Problem("mlp-digits", space, objective, None, "mixed")


def make_problem(spec: str, seed: int) -> Problem:
    """From a spec: ``bbob:FID:DIM`` (instance = seed + 1), ``hgb`` or ``mlp``."""
    if spec.startswith("bbob:"):
        _, fid, dim = spec.split(":")
        return bbob_problem(int(fid), int(dim), seed + 1)
    if spec == "hgb":
        return hgb_problem(seed)
    if spec == "mlp":
        return mlp_problem(seed)
    raise ValueError(f"unknown problem spec {spec!r}")
