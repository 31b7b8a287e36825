"""The ONNX head of ``gradient_boosting``: XGBoost's own JSON trees as one ``ai.onnx.ml`` tree ensemble.

Notation: ``x: [N, d]`` is the encoded matrix (the ``native`` encoding: numbers, category codes
``0..k-1``, ``k`` for a category unseen in training, NaN where a value is missing); ``m`` is the
number of margins per row (one, or one per class under ``multi:softprob``).

The trees are read from ``Booster.save_raw("json")``, the booster that ``GradientBoosting.predict``
runs with every tree it holds: ``fit`` keeps only the rounds up to the best one when early stopping
ends it (``booster[:best + 1]``), and a continued (warm-started) model holds its parent's trees and
its own. Each tree's nodes become ensemble nodes the way XGBoost's predictor walks them:

- numeric split ``x_f < t``: ``BRANCH_LT`` (the float32 threshold itself), true = XGBoost's left
  child; NaN goes left exactly where ``default_left`` is set, which is onnxruntime's
  ``nodes_missing_value_tracks_true``;
- categorical split (``split_type`` 1): XGBoost sends the categories listed for the node
  (``categories[categories_segments[i]:][:categories_sizes[i]]``, matched by ``categories_nodes``)
  to the RIGHT child and every other value (the other categories, the unseen code ``k``, a
  negative code) to the LEFT one; NaN follows ``default_left``
  (``tests/serve/test_export_boosting.py`` checks this against ``pred_leaf``). The ml opset 3
  ensemble has no set-membership test, so the split becomes a chain of ``BRANCH_EQ`` links, one per
  listed category ``c_1..c_m``: link ``j`` tests ``x_f == c_j``, true = the right child, false = the
  next link, and the last link's false branch is the left child. NaN equals nothing, so it runs down
  the chain to the left child, unless ``default_left`` is 0: then every link's missing flag is set
  and NaN turns right at the first one. Where more than half of the codes that can reach the node
  (``0..k``: the encoding maps every unseen category to ``k``, which XGBoost sends left) are listed,
  the chain lists the others instead (true = the left child, the last link's false branch the right
  one, the missing flags set where ``default_left`` is 1), so no chain is longer than ``(k + 1) / 2``
  links. Codes are small integers, exact in float32;
- leaf: its weight (``split_conditions``, learning rate applied) added to margin ``tree_info[t]``.

The margins start from the base margin (``base_score`` through the objective's ``ProbToMargin``:
the logit for ``binary:logistic``, the value itself for ``reg:squarederror`` and for
``multi:softprob``, whose per-class intercepts are stored as margins). The link is XGBoost's:
``Sigmoid`` -> ``[1 - p, p]``, ``Softmax``, or the margin itself as the value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import ModelError
from ...schema import Task
from .families import Head, register_exporter
from .graph import GraphBuilder

if TYPE_CHECKING:
    from ...models.predictor import Predictor

__all__ = ["booster_document", "boosting_head"]

OBJECTIVES = ("binary:logistic", "multi:softprob", "reg:squarederror")
"""The objectives the family trains with (``GradientBoosting._objective``), and the only ones exported."""


def booster_document(booster: Any) -> dict[str, Any]:
    """XGBoost's JSON model document of ``booster`` (its trees, objective and base score)."""
    return json.loads(bytes(booster.save_raw(raw_format="json")))


@dataclass
class _Ensemble:
    """The node and target attribute lists of a TreeEnsembleRegressor, filled tree by tree."""

    nodes: dict[str, list[Any]] = field(default_factory=lambda: {k: [] for k in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes", "nodes_truenodeids",
        "nodes_falsenodeids", "nodes_missing_value_tracks_true")})
    targets: dict[str, list[Any]] = field(default_factory=lambda: {k: [] for k in (
        "target_treeids", "target_nodeids", "target_ids", "target_weights")})

    def branch(self, t: int, node: int, feature: int, mode: str, value: float, true: int, false: int,
               missing_true: bool) -> None:
        """A split node: ``x[feature] MODE value`` goes to ``true``, else ``false``; NaN to ``true`` if ``missing_true``."""
        for key, v in zip(self.nodes, (t, node, feature, value, mode, true, false, int(missing_true)), strict=True):
            self.nodes[key].append(v)

    def leaf(self, t: int, node: int, margin: int, weight: float) -> None:
        """A leaf node adding ``weight`` to margin ``margin``."""
        for key, v in zip(self.nodes, (t, node, 0, 0.0, "LEAF", 0, 0, 0), strict=True):
            self.nodes[key].append(v)
        for key, v in zip(self.targets, (t, node, margin, weight), strict=True):
            self.targets[key].append(v)


def _add_tree(out: _Ensemble, t: int, tree: dict[str, Any], margin: int, levels: dict[int, int], d: int) -> None:
    """Tree ``t`` of XGBoost's JSON as ensemble nodes (those reachable from its root), its leaves adding to ``margin``.

    ``levels`` is ``{categorical feature: k}``: its codes reach the ensemble as ``0..k`` (``k`` unseen) or NaN.
    """
    left, right = tree["left_children"], tree["right_children"]
    feature, cond, default_left = tree["split_indices"], tree["split_conditions"], tree["default_left"]
    split_type = tree.get("split_type") or [0] * len(left)
    starts, sizes = tree.get("categories_segments", []), tree.get("categories_sizes", [])
    listed = {int(i): tree["categories"][int(s): int(s) + int(n)]
              for i, s, n in zip(tree.get("categories_nodes", []), starts, sizes, strict=True)}
    fresh = len(left)  # ids for the extra links of categorical chains
    stack = [0]
    while stack:
        i = stack.pop()
        if left[i] == -1:
            out.leaf(t, i, margin, float(np.float32(cond[i])))
            continue
        f, lo, hi, dl = int(feature[i]), int(left[i]), int(right[i]), bool(default_left[i])
        if not 0 <= f < d:
            raise ModelError(f"tree {t} of the gradient_boosting model splits on feature {f} of {d}; the model does "
                             "not match its schema, retrain it")
        stack += [hi, lo]
        if int(split_type[i]) == 0:
            out.branch(t, i, f, "BRANCH_LT", float(np.float32(cond[i])), lo, hi, dl)
            continue
        right_set = {int(c) for c in listed.get(i, ())}
        k = levels.get(f, -1)
        if not right_set <= set(range(k)):
            raise ModelError(f"tree {t} of the gradient_boosting model splits feature {f} on categories its schema "
                             "does not have; the model does not match its schema, retrain it")
        if 2 * len(right_set) > k + 1 or not right_set:  # the shorter chain: the codes 0..k that go left
            chain, true, end, nan_true = sorted(set(range(k + 1)) - right_set), lo, hi, dl
        else:
            chain, true, end, nan_true = sorted(right_set), hi, lo, not dl
        links = [i, *range(fresh, fresh + len(chain) - 1)]
        fresh += len(chain) - 1
        for j, (node, c) in enumerate(zip(links, chain, strict=True)):
            out.branch(t, node, f, "BRANCH_EQ", float(c), true, links[j + 1] if j + 1 < len(links) else end, nan_true)


def _base_margin(learner: dict[str, Any], objective: str, m: int) -> list[float]:
    """The margins before any tree: ``base_score`` (one value, or one per class) through ``ProbToMargin``."""
    text = str(learner["learner_model_param"]["base_score"]).strip().strip("[]")
    base = np.array([float(v) for v in text.split(",")], dtype=np.float32)
    if len(base) == 1:
        base = np.repeat(base, m)
    if len(base) != m:
        raise ModelError(f"the gradient_boosting model has {len(base)} base scores for {m} margins; retrain it")
    if objective == "binary:logistic":  # XGBoost's ProbToMargin, in float32: -log(1 / p - 1)
        base = -np.log(np.float32(1.0) / base - np.float32(1.0))
    return [float(b) for b in base]


def boosting_head(g: GraphBuilder, predictor: Predictor, x: str) -> Head:
    """A TreeEnsembleRegressor of XGBoost's margins, then its link: ``[1 - p, p]``, softmax, or the value."""
    booster = getattr(predictor.model, "booster_", None)
    if booster is None:
        raise ModelError("gradient_boosting is not fitted; fit it before exporting")
    learner = booster_document(booster)["learner"]
    objective = learner["objective"]["name"]
    gbm = learner["gradient_booster"]
    if gbm.get("name") != "gbtree" or objective not in OBJECTIVES:
        raise ModelError(f"this gradient_boosting model uses XGBoost's {gbm.get('name')} booster with {objective}, "
                         f"which the ONNX export does not know (it exports gbtree with {', '.join(OBJECTIVES)}); "
                         "use --format safetensors")
    classification = predictor.task is Task.CLASSIFICATION
    if classification != (objective != "reg:squarederror"):
        raise ModelError(f"the gradient_boosting model was trained with {objective} but its schema says "
                         f"{predictor.task.value}; retrain it")
    m = int(learner["learner_model_param"].get("num_class", "0") or 0) if objective == "multi:softprob" else 1
    d = int(learner["learner_model_param"]["num_feature"])
    if d != predictor.encoder.n_outputs:
        raise ModelError(f"the gradient_boosting model takes {d} features but its schema encodes "
                         f"{predictor.encoder.n_outputs}; retrain it")
    trees, info = gbm["model"]["trees"], gbm["model"]["tree_info"]
    levels = predictor.encoder.categorical_sizes() if predictor.encoder.mode == "native" else {}
    out = _Ensemble()
    for t, tree in enumerate(trees):
        if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
            raise ModelError("this gradient_boosting model has vector leaves (multi_strategy=multi_output_tree), "
                             "which the ONNX export does not know; use --format safetensors")
        _add_tree(out, t, tree, int(info[t]), levels, d)
    margins = g.op("TreeEnsembleRegressor", [x], "margins", domain="ai.onnx.ml", n_targets=m,
                   aggregate_function="SUM", post_transform="NONE", base_values=_base_margin(learner, objective, m),
                   **out.nodes, **out.targets)
    if objective == "reg:squarederror":
        return Head(values=g.op("Reshape", [margins, g.const(np.array([-1], dtype=np.int64))], "values"))
    if objective == "binary:logistic":
        p = g.op("Sigmoid", [margins], "p1")
        return Head(proba=g.op("Concat", [g.op("Sub", [g.const(np.float32(1.0)), p]), p], "proba", axis=1))
    return Head(proba=g.op("Softmax", [margins], "proba", axis=1))


register_exporter("gradient_boosting")(boosting_head)
