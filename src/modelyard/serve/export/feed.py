"""Raw rows as the inputs of an exported graph, read the way ``Predictor`` reads them.

One ``[N, 1]`` array per feature column: float32 for a numeric column (NaN where missing), the
category's text for a categorical one (``category_key``: the number 3.0 is ``"3"``, as the schema
stores it) and ``MISSING_CATEGORY`` (``""``) where the value is missing (NaN, None, an empty string).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ...data.encode import as_matrix, category_key, to_frame
from ...data.validate import missing_mask
from ...errors import SchemaMismatchError
from .graph import MISSING_CATEGORY

if TYPE_CHECKING:
    from ...models.predictor import Predictor

__all__ = ["onnx_feed"]


def _category_text(values: NDArray) -> NDArray:
    """Each value's category text, ``MISSING_CATEGORY`` where it is missing."""
    import pandas as pd

    index, uniques = pd.factorize(values, use_na_sentinel=True)  # None/NaN -> -1
    uniques = np.asarray(uniques, dtype=object)
    gone = missing_mask(uniques) if len(uniques) else np.zeros(0, dtype=bool)
    text = np.array([MISSING_CATEGORY if m else category_key(u) for u, m in zip(uniques, gone, strict=True)]
                    + [MISSING_CATEGORY], dtype=object)
    return text[index]


def _coded_feed(predictor: Predictor, table: NDArray) -> dict[str, NDArray]:
    """A numeric array is schema-coded rows, as ``Predictor`` reads it: codes back to text, -1 to an unseen one."""
    schema = predictor.schema
    X = as_matrix(table, schema, allow_missing=True)
    out = {}
    for j, col in enumerate(schema.columns):
        if col.kind != "categorical":
            out[col.name] = X[:, [j]]
            continue
        cats = list(col.categories or ())
        unseen = "<unseen>"
        while unseen in cats or unseen == MISSING_CATEGORY:
            unseen = f"<{unseen}>"
        text = np.array([*cats, unseen, MISSING_CATEGORY], dtype=object)
        codes = X[:, j]
        index = np.where(np.isnan(codes), len(cats) + 1, len(cats))
        known = (codes >= 0) & (codes < len(cats)) & (codes == np.floor(codes))
        index[known] = codes[known].astype(np.int64)
        out[col.name] = text[index].reshape(-1, 1)
    return out


def onnx_feed(predictor: Predictor, table: Any) -> dict[str, NDArray]:
    """``{column: [N, 1] array}`` for ``onnxruntime``'s ``run``: numbers as float32, categories as their text.

    ``table`` is any table ``Predictor.predict`` takes; a numeric array holds schema-coded rows (category
    codes, -1 unseen, NaN missing) as it does there.
    """
    if isinstance(table, np.ndarray) and table.dtype.kind in "biuf":
        return _coded_feed(predictor, table)
    schema = predictor.schema
    frame = to_frame(table, schema.feature_names)
    absent = [c for c in schema.feature_names if c not in frame]
    if absent:
        raise SchemaMismatchError(f"the data lacks column(s) {', '.join(map(repr, absent))} that the model was "
                                  f"trained on; it has {', '.join(map(str, frame.columns)) or 'no columns'}")
    numeric = [c for c in schema.columns if c.kind != "categorical"]
    out: dict[str, NDArray] = {}
    if numeric:  # numbers as modelyard reads them (text parsed, inf refused), categories left out
        X = as_matrix(frame[[c.name for c in numeric]], replace(schema, columns=tuple(numeric)), allow_missing=True)
        out.update({c.name: X[:, [k]] for k, c in enumerate(numeric)})
    for col in schema.columns:
        if col.kind == "categorical":
            out[col.name] = _category_text(np.asarray(frame[col.name].to_numpy(), dtype=object)).reshape(-1, 1)
    return {c: out[c] for c in schema.feature_names}
