"""Every built-in family and the three kinds of custom model pass the shared Model contract suite."""

from __future__ import annotations

import pytest

from modelyard.models import FAMILIES
from modelyard.records.training import FitConfig
from modelyard.testing.models import model_checks

FAST = FitConfig(epochs=15, seed=3)

# family -> params that keep the suite fast (the contract itself is independent of them)
SUBJECTS = {
    "linear_regression": {"batch_size": 32, "learning_rate": 0.05},
    "logistic_regression": {"batch_size": 32, "learning_rate": 0.05},
    "mlp": {"hidden_sizes": (16, 8), "dropout": 0.1, "batch_size": 32},
    "random_forest": {"n_estimators": 8, "n_jobs": 1},
    "gradient_boosting": {"n_estimators": 30, "max_depth": 3, "n_jobs": 1},
    # a Model-protocol class with declared params, and one whose params come from its signature
    "custom_examples:CentroidClassifier": {},
    "custom_examples:ClosedFormRidge": {},
    # scikit-learn estimators used as they are
    "sklearn.linear_model:Ridge": {},
    "sklearn.linear_model:LogisticRegression": {},
    "sklearn.svm:LinearSVC": {},  # a classifier without predict_proba
    # torch.nn.Module factories: a function and a Module class
    "custom_examples:residual_net": {"width": 16, "batch_size": 32},
    "custom_examples:TwoLayerNet": {"hidden": 8, "batch_size": 32, "learning_rate": 0.05},
}


def test_every_builtin_family_is_a_subject():
    assert set(FAMILIES) <= set(SUBJECTS)


CASES = [(f"{family}::{name}", check) for family, params in SUBJECTS.items()
         for name, check in model_checks(family, params=params, config=FAST)]


@pytest.mark.parametrize("name, check", CASES, ids=[c[0] for c in CASES])
def test_contract(name, check):
    check()
