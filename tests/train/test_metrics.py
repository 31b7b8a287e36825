"""Metrics (S) agree with scikit-learn's implementations on random data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from modelyard.train.metrics import classification_metrics, regression_metrics, roc_auc


def _random_classification(seed: int, n: int, k: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y] * rng.random()
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return y, p.argmax(axis=1), p


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 300), k=st.integers(2, 6))
def test_classification_metrics_match_sklearn(seed, n, k):
    y, pred, p = _random_classification(seed, n, k)
    m = classification_metrics(y, pred, p, [f"c{i}" for i in range(k)])
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    prec, rec, f1, _ = skm.precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((prec, rec, f1))
    pc, rc, fc, sc = skm.precision_recall_fscore_support(y, pred, labels=range(k), average=None, zero_division=0)
    for i in range(k):
        got = m["per_class"][f"c{i}"]
        assert (got["precision"], got["recall"], got["f1"], got["support"]) == pytest.approx((pc[i], rc[i], fc[i], sc[i]))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p, labels=range(k)), rel=1e-9)
    if k == 2 and 0 < y.sum() < n:
        assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p[:, 1]))
    else:
        assert "roc_auc" not in m


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 200))
def test_roc_auc_with_ties_matches_sklearn(seed, n):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    if not 0 < y.sum() < n:
        return
    score = rng.integers(0, 4, n) / 4  # many ties
    assert roc_auc(y, score) == pytest.approx(skm.roc_auc_score(y, score))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 300))
def test_regression_metrics_match_sklearn(seed, n):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n) * rng.uniform(0.1, 100)
    pred = y + rng.normal(size=n) * rng.uniform(0.01, 10)
    m = regression_metrics(y, pred)
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))


def test_class_never_predicted_nor_present_does_not_count_in_macro():
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    m = classification_metrics(y, pred, None, ["a", "b", "c"])
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert "log_loss" not in m


def test_perfect_and_confident_predictions():
    y = np.array([0, 1, 1, 0])
    p = np.eye(2)[y]
    m = classification_metrics(y, y, p, [0, 1])
    assert m["accuracy"] == 1 and m["roc_auc"] == 1 and m["log_loss"] == pytest.approx(0, abs=1e-12)
    wrong = classification_metrics(y, 1 - y, np.eye(2)[1 - y], [0, 1])
    assert np.isfinite(wrong["log_loss"]) and wrong["log_loss"] == pytest.approx(-np.log(1e-15), rel=1e-6)
