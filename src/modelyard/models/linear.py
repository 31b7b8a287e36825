"""Linear regression trained by the shared minibatch loop (squared error, optional L2)."""

from __future__ import annotations

from typing import Any

from ..schema import Task
from .base import ParamSpec
from .loop import LOOP_PARAMS
from .torch_base import TorchModel

__all__ = ["LinearRegression"]


class LinearRegression(TorchModel):
    """y = X w + b, fitted by minibatch SGD/Adam on the mean squared error."""

    family = "linear_regression"
    tasks = (Task.REGRESSION,)
    params = ParamSpec(LOOP_PARAMS)

    def build(self, n_in: int, n_out: int) -> Any:
        """One linear layer."""
        import torch

        return torch.nn.Linear(n_in, n_out)
