"""The registry contract on PostgreSQL (same code as SQLite, by URL), plus PostgreSQL-only behaviour."""

from __future__ import annotations

import threading

import pytest

from modelyard.testing.stores import registry_checks
from modelyard.yard import Yard

pytestmark = pytest.mark.postgres

CHECKS = [name for name, _ in registry_checks(lambda: None, result=object())]


@pytest.fixture
def pg_yard(postgres_url, tmp_path):
    yard = Yard(postgres_url, artifacts=tmp_path / "artifacts")
    yield yard
    yard.close()


@pytest.mark.parametrize("name", CHECKS)
def test_registry_contract_postgres(name, pg_yard, trained_result):
    made = []

    def make():
        assert not made, "each PostgreSQL check gets one fresh database"
        made.append(1)
        return pg_yard.registry

    dict(registry_checks(make, result=trained_result))[name]()


def test_artifact_location_is_remembered_by_the_database(postgres_url, tmp_path, trained_result, monkeypatch):
    """The first explicit artifacts location is recorded, so other machines sharing the database find it."""
    monkeypatch.delenv("MODELYARD_ARTIFACTS", raising=False)
    with Yard(postgres_url, artifacts=tmp_path / "shared") as first:
        v = first.registry.register(trained_result, "m")
    with Yard(postgres_url) as second:  # no artifacts given
        assert second.artifacts.url == str(tmp_path / "shared")
        second.registry.load_model(v.ref)


def test_concurrent_rollbacks_each_move_one_step(pg_yard, trained_result):
    """Row locks serialize rollbacks: two at once end two steps back, never both at the same parent."""
    from modelyard.testing.results import variant

    reg = pg_yard.registry
    v = [reg.register(trained_result, "m")]
    for i in range(3):
        v.append(reg.register(variant(trained_result, i + 1), "m", parent=v[-1].id))
    reg.set_alias("m", "production", "m/4")
    barrier = threading.Barrier(2)
    moves = []

    def roll():
        r = Yard(pg_yard.url, artifacts=pg_yard.artifacts.url).registry
        barrier.wait()
        moves.append(r.rollback("m"))

    threads = [threading.Thread(target=roll) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted((m.from_ref, m.to_ref) for m in moves) == [("m/3", "m/2"), ("m/4", "m/3")]
    assert reg.resolve("m@production").ref == "m/2"


def test_a_version_1_store_migrates_on_postgres(postgres_url, tmp_path, trained_result):
    """Schema 1 -> 2 (each version row gets its parent) runs on PostgreSQL as on SQLite, keeping every version."""
    from sqlalchemy import create_engine, text

    from modelyard.store import db as dbmod
    from modelyard.testing.results import variant

    with Yard(postgres_url, artifacts=tmp_path / "a") as yard:
        root = yard.registry.register(trained_result, "m")
        child = yard.registry.register(variant(trained_result, 1), "m", parent=root.id)
        before = yard.registry.list("m")
    engine = create_engine(postgres_url)
    with engine.begin() as conn:  # turn it back into a version 1 store
        conn.execute(text("ALTER TABLE model_versions DROP COLUMN parent_id"))
        conn.execute(text("UPDATE schema_info SET value = '1' WHERE key = 'schema_version'"))
    with Yard(postgres_url, artifacts=tmp_path / "a") as yard:
        assert yard.registry.list("m") == before and [v.parent_id for v in before] == [root.id, None]
        assert yard.registry.get(child.ref).parent_id == root.id
    with engine.connect() as conn:
        version = conn.execute(text("SELECT value FROM schema_info WHERE key = 'schema_version'")).scalar()
    engine.dispose()
    assert version == str(dbmod.SCHEMA_VERSION)
