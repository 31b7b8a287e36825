"""Contract suites and test helpers: every model family (and, later, store backend and optimizer) passes the same suite."""

from .models import check_model, model_checks

__all__ = ["check_model", "model_checks"]
