"""A fitted model with its schema, imputation and encoding: predicts on raw new rows and returns original labels.

Raw rows -> schema codes (``data.encode``, NaN where missing) -> imputation (when the model
was trained with ``impute``) -> encoding (one-hot or ordinal) -> the model. A model without
imputation whose family does not declare ``handles_missing`` refuses NaN in numeric columns
(one message naming every such column) and sees a missing category as an unseen one (-1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.encode import DEFAULT_UNKNOWN, as_matrix
from ..data.impute import Imputer, missing_counts
from ..data.validate import describe_counts
from ..errors import DataError, ModelError
from ..records.jsonsafe import jsonable
from ..schema import Schema, Task
from .encoding import Encoder

__all__ = ["ARTIFACT_FORMAT", "Predictor", "is_statistic"]

ARTIFACT_FORMAT = 1
STATISTIC_PREFIX = "scaling."
"""State arrays under this prefix hold preprocessing statistics fitted from the data, not learned weights."""
IMPUTE_PREFIX = "impute."
"""State arrays under this prefix hold the imputation's fill values (statistics too)."""


def is_statistic(name: str) -> bool:
    """Whether the state array ``name`` holds preprocessing statistics (scaling, imputation), not weights."""
    return name.startswith((STATISTIC_PREFIX, IMPUTE_PREFIX))



class Predictor:
    """What ``train`` returns as ``result.model``: schema-aware predict/predict_proba and state for the registry."""

    def __init__(self, family: str, model: Any, schema: Schema, imputer: Imputer | None = None):
        self.family = family
        self.model = model
        self.schema = schema
        self.imputer = imputer
        self.encoder = Encoder(schema, getattr(model, "encoding", "onehot"))
        tell = getattr(model, "set_categorical", None)
        if self.encoder.mode == "native" and callable(tell):  # the library splits on categories itself
            tell(self.encoder.categorical_sizes())

    @property
    def handles_missing(self) -> bool:
        """Whether the model takes NaN itself (its family declares ``handles_missing``)."""
        return bool(getattr(self.model, "handles_missing", False))

    def features(self, X: NDArray[np.float32]) -> NDArray[np.float32]:
        """Schema-coded rows (NaN where missing) as the model's input: imputed, then encoded."""
        if self.imputer is not None:
            X = self.imputer.transform(X)
        elif not self.handles_missing and X.dtype.kind == "f" and np.isnan(X.sum(dtype=np.float64)):
            cat = self.schema.categorical
            numeric = np.ones(X.shape[1], dtype=bool)
            numeric[cat] = False
            counts = missing_counts(X[:, numeric], [n for n, k in zip(self.schema.feature_names, numeric) if k])
            if counts:
                raise DataError(
                    f"{len(counts)} column(s) have missing values: {describe_counts(counts, 'missing')}; this "
                    f"{self.family} model was trained without imputation, so fill them before predicting (or "
                    "retrain it with --impute median)"
                )
            X = X.copy()
            block = X[:, cat]
            block[np.isnan(block)] = -1.0  # a missing category reads as an unseen one
            X[:, cat] = block
        return self.encoder.transform(X)

    @property
    def task(self) -> Task:
        """Classification or regression."""
        return self.schema.task

    def get_params(self) -> dict[str, Any]:
        """The model's hyperparameters (JSON-safe)."""
        return {k: jsonable(v) for k, v in self.model.get_params().items()}

    @property
    def takes_missing(self) -> bool:
        """Whether raw rows may have missing values: the model handles them natively or the predictor imputes."""
        return self.handles_missing or self.imputer is not None

    def coded(self, table: Any, *, unknown: str = DEFAULT_UNKNOWN) -> NDArray[np.float32]:
        """Raw rows as schema-coded features; unseen categories follow ``unknown`` (see ``data/encode.py``)."""
        return as_matrix(table, self.schema, unknown=unknown, allow_missing=self.takes_missing)

    def encode(self, table: Any, *, unknown: str = DEFAULT_UNKNOWN) -> NDArray[np.float32]:
        """Raw rows (DataFrame, dict, array) as the model's input matrix."""
        return self.features(self.coded(table, unknown=unknown))

    def predict_codes(self, X: NDArray[np.float32]) -> NDArray:
        """Predictions on schema-coded features: class indices or values."""
        return np.asarray(self.model.predict(self.features(X)))

    def proba_codes(self, X: NDArray[np.float32]) -> NDArray:
        """Class probabilities on schema-coded features."""
        return np.asarray(self.model.predict_proba(self.features(X)), dtype=np.float64)

    def predict(self, table: Any, *, unknown: str = DEFAULT_UNKNOWN) -> NDArray:
        """Predictions on raw rows: original class labels, or values (unseen categories: see ``data/encode.py``)."""
        return self.labels(self.predict_codes(self.coded(table, unknown=unknown)))

    def labels(self, codes: NDArray) -> NDArray:
        """Class indices as the original class labels (values pass through for regression)."""
        if self.task is Task.CLASSIFICATION and self.schema.classes is not None:
            return np.asarray(self.schema.classes)[codes.astype(np.int64)]
        return codes

    def predict_proba(self, table: Any, *, unknown: str = DEFAULT_UNKNOWN) -> NDArray:
        """Class probabilities on raw rows, columns in ``schema.classes`` order."""
        if self.task is not Task.CLASSIFICATION:
            raise ModelError(f"{self.family} predicts values; predict_proba applies to classifiers only, use predict")
        if not hasattr(self.model, "predict_proba"):
            raise ModelError(f"{self.family} has no predict_proba; use predict, or a model family with probabilities")
        return self.proba_codes(self.coded(table, unknown=unknown))

    @property
    def has_proba(self) -> bool:
        """Whether class probabilities are available."""
        return self.task is Task.CLASSIFICATION and callable(getattr(self.model, "predict_proba", None))

    def config(self) -> dict[str, Any]:
        """JSON-safe description needed to rebuild the model with ``from_parts`` (and its feature importance)."""
        out = {"format": ARTIFACT_FORMAT, "family": self.family, "params": self.get_params(), "schema": self.schema.to_dict()}
        if self.imputer is not None:
            out["impute"] = self.imputer.strategy
        importance = self.importance()
        if importance is not None:  # recorded with the version; from_parts does not need it
            out["importance"] = importance
        return out

    def importance(self) -> dict[str, Any] | None:
        """``{"method", "values": {feature: value}}``: how much each feature matters to the model, or None."""
        from .importance import feature_importance

        return feature_importance(self)

    def state(self) -> dict[str, NDArray]:
        """The model's learned arrays (and ``impute.fill`` when it imputes)."""
        state = self.model.state()
        if self.imputer is not None:
            state = {**state, **self.imputer.state()}
        return state

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
        imputer = Imputer.from_state(config["impute"], state) if config.get("impute") else None
        own = {k: v for k, v in state.items() if not k.startswith(IMPUTE_PREFIX)} if imputer is not None else state
        model = fam.from_state(config["params"], own, task=schema.task, n_classes=schema.n_classes)
        return cls(config["family"], model, schema, imputer)
