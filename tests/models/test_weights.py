"""Class weights: parsing, the balanced rule, and losses that are exact weighted means in the shared loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.errors import ModelError, ParamError
from modelyard.models import get_family
from modelyard.models.weights import class_weights, parse_class_weight, sample_weights
from modelyard.records.training import FitConfig
from modelyard.schema import Task


def test_parse_balanced_and_explicit():
    assert parse_class_weight("balanced", ("no", "yes")) == "balanced"
    assert parse_class_weight("Balanced", ("no", "yes")) == "balanced"
    assert parse_class_weight("yes=5", ("no", "yes")) == {1: 5.0}
    assert parse_class_weight("0=1.5, 2=3", (0, 1, 2)) == {0: 1.5, 2: 3.0}
    np.testing.assert_array_equal(class_weights("yes=5", np.array([0, 1, 1]), ("no", "yes")), [1.0, 5.0])


@pytest.mark.parametrize("spec, fragment", [
    ("maybe=3", "names class 'maybe', which the target does not have; its classes are: no, yes"),
    ("yes=-1", "weight > 0"),
    ("yes=lots", "weight > 0"),
    ("yes", "LABEL=W"),
    (",", "names no class"),
])
def test_bad_specs_are_one_sentence(spec, fragment):
    with pytest.raises(ParamError) as e:
        parse_class_weight(spec, ("no", "yes"))
    assert fragment in str(e.value) and "\n" not in str(e.value)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=60))
def test_balanced_gives_every_present_class_the_same_total(labels):
    y = np.array(labels)
    w = sample_weights("balanced", y, ("a", "b", "c", "d"))
    assert np.isclose(w.mean(), 1.0, rtol=1e-5)
    totals = [w[y == c].sum() for c in np.unique(y)]
    np.testing.assert_allclose(totals, totals[0], rtol=1e-4)


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0.4).astype(np.int64)
    return X, y


def _flat(model) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in model.module_.parameters()]).double().numpy()


def test_integer_weights_equal_repeated_rows_with_full_batches():
    """The weighted loss is the weighted mean: weights of 1-3 train exactly as rows repeated 1-3 times."""
    X, y = _data()
    reps = np.random.default_rng(1).integers(1, 4, len(y))
    cls = get_family("logistic_regression")
    hp = {"optimizer": "sgd", "learning_rate": 0.3, "batch_size": 10_000, "standardize": False}
    cfg = FitConfig(epochs=8, seed=0)
    weighted = cls(task=Task.CLASSIFICATION, n_classes=2, **hp).fit(X, y, sample_weight=reps.astype(float), config=cfg)
    repeated = cls(task=Task.CLASSIFICATION, n_classes=2, **hp).fit(np.repeat(X, reps, axis=0), np.repeat(y, reps),
                                                                   config=cfg)
    np.testing.assert_allclose(_flat(weighted), _flat(repeated), rtol=1e-4, atol=1e-6)
    # the validation loss is the same weighted mean over the validation rows
    Xv, yv = _data(30, seed=2)
    wv = np.random.default_rng(3).integers(1, 4, len(yv))
    a = cls(task=Task.CLASSIFICATION, n_classes=2, **hp).fit(X, y, eval_set=(Xv, yv), eval_sample_weight=wv, config=cfg)
    b = cls(task=Task.CLASSIFICATION, n_classes=2, **hp).fit(
        X, y, eval_set=(np.repeat(Xv, wv, axis=0), np.repeat(yv, wv)), config=cfg)
    np.testing.assert_allclose([h.val_loss for h in a.history_], [h.val_loss for h in b.history_], rtol=1e-5)


def test_bad_sample_weight_is_refused():
    X, y = _data()
    model = get_family("mlp")(task=Task.CLASSIFICATION, n_classes=2)
    with pytest.raises(ModelError, match="one weight per row"):
        model.fit(X, y, sample_weight=np.ones(3), config=FitConfig(epochs=1))
    with pytest.raises(ModelError, match="finite and >= 0"):
        model.fit(X, y, sample_weight=-np.ones(len(y)), config=FitConfig(epochs=1))


@pytest.mark.parametrize("family", ["logistic_regression", "mlp", "random_forest"])
def test_balanced_weights_raise_recall_of_a_rare_class(family):
    rng = np.random.default_rng(0)
    n = 600
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] + 0.8 * rng.normal(size=n) > 2.0).astype(np.int64)  # about 8% positives
    assert 0.03 < y.mean() < 0.15
    cls = get_family(family)
    params = {"n_estimators": 30, "n_jobs": 1, "min_samples_leaf": 5} if family == "random_forest" else {}
    cfg = FitConfig(epochs=30, seed=0)
    plain = cls(task=Task.CLASSIFICATION, n_classes=2, **params).fit(X, y, config=cfg)
    w = sample_weights("balanced", y, (0, 1))
    fair = cls(task=Task.CLASSIFICATION, n_classes=2, **params, class_weight="balanced").fit(
        X, y, sample_weight=w, config=cfg)
    recall = lambda m: float((m.predict(X)[y == 1] == 1).mean())
    assert recall(fair) > recall(plain) + 0.1
    assert fair.get_params()["class_weight"] == "balanced"
