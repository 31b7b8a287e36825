"""Training (A) and evaluation (S): the fit loop, metrics, results, distributed aggregation."""

from .fit import train
from .result import TrainResult

__all__ = ["train", "TrainResult"]
