"""Custom models as users write them, loaded by path (``custom_examples:Name``) in the contract and CLI tests.

The three kinds ``--model pkg.module:Name`` accepts: a class implementing the Model protocol
(with declared params, and with params read from its signature), a scikit-learn estimator
(used straight from ``sklearn.linear_model``), and a ``torch.nn.Module`` factory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from modelyard.errors import ModelError
from modelyard.models import Param, ParamSpec
from modelyard.schema import Task


class CentroidClassifier:
    """Nearest shrunken centroid; probabilities are a softmax over negative squared distances."""

    tasks = (Task.CLASSIFICATION,)
    params = ParamSpec(
        (
            Param("shrink", float, 0.0, low=0.0, high=1.0, help="pull each centroid toward the global mean"),
            Param("temperature", float, 1.0, low=1e-3, high=1e3, help="softmax temperature"),
        )
    )

    def __init__(self, *, task: Task | str = Task.CLASSIFICATION, n_classes: int = 0, **params: Any):
        self.task = Task(task)
        self.n_classes = n_classes
        self.hparams = self.params.validate(params, "CentroidClassifier")
        self.centroids_: NDArray | None = None

    def fit(self, X: NDArray, y: NDArray, *, eval_set: Any = None, config: Any = None, callbacks: Any = ()) -> Any:
        k = max(self.n_classes, int(np.max(y)) + 1)
        mean = X.mean(axis=0)
        cents = np.stack([X[y == c].mean(axis=0) if np.any(y == c) else mean for c in range(k)])
        self.centroids_ = (1 - self.hparams["shrink"]) * cents + self.hparams["shrink"] * mean
        return self

    def _scores(self, X: NDArray) -> NDArray:
        if self.centroids_ is None:
            raise ModelError("CentroidClassifier is not fitted; call fit first")
        d = ((np.asarray(X, dtype=np.float64)[:, None, :] - self.centroids_[None]) ** 2).sum(axis=2)
        return -d / self.hparams["temperature"]

    def predict(self, X: NDArray) -> NDArray:
        return self._scores(X).argmax(axis=1).astype(np.int64)

    def predict_proba(self, X: NDArray) -> NDArray:
        s = self._scores(X)
        s -= s.max(axis=1, keepdims=True)
        e = np.exp(s)
        return e / e.sum(axis=1, keepdims=True)

    def get_params(self) -> dict[str, Any]:
        return dict(self.hparams)

    def state(self) -> dict[str, NDArray]:
        if self.centroids_ is None:
            raise ModelError("CentroidClassifier is not fitted; call fit first")
        return {"centroids": self.centroids_}

    @classmethod
    def from_state(cls, params: Mapping[str, Any], state: Mapping[str, NDArray], *, task: Any, n_classes: int = 0):
        self = cls(task=task, n_classes=n_classes, **params)
        self.centroids_ = np.asarray(state["centroids"], dtype=np.float64)
        return self


class ClosedFormRidge:
    """Ridge regression solved exactly; its hyperparameters come from the constructor's signature."""

    tasks = (Task.REGRESSION,)

    def __init__(self, alpha: float = 1.0, fit_intercept: bool = True, *, task: Any = Task.REGRESSION, n_classes: int = 0):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.coef_: NDArray | None = None
        self.intercept_ = 0.0

    def fit(self, X: NDArray, y: NDArray, *, eval_set: Any = None, config: Any = None, callbacks: Any = ()) -> Any:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        xm, ym = (X.mean(axis=0), y.mean()) if self.fit_intercept else (np.zeros(X.shape[1]), 0.0)
        Xc = X - xm
        self.coef_ = np.linalg.solve(Xc.T @ Xc + self.alpha * np.eye(X.shape[1]), Xc.T @ (y - ym))
        self.intercept_ = float(ym - xm @ self.coef_)
        return self

    def predict(self, X: NDArray) -> NDArray:
        if self.coef_ is None:
            raise ModelError("ClosedFormRidge is not fitted; call fit first")
        return np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_

    def get_params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "fit_intercept": self.fit_intercept}

    def state(self) -> dict[str, NDArray]:
        if self.coef_ is None:
            raise ModelError("ClosedFormRidge is not fitted; call fit first")
        return {"coef": self.coef_, "intercept": np.array([self.intercept_])}

    @classmethod
    def from_state(cls, params: Mapping[str, Any], state: Mapping[str, NDArray], *, task: Any, n_classes: int = 0):
        self = cls(**params, task=task, n_classes=n_classes)
        self.coef_ = np.asarray(state["coef"], dtype=np.float64)
        self.intercept_ = float(np.asarray(state["intercept"])[0])
        return self


def residual_net(n_features: int, n_outputs: int, width: int = 32, depth: int = 2) -> torch.nn.Module:
    """A torch.nn.Module factory: ``depth`` residual blocks of ``width`` units, trained by modelyard's loop."""

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(width, width)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.relu(self.fc(x))

    return torch.nn.Sequential(
        torch.nn.Linear(n_features, width), *[Block() for _ in range(depth)], torch.nn.Linear(width, n_outputs)
    )


class TwoLayerNet(torch.nn.Module):
    """A torch.nn.Module class used as its own factory: ``TwoLayerNet(n_features, n_outputs, hidden=16)``."""

    def __init__(self, n_features: int, n_outputs: int, hidden: int = 16):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(n_features, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, n_outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


# --- things that are not models, for the error tests ---------------------------------------------

class NotAModel:
    """Has none of the protocol's methods."""

    def run(self) -> None:
        pass


def not_a_factory(n_features: int, n_outputs: int) -> Any:
    """Returns something that is not a torch module."""
    return [n_features, n_outputs]


NOT_CALLABLE = 42
