"""The training objective with gradient boosting and with --cv: what the pruners see, and the value returned."""

from __future__ import annotations

import numpy as np
import pytest

import modelyard as my
from modelyard.tune.defaults import default_space
from modelyard.tune.objective import TrainingObjective
from modelyard.tune.trial import TrialPruned


class FakeTrial(dict):
    """Trial params plus a record of reports; prunes after ``prune_at`` reports."""

    def __init__(self, params, prune_at=None):
        super().__init__(params)
        self.reports: list[tuple[int, float]] = []
        self.prune_at = prune_at

    def report(self, step, value):
        self.reports.append((step, value))

    def should_prune(self):
        return self.prune_at is not None and len(self.reports) >= self.prune_at


@pytest.fixture(scope="module")
def cancer():
    return my.load_dataset("sklearn:breast_cancer")


def test_with_cv_the_value_is_the_fold_mean_and_the_pruner_sees_the_running_mean(cancer):
    space = default_space("gradient_boosting")
    obj = TrainingObjective(cancer, "gradient_boosting", space, metric="accuracy", cv=4, threads=1)
    trial = FakeTrial({"n_estimators": 30, "max_depth": 3})
    value = obj(trial)
    steps = [s for s, _ in trial.reports]
    assert steps == [1, 2, 3, 4]
    assert value == pytest.approx(trial.reports[-1][1])
    result = my.train(cancer, model="gradient_boosting", params=obj.params_for(trial), cv=4, threads=1)
    assert value == pytest.approx(result.metrics["accuracy"])  # the study's value is what train(cv=) reports
    folds = [f["accuracy"] for f in result.extra["cv"]["folds"]]
    assert [v for _, v in trial.reports] == pytest.approx([np.mean(folds[:i]) for i in range(1, 5)])


def test_a_pruned_cv_trial_stops_after_the_fold_that_pruned_it(cancer):
    obj = TrainingObjective(cancer, "gradient_boosting", default_space("gradient_boosting"), cv=5, threads=1)
    trial = FakeTrial({"n_estimators": 10}, prune_at=2)
    with pytest.raises(TrialPruned):
        obj(trial)
    assert [s for s, _ in trial.reports] == [1, 2]


def test_boosting_reports_to_the_pruner_about_twenty_times_a_trial(cancer):
    obj = TrainingObjective(cancer, "gradient_boosting", default_space("gradient_boosting"), threads=1)
    trial = FakeTrial({"n_estimators": 100, "early_stopping_rounds": None})
    obj(trial)
    assert [s for s, _ in trial.reports] == list(range(5, 101, 5))


def test_cv_larger_than_the_smallest_class_is_refused_before_any_trial(cancer):
    from modelyard.errors import ParamError

    with pytest.raises(ParamError, match="--cv 300 needs at least 300 rows of every class"):
        TrainingObjective(cancer, "gradient_boosting", default_space("gradient_boosting"), cv=300)


def test_tune_prunes_by_default_except_with_cv():
    import argparse

    from modelyard.cli.tune_cmd import _check_args

    base = {"trials": 4, "workers": 1, "top": 3, "epochs": 2, "heartbeat": 10.0, "name": None}
    plain = argparse.Namespace(**base, cv=None, pruner=None)
    with_cv = argparse.Namespace(**base, cv=5, pruner=None)
    chosen = argparse.Namespace(**base, cv=5, pruner="asha")
    for ns in (plain, with_cv, chosen):
        _check_args(ns)
    assert (plain.pruner, with_cv.pruner, chosen.pruner) == ("median", "none", "asha")
