"""Custom models by path: each kind loads and trains through train(); each way of getting it wrong is one ModelError."""

from __future__ import annotations

import numpy as np
import pytest

import modelyard as my
from modelyard.errors import ModelError, ParamError
from modelyard.models import get_family


@pytest.mark.parametrize("path, data, params", [
    ("custom_examples:CentroidClassifier", "sklearn:iris", {"shrink": "0.1"}),
    ("custom_examples:ClosedFormRidge", "sklearn:diabetes", {"alpha": "0.5"}),
    ("sklearn.linear_model:LogisticRegression", "sklearn:breast_cancer", {"C": "0.5", "max_iter": "500"}),
    ("sklearn.linear_model:Ridge", "sklearn:diabetes", {"alpha": "2"}),
    ("custom_examples:residual_net", "sklearn:wine", {"width": "16", "learning_rate": "0.01"}),
    ("custom_examples:TwoLayerNet", "sklearn:diabetes", {"hidden": "8"}),
])
def test_each_kind_trains_through_train(path, data, params):
    ds = my.load_dataset(data)
    result = my.train(ds, model=path, params=params, epochs=5, seed=0, threads=1)
    key = "accuracy" if ds.task is my.Task.CLASSIFICATION else "r2"
    assert result.family == path and np.isfinite(result.metrics[key])
    if key == "accuracy":
        assert result.metrics["accuracy"] > 0.6
    else:
        assert result.metrics["r2"] > 0.1
    # what a registry stores rebuilds the model
    again = my.Predictor.from_parts(result.model.config(), result.model.state())
    X = ds.X[:25]
    assert np.array_equal(again.predict(X), result.model.predict(X))


def test_torch_factory_params_are_typed_from_the_signature():
    fam = get_family("custom_examples:residual_net")
    assert fam.params.validate({"width": "8"}, "f")["width"] == 8
    with pytest.raises(ParamError, match="width must be an int"):
        fam.params.validate({"width": "wide"}, "f")
    assert "learning_rate" in fam.params.params  # the shared loop's params come along


def test_unknown_param_of_a_sklearn_estimator_lists_its_params():
    with pytest.raises(ParamError) as e:
        get_family("sklearn.linear_model:Ridge").params.validate({"C": 1}, "Ridge")
    assert "'C'" in str(e.value) and "alpha" in str(e.value) and "fit_intercept" in str(e.value)


def test_estimator_refusing_its_params_is_a_model_error():
    fam = get_family("sklearn.linear_model:LogisticRegression")
    model = fam(task="classification", n_classes=2, C="-1")
    X = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    with pytest.raises(ModelError, match="failed in fit"):
        model.fit(X, np.arange(20) % 2)


@pytest.mark.parametrize("path, expect", [
    ("no_such_package.models:Net", r"cannot import module 'no_such_package.models'.*PYTHONPATH"),
    ("custom_examples:Missing", r"has no attribute 'Missing'.*after the colon"),
    ("custom_examples:NotAModel", r"class NotAModel lacks fit, predict, get_params, state, from_state.*Model protocol"),
    ("custom_examples:NOT_CALLABLE", r"it is a int, not a class or function"),
    ("json:dumps", r"does not take \(n_features, n_outputs, \*\*params\)"),
    ("custom_examples:", r"must look like package.module:ClassName"),
])
def test_bad_custom_paths(path, expect):
    with pytest.raises(ModelError, match=expect) as e:
        get_family(path)
    assert "\n" not in str(e.value)


def test_module_that_fails_on_import(tmp_path, monkeypatch):
    (tmp_path / "broken_model.py").write_text("import numpy\nraise RuntimeError('boom\\nsecond line')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelError, match=r"RuntimeError: boom second line") as e:
        get_family("broken_model:Net")
    assert "\n" not in str(e.value)


def test_factory_returning_something_else():
    ds = my.load_dataset("sklearn:iris")
    with pytest.raises(ModelError, match="returned a list, not a torch.nn.Module"):
        my.train(ds, model="custom_examples:not_a_factory", epochs=1)


def test_estimator_whose_state_needs_pickle_says_so():
    ds = my.load_dataset("sklearn:diabetes")
    result = my.train(ds, model="sklearn.tree:DecisionTreeRegressor", params={"max_depth": "3"})
    with pytest.raises(ModelError, match=r"'tree_' of type Tree.*without pickle.*state\(\) and from_state\(\)"):
        result.model.state()


def test_task_the_estimator_does_not_do():
    ds = my.load_dataset("sklearn:iris")
    with pytest.raises(ModelError, match="does not do classification"):
        my.train(ds, model="sklearn.linear_model:Ridge")
    with pytest.raises(ModelError, match="does not do regression"):
        my.train(my.load_dataset("sklearn:diabetes"), model="custom_examples:CentroidClassifier")


def test_classifier_without_probabilities_gets_the_other_metrics():
    ds = my.load_dataset("sklearn:breast_cancer")
    result = my.train(ds, model="sklearn.svm:LinearSVC")
    assert not result.model.has_proba and "log_loss" not in result.metrics and result.metrics["accuracy"] > 0.9
    with pytest.raises(ModelError, match="has no predict_proba"):
        result.model.predict_proba(ds.X[:2])
