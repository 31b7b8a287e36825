"""The Predictor's per-column preprocessing as graph steps (registered in ``COLUMN_STEPS``), in its order.

Each step takes one coded column ``[N, 1]`` (category codes, -1 unseen, NaN where a value is
missing) and does to it what ``Predictor.features`` does before encoding:

``impute_step``            a predictor trained with ``impute``: NaN -> the column's fill value from
                           ``impute.fill`` (for a categorical column, the code of its fill category)
``missing_category_step``  a predictor that neither imputes nor takes missing values natively: a
                           missing category -> -1, scored as an unseen one (``Predictor`` refuses NaN
                           in a numeric column of such a model; a graph cannot refuse, so it stays NaN)

A family that takes missing values natively (``handles_missing``) gets NaN untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .graph import COLUMN_STEPS, GraphBuilder

if TYPE_CHECKING:
    from ...models.predictor import Predictor

__all__ = ["fill_missing", "impute_step", "missing_category_step"]


def fill_missing(g: GraphBuilder, name: str, value: float, hint: str) -> str:
    """``name`` with each NaN replaced by the float32 ``value``."""
    is_nan = g.op("IsNaN", [name], "is_nan")
    return g.op("Where", [is_nan, g.const(np.float32(value), "fill"), name], hint)


def impute_step(g: GraphBuilder, predictor: Predictor, j: int, name: str) -> str:
    """Imputation: NaN in column ``j`` -> its fill value (``Imputer.transform``)."""
    imputer = predictor.imputer
    if imputer is None or imputer.fill_ is None:
        return name
    return fill_missing(g, name, float(np.asarray(imputer.fill_, dtype=np.float32)[j]), "imputed")


def missing_category_step(g: GraphBuilder, predictor: Predictor, j: int, name: str) -> str:
    """A missing category -> -1 (unseen) for a model that takes no missing values and does not impute."""
    if predictor.imputer is not None or predictor.handles_missing or predictor.schema.columns[j].kind != "categorical":
        return name
    return fill_missing(g, name, -1.0, "unseen")


for _step in (impute_step, missing_category_step):
    if _step not in COLUMN_STEPS:
        COLUMN_STEPS.append(_step)
