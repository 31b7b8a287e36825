"""Registry behaviour beyond the store contract: records, names, retraining on new data, families, no pickle."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

import modelyard as my
from modelyard.errors import ParamError, SchemaMismatchError
from modelyard.records.versions import AliasMove, Deletion, Lineage, LineageEdge, Version, VersionSummary
from modelyard.registry.service import (
    check_alias,
    check_model_name,
    conform,
    current_user,
    default_model_name,
)
from modelyard.store.artifacts import state_from_bytes
from modelyard.testing.results import sample_result, variant
from modelyard.yard import Yard


@pytest.fixture(scope="module")
def result():
    import torch

    torch.set_num_threads(1)
    return sample_result()


@pytest.fixture
def reg(tmp_path):
    with Yard(tmp_path / "store") as yard:
        yield yard.registry


def _frame(n=90, seed=0, plans=("basic", "plus", "pro"), labels=("no", "yes")):
    rng = np.random.default_rng(seed)
    plan = rng.choice(list(plans), n)
    x = rng.normal(size=n)
    y = np.where(x + (plan == plans[0]) > 0.3, labels[1], labels[0])
    return pd.DataFrame({"age": rng.integers(18, 80, n), "plan": plan, "x": x, "churned": y})


def test_records_round_trip_through_json(reg, result):
    v = reg.register(result, "m", tags={"a": "b"}, description="d", links={"trial": 3})
    reg.set_alias("m", "production", "m/1", reason="r")
    c = reg.branch("m/1", {"learning_rate": 0.02})
    records = [reg.get("m/1"), reg.list("m")[0], reg.lineage("m/1"), reg.alias_history("m")[0],
               reg.lineage("m/2").edges[0]]
    d = reg.delete(c.ref)
    for rec in [*records, d]:
        data = json.loads(json.dumps(rec.to_dict()))
        assert type(rec).from_dict(data) == rec
    assert isinstance(records[0], Version) and isinstance(records[1], VersionSummary)
    assert isinstance(records[2], Lineage) and isinstance(records[3], AliasMove)
    assert isinstance(records[4], LineageEdge) and isinstance(d, Deletion)
    assert records[0].to_dict()["created_at"].endswith("Z") and v.to_dict()["ref"] == "m/1"


@pytest.mark.parametrize(
    "source, family, expected",
    [
        ("sklearn:breast_cancer", "mlp", "breast_cancer-mlp"),
        ("data/churn.csv", "logistic_regression", "churn-logistic_regression"),
        ("/abs/path/sales 2024.parquet", "random_forest", "sales_2024-random_forest"),
        ("<frame>", "mlp", "data-mlp"),
        ("x.npz", "mypkg.models:TinyNet", "x-TinyNet"),
        ("_hidden.csv", "mlp", "hidden-mlp"),
    ],
)
def test_default_model_names(source, family, expected):
    assert default_model_name(source, family) == expected
    check_model_name(expected)


@pytest.mark.parametrize("bad", ["", "a/b", "a@b", "-x", "a b", "x" * 201])
def test_bad_model_names_are_refused_with_the_rule(bad, reg, result):
    with pytest.raises(ParamError, match="letters, digits"):
        check_model_name(bad)
    with pytest.raises(ParamError, match="model name"):
        reg.register(result, bad)


@pytest.mark.parametrize("bad", ["", "1prod", "prod uction", "a" * 65, "x/y"])
def test_bad_aliases_are_refused_with_the_rule(bad):
    with pytest.raises(ParamError, match="alias"):
        check_alias(bad)


def test_user_comes_from_the_environment(monkeypatch, tmp_path, result):
    monkeypatch.setenv("MODELYARD_USER", "ada")
    assert current_user() == "ada"
    with Yard(tmp_path / "s") as yard:
        v = yard.registry.register(result, "m")
        move = yard.registry.set_alias("m", "production", "m/1")
    assert v.creator == "ada" and move.user == "ada"


def test_ids_do_not_depend_on_the_clock(reg, result, monkeypatch):
    import time

    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.0)
    a, b = reg.register(result, "m"), reg.register(result, "m")
    assert a.created_at == b.created_at and a.id != b.id


def test_no_pickle_anywhere(reg, result, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used")

    for fn in ("dumps", "loads", "dump", "load"):
        monkeypatch.setattr(pickle, fn, refuse)
    v = reg.register(result, "m")
    reg.load_model(v.ref)
    data = reg.artifacts.get(v.artifact)
    assert set(state_from_bytes(data)) == set(result.model.state())


def test_random_forest_versions_round_trip(reg):
    r = sample_result("random_forest")
    v = reg.register(r, "forest")
    X = np.random.default_rng(1).normal(size=(25, 4)).astype(np.float32)
    loaded = reg.load_model(v.ref)
    assert np.array_equal(loaded.predict_proba(X), r.model.predict_proba(X))
    b = reg.branch(v.ref, {"min_samples_leaf": 3})
    assert b.artifact == v.artifact and b.params["min_samples_leaf"] == 3


def test_branch_refuses_params_that_change_the_weights_shapes(reg):
    r = my.train(my.load_dataset("sklearn:iris"), model="mlp", params={"hidden_sizes": (8,)}, epochs=1)
    reg.register(r, "net")
    with pytest.raises(ParamError, match=r"do not fit hidden_sizes=16, which changes their shapes.*modelyard train DATA --model mlp"):
        reg.branch("net/1", {"hidden_sizes": "16"})
    assert reg.count("net") == 1
    assert reg.branch("net/1", {"learning_rate": 0.002}).params["hidden_sizes"] == [8]


def test_conform_recodes_columns_categories_and_classes():
    parent = my.load_dataset(_frame(), target="churned")
    new = _frame(n=40, seed=1, plans=("pro", "basic", "gold"))[["x", "churned", "plan", "age"]]
    ds = conform(my.load_dataset(new, target="churned"), parent.schema)
    assert ds.schema == parent.schema and len(ds) == 40
    plan = parent.schema.columns[1]
    expect = [plan.categories.index(p) if p in plan.categories else -1 for p in new["plan"]]
    assert ds.X[:, 1].astype(int).tolist() == expect  # "gold" was never seen: -1
    assert ds.X[:, 0].tolist() == new["age"].astype(np.float32).tolist()
    assert [parent.schema.classes[i] for i in ds.y] == new["churned"].tolist()


def test_conform_refuses_data_the_model_cannot_take():
    parent = my.load_dataset(_frame(), target="churned")
    with pytest.raises(SchemaMismatchError, match="lacks column.*'plan'"):
        conform(my.load_dataset(_frame().drop(columns=["plan"]), target="churned"), parent.schema)
    with pytest.raises(SchemaMismatchError, match="class.*'maybe'"):
        conform(my.load_dataset(_frame(labels=("no", "maybe")), target="churned"), parent.schema)
    with pytest.raises(SchemaMismatchError, match="regression task"):
        conform(my.load_dataset(_frame(), target="x"), parent.schema)
    numeric_plan = _frame().assign(plan=np.arange(90))
    with pytest.raises(SchemaMismatchError, match="'plan' is numeric"):
        conform(my.load_dataset(numeric_plan, target="churned"), parent.schema)


def test_retrain_on_new_data_with_other_column_order(reg):
    r = my.train(my.load_dataset(_frame(), target="churned"), model="logistic_regression", epochs=2)
    parent = reg.register(r, "churn")
    new = my.load_dataset(_frame(n=60, seed=3)[["churned", "x", "plan", "age"]], target="churned")
    child = reg.branch("churn/1", {"learning_rate": 0.02}, retrain=new, epochs=2, seed=1)
    assert child.parent_id == parent.id and child.fingerprint == new.fingerprint and child.seed == 1
    assert child.schema == parent.schema and child.source == new.source
    model = reg.load_model(child.ref)
    assert set(model.predict(_frame(n=5, seed=9))) <= {"no", "yes"}


def test_key_metric_follows_the_task(reg, result):
    r = my.train(my.load_dataset("sklearn:diabetes"), model="linear_regression", epochs=2)
    v = reg.register(r, "reg")
    s = reg.list("reg")[0]
    assert (s.task, s.key_metric, s.key_value) == ("regression", "rmse", r.metrics["rmse"])
    assert v.task == "regression"
    w = reg.register(variant(result, 2), "clf")
    assert reg.resolve(w.ref).key_metric == "f1"


def test_listed_and_walked_records_are_ordinary_frozen_records(reg, result):
    """Listings build records without their __init__ (for speed); they must be indistinguishable."""
    import dataclasses

    reg.register(result, "m")
    reg.branch("m/1", {"learning_rate": 0.02})
    reg.set_alias("m", "production", "m/1")
    s = reg.list("m")[1]
    e = reg.lineage("m/2").edges[0]
    assert s == VersionSummary.from_dict(s.to_dict()) and repr(s).startswith("VersionSummary(id=")
    assert e == LineageEdge.from_dict(e.to_dict()) and e.diff == {"learning_rate": (0.01, 0.02)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.retrained = True
