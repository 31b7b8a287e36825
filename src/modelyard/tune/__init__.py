"""Hyperparameter tuning (H): search spaces, optimizers and pruners.

The Study (ask/tell/optimize over the trial store) is not part of this package: it lives in
``modelyard/study.py``, written separately, and is to be added to these exports by its author.
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

# The Study lives a layer above (study.py, over the trial store); exported here lazily (PEP 562)
# so ``tune.Study`` works without importing the store when only spaces or optimizers are needed.
_STUDY_EXPORTS = {
    "Study": ("modelyard.study", "Study"),
    "ActiveTrial": ("modelyard.study", "ActiveTrial"),
    "TrialPruned": ("modelyard.study", "TrialPruned"),
    "Trial": ("modelyard.records", "Trial"),
    "TrialState": ("modelyard.records", "TrialState"),
    "StudyInfo": ("modelyard.records", "StudyInfo"),
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
