"""ONNX heads of the built-in families: ``exporter(g, predictor, x) -> Head`` on the encoded matrix ``x``.

A head is class probabilities ``[N, k]`` (classification) or values ``[N]`` (regression), both
float32; ``export.onnx_model`` adds the label outputs. New families register an exporter in
``EXPORTERS`` (``register_exporter``); a custom model may instead define ``to_onnx(g, x)``
returning the same head.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import ModelError
from ...schema import Task
from .graph import GraphBuilder

if TYPE_CHECKING:
    from ...models.predictor import Predictor

__all__ = ["EXPORTERS", "Head", "exporter_for", "register_exporter"]


@dataclass(frozen=True)
class Head:
    """The tensor a family's graph ends in: ``proba`` [N, k] for classification, ``values`` [N] for regression."""

    proba: str | None = None
    values: str | None = None


Exporter = Callable[[GraphBuilder, "Predictor", str], Head]
EXPORTERS: dict[str, Exporter] = {}


def register_exporter(family: str) -> Callable[[Exporter], Exporter]:
    """Decorator: ``@register_exporter("gradient_boosting")`` makes a family exportable to ONNX."""

    def deco(fn: Exporter) -> Exporter:
        EXPORTERS[family] = fn
        return fn

    return deco


def exporter_for(predictor: Predictor) -> Exporter:
    """The exporter of ``predictor``'s family, or ModelError saying it cannot be exported."""
    fn = EXPORTERS.get(predictor.family)
    if fn is not None:
        return fn
    custom = getattr(predictor.model, "to_onnx", None)
    if callable(custom):
        return lambda g, p, x: custom(g, x)
    raise ModelError(
        f"{predictor.family} cannot be exported to ONNX: only {', '.join(sorted(EXPORTERS))} (and custom models with "
        "a to_onnx(graph, x) method) can; use --format safetensors for its weights and schema"
    )


# --- the torch families: standardize, a stack of Linear and activations, the output transform ---------------
_ACTIVATIONS = {"ReLU": "Relu", "Tanh": "Tanh", "Sigmoid": "Sigmoid"}


def _layers(g: GraphBuilder, module: Any, x: str, family: str) -> str:
    from torch import nn

    mods = list(module) if isinstance(module, nn.Sequential) else [module]
    for m in mods:
        kind = type(m).__name__
        if isinstance(m, nn.Linear):
            w = m.weight.detach().cpu().numpy().astype(np.float32)
            b = (m.bias.detach().cpu().numpy() if m.bias is not None else np.zeros(w.shape[0])).astype(np.float32)
            x = g.op("Gemm", [x, g.const(w, "W"), g.const(b, "B")], "linear", transB=1)
        elif kind in _ACTIVATIONS:
            x = g.op(_ACTIVATIONS[kind], [x])
        elif isinstance(m, nn.LeakyReLU):
            x = g.op("LeakyRelu", [x], alpha=float(m.negative_slope))
        elif isinstance(m, nn.GELU):  # exact GELU: x * (1 + erf(x / sqrt 2)) / 2
            e = g.op("Erf", [g.op("Div", [x, g.const(np.float32(np.sqrt(2.0)))])])
            x = g.op("Mul", [g.op("Mul", [x, g.const(np.float32(0.5))]), g.op("Add", [e, g.const(np.float32(1.0))])])
        elif isinstance(m, (nn.Dropout, nn.Identity)):
            continue
        else:
            raise ModelError(f"{family} holds a {kind} layer, which the ONNX export does not know; use --format "
                             "safetensors for its weights")
    return x


def torch_head(g: GraphBuilder, predictor: Predictor, x: str) -> Head:
    """Linear/logistic regression and the MLP: ``(x - mean) / scale``, the layers, then sigmoid/softmax or unscaling."""
    model = predictor.model
    if model.hparams.get("standardize", True):
        x = g.op("Div", [g.op("Sub", [x, g.const(np.asarray(model.mean_, np.float32).reshape(1, -1), "mean")]),
                         g.const(np.asarray(model.scale_, np.float32).reshape(1, -1), "scale")], "scaled")
    out = _layers(g, model.module_, x, predictor.family)
    if model.task is Task.REGRESSION:
        flat = g.op("Flatten", [out], axis=1)
        values = g.op("Reshape", [flat, g.const(np.array([-1], dtype=np.int64))])
        values = g.op("Add", [g.op("Mul", [values, g.const(np.float32(model.y_scale_))]),
                              g.const(np.float32(model.y_mean_))], "values")
        return Head(values=values)
    if model.n_out == 1:  # binary: one logit
        p = g.op("Sigmoid", [out], "p1")
        return Head(proba=g.op("Concat", [g.op("Sub", [g.const(np.float32(1.0)), p]), p], "proba", axis=1))
    return Head(proba=g.op("Softmax", [out], "proba", axis=1))


for _family in ("linear_regression", "logistic_regression", "mlp"):
    register_exporter(_family)(torch_head)


# --- the random forest: an ONNX tree ensemble over the same node arrays --------------------------------------
def _floor32(t: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 threshold: for float32 x, ``x <= t`` iff ``x <= floor32(t)``."""
    f = t.astype(np.float32)
    over = f.astype(np.float64) > t
    f[over] = np.nextafter(f[over], np.float32(-np.inf))
    return f


def forest_head(g: GraphBuilder, predictor: Predictor, x: str) -> Head:
    """TreeEnsembleClassifier/Regressor with each tree's leaf values divided by the number of trees (their mean).

    NaN goes where scikit-learn sends it: its trees send NaN left exactly where ``missing_go_to_left``
    is set (``Tree.apply``), and onnxruntime's BRANCH_LEQ node takes the true (left) branch for NaN
    exactly where ``nodes_missing_value_tracks_true`` is set (otherwise ``NaN <= t`` is false: right).
    scikit-learn sets the flag at every split, also where the split's rows held no NaN (then to the
    child with more rows, ``n_left > n_right`` in ``_splitter.pyx``), so copying it is all it takes.
    A split of "missing or not" has threshold +inf, kept as float32 +inf.
    """
    state = predictor.model.state()
    counts = np.asarray(state["tree.node_count"], dtype=np.int64)
    n_trees = len(counts)
    offsets = np.concatenate([[0], np.cumsum(counts)])[:-1]
    tree_ids = np.repeat(np.arange(n_trees), counts)
    node_ids = np.arange(int(counts.sum())) - np.repeat(offsets, counts)
    left = np.asarray(state["tree.left_child"], dtype=np.int64)
    right = np.asarray(state["tree.right_child"], dtype=np.int64)
    leaf = left < 0
    values = np.asarray(state["tree.values"], dtype=np.float64)  # (nodes, 1, k)
    nodes = {
        "nodes_treeids": tree_ids.tolist(), "nodes_nodeids": node_ids.tolist(),
        "nodes_featureids": np.where(leaf, 0, np.asarray(state["tree.feature"])).astype(np.int64).tolist(),
        "nodes_values": np.where(leaf, 0.0, _floor32(np.asarray(state["tree.threshold"], dtype=np.float64))).tolist(),
        "nodes_modes": ["LEAF" if lf else "BRANCH_LEQ" for lf in leaf],
        "nodes_truenodeids": np.where(leaf, 0, left).tolist(), "nodes_falsenodeids": np.where(leaf, 0, right).tolist(),
        "nodes_missing_value_tracks_true": np.where(leaf, 0, np.asarray(state["tree.missing_go_to_left"])).astype(
            np.int64).tolist(),
    }
    leaves = np.flatnonzero(leaf)
    if predictor.task is Task.REGRESSION:
        out = g.op("TreeEnsembleRegressor", [x], "values2d", domain="ai.onnx.ml", n_targets=1, aggregate_function="SUM",
                   target_treeids=tree_ids[leaves].tolist(), target_nodeids=node_ids[leaves].tolist(),
                   target_ids=[0] * len(leaves), target_weights=(values[leaves, 0, 0] / n_trees).tolist(), **nodes)
        return Head(values=g.op("Reshape", [out, g.const(np.array([-1], dtype=np.int64))], "values"))
    k = values.shape[2]
    dist = values[leaves, 0, :]
    dist = dist / np.where(dist.sum(axis=1, keepdims=True) > 0, dist.sum(axis=1, keepdims=True), 1.0)  # as sklearn
    rep = np.repeat(leaves, k)
    _, proba = g.op("TreeEnsembleClassifier", [x], "forest", n_out=2, domain="ai.onnx.ml", classlabels_int64s=list(range(k)),
                    class_treeids=tree_ids[rep].tolist(), class_nodeids=node_ids[rep].tolist(),
                    class_ids=np.tile(np.arange(k), len(leaves)).tolist(),
                    class_weights=(dist.reshape(-1) / n_trees).tolist(), post_transform="NONE", **nodes)
    return Head(proba=proba)


register_exporter("random_forest")(forest_head)
