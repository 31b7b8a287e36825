"""Model families (M): linear and logistic regression, MLP, random forest, gradient boosting, and custom models."""

from __future__ import annotations

from ..errors import ModelError
from .base import Model, Param, ParamSpec
from .boosting import GradientBoosting
from .custom import is_custom_path, load_custom
from .forest import RandomForest
from .linear import LinearRegression
from .logistic import LogisticRegression
from .mlp import MLP
from .predictor import Predictor

__all__ = ["FAMILIES", "Model", "Param", "ParamSpec", "Predictor", "get_family"]

FAMILIES: dict[str, type] = {
    "gradient_boosting": GradientBoosting,
    "linear_regression": LinearRegression,
    "logistic_regression": LogisticRegression,
    "mlp": MLP,
    "random_forest": RandomForest,
}


def get_family(name: str) -> type:
    """The class of a built-in family, or of a custom model given as ``pkg.module:Class``."""
    if name in FAMILIES:
        return FAMILIES[name]
    if is_custom_path(name):
        return load_custom(name)
    raise ModelError(
        f"unknown model family {name!r}; choose one of {', '.join(FAMILIES)}, or a custom model as package.module:Class"
    )
