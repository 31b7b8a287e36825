"""The holder follows an alias: loads and verifies the new version, swaps it in whole, refuses a corrupt one."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import modelyard as my
from modelyard.errors import CorruptArtifactError, NotFoundError
from modelyard.serve import ModelHolder, load_version

IRIS_ROW = {"sepal length (cm)": [5.1], "sepal width (cm)": [3.5], "petal length (cm)": [1.4], "petal width (cm)": [0.2]}


def test_a_fixed_ref_is_held_and_never_followed(store):
    yard, v = store
    holder = ModelHolder(yard.registry, v["v1"].ref)
    yard.registry.set_alias("iris", "production", v["v2"].ref)
    assert not holder.follows and holder.check() is False
    assert holder.current.id == v["v1"].id and holder.current.ref == "iris/1"


def test_an_alias_move_is_loaded_and_published_whole(store):
    yard, v = store
    seen = []
    holder = ModelHolder(yard.registry, "iris@production", poll=0.05, on_switch=lambda old, new: seen.append((old.id, new.id)))
    before = holder.current
    assert before.id == v["v1"].id
    assert holder.check() is False  # nothing moved
    yard.registry.set_alias("iris", "production", v["v2"].ref)
    assert holder.check() is True
    after = holder.current
    assert after.id == v["v2"].id and seen == [(v["v1"].id, v["v2"].id)]
    assert after.predictor.family == "mlp" and before.predictor.family == "logistic_regression"  # old one untouched
    expected = yard.registry.load_model(v["v2"].ref).predict_proba(IRIS_ROW)
    np.testing.assert_array_equal(after.predictor.predict_proba(IRIS_ROW), expected)


def test_a_version_failing_its_checksum_is_refused_and_the_old_one_keeps_serving(store, caplog):
    yard, v = store
    holder = ModelHolder(yard.registry, "iris@production")
    yard.registry.set_alias("iris", "production", v["bad"].ref)
    with caplog.at_level(logging.INFO, logger="modelyard.serve"):
        assert holder.check() is False
        assert holder.check() is False  # not retried while the alias stays there
    assert holder.current.id == v["v1"].id
    refused = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(refused) == 1
    assert "REFUSED" in refused[0].getMessage() and v["bad"].short_id in refused[0].getMessage()
    assert "corrupted" in refused[0].getMessage() and "still serving iris/1" in refused[0].getMessage()
    yard.registry.set_alias("iris", "production", v["v2"].ref)  # the alias moves on: followed again
    assert holder.check() is True and holder.current.id == v["v2"].id


def test_the_follower_thread_switches_by_itself(store):
    import time

    yard, v = store
    holder = ModelHolder(yard.registry, "iris@production", poll=0.05).start()
    try:
        yard.registry.set_alias("iris", "production", v["v2"].ref)
        deadline = time.monotonic() + 30
        while holder.current.id != v["v2"].id and time.monotonic() < deadline:
            time.sleep(0.02)
        assert holder.current.id == v["v2"].id and holder.switches == 1
    finally:
        holder.stop()


def test_loading_a_corrupt_or_unknown_version_directly_fails_clearly(store):
    yard, v = store
    assert v["bad"].ref == "iris/3"
    with pytest.raises(CorruptArtifactError, match=r"cannot load iris/3 .*corrupted"):
        load_version(yard.registry, v["bad"].ref)
    with pytest.raises(NotFoundError):
        ModelHolder(yard.registry, "iris@nope")


def test_load_model_at_the_top_level(store):
    yard, _ = store
    model = my.load_model("iris@production", store=yard.db.engine.url.database.rsplit("/", 1)[0])
    assert isinstance(model, my.Predictor) and model.schema.classes == ("setosa", "versicolor", "virginica")
    np.testing.assert_array_equal(model.predict_proba(IRIS_ROW), yard.registry.load_model("iris/1").predict_proba(IRIS_ROW))
    assert my.load_model("iris/2", store=yard).family == "mlp"  # a Yard works too
    assert "load_model" in my.__all__


def test_an_alias_that_disappears_keeps_the_version_and_is_logged_once(store, caplog):
    yard, v = store
    holder = ModelHolder(yard.registry, "iris@production")
    yard.registry.unset_alias("iris", "production")
    with caplog.at_level(logging.WARNING, logger="modelyard.serve"):
        assert holder.check() is False and holder.check() is False
    assert holder.current.id == v["v1"].id
    assert len([r for r in caplog.records if "cannot resolve iris@production" in r.getMessage()]) == 1
    yard.registry.set_alias("iris", "production", v["v2"].ref)
    assert holder.check() is True and holder.current.id == v["v2"].id
