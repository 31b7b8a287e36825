"""Feature importance of a fitted model, per original feature column, and what kind of importance it is.

Per family (``d`` input columns of the model, after encoding):

| family                              | method                      | value per input column                        |
| ----------------------------------- | --------------------------- | --------------------------------------------- |
| gradient_boosting                   | ``gain``                    | share of the total split gain (sums to 1)     |
| random_forest                       | ``impurity``                | mean decrease in impurity, share (sums to 1)  |
| linear_regression, logistic_regression | ``abs_standardized_weight`` | ``Σ_k |w_kj|`` over outputs ``k``, weights on standardized inputs |
| mlp, custom models                  | none                        | -                                             |

(``abs_weight`` instead when a linear model was trained with ``standardize=false``: the weights are
then in the features' own units.)

A model may define ``feature_importance() -> (d,)`` itself (custom models included); its method is
then ``model``. The MLP gets none: a network's weights do not say how much a feature matters, and
model-agnostic alternatives (permutation importance) need held-out rows and re-predictions, which a
version's record does not carry. A one-hot encoded categorical column's importance is the sum over
its category columns, so every family reports one value per original feature.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["feature_importance"]

_LINEAR = ("linear_regression", "logistic_regression")


def _per_input(model: Any, family: str) -> tuple[str, NDArray[np.float64]] | None:
    """(method, importance per input column of the model) or None."""
    own = getattr(model, "feature_importance", None)
    if callable(own):
        method = "gain" if family == "gradient_boosting" else "model"
        return method, np.asarray(own(), dtype=np.float64)
    if family == "random_forest":
        forest = getattr(model, "forest_", None)
        if forest is None:
            return None
        return "impurity", np.asarray(forest.feature_importances_, dtype=np.float64)
    if family in _LINEAR:
        state = model.state()
        weight = next((v for k, v in state.items() if k.endswith("weight") and np.asarray(v).ndim == 2), None)
        if weight is None:
            return None
        standardized = getattr(model, "hparams", {}).get("standardize", True)
        method = "abs_standardized_weight" if standardized else "abs_weight"  # standardize=false: raw-unit weights
        return method, np.abs(np.asarray(weight, dtype=np.float64)).sum(axis=0)
    return None


def feature_importance(predictor: Any) -> dict[str, Any] | None:
    """``{"method": ..., "values": {feature: value}}`` (features in schema order), or None when the family has none."""
    try:
        found = _per_input(predictor.model, predictor.family)
    except Exception:  # noqa: BLE001 (importance is a description; a model that cannot give it simply has none)
        return None
    if found is None:
        return None
    method, values = found
    encoder = predictor.encoder
    names = predictor.schema.feature_names
    if len(values) != encoder.n_outputs or not np.isfinite(values).all():
        return None
    per_feature = np.zeros(len(names))
    if encoder.mode == "onehot" and predictor.schema.categorical:
        pos = 0
        for j, col in enumerate(predictor.schema.columns):
            width = len(col.categories or ()) if col.kind == "categorical" else 1
            per_feature[j] = values[pos : pos + width].sum()
            pos += width
    else:
        per_feature = values
    return {"method": method, "values": {n: float(v) for n, v in zip(names, per_feature, strict=True)}}
