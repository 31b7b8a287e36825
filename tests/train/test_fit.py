"""train(): held-out metrics, determinism, timings, and a result carrying everything a registry needs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import modelyard as my
from modelyard.errors import DataError, ParamError
from modelyard.records.training import EpochLog, FitConfig


@pytest.fixture(scope="module")
def cancer():
    return my.load_dataset("sklearn:breast_cancer")


@pytest.fixture(scope="module")
def lr_result(cancer):
    return my.train(cancer, model="logistic_regression", params={"learning_rate": 0.05}, epochs=8, patience=3, seed=4)


def test_result_carries_what_a_registry_needs(lr_result, cancer):
    r = lr_result
    assert r.family == "logistic_regression"
    assert r.params == r.model.get_params() and r.params["learning_rate"] == 0.05
    assert r.config == FitConfig(epochs=8, patience=3, seed=4)
    assert r.seed == 4
    assert r.schema == cancer.schema and r.fingerprint == cancer.fingerprint
    assert {"python", "numpy", "torch", "scikit-learn", "modelyard"} <= set(r.library_versions)
    assert r.split["train"] + r.split["validation"] + r.split["test"] == len(cancer)
    assert all(isinstance(h, EpochLog) for h in r.history) and 1 <= len(r.history) <= 8  # epochs=8 caps L-BFGS
    assert r.best_epoch in {h.epoch for h in r.history}
    assert r.stop_reason in {"converged", "max_iter"} and r.params["solver"] == "lbfgs"  # the solver that ran
    assert r.extra["solver"]["solver"] == "lbfgs" and r.extra["solver"]["iterations"] == len(r.history)
    for key in ("accuracy", "precision", "recall", "f1", "log_loss", "roc_auc", "per_class",
                "train_time_s", "inference_time_per_row_s"):
        assert key in r.metrics
    # the whole result is JSON-safe, and the model rebuilds from its config and arrays
    d = json.loads(json.dumps(r.to_dict()))
    assert {"model", "params", "metrics", "history", "schema", "fingerprint", "seed", "library_versions"} <= set(d)
    again = my.Predictor.from_parts(json.loads(json.dumps(r.model.config())), r.model.state())
    assert np.array_equal(again.predict_proba(cancer.X), r.model.predict_proba(cancer.X))


def test_metrics_are_measured_on_the_test_rows_only(lr_result, cancer):
    _, _, test = my.split(cancer, seed=4)
    assert lr_result.metrics["evaluated_on"] == "test" and lr_result.split["test"] == len(test)
    pred = lr_result.model.predict_codes(test.X)
    assert lr_result.metrics["accuracy"] == pytest.approx(float((pred == test.y).mean()))


def test_validation_is_used_when_there_is_no_test_split(cancer):
    r = my.train(cancer, model="random_forest", params={"n_estimators": 5}, test_size=0, seed=1)
    _, val, _ = my.split(cancer, test_size=0, seed=1)
    assert r.metrics["evaluated_on"] == "validation" and r.split["test"] == 0
    assert r.metrics["accuracy"] == pytest.approx(float((r.model.predict_codes(val.X) == val.y).mean()))


def test_no_held_out_rows_is_refused(cancer):
    with pytest.raises(DataError, match="no held-out rows"):
        my.train(cancer, val_size=0, test_size=0)


@pytest.mark.parametrize("family, params", [
    ("logistic_regression", {}), ("mlp", {"hidden_sizes": (16,), "dropout": 0.2}), ("random_forest", {"n_estimators": 10}),
])
def test_same_seed_same_model(cancer, family, params):
    a = my.train(cancer, model=family, params=params, epochs=3, seed=11)
    b = my.train(cancer, model=family, params=params, epochs=3, seed=11)
    assert np.array_equal(a.model.predict_proba(cancer.X), b.model.predict_proba(cancer.X))
    assert a.metrics["f1"] == b.metrics["f1"]
    c = my.train(cancer, model=family, params=params, epochs=3, seed=12)
    assert not np.array_equal(a.model.predict_proba(cancer.X), c.model.predict_proba(cancer.X))


def test_regression_metrics_and_history():
    ds = my.load_dataset("sklearn:diabetes")
    r = my.train(ds, model="mlp", params={"hidden_sizes": "32"}, epochs=5, seed=0)
    assert {"rmse", "mae", "r2"} <= set(r.metrics) and "accuracy" not in r.metrics
    assert len(r.history) == 5 and all(h.val_loss is not None and h.val_metric is not None for h in r.history)


def test_bad_params_are_refused_before_any_training(cancer):
    calls = []
    with pytest.raises(ParamError, match="unknown hyperparameter"):
        my.train(cancer, model="mlp", params={"hidden": 3}, callbacks=[calls.append])
    assert calls == []


def test_callbacks_see_every_epoch(cancer):
    seen = []
    my.train(cancer, model="logistic_regression", epochs=4, callbacks=[seen.append])
    assert [h.epoch for h in seen] == [1, 2, 3, 4]


def test_dataset_without_target():
    ds = my.Dataset(np.zeros((20, 2), dtype=np.float32), None, my.load_dataset("sklearn:iris").schema)
    with pytest.raises(DataError, match="no target"):
        my.train(ds)


def test_timings_are_honest(tmp_path):
    # in a fresh process: the first train() must not count importing torch as training time
    code = (
        "import time, modelyard as my\n"
        "ds = my.load_dataset('sklearn:breast_cancer')\n"
        "t = time.perf_counter()\n"
        "r = my.train(ds, model='logistic_regression', epochs=2, threads=1)\n"
        "print(r.metrics['train_time_s'], r.metrics['inference_time_per_row_s'], r.split['test'], time.perf_counter() - t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    train_s, per_row, n_test, total = (float(v) for v in out.stdout.split())
    assert 0 < train_s < 0.5 * total  # importing torch (and torch._dynamo) takes most of the first call
    assert 0 < per_row * n_test < train_s + 0.5


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs must be an int >= 1, got 0; pass e.g. --epochs 20"),
    ({"epochs": 2.5}, "epochs must be an int >= 1"),
    ({"patience": -1}, "patience must be an int >= 0"),
    ({"max_time": -1.0}, "max_time must be a number of seconds > 0, got -1.0; pass e.g. --max-time 90s"),
    ({"seed": -1}, "seed must be an int >= 0"),
])
def test_bad_training_config_is_refused_before_training(cancer, kwargs, message):
    with pytest.raises(ParamError, match=message.replace("(", r"\(").replace(")", r"\)")):
        my.train(cancer, model="random_forest", **kwargs)


def test_numpy_integers_are_fine_in_the_config(cancer):
    r = my.train(cancer, model="random_forest", params={"n_estimators": np.int64(3)}, epochs=np.int64(2),
                 seed=np.int64(1))
    assert json.loads(json.dumps(r.to_dict()))["config"]["seed"] == 1


def test_same_seed_same_model_with_two_threads():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 40))
    ds = my.from_arrays(X, (X[:, 0] * X[:, 1] > 0).astype(int))
    probas = [
        my.train(ds, model="mlp", params={"hidden_sizes": "128,64", "dropout": 0.1}, epochs=1, seed=3, threads=2)
        .model.predict_proba(ds.X)
        for _ in range(2)
    ]
    assert np.array_equal(probas[0], probas[1])
