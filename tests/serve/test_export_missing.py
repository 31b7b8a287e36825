"""Export on rows with missing values: every family's ONNX graph answers as its Predictor does, NaN and all."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest

import modelyard as my
from modelyard.errors import DataError
from modelyard.serve.export import MISSING_CATEGORY, onnx_feed, onnx_model

ort = pytest.importorskip("onnxruntime")

FEATURES = ["age", "plan", "zone", "monthly", "visits"]
TARGETS = {"churned": my.Task.CLASSIFICATION, "tier": my.Task.CLASSIFICATION, "spend": my.Task.REGRESSION}


def table(n=300, seed=0, missing=0.15):
    """Numbers and categories with NaN, None and "" holes; ``zone`` mixes the numbers 1.0, 2.0 and text."""
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({
        "age": rng.integers(18, 80, n).astype(float),
        "plan": rng.choice(np.array(["basic", "plus", "pro"], dtype=object), n),
        "zone": rng.choice(np.array([1.0, 2.0, "x"], dtype=object), n),  # integer-valued floats in a category
        "monthly": rng.normal(50, 15, n),
        "visits": rng.integers(2**24, 2**24 + 50, n),  # integers float32 cannot all hold: rounded alike
    })
    f["churned"] = np.where((f.plan == "basic") | (f.age < 25), "yes", "no")
    f["tier"] = np.where(f.monthly > 60, "c", np.where(f.zone == "x", "b", "a"))
    f["spend"] = f.age * 2 + (f.plan == "pro") * 10 + rng.normal(0, 1, n)
    holes = rng.random((n, 4)) < missing
    f.loc[holes[:, 0], "age"] = np.nan
    f.loc[holes[:, 1], "plan"] = None
    f.loc[holes[:, 2], "zone"] = ""  # an empty string is missing too
    f.loc[holes[:, 3], "monthly"] = np.nan
    return f


def new_rows():
    """Rows to score: some complete, some with holes, one all missing, unseen categories."""
    f = table(80, seed=7, missing=0.3)[FEATURES]
    f.loc[0, ["age", "plan", "zone", "monthly"]] = [np.nan, None, np.nan, np.nan]
    f.loc[1:3, "plan"] = "platinum"  # unseen: code -1, as modelyard scores it
    f.loc[4, "zone"] = 3.0
    holes = f[["age", "plan", "zone", "monthly"]].isna().any(axis=1) | (f.zone == "")
    assert holes.any() and (~holes).any()  # rows with and without missing values
    return f


def cases():
    for i, (fam, cls) in enumerate(my.FAMILIES.items()):
        for j, (target, task) in enumerate(TARGETS.items()):
            if task in getattr(cls, "tasks", (task,)):
                impute = None if getattr(cls, "handles_missing", False) else ("median", "most_frequent")[(i + j) % 2]
                yield pytest.param(fam, target, impute, id=f"{fam}-{target}-{impute or 'native'}")


def fit(family, target, impute, frame, **params):
    if family == "random_forest":
        params = {"n_estimators": 12, "n_jobs": 1, **params}
    elif family == "mlp":
        params = {"hidden_sizes": (8, 4), "activation": "gelu", **params}
    ds = my.load_dataset(frame[[*FEATURES, target]], target=target)
    return my.train(ds, model=family, params=params, epochs=3, seed=0, impute=impute).model


def run(predictor, frame):
    session = ort.InferenceSession(onnx_model(predictor).SerializeToString())
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, onnx_feed(predictor, frame)), strict=True))


def assert_same(predictor, frame, outputs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unseen categories are scored as such
        if predictor.task is my.Task.CLASSIFICATION:
            np.testing.assert_allclose(outputs["probabilities"], predictor.predict_proba(frame), rtol=0, atol=1e-5)
            assert list(outputs["label"]) == list(predictor.predict(frame))
        else:
            expected = predictor.predict(frame)
            np.testing.assert_allclose(outputs["prediction"], expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize(("family", "target", "impute"), list(cases()))
def test_every_family_trained_on_missing_values_exports_exactly(family, target, impute):
    predictor = fit(family, target, impute, table())
    assert (predictor.imputer is None) == (impute is None) and predictor.takes_missing
    rows = new_rows()
    assert_same(predictor, rows, run(predictor, rows))


def test_onnx_feed_reads_rows_as_the_predictor_does():
    predictor = fit("random_forest", "churned", None, table())
    feed = onnx_feed(predictor, pd.DataFrame({"age": [np.nan, 30], "plan": [None, "pro"], "zone": [2.0, ""],
                                              "monthly": ["", "12.5"], "visits": [2**24 + 1, 7]}))
    assert feed["plan"].tolist() == [[MISSING_CATEGORY], ["pro"]] and feed["zone"].tolist() == [["2"], [""]]
    assert feed["age"].dtype == np.float32 and np.isnan(feed["age"][0, 0]) and np.isnan(feed["monthly"][0, 0])
    assert feed["monthly"][1, 0] == np.float32(12.5) and feed["visits"][0, 0] == np.float32(2**24 + 1)
    assert all(v.shape == (2, 1) for v in feed.values()) and list(feed) == FEATURES


def test_onnx_feed_reads_a_coded_array_as_the_predictor_does():
    """A numeric array is schema-coded rows (codes, -1 unseen, NaN missing), for the graph as for ``predict``."""
    predictor = fit("random_forest", "tier", None, table())
    X = predictor.coded(new_rows(), unknown="ignore")
    assert np.isnan(X).any() and (X == -1).any()
    feed = onnx_feed(predictor, X)
    assert feed["plan"][1, 0] not in predictor.schema.columns[1].categories and feed["plan"][0, 0] == MISSING_CATEGORY
    assert_same(predictor, X, run(predictor, X))


@pytest.mark.parametrize("family", ["logistic_regression", "mlp", "random_forest"])
def test_a_missing_category_without_imputation_scores_as_the_predictor_does(family):
    """No imputation: -1 (unseen) for a model that takes no missing values, NaN for the forest that routes it."""
    complete = table(missing=0.0)
    predictor = fit(family, "tier", None, complete)
    rows = complete[FEATURES].head(40).copy()
    rows.loc[::3, "plan"] = None
    rows.loc[1::4, "zone"] = ""
    assert_same(predictor, rows, run(predictor, rows))
    if family == "random_forest":  # a forest that never saw NaN in training still routes it like scikit-learn
        rows.loc[::2, ["age", "monthly"]] = np.nan
        assert_same(predictor, rows, run(predictor, rows))
    else:  # NaN in a number: refused by the Predictor; a graph cannot refuse, so its answer is NaN
        rows.loc[5, "age"] = np.nan
        with pytest.raises(DataError, match="missing values"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the missing categories of other rows, scored as unseen
            predictor.predict(rows)
        proba = run(predictor, rows)["probabilities"]
        assert np.isnan(proba[5]).all() and not np.isnan(np.delete(proba, 5, axis=0)).any()


def test_imputation_fills_with_the_stored_fill_values():
    """A row that is all holes scores as the row of fill values (the median age, the most frequent plan, ...)."""
    predictor = fit("logistic_regression", "churned", "median", table())
    fill = predictor.imputer.fill_
    cols = predictor.schema.columns
    filled = {c.name: [c.categories[int(fill[j])] if c.kind == "categorical" else float(fill[j])]
              for j, c in enumerate(cols)}
    empty = {c.name: [None if c.kind == "categorical" else np.nan] for c in cols}
    a, b = run(predictor, pd.DataFrame(empty)), run(predictor, pd.DataFrame(filled))
    np.testing.assert_array_equal(a["probabilities"], b["probabilities"])


@functools.cache
def forest_session(target):
    predictor = fit("random_forest", target, None, table(400, seed=3, missing=0.25), n_estimators=16,
                    min_samples_leaf=2)
    return predictor, ort.InferenceSession(onnx_model(predictor).SerializeToString())


@pytest.mark.parametrize("target", list(TARGETS))
def test_the_forest_routes_any_pattern_of_missing_values_like_scikit_learn(target):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    predictor, session = forest_session(target)
    pool = table(64, seed=11, missing=0.0)[FEATURES]
    cells = st.lists(st.booleans(), min_size=4 * len(pool), max_size=4 * len(pool))

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(cells, st.sampled_from([None, np.nan, ""]))
    def law(holes, marker):
        rows = pool.copy()
        mask = np.array(holes).reshape(len(pool), 4)
        for k, col in enumerate(["age", "plan", "zone", "monthly"]):
            rows.loc[mask[:, k], col] = marker if col in ("plan", "zone") else np.nan
        outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, onnx_feed(predictor, rows)),
                           strict=True))
        assert_same(predictor, rows, outputs)

    law()


def test_onnxruntime_sends_nan_to_the_true_branch_exactly_when_the_node_tracks_missing_as_true():
    """The semantics the forest export relies on: BRANCH_LEQ with NaN goes true iff the node's flag is set."""
    from onnx import TensorProto, helper

    def score(flag, x):
        node = helper.make_node(
            "TreeEnsembleRegressor", ["x"], ["y"], domain="ai.onnx.ml", n_targets=1, nodes_treeids=[0, 0, 0],
            nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0], nodes_values=[0.5, 0, 0],
            nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"], nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
            nodes_missing_value_tracks_true=[flag, 0, 0], target_treeids=[0, 0], target_nodeids=[1, 2],
            target_ids=[0, 0], target_weights=[1.0, 2.0])
        graph = helper.make_graph([node], "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
        model.ir_version = 9
        return ort.InferenceSession(model.SerializeToString()).run(None, {"x": np.array([[x]], np.float32)})[0][0, 0]

    assert (score(1, np.nan), score(0, np.nan)) == (1.0, 2.0)  # 1: the true (left) child, 0: the false (right) one
    assert (score(0, 0.5), score(1, 0.5), score(0, 0.6)) == (1.0, 1.0, 2.0)  # numbers compare as x <= t either way


@pytest.mark.parametrize("family", ["logistic_regression", "mlp", "random_forest"])
def test_a_model_trained_with_class_weights_exports_like_any_other(family):
    frame = table()
    predictor = fit(family, "tier", None if family == "random_forest" else "median", frame, class_weight="balanced")
    assert predictor.get_params()["class_weight"] == "balanced"
    rows = new_rows()
    assert_same(predictor, rows, run(predictor, rows))
