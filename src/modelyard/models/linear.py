"""Linear regression: squared error with one L2 strength, solved in closed form, by L-BFGS/Newton, or minibatches."""

from __future__ import annotations

from typing import Any

from ..schema import Task
from .base import Param, ParamSpec
from .glm import LinearModel, linear_params

__all__ = ["LinearRegression"]


class LinearRegression(LinearModel):
    """y = X w + b minimizing mean squared error + (λ/2)‖w‖²; ``alpha`` is scikit-learn's Ridge alpha (see ``glm.py``)."""

    family = "linear_regression"
    tasks = (Task.REGRESSION,)
    closed_form = True
    penalty_name = "alpha"
    params = ParamSpec(
        linear_params(
            Param("alpha", float, None, low=0.0, high=1e12, nullable=True,
                  help="L2 strength as scikit-learn's Ridge(alpha): weight_decay = 2·alpha/n_train"),
            closed_form=True,
        ),
        renamed={"optimizer": "solver"},
    )

    def l2_strength(self, total_weight: float) -> float:
        """λ from weight_decay, or alpha (λ = 2·alpha/W), or Ridge's default alpha = 1."""
        if self.hparams["weight_decay"] is not None:
            return float(self.hparams["weight_decay"])
        alpha = self.hparams["alpha"]
        return 2.0 * (1.0 if alpha is None else float(alpha)) / max(total_weight, 1e-300)

    def build(self, n_in: int, n_out: int) -> Any:
        """One linear layer."""
        import torch

        return torch.nn.Linear(n_in, n_out)
