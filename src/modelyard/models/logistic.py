"""Logistic regression, binary (one logit) and multinomial (softmax), by L-BFGS, Newton or minibatches."""

from __future__ import annotations

from typing import Any

from ..schema import Task
from .base import Param, ParamSpec
from .glm import LinearModel, linear_params
from .weights import CLASS_WEIGHT

__all__ = ["LogisticRegression"]


class LogisticRegression(LinearModel):
    """Linear logits with cross-entropy + (λ/2)‖w‖²; ``C`` is scikit-learn's inverse strength (see ``glm.py``)."""

    family = "logistic_regression"
    tasks = (Task.CLASSIFICATION,)
    penalty_name = "C"
    params = ParamSpec(
        linear_params(
            Param("C", float, None, low=1e-12, high=1e12, nullable=True,
                  help="inverse L2 strength as scikit-learn's LogisticRegression(C): weight_decay = 1/(C·n_train)"),
            closed_form=False,
        ) + (CLASS_WEIGHT,),
        renamed={"optimizer": "solver"},
    )

    def l2_strength(self, total_weight: float) -> float:
        """λ from weight_decay, or C (λ = 1/(C·W)), or scikit-learn's default C = 1."""
        if self.hparams["weight_decay"] is not None:
            return float(self.hparams["weight_decay"])
        C = self.hparams["C"]
        return 1.0 / ((1.0 if C is None else float(C)) * max(total_weight, 1e-300))

    def build(self, n_in: int, n_out: int) -> Any:
        """One linear layer producing logits."""
        import torch

        return torch.nn.Linear(n_in, n_out)
