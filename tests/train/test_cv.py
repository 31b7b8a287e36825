"""Cross-validation: folds (stratified, disjoint, covering), checks, train(cv=K) for every family, the refit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import modelyard as my
from modelyard.errors import ParamError
from modelyard.records.training import FitConfig
from modelyard.train.cv import check_cv, cross_validate, fold_indices


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(1, 40), min_size=1, max_size=5), k=st.integers(2, 7), seed=st.integers(0, 99))
def test_stratified_folds_partition_the_rows_and_balance_every_class(counts, k, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    folds = fold_indices(y, len(y), k, seed=seed, stratify=True)
    assert len(folds) == k
    allrows = np.concatenate(folds)
    assert np.array_equal(np.sort(allrows), np.arange(len(y)))  # disjoint and covering
    for c, n_c in enumerate(counts):
        per_fold = [int((y[f] == c).sum()) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1 and sum(per_fold) == n_c
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 200), k=st.integers(2, 10), seed=st.integers(0, 99))
def test_regression_folds_are_near_equal_parts(n, k, seed):
    k = min(k, n)
    folds = fold_indices(None, n, k, seed=seed, stratify=False)
    assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(n))
    assert max(map(len, folds)) - min(map(len, folds)) <= 1


def test_same_seed_same_folds_other_seed_other_folds():
    y = np.arange(100) % 3
    a = fold_indices(y, 100, 5, seed=1, stratify=True)
    b = fold_indices(y, 100, 5, seed=1, stratify=True)
    c = fold_indices(y, 100, 5, seed=2, stratify=True)
    assert all(np.array_equal(x, z) for x, z in zip(a, b, strict=True))
    assert not all(np.array_equal(x, z) for x, z in zip(a, c, strict=True))


def test_bad_fold_counts_get_one_sentence():
    iris = my.load_dataset("sklearn:iris")
    with pytest.raises(ParamError, match=r"cv must be a number of folds >= 2, got 1; use e.g. --cv 5"):
        check_cv(iris, 1)
    with pytest.raises(ParamError, match=r"--cv 51 needs at least 51 rows of every class .* class 'setosa' has 50; "
                                         r"use --cv 50 or fewer"):
        check_cv(iris, 51)
    with pytest.raises(ParamError, match="got True"):
        check_cv(iris, True)
    diabetes = my.load_dataset("sklearn:diabetes")
    with pytest.raises(ParamError, match=r"--cv 1000 needs at least 1000 rows, the data has 442"):
        check_cv(diabetes, 1000)
    with pytest.raises(ParamError, match="cannot be combined with nodes > 1"):
        my.train(iris, model="gradient_boosting", cv=3, nodes=2)


@pytest.mark.parametrize("family, params", [
    ("gradient_boosting", {"n_estimators": 20, "n_jobs": 1}),
    ("random_forest", {"n_estimators": 10, "n_jobs": 1}),
    ("logistic_regression", {}),
    ("mlp", {"hidden_sizes": (8,)}),
])
def test_train_with_cv_reports_mean_and_sd_over_folds_and_refits_on_all_rows(family, params):
    ds = my.load_dataset("sklearn:iris")
    r = my.train(ds, model=family, params=params, cv=4, epochs=5, threads=1)
    folds = r.extra["cv"]["folds"]
    assert len(folds) == 4 and r.extra["cv"]["sizes"] == [38, 38, 37, 37]
    acc = [f["accuracy"] for f in folds]
    assert r.metrics["accuracy"] == pytest.approx(np.mean(acc))
    assert r.metrics["accuracy_std"] == pytest.approx(np.std(acc, ddof=1))
    assert r.metrics["evaluated_on"] == "4-fold cross-validation" and r.metrics["cv_folds"] == 4
    assert r.split["train"] + r.split["validation"] == len(ds) and r.split["test"] == 0  # the refit saw every row


def test_a_fold_is_scored_on_rows_its_model_never_saw():
    ds = my.load_dataset("sklearn:breast_cancer")
    config = FitConfig(seed=3, threads=1)
    res = cross_validate(ds, "gradient_boosting", {"n_estimators": 10, "n_jobs": 1}, k=3, config=config)
    # the fold's model fitted again by hand on the other rows gives the same held-out accuracy
    from modelyard.train.cv import inner_split
    from modelyard.train.fit import fit_predictor
    from modelyard.train.metrics import evaluate

    held = fold_indices(ds.y, len(ds), 3, seed=3, stratify=True)[1]
    rest = ds.take(np.setdiff1d(np.arange(len(ds)), held))
    fit_ds, val_ds = inner_split(rest, 0.15, 3)
    p = fit_predictor("gradient_boosting", {"n_estimators": 10, "n_jobs": 1}, fit_ds, val_ds, config)
    assert evaluate(p, ds.X[held], ds.y[held])["accuracy"] == pytest.approx(res.folds[1]["accuracy"])


def test_a_fold_hook_can_stop_the_folds():
    ds = my.load_dataset("sklearn:iris")
    seen = []
    res = cross_validate(ds, "gradient_boosting", {"n_estimators": 5, "n_jobs": 1}, k=5, config=FitConfig(threads=1),
                         on_fold=lambda i, m: seen.append(i) or i == 2)
    assert seen == [1, 2] and len(res.folds) == 2
