"""A fitted model with its schema and encoding: predicts on raw new rows and returns original labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.encode import as_matrix
from ..errors import ModelError
from ..schema import Schema, Task
from .encoding import Encoder

__all__ = ["ARTIFACT_FORMAT", "Predictor", "is_statistic"]

ARTIFACT_FORMAT = 1
STATISTIC_PREFIX = "scaling."
"""State arrays under this prefix hold preprocessing statistics fitted from the data, not learned weights."""


def is_statistic(name: str) -> bool:
    """Whether the state array ``name`` holds preprocessing statistics (input/output scaling), not weights."""
    return name.startswith(STATISTIC_PREFIX)


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


class Predictor:
    """What ``train`` returns as ``result.model``: schema-aware predict/predict_proba and state for the registry."""

    def __init__(self, family: str, model: Any, schema: Schema):
        self.family = family
        self.model = model
        self.schema = schema
        self.encoder = Encoder(schema, getattr(model, "encoding", "onehot"))
        tell = getattr(model, "set_categorical", None)
        if self.encoder.mode == "native" and callable(tell):  # the library splits on categories itself
            tell(self.encoder.categorical_sizes())

    @property
    def task(self) -> Task:
        """Classification or regression."""
        return self.schema.task

    def get_params(self) -> dict[str, Any]:
        """The model's hyperparameters (JSON-safe)."""
        return {k: _jsonable(v) for k, v in self.model.get_params().items()}

    def encode(self, table: Any) -> NDArray[np.float32]:
        """Raw rows (DataFrame, dict, array) as the model's input matrix."""
        return self.encoder.transform(as_matrix(table, self.schema))

    def predict_codes(self, X: NDArray[np.float32]) -> NDArray:
        """Predictions on schema-coded features: class indices or values."""
        return np.asarray(self.model.predict(self.encoder.transform(X)))

    def proba_codes(self, X: NDArray[np.float32]) -> NDArray:
        """Class probabilities on schema-coded features."""
        return np.asarray(self.model.predict_proba(self.encoder.transform(X)), dtype=np.float64)

    def predict(self, table: Any) -> NDArray:
        """Predictions on raw rows: original class labels, or values."""
        codes = self.predict_codes(as_matrix(table, self.schema))
        if self.task is Task.CLASSIFICATION and self.schema.classes is not None:
            return np.asarray(self.schema.classes)[codes.astype(np.int64)]
        return codes

    def predict_proba(self, table: Any) -> NDArray:
        """Class probabilities on raw rows, columns in ``schema.classes`` order."""
        if self.task is not Task.CLASSIFICATION:
            raise ModelError(f"{self.family} predicts values; predict_proba applies to classifiers only, use predict")
        if not hasattr(self.model, "predict_proba"):
            raise ModelError(f"{self.family} has no predict_proba; use predict, or a model family with probabilities")
        return self.proba_codes(as_matrix(table, self.schema))

    @property
    def has_proba(self) -> bool:
        """Whether class probabilities are available."""
        return self.task is Task.CLASSIFICATION and callable(getattr(self.model, "predict_proba", None))

    def config(self) -> dict[str, Any]:
        """JSON-safe description needed to rebuild the model with ``from_parts`` (and its feature importance)."""
        out = {"format": ARTIFACT_FORMAT, "family": self.family, "params": self.get_params(), "schema": self.schema.to_dict()}
        importance = self.importance()
        if importance is not None:  # recorded with the version; from_parts does not need it
            out["importance"] = importance
        return out

    def importance(self) -> dict[str, Any] | None:
        """``{"method", "values": {feature: value}}``: how much each feature matters to the model, or None."""
        from .importance import feature_importance

        return feature_importance(self)

    def state(self) -> dict[str, NDArray]:
        """The model's learned arrays."""
        return self.model.state()

    def n_parameters(self) -> int:
        """Number of learned numbers in the state (preprocessing statistics such as input scaling not counted)."""
        if callable(getattr(self.model, "n_parameters", None)):  # state held as a library's bytes (boosting)
            return int(self.model.n_parameters())
        return int(sum(np.asarray(v).size for k, v in self.state().items() if not is_statistic(k)))

    @classmethod
    def from_parts(cls, config: Mapping[str, Any], state: Mapping[str, NDArray]) -> Predictor:
        """Rebuild from ``config()`` and ``state()`` (no code is deserialized; the family is looked up by name)."""
        from . import get_family

        if config.get("format") != ARTIFACT_FORMAT:
            raise ModelError(f"artifact format {config.get('format')!r} is not supported (this modelyard reads {ARTIFACT_FORMAT}); "
                "upgrade modelyard to load it")
        schema = Schema.from_dict(config["schema"])
        fam = get_family(config["family"])
        model = fam.from_state(config["params"], state, task=schema.task, n_classes=schema.n_classes)
        return cls(config["family"], model, schema)
