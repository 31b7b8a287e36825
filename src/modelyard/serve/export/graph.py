"""Building one ONNX graph from a Predictor: raw columns in, preprocessing, the family's head, labels out.

Graph layout (every built-in family, and any family with a registered exporter)::

    inputs   one per feature column, shape [N, 1]: float32 for numeric columns, string for categorical
    coded    categorical strings -> category codes (CategoryMapper, -1 for an unseen category, NaN for a
             missing one): the columns ``Predictor.coded`` gives, NaN wherever a value is missing
    steps    per-column preprocessing steps (``COLUMN_STEPS``, in order; ``steps.py``): imputation, then a
             missing category read as an unseen one, exactly as ``Predictor.features`` does
    encoded  one-hot (Equal against 0..k-1, so unseen -> all zeros), ordinal codes, or native codes (unseen
             -> k, the code past the column's k categories), as ``Encoder`` does, concatenated in schema
             order: the matrix the model was fitted on, [N, n_encoded]
    head     the family exporter: class probabilities [N, k] or values [N]
    outputs  ``label`` [N] (original class labels) and ``probabilities`` [N, k]; or ``prediction`` [N]

Missing values at the inputs: NaN in a numeric input; the empty string ``""`` (``MISSING_CATEGORY``,
the one string modelyard's encoder itself reads as missing) in a categorical input. A category is its
text as the schema stores it (``schema.columns[j].categories``; an integer category is ``"3"``, not
``"3.0"``); ``onnx_feed`` turns a table into these inputs the way ``Predictor`` reads it. What happens
to a missing value then follows the Predictor: filled with the fill value (the fill category's code)
when it was trained with ``impute``; kept NaN when its family takes missing values natively (the
forest routes it as scikit-learn does, gradient boosting as XGBoost does: each split's learned
default direction, see ``boosting.py``); otherwise a missing category scores as an unseen one (code
-1, all zeros one-hot). ``Predictor`` refuses NaN in a numeric column of a model that takes none; a
graph cannot refuse, so such a row yields NaN outputs.

Why onnx.helper and not torch.onnx: the torch families are a few Gemm and activation nodes, the
forest is not torch at all, and the preprocessing must sit in the same graph; writing the nodes
directly keeps one code path for every family and needs no extra exporter package (torch 2.13's
``torch.onnx.export`` wants onnxscript). Exporting the MLP this way takes milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ...models.predictor import Predictor

__all__ = ["COLUMN_STEPS", "MISSING_CATEGORY", "ML_OPSET", "OPSET", "GraphBuilder", "build_inputs", "encode_columns"]

OPSET = 17
ML_OPSET = 3
MISSING_CATEGORY = ""
"""The string a categorical input holds where its value is missing."""
_MISSING_CODE = -2  # CategoryMapper's code of MISSING_CATEGORY, turned into NaN right after

ColumnStep = Callable[["GraphBuilder", "Predictor", int, str], str]
COLUMN_STEPS: list[ColumnStep] = []
"""Per-column preprocessing steps between coding and encoding: ``step(g, predictor, j, name) -> new name``.

A step that does not apply to column ``j`` returns ``name`` unchanged. A new preprocessing stage
stored in the Predictor (imputation, for instance) registers its step here; nothing else changes.
"""


class GraphBuilder:
    """Accumulates nodes, initializers, inputs and outputs, with unique tensor names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []
        self._n = 0

    def name(self, hint: str) -> str:
        """A fresh tensor name."""
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value: Any, hint: str = "c") -> str:
        """An initializer holding ``value`` (a NumPy array or scalar)."""
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, *, n_out: int = 1,
           domain: str | None = None, **attrs: Any) -> Any:
        """Add a node; returns its output name (or names when ``n_out > 1``)."""
        from onnx import helper

        outs = [self.name(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, domain=domain, **attrs))
        return outs[0] if n_out == 1 else outs

    def add_input(self, name: str, elem_type: int, width: int | None = 1) -> str:
        """A graph input of shape [N, width]."""
        from onnx import helper

        self.inputs.append(helper.make_tensor_value_info(name, elem_type, ["N", width] if width else ["N"]))
        return name

    def add_output(self, tensor: str, name: str, elem_type: int, shape: list[Any]) -> None:
        """Expose ``tensor`` as the graph output ``name``."""
        from onnx import helper

        self.nodes.append(helper.make_node("Identity", [tensor], [name]))
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    def model(self, doc: str, metadata: dict[str, str]) -> Any:
        """The checked ONNX model."""
        import onnx
        from onnx import helper

        graph = helper.make_graph(self.nodes, "modelyard", self.inputs, self.outputs, self.initializers, doc_string=doc)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                        helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
                                  producer_name="modelyard")
        model.ir_version = min(model.ir_version, 9)  # readable by older runtimes too
        for k, v in metadata.items():
            model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
        onnx.checker.check_model(model)
        return model


def build_inputs(g: GraphBuilder, predictor: Predictor) -> list[str]:
    """One input per feature column; returns the coded [N, 1] float tensor of each (codes, -1 unseen, NaN missing)."""
    from onnx import TensorProto

    coded = []
    for col in predictor.schema.columns:
        if col.kind != "categorical":
            coded.append(g.add_input(col.name, TensorProto.FLOAT))
            continue
        raw = g.add_input(col.name, TensorProto.STRING)
        cats = list(col.categories or ())
        codes = list(range(len(cats)))
        if MISSING_CATEGORY not in cats:  # never a category when loaded: an empty string is missing
            cats, codes = [*cats, MISSING_CATEGORY], [*codes, _MISSING_CODE]
        ints = g.op("CategoryMapper", [raw], "codes", domain="ai.onnx.ml", cats_strings=cats, cats_int64s=codes,
                    default_int64=-1)
        missing = g.op("Equal", [ints, g.const(np.int64(_MISSING_CODE), "missing_code")], "is_missing")
        floats = g.op("Cast", [ints], "codes_f", to=TensorProto.FLOAT)
        coded.append(g.op("Where", [missing, g.const(np.float32(np.nan), "nan"), floats], "coded"))
    return coded


def encode_columns(g: GraphBuilder, predictor: Predictor, coded: list[str]) -> str:
    """The per-column steps, then the predictor's encoding, concatenated: the model's input matrix [N, n_encoded]."""
    from onnx import TensorProto

    mode = predictor.encoder.mode
    parts = []
    for j, (col, name) in enumerate(zip(predictor.schema.columns, coded, strict=True)):
        for step in COLUMN_STEPS:
            name = step(g, predictor, j, name)
        if col.kind == "categorical" and mode == "onehot":
            k = len(col.categories or ())
            hot = g.op("Equal", [name, g.const(np.arange(k, dtype=np.float32).reshape(1, k), "levels")], "is")
            parts.append(g.op("Cast", [hot], "onehot", to=TensorProto.FLOAT))
        elif col.kind == "categorical" and mode == "native":  # unseen (negative) -> k; NaN < 0 is false: stays NaN
            k = len(col.categories or ())
            unseen = g.op("Less", [name, g.const(np.float32(0.0), "zero")], "is_unseen")
            parts.append(g.op("Where", [unseen, g.const(np.float32(k), "unseen_code"), name], "native"))
        else:
            parts.append(name)
    return parts[0] if len(parts) == 1 else g.op("Concat", parts, "encoded", axis=1)
