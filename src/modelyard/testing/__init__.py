"""Contract suites and test helpers: every model family, store backend, optimizer and pruner passes the same suite.

The store suite is imported from ``modelyard.testing.stores``; it needs the store layer.
"""

from .models import check_model, model_checks
from .tuning import optimizer_checks, pruner_checks

__all__ = ["check_model", "model_checks", "optimizer_checks", "pruner_checks"]
