"""Export a version for other runtimes: one ONNX graph with the preprocessing inside, or safetensors + schema.

``onnx_model(predictor)`` builds the graph from the Predictor alone (its schema, imputation,
encoder and state): ``graph.build_inputs``, the ``COLUMN_STEPS`` (``steps``) and
``graph.encode_columns`` turn raw columns into the matrix the model was fitted on, the family's
exporter (``families.EXPORTERS``; gradient boosting's in ``boosting``) adds its head, and the label
outputs (the class labels with the type ``Predictor.predict`` gives them: text, integers, numbers or
booleans) are added here, the same for every family. A family without an exporter is refused with one
sentence. ``onnx_feed(predictor, table)`` gives the graph's inputs for raw rows (missing values: NaN in
numbers, ``""`` in categories; see ``graph``). ``export_model`` writes either format atomically
(temporary name, then rename).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import DataError, ModelError
from ...schema import Task
from .boosting import boosting_head  # registers gradient_boosting's exporter in EXPORTERS
from .families import EXPORTERS, Head, exporter_for, register_exporter
from .feed import onnx_feed
from .graph import COLUMN_STEPS, MISSING_CATEGORY, GraphBuilder
from .steps import impute_step, missing_category_step  # registers the Predictor's steps in COLUMN_STEPS

if TYPE_CHECKING:
    from ...models.predictor import Predictor

__all__ = ["COLUMN_STEPS", "EXPORTERS", "FORMATS", "MISSING_CATEGORY", "Head", "boosting_head", "export_model",
           "impute_step", "missing_category_step", "onnx_feed", "onnx_model", "register_exporter", "safetensors_bytes"]

FORMATS = ("onnx", "safetensors")


def onnx_model(predictor: Predictor, *, description: str = "") -> Any:
    """The ONNX model of ``predictor``: one input per raw column, ``label`` + ``probabilities`` or ``prediction`` out."""
    exporter = exporter_for(predictor)  # refuses before any work
    try:
        from onnx import TensorProto
    except ImportError:
        raise ModelError("ONNX export needs the onnx package; pip install 'modelyard[onnx]'") from None

    from .graph import build_inputs, encode_columns

    g = GraphBuilder()
    x = encode_columns(g, predictor, build_inputs(g, predictor))
    head: Head = exporter(g, predictor, x)
    schema = predictor.schema
    if predictor.task is Task.CLASSIFICATION:
        if head.proba is None:
            raise ModelError(f"the ONNX exporter of {predictor.family} gave no probabilities for a classifier")
        k = schema.n_classes
        index = g.op("ArgMax", [head.proba], "index", axis=1, keepdims=0)
        values, label_type = _label_values(list(schema.classes or range(k)))
        labels = g.const(values, "classes")
        g.add_output(g.op("Gather", [labels, index], "labels", axis=0), "label", label_type, ["N"])
        g.add_output(head.proba, "probabilities", TensorProto.FLOAT, ["N", k])
    else:
        if head.values is None:
            raise ModelError(f"the ONNX exporter of {predictor.family} gave no values for a regressor")
        g.add_output(head.values, "prediction", TensorProto.FLOAT, ["N"])
    meta = {"modelyard.config": json.dumps(predictor.config(), default=str),
            "modelyard.inputs": "one [N, 1] input per feature column: float32 numbers, strings for categories",
            "modelyard.missing": f"NaN in a numeric input, {MISSING_CATEGORY!r} in a categorical one"}
    return g.model(description or f"modelyard {predictor.family}", meta)


def _label_values(classes: list[Any]) -> tuple[np.ndarray, int]:
    """The class labels as the array ``Predictor.predict`` indexes (its dtype kept) and their ONNX element type."""
    from onnx import TensorProto

    if all(isinstance(c, (bool, np.bool_)) for c in classes):
        return np.array(classes, dtype=bool), TensorProto.BOOL
    if all(isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_)) for c in classes):
        return np.array(classes, dtype=np.int64), TensorProto.INT64
    if all(isinstance(c, (int, float, np.integer, np.floating)) and not isinstance(c, (bool, np.bool_))
           for c in classes):
        return np.array(classes, dtype=np.float64), TensorProto.DOUBLE
    return np.array([c if isinstance(c, str) else str(c) for c in classes], dtype=object), TensorProto.STRING


def safetensors_bytes(predictor: Predictor) -> bytes:
    """The state arrays as safetensors, with the config (family, params, schema) as JSON in its metadata."""
    from safetensors.numpy import save

    state = {k: np.ascontiguousarray(np.asarray(v)) for k, v in predictor.state().items()}
    return save(state, metadata={"modelyard.config": json.dumps(predictor.config(), default=str)})


def export_model(predictor: Predictor, fmt: str, out: str | os.PathLike[str], *, description: str = "") -> list[str]:
    """Write ``predictor`` as ``fmt`` to ``out`` (safetensors also writes ``OUT.json``); returns the files written."""
    if fmt not in FORMATS:
        raise DataError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    path = Path(out)
    if path.is_dir():
        raise DataError(f"--out {str(out)!r} is a folder; name a file such as model.{fmt}")
    if not path.parent.exists():
        raise DataError(f"the folder of --out {str(out)!r} does not exist; create it first")
    if fmt == "onnx":
        files = {path: onnx_model(predictor, description=description).SerializeToString()}
    else:
        config = json.dumps({**predictor.config(), "state": {k: list(np.shape(v)) for k, v in predictor.state().items()}},
                            indent=2, default=str).encode()
        files = {path: safetensors_bytes(predictor), path.with_name(path.name + ".json"): config}
    for target, data in files.items():
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return [str(p) for p in files]
