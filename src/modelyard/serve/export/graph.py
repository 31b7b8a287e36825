"""Building one ONNX graph from a Predictor: raw columns in, preprocessing, the family's head, labels out.

Graph layout (every built-in family, and any family with a registered exporter)::

    inputs   one per feature column, shape [N, 1]: float32 for numeric columns, string for categorical
    coded    categorical strings -> category codes (CategoryMapper, -1 for an unseen category)
    steps    per-column preprocessing steps (``COLUMN_STEPS``; e.g. imputation), in order
    encoded  one-hot (Equal against 0..k-1, so unseen -> all zeros) or ordinal codes, as ``Encoder`` does,
             concatenated in schema order: the matrix the model was fitted on, [N, n_encoded]
    head     the family exporter: class probabilities [N, k] or values [N]
    outputs  ``label`` [N] (original class labels) and ``probabilities`` [N, k]; or ``prediction`` [N]

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

__all__ = ["COLUMN_STEPS", "ML_OPSET", "OPSET", "GraphBuilder", "build_inputs", "encode_columns"]

OPSET = 17
ML_OPSET = 3

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
    """One input per feature column; returns the coded [N, 1] float tensor of each (categories as codes)."""
    from onnx import TensorProto

    coded = []
    for col in predictor.schema.columns:
        if col.kind == "categorical":
            raw = g.add_input(col.name, TensorProto.STRING)
            codes = g.op("CategoryMapper", [raw], "codes", domain="ai.onnx.ml",
                         cats_strings=list(col.categories or ()), cats_int64s=list(range(len(col.categories or ()))),
                         default_int64=-1)
            coded.append(g.op("Cast", [codes], "coded", to=TensorProto.FLOAT))
        else:
            coded.append(g.add_input(col.name, TensorProto.FLOAT))
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
        else:
            parts.append(name)
    return parts[0] if len(parts) == 1 else g.op("Concat", parts, "encoded", axis=1)
