"""ONNX export of a gradient_boosting model: XGBoost's JSON trees as an ``ai.onnx.ml`` tree ensemble.

Notation: the ONNX graph takes ``X: (n, d)`` float32, the model's input matrix (the Predictor's encoded
rows, NaN for missing), and gives ``label: (n,)`` int64 and ``probabilities: (n, k)`` float32 for a
classifier, ``variable: (n, 1)`` float32 for a regressor. Each XGBoost node ``x_f < t`` becomes a
``BRANCH_LT`` node whose true branch is XGBoost's left child; ``default_left`` becomes
``nodes_missing_value_tracks_true``; a leaf's value is XGBoost's leaf weight (learning rate applied).
Tree ``t`` adds to class ``t mod k`` (``multi:softprob``) or to the single score; ``base_values`` is
XGBoost's base margin, and ``post_transform`` its link (LOGISTIC, SOFTMAX, or none).

Categorical (partition) splits have no counterpart in the ONNX tree ensemble of opset 1-3 (a node
tests one threshold), so a model with categorical columns is refused with a ModelError. The function is
what an exporter registry calls for the family (``export_onnx(model) -> onnx.ModelProto``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ...errors import ModelError
from ...schema import Task

__all__ = ["export_onnx"]


def _trees(booster: Any) -> list[dict[str, Any]]:
    model = json.loads(bytes(booster.save_raw(raw_format="json")))
    return model["learner"]["gradient_booster"]["model"]["trees"]


def _base_margin(booster: Any, trees: list[dict[str, Any]], d: int, k: int) -> np.ndarray:
    """The margin with no tree: the model's margin on a row minus the leaves that row reaches."""
    import xgboost

    row = np.zeros((1, d), dtype=np.float32)
    margin = np.asarray(booster.predict(xgboost.DMatrix(row), output_margin=True), dtype=np.float64).reshape(-1)
    leaves = np.asarray(booster.predict(xgboost.DMatrix(row), pred_leaf=True)).reshape(-1)
    summed = np.zeros(max(k, 1))
    for t, leaf in enumerate(leaves):
        summed[t % max(k, 1)] += float(trees[t]["split_conditions"][int(leaf)])
    return margin - summed


def export_onnx(model: Any, *, opset: int = 17) -> Any:
    """The ONNX model of a fitted GradientBoosting (numeric features only)."""
    from onnx import TensorProto, helper

    booster = model.booster_
    if booster is None:
        raise ModelError("gradient_boosting is not fitted; fit it before exporting")
    if model.categorical_ or any(t == "c" for t in (booster.feature_types or [])):
        raise ModelError("gradient_boosting with categorical columns splits on category sets, which the ONNX tree "
                         "ensemble cannot express; export a model trained without categorical columns (or one-hot "
                         "encode them first)")
    trees = _trees(booster)
    d = booster.num_features()
    classification = model.task is Task.CLASSIFICATION
    k = model.n_classes if classification and model.n_classes > 2 else 1
    attrs: dict[str, list[Any]] = {key: [] for key in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes", "nodes_truenodeids",
        "nodes_falsenodeids", "nodes_missing_value_tracks_true", "target_treeids", "target_nodeids", "target_ids",
        "target_weights")}
    for t, tree in enumerate(trees):
        left, right = tree["left_children"], tree["right_children"]
        for node in range(len(left)):
            leaf = left[node] == -1
            attrs["nodes_treeids"].append(t)
            attrs["nodes_nodeids"].append(node)
            attrs["nodes_featureids"].append(0 if leaf else int(tree["split_indices"][node]))
            attrs["nodes_values"].append(0.0 if leaf else float(np.float32(tree["split_conditions"][node])))
            attrs["nodes_modes"].append("LEAF" if leaf else "BRANCH_LT")
            attrs["nodes_truenodeids"].append(0 if leaf else int(left[node]))
            attrs["nodes_falsenodeids"].append(0 if leaf else int(right[node]))
            attrs["nodes_missing_value_tracks_true"].append(0 if leaf else int(tree["default_left"][node]))
            if leaf:
                attrs["target_treeids"].append(t)
                attrs["target_nodeids"].append(node)
                attrs["target_ids"].append(t % k)
                attrs["target_weights"].append(float(tree["split_conditions"][node]))
    base = [float(b) for b in _base_margin(booster, trees, d, k)]
    X = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, d])
    ml = "ai.onnx.ml"
    if classification:
        labels = list(range(max(model.n_classes, 2)))
        ensemble = helper.make_node(
            "TreeEnsembleClassifier", ["X"], ["label", "probabilities"], domain=ml,
            classlabels_int64s=labels, post_transform="SOFTMAX" if k > 1 else "LOGISTIC", base_values=base,
            class_treeids=attrs["target_treeids"], class_nodeids=attrs["target_nodeids"],
            class_ids=attrs["target_ids"], class_weights=attrs["target_weights"],
            **{key: v for key, v in attrs.items() if key.startswith("nodes_")},
        )
        outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                   helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(labels)])]
    else:
        ensemble = helper.make_node(
            "TreeEnsembleRegressor", ["X"], ["variable"], domain=ml, n_targets=1, post_transform="NONE",
            base_values=base, **{key: v for key, v in attrs.items() if key.startswith("nodes_")},
            **{key: v for key, v in attrs.items() if key.startswith("target_")},
        )
        outputs = [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])]
    graph = helper.make_graph([ensemble], "gradient_boosting", [X], outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(ml, 3)],
                             producer_name="modelyard")
