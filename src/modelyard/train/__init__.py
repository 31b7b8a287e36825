"""Training (A) and evaluation (S): the fit loop, metrics, results, distributed aggregation."""

import sys
import types
from typing import Any

from .fit import train
from .result import TrainResult

__all__ = ["TrainResult", "train"]


class _CallablePackage(types.ModuleType):
    """This package, callable like ``train``.

    ``modelyard.train`` names both this package and the function. Python binds the package
    to the parent's ``train`` attribute the first time any ``modelyard.train.*`` module is
    imported, which would otherwise shadow the function; so calling the package trains.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> TrainResult:
        """Same as ``modelyard.train.fit.train``."""
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
