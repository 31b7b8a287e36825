"""The gradient_boosting family beyond the shared contract: NaN, native categoricals, warm start, early stopping,
weights, per-round history, callbacks, importance, devices and the stored UBJSON bytes."""

from __future__ import annotations

import json

import numpy as np
import pytest

import modelyard as my
from modelyard.data.dataset import Dataset
from modelyard.errors import ModelError, ParamError, TrainingError
from modelyard.models.boosting import GradientBoosting
from modelyard.models.boosting.device import pick_device
from modelyard.models.predictor import Predictor
from modelyard.records.training import FitConfig
from modelyard.schema import Column, Schema, Task
from modelyard.train.fit import fit_predictor

CFG = FitConfig(seed=0, threads=1)


def gb(task=Task.CLASSIFICATION, n_classes=2, **params):
    return GradientBoosting(task=task, n_classes=n_classes, **{"n_jobs": 1, **params})


def xor_with_holes(n=600, seed=0):
    """y depends on whether x0 is missing and on x1: only a model that routes NaN learns it."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    hole = rng.random(n) < 0.4
    X[hole, 0] = np.nan
    y = (hole ^ (X[:, 1] > 0)).astype(np.int64)
    return X, y


def test_missing_values_are_routed_by_the_trees_not_refused():
    X, y = xor_with_holes()
    model = gb(n_estimators=40, max_depth=3).fit(X[:400], y[:400], config=CFG)
    pred = model.predict(X[400:])
    assert (pred == y[400:]).mean() > 0.95
    assert np.isfinite(model.predict_proba(X[400:])).all()


def cat_dataset(n=900, seed=0):
    """A categorical column whose categories {1, 3} (of 5) flip the class: a partition split finds it at once."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 5, n).astype(np.float32)
    x = rng.normal(size=n).astype(np.float32)
    y = (np.isin(codes, [1, 3]) ^ (x > 1.2)).astype(np.int64)
    X = np.stack([codes, x], axis=1)
    schema = Schema((Column("colour", "categorical", "object", tuple("abcde")), Column("x", "numeric", "float32")),
                    "y", Task.CLASSIFICATION, (0, 1))
    return Dataset(X, y, schema)


def test_categoricals_are_split_natively_and_unseen_or_missing_categories_still_predict():
    ds = cat_dataset()
    p = fit_predictor("gradient_boosting", {"n_estimators": 20, "max_depth": 2, "n_jobs": 1}, ds.take(slice(0, 700)),
                      None, CFG)
    assert p.model.categorical_ == {0: 5}
    assert p.model.booster_.feature_types == ["c", "q"]
    dump = "\n".join(p.model.booster_.get_dump())
    assert "f0:{" in dump  # a partition split on the category set, not a threshold on codes
    test = ds.take(slice(700, 900))
    assert (p.predict_codes(test.X) == test.y).mean() > 0.95
    rows = np.array([[-1, 0.0], [np.nan, 0.0], [1, 0.0]], dtype=np.float32)  # unseen, missing, known
    assert np.array_equal(p.encoder.transform(rows)[:, 0][[0, 2]], [5, 1]) and np.isnan(p.encoder.transform(rows)[1, 0])
    proba = p.proba_codes(rows)
    assert proba.shape == (3, 2) and np.isfinite(proba).all()
    again = Predictor.from_parts(json.loads(json.dumps(p.config())), p.state())
    assert np.array_equal(again.proba_codes(test.X), p.proba_codes(test.X))
    assert again.model.booster_.feature_types == ["c", "q"]


def test_an_unseen_category_follows_the_categories_no_split_listed():
    import re

    ds = cat_dataset()
    p = fit_predictor("gradient_boosting", {"n_estimators": 10, "max_depth": 1, "n_jobs": 1}, ds, None, CFG)
    dumps = p.model.booster_.get_dump()
    sets = {re.search(r"f0:\{([0-9,]+)\}", d).group(1) for d in dumps}
    assert len(sets) == 1  # every stump splits colour into the same two groups
    listed = {int(c) for c in sets.pop().split(",")}
    other = next(c for c in range(5) if c not in listed)
    rows = np.array([[-1, 0.0], [other, 0.0], [next(iter(listed)), 0.0]], dtype=np.float32)
    proba = p.proba_codes(rows)[:, 1]
    assert proba[0] == proba[1] != proba[2]  # unseen goes where the categories the splits did not list go


def test_early_stopping_keeps_the_best_round_and_logs_every_round():
    X, y = xor_with_holes(n=800, seed=1)
    y = np.where(np.random.default_rng(1).random(len(y)) < 0.3, 1 - y, y)  # label noise: overfitting sets in
    model = gb(n_estimators=400, learning_rate=0.3, max_depth=6, early_stopping_rounds=10)
    model.fit(X[:500], y[:500], eval_set=(X[500:], y[500:]), config=CFG)
    assert model.stop_reason_ == "early_stopping"
    ran = len(model.history_)
    assert model.best_epoch_ + 10 == ran  # the best round, then 10 rounds without improvement
    assert model.booster_.num_boosted_rounds() == model.best_epoch_
    losses = [h.val_loss for h in model.history_]
    assert int(np.argmin(losses)) + 1 == model.best_epoch_
    assert [h.epoch for h in model.history_] == list(range(1, ran + 1))
    assert all(0 <= h.val_metric <= 1 for h in model.history_)


def test_long_runs_log_blocks_of_rounds():
    X, y = xor_with_holes(n=200)
    model = gb(n_estimators=1200, max_depth=1, learning_rate=0.01, early_stopping_rounds=None)
    model.fit(X, y, eval_set=(X, y), config=CFG)
    assert model.stop_reason_ == "rounds"
    epochs = [h.epoch for h in model.history_]
    assert epochs[0] == 3 and epochs[-1] == 1200 and len(epochs) == 400  # every ceil(1200 / 500) = 3 rounds


def test_warm_start_continues_boosting_from_the_fitted_trees():
    X, y = xor_with_holes()
    first = gb(n_estimators=15, early_stopping_rounds=None).fit(X, y, config=CFG)
    again = GradientBoosting.from_state(first.get_params(), first.state(), task=Task.CLASSIFICATION, n_classes=2)
    again.fit(X, y, config=CFG)
    assert again.booster_.num_boosted_rounds() == 30
    margin_first = first.booster_.predict(__import__("xgboost").DMatrix(X), output_margin=True)
    margin_again = again.booster_.predict(__import__("xgboost").DMatrix(X), output_margin=True, iteration_range=(0, 15))
    np.testing.assert_allclose(margin_again, margin_first, rtol=1e-6)  # the parent's trees are kept as they were


def test_sample_weights_reach_the_library():
    X, y = xor_with_holes()
    w = np.where(y == 1, 0.0, 1.0)  # class 1 weighs nothing: the model predicts class 0 everywhere
    model = gb(n_estimators=20).fit(X, y, sample_weight=w, config=CFG)
    assert (model.predict(X) == 0).all()
    plain = gb(n_estimators=20).fit(X, y, config=CFG)
    assert (plain.predict(X) == 1).any()


def test_a_callback_stops_training_and_a_time_budget_is_kept():
    X, y = xor_with_holes()
    seen = []
    model = gb(n_estimators=100, early_stopping_rounds=None)
    model.fit(X, y, config=CFG, callbacks=[lambda log: seen.append(log.epoch) or log.epoch >= 7])
    assert seen == list(range(1, 8)) and model.stop_reason_ == "callback" and model.booster_.num_boosted_rounds() == 7
    timed = gb(n_estimators=100_000, max_depth=2, early_stopping_rounds=None)
    timed.fit(X, y, config=FitConfig(seed=0, threads=1, max_time=0.5))
    assert timed.stop_reason_ == "max_time" and timed.booster_.num_boosted_rounds() < 100_000


def test_a_callback_predicting_mid_training_sees_the_trees_so_far():
    X, y = xor_with_holes()
    model = gb(n_estimators=5, early_stopping_rounds=None)
    sizes = []
    model.fit(X, y, config=CFG, callbacks=[lambda log: sizes.append(model.booster_.num_boosted_rounds())])
    assert sizes == [1, 2, 3, 4, 5]


def test_regression_and_multiclass_objectives():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4)).astype(np.float32)
    y = X[:, 0] * 3 + np.where(np.isnan(X[:, 1]), 0, X[:, 1]) ** 2
    reg = GradientBoosting(task=Task.REGRESSION, n_jobs=1, n_estimators=100)
    reg.fit(X[:400], y[:400], eval_set=(X[400:], y[400:]), config=CFG)
    assert reg.xgb_params(CFG)["objective"] == "reg:squarederror"
    r2 = reg.history_[-1].val_metric
    assert r2 > 0.8 and reg.predict(X).dtype == np.float64
    k = np.digitize(X[:, 0], [-0.5, 0.5])
    clf = gb(n_classes=3, n_estimators=30).fit(X, k, config=CFG)
    p = clf.predict_proba(X)
    assert p.shape == (500, 3) and clf.xgb_params(CFG)["objective"] == "multi:softprob"
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-6)


def test_importance_is_the_gain_share_of_each_feature():
    X, y = xor_with_holes()
    model = gb(n_estimators=30).fit(X, y, config=CFG)
    imp = model.feature_importance()
    assert imp.shape == (3,) and imp.sum() == pytest.approx(1.0)
    assert imp[2] < 0.2 * max(imp[0], imp[1])  # x2 is noise
    ds = my.from_arrays(np.nan_to_num(X), y)
    p = fit_predictor("gradient_boosting", {"n_estimators": 30, "n_jobs": 1}, ds, None, CFG)
    recorded = p.config()["importance"]
    assert recorded["method"] == "gain" and list(recorded["values"]) == ds.feature_names


def test_state_is_xgboost_ubjson_bytes_and_damaged_bytes_are_refused():
    X, y = xor_with_holes()
    model = gb(n_estimators=5).fit(X, y, config=CFG)
    state = model.state()
    assert list(state) == ["booster.ubj"] and state["booster.ubj"].dtype == np.uint8
    assert bytes(state["booster.ubj"][:1]) == b"{"  # a UBJSON object
    with pytest.raises(ModelError, match="cannot be read"):
        GradientBoosting.from_state(model.get_params(), {"booster.ubj": state["booster.ubj"][:50]},
                                    task=Task.CLASSIFICATION, n_classes=2)
    with pytest.raises(ModelError, match="no 'booster.ubj'"):
        GradientBoosting.from_state(model.get_params(), {"weight": np.zeros(3)}, task=Task.CLASSIFICATION, n_classes=2)


def test_bad_settings_are_refused_in_one_sentence():
    with pytest.raises(ParamError, match="max_depth=0 .* needs a leaf limit; set max_leaves > 0"):
        gb(max_depth=0)
    gb(max_depth=0, max_leaves=31, grow_policy="lossguide")
    with pytest.raises(ParamError, match="learning_rate must be a float between"):
        gb(learning_rate="fast")
    with pytest.raises(ParamError, match="unknown hyperparameter.*'eta'"):
        gb(eta=0.1)


def test_the_device_is_cuda_only_when_there_is_one():
    from modelyard.models.boosting import cuda_available

    assert pick_device("cpu") == "cpu"
    if cuda_available():
        assert pick_device(None) == "cuda"
    else:
        assert pick_device(None) == "cpu"
        with pytest.raises(TrainingError, match="CUDA is not available; use --device cpu"):
            pick_device("cuda")
    with pytest.raises(TrainingError, match="unknown device 'tpu'"):
        pick_device("tpu")


def test_importing_the_family_does_not_import_xgboost():
    import subprocess
    import sys

    code = "import modelyard.models, sys; print('xgboost' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
