"""modelyard: train, distribute, tune, version and compare models on tabular data.

Heavy modules load on first use (PEP 562), so ``import modelyard`` and ``modelyard --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import *
from .errors import __all__ as _errors_all

__version__ = "0.1.0"

_LAZY = {
    "load_dataset": ("modelyard.data", "load_dataset"),
    "from_frame": ("modelyard.data", "from_frame"),
    "from_arrays": ("modelyard.data", "from_arrays"),
    "Dataset": ("modelyard.data", "Dataset"),
    "split": ("modelyard.data", "split"),
    "shard": ("modelyard.data", "shard"),
    "train": ("modelyard.train", "train"),
    "TrainResult": ("modelyard.train", "TrainResult"),
    "Predictor": ("modelyard.models", "Predictor"),
    "FAMILIES": ("modelyard.models", "FAMILIES"),
    "get_family": ("modelyard.models", "get_family"),
    "Task": ("modelyard.schema", "Task"),
    "Schema": ("modelyard.schema", "Schema"),
    "FitConfig": ("modelyard.records.training", "FitConfig"),
    "Yard": ("modelyard.yard", "Yard"),
    "load_model": ("modelyard.yard", "load_model"),
    "UnseenCategoryWarning": ("modelyard.data.encode", "UnseenCategoryWarning"),
    "Registry": ("modelyard.registry", "Registry"),
    "Version": ("modelyard.records.versions", "Version"),
    "VersionSummary": ("modelyard.records.versions", "VersionSummary"),
    "LineageEdge": ("modelyard.records.versions", "LineageEdge"),
    "Lineage": ("modelyard.records.versions", "Lineage"),
    "AliasMove": ("modelyard.records.versions", "AliasMove"),
    "Deletion": ("modelyard.records.versions", "Deletion"),
    "tune": ("modelyard.tune", None),
    "Study": ("modelyard.tune.study", "Study"),
    "Trial": ("modelyard.records.trials", "Trial"),
    "TrialState": ("modelyard.records.trials", "TrialState"),
    "StudyInfo": ("modelyard.records.trials", "StudyInfo"),
    "compare": ("modelyard.compare", None),  # the module: my.compare.compare(...); the package shadows a function
    "CompareOptions": ("modelyard.compare", "CompareOptions"),
    "Comparison": ("modelyard.records.comparisons", "Comparison"),
}

__all__ = [*_LAZY, *_errors_all, "__version__"]  # noqa: PLE0604 - names of the lazy table (all str), sorted below
__all__.sort()


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'modelyard' has no attribute {name!r}") from None
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
