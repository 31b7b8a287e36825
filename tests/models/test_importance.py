"""Feature importance per family: gain for boosting, impurity for forests, |standardized weight| for linear models,
none for the MLP; one value per original feature (one-hot columns summed back)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import modelyard as my
from modelyard.records.training import FitConfig
from modelyard.train.fit import fit_predictor

CFG = FitConfig(epochs=15, seed=0, threads=1)


@pytest.fixture(scope="module")
def table():
    """y depends strongly on `signal` and on the category of `plan`; `noise` is noise."""
    rng = np.random.default_rng(0)
    n = 600
    plan = rng.choice(["basic", "plus", "pro"], n)
    signal = rng.normal(size=n)
    noise = rng.normal(size=n)
    y = ((signal + 2.0 * (plan == "pro") - 0.8) > 0).astype(int)
    return my.load_dataset(pd.DataFrame({"signal": signal, "plan": plan, "noise": noise, "y": y}), target="y")


@pytest.mark.parametrize("family, params, method", [
    ("gradient_boosting", {"n_estimators": 30, "n_jobs": 1}, "gain"),
    ("random_forest", {"n_estimators": 20, "n_jobs": 1}, "impurity"),
    ("logistic_regression", {"learning_rate": 0.05}, "abs_standardized_weight"),
])
def test_each_family_ranks_the_informative_features_above_noise(table, family, params, method):
    p = fit_predictor(family, params, table, None, CFG)
    imp = p.importance()
    assert imp["method"] == method
    assert list(imp["values"]) == ["signal", "plan", "noise"]  # one value per original column, schema order
    v = imp["values"]
    assert min(v["signal"], v["plan"]) > 2 * v["noise"]
    if method in ("gain", "impurity"):
        assert sum(v.values()) == pytest.approx(1.0)


def test_a_one_hot_column_gets_the_sum_of_its_category_weights(table):
    p = fit_predictor("logistic_regression", {"learning_rate": 0.05}, table, None, CFG)
    w = np.abs(p.model.state()["module.weight"]).sum(axis=0)  # signal, basic, plus, pro, noise
    assert p.encoder.n_outputs == 5
    v = p.importance()["values"]
    assert v["signal"] == pytest.approx(w[0]) and v["plan"] == pytest.approx(w[1:4].sum())
    assert v["noise"] == pytest.approx(w[4])


def test_the_mlp_records_no_importance(table):
    p = fit_predictor("mlp", {"hidden_sizes": (8,)}, table, None, CFG)
    assert p.importance() is None and "importance" not in p.config()
