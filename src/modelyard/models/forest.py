"""Random forest (classification and regression) on scikit-learn, saved as plain arrays, never pickled.

State layout: the node fields of every tree concatenated (``tree.left_child``, ...,
``tree.values``) plus ``tree.node_count`` and ``tree.max_depth`` per tree, so the union of
two forests (the distributed ⊕) is a concatenation of their arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError
from ..records.training import EpochLog, FitConfig
from ..schema import Task
from .base import EvalSet, Param, ParamSpec
from .weights import CLASS_WEIGHT

__all__ = ["RandomForest", "forest_union"]

DEFAULT_CONFIG = FitConfig()

_NODE_FIELDS = (
    "left_child",
    "right_child",
    "feature",
    "threshold",
    "impurity",
    "n_node_samples",
    "weighted_n_node_samples",
    "missing_go_to_left",
)


class RandomForest:
    """A bagged forest of CART trees (scikit-learn's implementation)."""

    family: ClassVar[str] = "random_forest"
    tasks: ClassVar[tuple[Task, ...]] = (Task.CLASSIFICATION, Task.REGRESSION)
    encoding: ClassVar[str] = "ordinal"
    handles_missing: ClassVar[bool] = True  # scikit-learn's trees learn where missing values go at each split
    params: ClassVar[ParamSpec] = ParamSpec(
        (
            Param("n_estimators", int, 100, low=1, high=100_000, help="number of trees"),
            Param("max_depth", int, None, low=1, high=1000, nullable=True, help="depth limit (None: unlimited)"),
            Param("min_samples_split", int, 2, low=2, high=1_000_000, help="rows needed to split a node"),
            Param("min_samples_leaf", int, 1, low=1, high=1_000_000, help="rows needed in a leaf"),
            Param(
                "max_features", str, "auto", choices=("auto", "sqrt", "log2", "all"),
                help="features tried per split (auto: sqrt for classification, all for regression)",
            ),
            Param("bootstrap", bool, True, help="sample rows with replacement per tree"),
            Param("criterion", str, "auto", choices=("auto", "gini", "entropy", "log_loss", "squared_error", "absolute_error", "friedman_mse", "poisson"), help="split quality"),
            Param("n_jobs", int, -1, low=-1, high=1024, help="threads (-1: all cores)"),
            CLASS_WEIGHT,
        )
    )

    def __init__(self, *, task: Task | str = Task.CLASSIFICATION, n_classes: int = 0, **params: Any):
        self.task = Task(task)
        self.n_classes = int(n_classes)
        self.hparams = self.params.validate(params, self.family)
        crit = self.hparams["criterion"]
        clf_crit = ("auto", "gini", "entropy", "log_loss")
        if (self.task is Task.CLASSIFICATION) != (crit in clf_crit) and crit != "auto":
            raise ModelError(f"criterion {crit!r} does not apply to {self.task.value}; leave it at auto")
        self.forest_: Any = None
        self.history_: list[EpochLog] = []

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters, defaults filled in."""
        return dict(self.hparams)

    def _sklearn(self, seed: int) -> Any:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        hp = self.hparams
        mf = hp["max_features"]
        if mf == "auto":
            mf = "sqrt" if self.task is Task.CLASSIFICATION else 1.0
        elif mf == "all":
            mf = 1.0
        kw = {
            "n_estimators": hp["n_estimators"], "max_depth": hp["max_depth"], "min_samples_split": hp["min_samples_split"],
            "min_samples_leaf": hp["min_samples_leaf"], "max_features": mf, "bootstrap": hp["bootstrap"],
            "n_jobs": hp["n_jobs"], "random_state": seed,
        }
        if hp["criterion"] != "auto":
            kw["criterion"] = hp["criterion"]
        cls = RandomForestClassifier if self.task is Task.CLASSIFICATION else RandomForestRegressor
        return cls(**kw)

    def fit(
        self,
        X: NDArray,
        y: NDArray,
        *,
        sample_weight: NDArray | None = None,
        eval_set: EvalSet | None = None,
        config: FitConfig = DEFAULT_CONFIG,
        callbacks: Sequence[Any] = (),
    ) -> Self:
        """Grow the forest on all rows, NaN included (epochs, patience and callbacks do not apply to trees)."""
        if self.task is Task.CLASSIFICATION and self.n_classes < 2:
            self.n_classes = int(np.max(y)) + 1
        w = None if sample_weight is None else np.asarray(sample_weight)
        if w is not None and w.size and np.all(w == w.flat[0]):
            sample_weight = None  # equal weights are no weights (scikit-learn draws its bootstrap differently with them)
        self.forest_ = self._sklearn(config.seed).fit(X, y, sample_weight=sample_weight)
        if self.task is Task.CLASSIFICATION and len(self.forest_.classes_) != self.n_classes:
            # a class absent from the training rows: rebuild through the state so every tree knows all classes
            self.forest_ = self._rebuild(self.state())
        self.history_ = []
        return self

    def predict(self, X: NDArray) -> NDArray:
        """Class indices for classification, values for regression."""
        if self.task is Task.CLASSIFICATION:
            return self.predict_proba(X).argmax(axis=1).astype(np.int64)
        return self._fitted().predict(np.asarray(X, dtype=np.float32)).astype(np.float64)

    def predict_proba(self, X: NDArray) -> NDArray:
        """Class probabilities ``(n, n_classes)``: the mean of the trees' leaf distributions."""
        if self.task is not Task.CLASSIFICATION:
            raise ModelError("random_forest is a regressor here; predict_proba applies to classifiers only, use predict")
        return self._fitted().predict_proba(np.asarray(X, dtype=np.float32))

    def _fitted(self) -> Any:
        if self.forest_ is None:
            raise ModelError("random_forest is not fitted; call fit first")
        return self.forest_

    def state(self) -> dict[str, NDArray]:
        """All trees as concatenated node arrays."""
        forest = self._fitted()
        states = [est.tree_.__getstate__() for est in forest.estimators_]
        out: dict[str, NDArray] = {}
        for f in _NODE_FIELDS:
            out[f"tree.{f}"] = np.ascontiguousarray(np.concatenate([s["nodes"][f] for s in states]))
        values = [s["values"] for s in states]
        if self.task is Task.CLASSIFICATION:
            # a tree fitted on fewer classes than the forest stores fewer columns: widen to n_classes
            labels = np.asarray(forest.classes_, dtype=np.int64)
            values = [_widen(v, labels, self.n_classes) for v in values]
        out["tree.values"] = np.ascontiguousarray(np.concatenate(values).astype(np.float64))
        out["tree.node_count"] = np.array([s["node_count"] for s in states], dtype=np.int64)
        out["tree.max_depth"] = np.array([s["max_depth"] for s in states], dtype=np.int64)
        out["forest.n_features"] = np.array([forest.n_features_in_], dtype=np.int64)
        return out

    @classmethod
    def from_state(
        cls, params: Mapping[str, Any], state: Mapping[str, NDArray], *, task: Task | str, n_classes: int = 0
    ) -> Self:
        """Rebuild the forest from ``state()`` arrays (no pickle, no code)."""
        self = cls(task=task, n_classes=n_classes, **params)
        self.forest_ = self._rebuild(state)
        return self

    def _rebuild(self, state: Mapping[str, NDArray]) -> Any:
        from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
        from sklearn.tree._tree import Tree

        counts = np.asarray(state["tree.node_count"])
        depths = np.asarray(state["tree.max_depth"])
        n_features = int(np.asarray(state["forest.n_features"])[0])
        classification = self.task is Task.CLASSIFICATION
        k = self.n_classes if classification else 1
        dtype = np.dtype({"names": list(_NODE_FIELDS), "formats": ["<i8", "<i8", "<i8", "<f8", "<f8", "<i8", "<f8", "u1"]})
        forest = self._sklearn(0)
        estimators = []
        offsets = np.concatenate([[0], np.cumsum(counts)])
        values_all = np.asarray(state["tree.values"], dtype=np.float64)
        for t in range(len(counts)):
            a, b = int(offsets[t]), int(offsets[t + 1])
            nodes = np.empty(b - a, dtype=dtype)
            for f in _NODE_FIELDS:
                nodes[f] = np.asarray(state[f"tree.{f}"])[a:b]
            tree = Tree(n_features, np.array([k], dtype=np.intp), 1)
            tree.__setstate__(
                {"max_depth": int(depths[t]), "node_count": b - a, "nodes": nodes,
                 "values": np.ascontiguousarray(values_all[a:b])}
            )
            est = (DecisionTreeClassifier if classification else DecisionTreeRegressor)()
            est.tree_ = tree
            est.n_features_in_ = n_features
            est.n_outputs_ = 1
            est.max_features_ = n_features
            if classification:
                est.classes_ = np.arange(k)
                est.n_classes_ = np.intp(k)
            estimators.append(est)
        forest.estimators_ = estimators
        forest.estimator_ = estimators[0] if estimators else None
        forest.n_features_in_ = n_features
        forest.n_outputs_ = 1
        if classification:
            forest.classes_ = np.arange(k)
            forest.n_classes_ = k
        return forest


def _widen(values: NDArray, labels: NDArray, k: int) -> NDArray:
    """Leaf values over the forest's ``labels`` spread into all ``k`` classes (absent ones get 0)."""
    if values.shape[2] == k:
        return values
    out = np.zeros((values.shape[0], values.shape[1], k), dtype=np.float64)
    out[:, :, labels] = values
    return out


def forest_union(states: Sequence[Mapping[str, NDArray]]) -> dict[str, NDArray]:
    """The forest holding every tree of the given forests (⊕ for random forests: associative, commutative up to tree order)."""
    if not states:
        raise ValueError("forest_union needs at least one forest")
    keys = [k for k in states[0] if k.startswith("tree.")]
    out = {k: np.concatenate([np.asarray(s[k]) for s in states]) for k in keys}
    out["forest.n_features"] = np.asarray(states[0]["forest.n_features"])
    return out
