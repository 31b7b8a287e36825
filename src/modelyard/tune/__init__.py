"""Hyperparameter tuning (H): search spaces, optimizers and pruners.

``study`` (ask/tell/optimize over the trial store) and ``trial`` (the running trial an objective
gets) live here too; they load lazily, so spaces and optimizers do not import the store.
"""

from .optimizers import GPOptimizer, Optimizer, RandomOptimizer, TrialView, get_optimizer
from .pruners import ASHAPruner, MedianPruner, NopPruner, Pruner, get_pruner
from .space import Categorical, Float, Int, SearchSpace

__all__ = [
    "ASHAPruner",
    "Categorical",
    "Float",
    "GPOptimizer",
    "Int",
    "MedianPruner",
    "NopPruner",
    "Optimizer",
    "Pruner",
    "RandomOptimizer",
    "SearchSpace",
    "TrialView",
    "get_optimizer",
    "get_pruner",
]

# The Study sits over the trial store; exported lazily (PEP 562) so ``tune.Study`` works without
# importing the store when only spaces or optimizers are needed.
_STUDY_EXPORTS = {
    "Study": ("modelyard.tune.study", "Study"),
    "ActiveTrial": ("modelyard.tune.study", "ActiveTrial"),
    "TrialPruned": ("modelyard.tune.study", "TrialPruned"),
    "Trial": ("modelyard.records.trials", "Trial"),
    "TrialState": ("modelyard.records.trials", "TrialState"),
    "StudyInfo": ("modelyard.records.trials", "StudyInfo"),
    "default_space": ("modelyard.tune.defaults", "default_space"),
}
__all__ += list(_STUDY_EXPORTS)


def __getattr__(name: str):
    if name not in _STUDY_EXPORTS:
        raise AttributeError(f"module 'modelyard.tune' has no attribute {name!r}")
    import importlib

    module, attr = _STUDY_EXPORTS[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
