"""Gradient-boosted trees (the ``gradient_boosting`` family) on XGBoost, saved as XGBoost's own UBJSON bytes."""

from .device import cuda_available
from .family import GradientBoosting

__all__ = ["GradientBoosting", "cuda_available"]
