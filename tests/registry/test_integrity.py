"""Every byte a prediction depends on is verified: the weights by their sha256, the rest by the config digest.

The stored record of a version (schema with its categories and class labels, hyperparameters,
model config, family, artifact digest) is what a rebuild reads besides the weights; changing
any of it in the database must make ``load_model`` refuse, with the same kind of "corrupted,
restore from a backup" sentence as a damaged weights file.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modelyard as my
from modelyard.errors import CorruptArtifactError
from modelyard.store import migrations
from modelyard.store.version_tables import rebuild_digest
from modelyard.yard import Yard


def _frame(n=120, seed=0):
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro"], n)
    x = rng.normal(size=n)
    return pd.DataFrame({"plan": plan, "x": x, "churned": np.where(x + (plan == "basic") > 0.3, "yes", "no")})


@pytest.fixture(scope="module")
def result():
    import torch

    torch.set_num_threads(1)
    return my.train(my.load_dataset(_frame(), target="churned"), model="logistic_regression", epochs=2)


@pytest.fixture
def store(tmp_path, result):
    with Yard(tmp_path / "store") as yard:
        v = yard.registry.register(result, "churn")
    return tmp_path / "store", v


def _sql(store, sql, *args):
    con = sqlite3.connect(store / "modelyard.db")
    try:
        rows = con.execute(sql, args).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


def _payload(store, vid):
    return _sql(store, "SELECT payload FROM model_version_data WHERE id = ?", vid)[0][0]


def _set_payload(store, vid, payload):
    _sql(store, "UPDATE model_version_data SET payload = ? WHERE id = ?", payload, vid)


def _load(store, ref):
    with Yard(store) as yard:
        return yard.registry.load_model(ref)


def test_a_stored_version_carries_the_digest_of_what_its_rebuild_reads(store):
    path, v = store
    with Yard(path) as yard:
        got = yard.registry.get(v.ref)
    assert got.config_digest == v.config_digest == rebuild_digest(got)
    _load(path, v.ref).predict(_frame(5))


@pytest.mark.parametrize("section, old, new", [
    ("data_schema", '"plus"', '"plut"'),  # a category name
    ("data_schema", '"yes"', '"yep"'),  # a class label
    ("data_schema", '"categorical"', '"numerical"'),  # how a column is encoded
    ("params", '"learning_rate":0.01', '"learning_rate":0.02'),  # a hyperparameter
    ("model_config", '"format":1', '"format":2'),  # the model config
])
def test_a_one_byte_change_in_the_stored_record_is_refused_like_a_bad_artifact(store, section, old, new):
    path, v = store
    payload = _payload(path, v.id)
    at = payload.index(f'"{section}":')
    assert old in payload[at:]
    _set_payload(path, v.id, payload[:at] + payload[at:].replace(old, new, 1))
    with pytest.raises(CorruptArtifactError) as e:
        _load(path, v.ref)
    msg = str(e.value)
    assert v.ref in msg and v.short_id in msg and "corrupted" in msg and "restore" in msg and "backup" in msg


@pytest.mark.parametrize("column, value", [("family", "mlp"), ("artifact", "0" * 64), ("config_digest", None)])
def test_a_changed_family_artifact_or_digest_column_is_refused(store, column, value):
    path, v = store
    _sql(path, f"UPDATE model_versions SET {column} = ? WHERE id = ?", value, v.id)
    with pytest.raises(CorruptArtifactError, match="corrupted.*restore"):
        _load(path, v.ref)


def test_a_record_whose_json_no_longer_parses_is_named_damaged(store):
    path, v = store
    _set_payload(path, v.id, _payload(path, v.id)[:-7])
    with Yard(path) as yard, pytest.raises(CorruptArtifactError, match=f"record of version {v.short_id} is damaged"):
        yard.registry.get(v.ref)


def test_what_a_rebuild_does_not_read_may_change(store):
    path, v = store  # metrics and history are shown, not used by a prediction
    payload = _payload(path, v.id)
    _set_payload(path, v.id, payload.replace('"metrics":{', '"metrics":{"note":1,', 1))
    _load(path, v.ref)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_single_character_change_in_the_stored_record_never_changes_a_prediction_silently(store, data):
    """Refused, or the rebuild reads exactly what it read before (e.g. a renamed key whose default is the value)."""
    path, v = store
    payload = _payload(path, v.id)
    start = payload.index('"params":')
    pos = data.draw(st.integers(start, len(payload) - 1), label="position")
    char = data.draw(st.characters(min_codepoint=32, max_codepoint=126).filter(lambda c: c != payload[pos]))
    before = _load(path, v.ref)
    _set_payload(path, v.id, payload[:pos] + char + payload[pos + 1:])
    rows = _frame(40, seed=1)
    try:
        after = _load(path, v.ref)
    except CorruptArtifactError:
        return
    finally:
        _set_payload(path, v.id, payload)
    assert after.config() == before.config()
    np.testing.assert_array_equal(after.predict(rows), before.predict(rows))


def test_a_version_2_store_gets_digests_for_its_versions_and_then_checks_them(tmp_path, result):
    path = tmp_path / "store"
    with Yard(path) as yard:
        a = yard.registry.register(result, "churn")
        b = yard.registry.branch(a.ref, {"learning_rate": 0.05})
    _sql(path, "ALTER TABLE model_versions DROP COLUMN config_digest")  # what a release before it wrote
    _sql(path, "UPDATE schema_info SET value = '2' WHERE key = 'schema_version'")
    with Yard(path) as yard:
        for ref, digest in ((a.ref, a.config_digest), (b.ref, b.config_digest)):
            assert yard.registry.get(ref).config_digest == digest
            yard.registry.load_model(ref)
    assert _sql(path, "SELECT value FROM schema_info WHERE key = 'schema_version'")[0][0] == str(
        migrations.SCHEMA_VERSION)
    _set_payload(path, b.id, _payload(path, b.id).replace('"plus","pro"', '"plux","pro"', 1))
    with pytest.raises(CorruptArtifactError, match="corrupted"):
        _load(path, b.ref)
    _load(path, a.ref)


@pytest.mark.parametrize("family, data, params", [
    ("mlp", "sklearn:iris", {"hidden_sizes": (8, 4), "learning_rate": 1e-05}),  # a tuple, a small float
    ("random_forest", "sklearn:wine", {"n_estimators": 3, "max_depth": None, "n_jobs": 1}),  # None
    ("linear_regression", "sklearn:diabetes", None),  # no classes
])
def test_the_digest_written_at_registration_is_the_one_every_load_computes(tmp_path, family, data, params):
    import torch

    torch.set_num_threads(1)
    result = my.train(my.load_dataset(data), model=family, params=params, epochs=1)
    with Yard(tmp_path / "store") as yard:
        v = yard.registry.register(result, "m")
        branched = yard.registry.branch(v.ref, {"n_jobs": 1} if family == "random_forest" else {})
    with Yard(tmp_path / "store") as yard:
        for ref in (v.ref, branched.ref):
            got = yard.registry.get(ref)
            assert got.config_digest == rebuild_digest(got)
            yard.registry.load_model(ref)
