"""Every family trains as-is on every shipped real table (imputing where the family needs it), and its model
predicts raw rows, gaps included, through the stored config and state."""

from __future__ import annotations

import numpy as np
import pytest

import modelyard as my
from modelyard.models import FAMILIES
from modelyard.models.predictor import Predictor
from modelyard.testing.datasets import REAL_TABLES, load_real, real_table


@pytest.fixture(scope="module")
def tables():
    return {name: load_real(name) for name in REAL_TABLES}


def test_the_tables_have_what_practitioners_meet(tables):
    with_gaps = [n for n, t in REAL_TABLES.items() if t.missing and t.categorical]
    assert len(REAL_TABLES) >= 4 and len(with_gaps) >= 2
    for name, t in REAL_TABLES.items():
        ds = tables[name]
        assert ds.task.value == t.task and ds.schema.target == t.target
        assert bool(ds.schema.categorical) == t.categorical, name
        assert (bool(np.isnan(ds.X).any()) or ds.dropped is not None) == t.missing, name
    assert tables["hitters"].dropped.no_target == 59  # salaries not recorded: dropped with a count
    assert "Name" not in tables["cars"].feature_names and "logwage" not in tables["wage"].feature_names
    with pytest.raises(my.DataError, match="unknown real table"):
        real_table("titanic")


CASES = [(t, f) for t in REAL_TABLES for f, cls in FAMILIES.items() if my.Task(REAL_TABLES[t].task) in cls.tasks]


@pytest.mark.parametrize("table, family", CASES, ids=[f"{t}-{f}" for t, f in CASES])
def test_every_family_trains_as_is(tables, table, family):
    ds = tables[table]
    cls = FAMILIES[family]
    impute = None if getattr(cls, "handles_missing", False) or not np.isnan(ds.X).any() else "median"
    params = {"n_jobs": 1} if "n_jobs" in cls.params.params else {}
    result = my.train(ds, model=family, params=params, impute=impute)
    m = result.metrics
    if ds.task.value == "classification":
        majority = np.bincount(ds.y).max() / len(ds)
        assert m["accuracy"] >= majority - 0.03, m
    else:
        assert m["r2"] > 0.1, m
    raw = real_table(table).frame().drop(columns=[real_table(table).target]).head(50)
    back = Predictor.from_parts(result.model.config(), result.model.state())
    np.testing.assert_array_equal(back.predict(raw), result.model.predict(raw))


def test_class_weight_on_a_real_imbalanced_table(tables):
    ds = tables["caravan"]  # 6% buy the insurance
    plain = my.train(ds, model="logistic_regression")
    fair = my.train(ds, model="logistic_regression", params={"class_weight": "balanced"})
    assert fair.params["class_weight"] == "balanced"
    assert fair.metrics["per_class"]["Yes"]["recall"] > plain.metrics["per_class"]["Yes"]["recall"] + 0.2
