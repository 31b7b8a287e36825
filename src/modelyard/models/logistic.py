"""Logistic regression, binary (one logit) and multiclass (softmax), trained by the shared loop."""

from __future__ import annotations

from typing import Any

from ..schema import Task
from .base import ParamSpec
from .loop import LOOP_PARAMS
from .torch_base import TorchModel
from .weights import CLASS_WEIGHT

__all__ = ["LogisticRegression"]


class LogisticRegression(TorchModel):
    """Linear logits with cross-entropy; weight_decay makes the loss strongly convex."""

    family = "logistic_regression"
    tasks = (Task.CLASSIFICATION,)
    params = ParamSpec((*LOOP_PARAMS, CLASS_WEIGHT))

    def build(self, n_in: int, n_out: int) -> Any:
        """One linear layer producing logits."""
        import torch

        return torch.nn.Linear(n_in, n_out)
