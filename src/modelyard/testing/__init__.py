"""Contract suites and test helpers: every model family, store backend, optimizer and pruner passes the same suite.

The store suite is imported from ``modelyard.testing.stores``; it needs the store layer. The names
below load their module on first use, so importing one suite does not import the others' dependencies.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "check_model": "modelyard.testing.models",
    "model_checks": "modelyard.testing.models",
    "optimizer_checks": "modelyard.testing.tuning",
    "pruner_checks": "modelyard.testing.tuning",
}

__all__ = ["check_model", "model_checks", "optimizer_checks", "pruner_checks"]


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'modelyard.testing' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)
