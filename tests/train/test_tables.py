"""train() on tables with gaps and imbalance: one message for every NaN column, imputation that travels with the
model (through the registry too), native NaN for trees, class weights as a recorded hyperparameter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import modelyard as my
from modelyard.errors import DataError, ParamError
from modelyard.models.predictor import Predictor
from modelyard.yard import Yard


def gappy_frame(n=300, seed=0, columns=7):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(columns)})
    df["plan"] = rng.choice(["basic", "plus", "pro"], n)
    score = df["x0"] + df["x1"] + (df["plan"] == "basic") * 1.0
    df["y"] = np.where(score + 0.3 * rng.normal(size=n) > 1.0, "yes", "no")
    for i in range(columns):
        df.loc[rng.random(n) < 0.02 * (i + 1), f"x{i}"] = np.nan
    df.loc[rng.random(n) < 0.05, "plan"] = None
    return df


@pytest.fixture(scope="module")
def gappy():
    return my.load_dataset(gappy_frame(), target="y")


@pytest.mark.parametrize("family", ["logistic_regression", "mlp"])
def test_one_message_names_every_column_with_gaps(gappy, family):
    counts = {name: int(np.isnan(gappy.X[:, j]).sum()) for j, name in enumerate(gappy.feature_names)}
    assert sum(1 for c in counts.values() if c) == 8
    with pytest.raises(DataError) as e:
        my.train(gappy, model=family, epochs=1)
    msg = str(e.value)
    assert "\n" not in msg and "8 column(s)" in msg
    for name, c in counts.items():
        assert f"'{name}' ({c} missing)" in msg
    assert "--impute median" in msg and "--drop-missing" in msg and "random_forest" in msg


def test_trees_train_and_predict_on_nan_as_is(gappy):
    result = my.train(gappy, model="random_forest", params={"n_estimators": 20, "n_jobs": 1})
    assert result.model.imputer is None and result.notes == ()
    assert result.metrics["accuracy"] > 0.7
    raw = gappy_frame().drop(columns="y").head(40)
    back = Predictor.from_parts(result.model.config(), result.model.state())
    np.testing.assert_array_equal(back.predict(raw), result.model.predict(raw))


@pytest.mark.parametrize("strategy", ["median", "most_frequent"])
@pytest.mark.parametrize("family", ["logistic_regression", "mlp"])
def test_imputation_is_fitted_on_training_rows_and_stored_with_the_model(gappy, family, strategy):
    result = my.train(gappy, model=family, epochs=10, impute=strategy, seed=1, params={"batch_size": 32})
    p = result.model
    assert p.config()["impute"] == strategy and "impute.fill" in p.state()
    assert result.metrics["accuracy"] > 0.7
    train_rows = my.split(gappy, seed=1)[0]
    x0 = train_rows.X[:, 0]
    want = np.median(x0[~np.isnan(x0)]) if strategy == "median" else None
    if want is not None:
        assert p.imputer.fill_[0] == np.float32(want)
    # raw rows with gaps predict the same through the stored config and state (no pickle)
    raw = gappy_frame().drop(columns="y")
    back = Predictor.from_parts(p.config(), p.state())
    np.testing.assert_array_equal(back.predict(raw), p.predict(raw))
    np.testing.assert_allclose(back.predict_proba(raw), p.predict_proba(raw))
    assert p.n_parameters() == sum(v.size for k, v in p.model.state().items() if not k.startswith("scaling."))


def test_impute_on_a_family_that_takes_nan_is_a_note(gappy):
    result = my.train(gappy, model="random_forest", params={"n_estimators": 5, "n_jobs": 1}, impute="median")
    assert result.model.imputer is None and "config" not in result.notes
    assert result.notes == ("random_forest takes missing values natively, so --impute median is not applied",)
    assert result.to_dict()["notes"] == list(result.notes)


def test_bad_strategy_and_rows_without_target(gappy):
    with pytest.raises(ParamError, match="impute must be one of median, most_frequent, got 'mean'"):
        my.train(gappy, model="logistic_regression", impute="mean")
    df = gappy_frame()
    df.loc[:9, "y"] = None
    result = my.train(my.load_dataset(df, target="y"), model="random_forest", params={"n_estimators": 5})
    assert result.notes == ("dropped 10 of 300 rows: 10 without a value of target 'y'",)
    assert sum(result.split[k] for k in ("train", "validation", "test")) == 290


def test_class_weight_is_a_recorded_hyperparameter(gappy):
    result = my.train(gappy, model="logistic_regression", impute="median", epochs=5,
                      params={"class_weight": "yes=3"})
    assert result.params["class_weight"] == "yes=3"
    with pytest.raises(ParamError, match="names class 'maybe'"):
        my.train(gappy, model="mlp", impute="median", params={"class_weight": "maybe=3"})
    reg = my.load_dataset(gappy_frame().assign(y=np.arange(300.0)), target="y", task="regression")
    with pytest.raises(ParamError, match="applies to classification"):
        my.train(reg, model="random_forest", params={"class_weight": "balanced"})
    with pytest.raises(ParamError, match="unknown hyperparameter"):
        my.train(reg, model="linear_regression", impute="median", params={"class_weight": "balanced"})


def test_registry_keeps_imputation_and_class_weight_through_load_and_branch(gappy, tmp_path):
    result = my.train(gappy, model="logistic_regression", epochs=5, impute="median",
                      params={"class_weight": "balanced"})
    raw = gappy_frame(seed=4).drop(columns="y")
    with Yard(tmp_path / "store") as yard:
        v = yard.registry.register(result, "gappy")
        assert v.model_config.get("impute") == "median" and v.params["class_weight"] == "balanced"
        loaded = yard.registry.load_model("gappy/1")
        np.testing.assert_array_equal(loaded.predict(raw), result.model.predict(raw))
        child = yard.registry.branch("gappy/1", {"learning_rate": 0.02}, retrain=gappy, epochs=2)
        assert child.params["class_weight"] == "balanced" and child.model_config.get("impute") == "median"
        again = yard.registry.load_model(child.ref)
        np.testing.assert_array_equal(again.imputer.fill_, result.model.imputer.fill_)  # warm start keeps the fill
        assert again.predict(raw).shape == (len(raw),)


def test_tune_objective_imputes_and_weights(gappy):
    from modelyard.tune import SearchSpace
    from modelyard.tune.objective import TrainingObjective
    from modelyard.tune.space import Float

    space = SearchSpace({"learning_rate": Float(1e-3, 1e-1, log=True)})
    with pytest.raises(DataError, match="cannot train on missing values"):
        TrainingObjective(gappy, "logistic_regression", space, epochs=2)
    obj = TrainingObjective(gappy, "logistic_regression", space, epochs=3, impute="median",
                            fixed={"class_weight": "balanced"})
    assert obj.params_for({"learning_rate": 0.05})["class_weight"] == "balanced"
    value = obj({"learning_rate": 0.05})
    assert 0.0 < value <= 1.0
