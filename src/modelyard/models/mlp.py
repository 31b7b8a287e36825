"""Multi-layer perceptron for classification and regression, trained by the shared loop."""

from __future__ import annotations

from typing import Any

from .base import Param, ParamSpec
from .loop import LOOP_PARAMS
from .torch_base import TorchModel
from .weights import CLASS_WEIGHT

__all__ = ["MLP"]

ACTIVATIONS = ("relu", "tanh", "gelu", "sigmoid", "leaky_relu")


class MLP(TorchModel):
    """Linear -> activation -> dropout, repeated per hidden layer, then a linear head."""

    family = "mlp"
    params = ParamSpec(
        (
            *LOOP_PARAMS,
            Param("hidden_sizes", "ints", (64,), low=1, high=65536, help="units per hidden layer, e.g. 128,64"),
            Param("activation", str, "relu", choices=ACTIVATIONS, help="hidden-layer nonlinearity"),
            Param("dropout", float, 0.0, low=0.0, high=0.95, help="dropout probability after each hidden layer"),
            CLASS_WEIGHT,
        )
    )

    def build(self, n_in: int, n_out: int) -> Any:
        """The layer stack."""
        from torch import nn

        act = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU}
        layers: list[Any] = []
        width = n_in
        for h in self.hparams["hidden_sizes"]:
            layers += [nn.Linear(width, h), act[self.hparams["activation"]]()]
            if self.hparams["dropout"] > 0:
                layers.append(nn.Dropout(self.hparams["dropout"]))
            width = h
        layers.append(nn.Linear(width, n_out))
        return nn.Sequential(*layers)
