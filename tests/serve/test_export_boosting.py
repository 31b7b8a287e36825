"""ONNX export of gradient_boosting: onnxruntime answers as the Predictor does (XGBoost), NaN, categories and all."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import modelyard as my
from modelyard.errors import ModelError
from modelyard.serve.export import EXPORTERS, Head, onnx_feed, onnx_model
from modelyard.serve.export.boosting import booster_document

ort = pytest.importorskip("onnxruntime")
xgboost = pytest.importorskip("xgboost")

TASKS = ("binary", "multiclass", "regression")


# --- tables ----------------------------------------------------------------------------------------------------
def frame(rng, n, *, numeric=2, levels=(5,), task="binary", missing=0.1, unseen=0.0):
    """``numeric`` number columns and one categorical column per entry of ``levels`` (its category count), the
    target from a noisy score of both; holes (NaN, None, "") at rate ``missing``, unseen categories at ``unseen``."""
    f = pd.DataFrame({f"n{i}": rng.normal(0, 1 + i, n) for i in range(numeric)})
    if numeric:  # whole numbers: thresholds that rows hit exactly (XGBoost sends x == t right)
        f["n0"] = np.round(f["n0"] * 3)
    score = rng.normal(0, 0.3, n) + sum(f[c].to_numpy() * (-1) ** i for i, c in enumerate(f.columns))
    for i, k in enumerate(levels):
        codes = rng.integers(0, k, n)
        effect = np.random.default_rng(k + 17 * i).normal(0, 1.5, k)  # the same effects in every table
        score = score + effect[codes]
        values = np.array([f"v{c}" for c in codes], dtype=object)
        values[rng.random(n) < unseen] = "never-seen"
        f[f"c{i}"] = values
    for c in f.columns:
        holes = rng.random(n) < missing
        f.loc[holes, c] = rng.choice(np.array([None, ""], dtype=object)) if c.startswith("c") else np.nan
    if task == "regression":
        f["y"] = 3.0 * score + 10.0
    elif task == "binary":
        f["y"] = np.where(score > np.median(score), "yes", "no")
    else:
        f["y"] = np.array(["a", "b", "c", "d"], dtype=object)[np.digitize(score, np.quantile(score, [0.25, 0.5, 0.75]))]
    return f


def train(f, params, *, seed=0, init=None):
    ds = my.load_dataset(f, target="y")
    return my.train(ds, model="gradient_boosting", params={"n_jobs": 1, **params}, seed=seed, init=init,
                    threads=1).model


def session(predictor):
    return ort.InferenceSession(onnx_model(predictor).SerializeToString(), providers=["CPUExecutionProvider"])


def assert_same(predictor, sess, rows):
    """onnxruntime's outputs on ``rows`` equal the Predictor's: labels exactly, probabilities/values within 1e-5."""
    outputs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, onnx_feed(predictor, rows)), strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unseen categories are scored as such
        if predictor.task is my.Task.CLASSIFICATION:
            np.testing.assert_allclose(outputs["probabilities"], predictor.predict_proba(rows), rtol=0, atol=1e-5)
            assert list(outputs["label"]) == list(predictor.predict(rows))
        else:
            expected = predictor.predict(rows)
            np.testing.assert_allclose(outputs["prediction"], expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def trees(predictor):
    return booster_document(predictor.model.booster_)["learner"]["gradient_booster"]["model"]["trees"]


def category_sets(predictor):
    """``(k, size)`` of every categorical split: its column's category count, how many categories it lists."""
    levels = predictor.encoder.categorical_sizes()
    return [(levels[t["split_indices"][i]], n) for t in trees(predictor)
            for i, n in zip(t.get("categories_nodes", []), t.get("categories_sizes", []), strict=True)]


# --- XGBoost's routing, as the export reads it ----------------------------------------------------------------
def xgboost_leaf(tree, row):
    """The leaf XGBoost reaches in ``tree`` (its JSON) for ``row``, by the rule ``boosting.py`` states."""
    listed = {i: tree["categories"][s: s + n] for i, s, n in
              zip(tree["categories_nodes"], tree["categories_segments"], tree["categories_sizes"], strict=True)}
    i = 0
    while tree["left_children"][i] != -1:
        v = row[tree["split_indices"][i]]
        if np.isnan(v):
            go_left = bool(tree["default_left"][i])
        elif tree["split_type"][i] == 1:
            go_left = v not in listed[i]  # listed categories go right; any other code (unseen k, -1) left
        else:
            go_left = np.float32(v) < np.float32(tree["split_conditions"][i])
        i = tree["left_children"][i] if go_left else tree["right_children"][i]
    return i


@pytest.mark.parametrize("onehot", [1, 64])
def test_xgboost_sends_the_listed_categories_right_and_every_other_code_left(onehot):
    """The rule the chain of BRANCH_EQ nodes encodes, checked against XGBoost's own ``pred_leaf``."""
    rng = np.random.default_rng(onehot)
    k = 9
    X = np.column_stack([rng.integers(0, k, 3000), rng.normal(size=3000)]).astype(np.float32)
    X[rng.random(3000) < 0.1, 0] = np.nan
    y = (np.isin(X[:, 0], [1, 4, 6, 7]) ^ (X[:, 1] > 0.5)) | np.isnan(X[:, 0]) & (X[:, 1] > -1)
    dtrain = xgboost.DMatrix(X, y.astype(np.float32), feature_types=["c", "q"], enable_categorical=True)
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 4, "max_cat_to_onehot": onehot,
                             "nthread": 1, "seed": 0}, dtrain, 6)
    probe = np.array([[c, x] for c in [*range(k), k, k + 3, -1, np.nan] for x in (-2.0, 0.0, 1.0)], np.float32)
    leaves = booster.predict(xgboost.DMatrix(probe, feature_types=["c", "q"], enable_categorical=True),
                             pred_leaf=True)
    model = booster_document(booster)["learner"]["gradient_booster"]["model"]["trees"]
    sizes = [n for t in model for n in t["categories_sizes"]]
    assert sizes and (max(sizes) > 1 if onehot == 1 else set(sizes) == {1})  # partition / one-vs-rest splits
    assert any(not t["default_left"][i] for t in model for i in t["categories_nodes"])  # NaN right somewhere
    for t, tree in enumerate(model):
        assert [xgboost_leaf(tree, row) for row in probe] == leaves[:, t].astype(int).tolist()


# --- fixed models: each feature of the family shown present, then any rows --------------------------------------
@functools.cache
def fitted(kind, task):
    rng = np.random.default_rng(5)
    f = frame(rng, 400, numeric=2, levels=(3, 11), task=task, missing=0.15)
    params = {"n_estimators": 30, "max_depth": 4, "max_cat_to_onehot": 4, "early_stopping_rounds": None}
    if kind == "early_stopping":  # noisy rows, steep steps: the validation loss turns up early
        f = frame(rng, 250, numeric=2, levels=(3, 11), task=task, missing=0.15)
        f["n0"] = rng.permutation(f["n0"].to_numpy())
        params.update(n_estimators=200, learning_rate=1.0, max_depth=6, min_child_weight=0.0, early_stopping_rounds=3)
    predictor = train(f, params)
    if kind == "warm_start":  # continue boosting from those 30 rounds on another split
        predictor = train(f, {}, seed=1, init=predictor)
    return predictor, session(predictor)


@pytest.mark.parametrize("task", TASKS)
def test_an_early_stopped_model_exports_the_rounds_it_predicts_with(task):
    predictor, sess = fitted("early_stopping", task)
    model = predictor.model
    ran = model.history_[-1].epoch
    assert model.stop_reason_ == "early_stopping" and model.best_epoch_ < ran  # rounds were dropped
    m = len(predictor.schema.classes) if task == "multiclass" else 1
    assert model.booster_.num_boosted_rounds() == model.best_epoch_ and len(trees(predictor)) == model.best_epoch_ * m
    assert_same(predictor, sess, frame(np.random.default_rng(9), 120, levels=(3, 11), task=task, missing=0.3,
                                       unseen=0.1).drop(columns="y"))


@pytest.mark.parametrize("task", TASKS)
def test_a_warm_started_model_exports_its_parents_trees_and_its_own(task):
    predictor, sess = fitted("warm_start", task)
    assert predictor.model.booster_.num_boosted_rounds() > 30
    assert_same(predictor, sess, frame(np.random.default_rng(9), 120, levels=(3, 11), task=task, missing=0.3,
                                       unseen=0.1).drop(columns="y"))


@pytest.mark.parametrize("task", TASKS)
def test_any_rows_score_alike_with_partition_and_one_vs_rest_splits(task):
    """Holes anywhere, unseen categories, all-missing rows: NaN follows each split's default, unseen goes left."""
    predictor, sess = fitted("plain", task)
    sets = category_sets(predictor)
    assert (3, 1) in sets  # the 3-level column splits one-vs-rest, the 11-level one by partition: chains of the
    assert {2 * n > k + 1 for k, n in sets if k == 11} == {True, False}  # listed codes, and of the others
    pool = frame(np.random.default_rng(11), 48, levels=(3, 11), task=task, missing=0.0).drop(columns="y")
    columns = list(pool.columns)

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(st.lists(st.sampled_from(["keep", "hole", "unseen"]), min_size=pool.size, max_size=pool.size),
           st.sampled_from([None, ""]))
    def law(cells, marker):
        rows = pool.copy()
        what = np.array(cells).reshape(pool.shape)
        for j, c in enumerate(columns):
            categorical = c.startswith("c")
            rows.loc[what[:, j] == "hole", c] = marker if categorical else np.nan
            if categorical:
                rows.loc[what[:, j] == "unseen", c] = "never-seen"
        assert_same(predictor, sess, rows)

    law()


# --- the property: any table, any model -------------------------------------------------------------------------
@st.composite
def models(draw):
    numeric = draw(st.integers(0, 3))
    levels = tuple(draw(st.lists(st.integers(2, 12), min_size=0 if numeric else 1, max_size=3)))
    return {
        "task": draw(st.sampled_from(TASKS)), "numeric": numeric, "levels": levels,
        "missing": draw(st.sampled_from([0.0, 0.05, 0.3])), "seed": draw(st.integers(0, 2**16)),
        "warm": draw(st.booleans()),
        "params": {"n_estimators": draw(st.integers(1, 40)), "max_depth": draw(st.integers(1, 5)),
                   "learning_rate": draw(st.sampled_from([0.1, 0.5, 1.0])),
                   "max_cat_to_onehot": draw(st.sampled_from([1, 4, 64])),
                   "min_child_weight": draw(st.sampled_from([0.0, 1.0])),
                   "early_stopping_rounds": draw(st.sampled_from([None, 1, 2, 3]))},
    }


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_any_gradient_boosting_model_on_any_table_exports_exactly(spec):
    """Random tables (numbers, categories, holes), tasks and settings, early stopping and warm starts included."""
    rng = np.random.default_rng(spec["seed"])
    shape = {"numeric": spec["numeric"], "levels": spec["levels"], "task": spec["task"]}
    f = frame(rng, 240, missing=spec["missing"], **shape)
    if f["y"].nunique() < 2:
        return
    predictor = train(f, spec["params"], seed=spec["seed"])
    if spec["warm"]:
        predictor = train(f, {}, seed=spec["seed"] + 1, init=predictor)
    sizes = [n for _, n in category_sets(predictor)]
    stopped = predictor.model.stop_reason_ == "early_stopping"
    event(f"{spec['task']}, warm start: {spec['warm']}, early stopped: {stopped}")
    event(f"category sets: {'partition' if sizes and max(sizes) > 1 else 'one-vs-rest' if sizes else 'none'}")
    rows = frame(rng, 80, missing=max(spec["missing"], 0.2), unseen=0.1, **shape).drop(columns="y")
    for c in rows.columns:  # one row all missing
        rows.loc[0, c] = np.nan if c.startswith("n") else None
    assert_same(predictor, session(predictor), rows)


# --- numeric models on arrays (the checks of the former models/boosting/onnx_export.py) -------------------------
def arrays(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    X[rng.random((n, 5)) < 0.1] = np.nan
    return X, rng


@pytest.mark.parametrize("k", [2, 3])
def test_a_classifier_on_numbers_with_nan_matches_xgboost(k):
    X, _ = arrays()
    y = np.digitize(np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * np.isnan(X[:, 2]), [-0.5, 0.5][: k - 1])
    predictor = my.train(my.from_arrays(X, y, task="classification"), model="gradient_boosting",
                         params={"n_estimators": 40, "max_depth": 4, "n_jobs": 1}, threads=1).model
    assert_same(predictor, session(predictor), X)
    assert any(not d for t in trees(predictor) for d in t["default_left"])  # NaN goes right at some splits


def test_a_regressor_on_numbers_with_nan_matches_xgboost():
    X, rng = arrays()
    y = np.nan_to_num(X[:, 0]) * 3 + rng.normal(0, 0.1, len(X))
    predictor = my.train(my.from_arrays(X, y), model="gradient_boosting", params={"n_estimators": 50, "n_jobs": 1},
                         threads=1).model
    assert_same(predictor, session(predictor), X)


def test_the_graph_encodes_native_categories_as_the_predictor_does(monkeypatch):
    """The matrix the exporter gets: codes as they are, an unseen category as k, a missing one NaN."""
    predictor, _ = fitted("plain", "regression")
    rows = frame(np.random.default_rng(3), 50, levels=(3, 11), task="regression", missing=0.3,
                 unseen=0.2).drop(columns="y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = predictor.encode(rows)
    assert np.isnan(expected).any() and (expected[:, 2] == 3).any() and (expected[:, 3] == 11).any()
    for j in range(expected.shape[1]):
        def column(g, p, x, j=j):
            picked = g.op("Gather", [x, g.const(np.array([j], dtype=np.int64))], axis=1)
            return Head(values=g.op("Reshape", [picked, g.const(np.array([-1], dtype=np.int64))]))

        monkeypatch.setitem(EXPORTERS, "gradient_boosting", column)
        got = session(predictor).run(["prediction"], onnx_feed(predictor, rows))[0]
        np.testing.assert_array_equal(got, expected[:, j])


def test_an_unfitted_or_foreign_booster_is_refused_in_one_sentence():
    predictor, _ = fitted("plain", "binary")
    clone = my.Predictor.from_parts(predictor.config(), predictor.state())
    clone.model.booster_.set_param({"objective": "binary:hinge"})
    with pytest.raises(ModelError, match=r"binary:hinge, which the ONNX export does not know.*--format safetensors"):
        onnx_model(clone)
    clone.model.booster_ = None
    with pytest.raises(ModelError, match="not fitted"):
        onnx_model(clone)
