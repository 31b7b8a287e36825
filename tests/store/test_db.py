"""The database layer: URLs, schema versions and migrations, snapshot reads, error mapping."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import Column, Integer, String, Table, select, text

from modelyard.errors import StoreError
from modelyard.store import db as dbmod
from modelyard.store import migrations
from modelyard.store.db import Database, normalize_url, schema_info


def _url(tmp_path, name="s.db"):
    return f"sqlite:///{tmp_path / name}"


def _version(url):
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return con.execute("select value from schema_info where key='schema_version'").fetchone()[0]
    finally:
        con.close()


def test_new_store_gets_tables_and_schema_version(tmp_path):
    db = Database(_url(tmp_path)).open()
    assert _version(db.url) == str(dbmod.SCHEMA_VERSION)
    with db.engine.connect() as conn:
        names = set(db.engine.dialect.get_table_names(conn))
        assert {"schema_info", "model_versions", "model_names", "model_lineage", "model_aliases"} <= names
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 60_000
    db.open()  # opening again is a no-op
    db.dispose()


def test_newer_store_is_refused_with_the_fix(tmp_path):
    db = Database(_url(tmp_path)).open()
    with db.transaction() as conn:
        conn.execute(schema_info.update().values(value=str(dbmod.SCHEMA_VERSION + 1)))
    with pytest.raises(StoreError, match=r"newer than this modelyard's .*pip install -U modelyard"):
        Database(db.url).open()


def test_older_store_without_migration_says_what_to_do(tmp_path):
    db = Database(_url(tmp_path)).open()
    with db.transaction() as conn:
        conn.execute(schema_info.update().values(value="0"))
    with pytest.raises(StoreError, match=r"schema version 0 and this modelyard has no migration"):
        Database(db.url).open()


def test_migration_runs_step_by_step_in_one_transaction(tmp_path, monkeypatch):
    """A store at version N opened by a modelyard at version N + 2 runs MIGRATIONS[N] then [N + 1]."""
    url = _url(tmp_path)
    Database(url).open().dispose()
    now = dbmod.SCHEMA_VERSION
    extra = Table("migrated_example", dbmod.metadata, Column("id", Integer, primary_key=True), Column("v", String(8)))
    ran = []

    def step1(conn):
        ran.append(1)
        conn.execute(text("CREATE TABLE step1_table (x INTEGER)"))

    def step2(conn):
        ran.append(2)
        conn.execute(text("INSERT INTO step1_table VALUES (42)"))

    try:
        monkeypatch.setattr(migrations, "SCHEMA_VERSION", now + 2)
        monkeypatch.setattr(migrations, "MIGRATIONS", {now: step1, now + 1: step2})
        db = Database(url).open()
        assert ran == [1, 2] and _version(url) == str(now + 2)
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT x FROM step1_table")).scalar() == 42
            assert conn.execute(select(extra)).all() == []  # new tables are created too
        db.dispose()
    finally:
        dbmod.metadata.remove(extra)


def test_failed_migration_changes_nothing(tmp_path, monkeypatch):
    url = _url(tmp_path)
    Database(url).open().dispose()

    def broken(conn):
        conn.execute(text("CREATE TABLE half_done (x INTEGER)"))
        raise RuntimeError("migration bug")

    now = dbmod.SCHEMA_VERSION
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", now + 1)
    monkeypatch.setattr(migrations, "MIGRATIONS", {now: broken})
    with pytest.raises(RuntimeError, match="migration bug"):
        Database(url).open()
    assert _version(url) == str(now)
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    assert con.execute("select name from sqlite_master where name='half_done'").fetchone() is None
    con.close()


@pytest.mark.parametrize(
    "url, needle",
    [
        ("nosuchdb://x/y", "bad store URL"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("mysql+nosuchdriver://u@h/d", "bad store URL"),
    ],
)
def test_bad_urls_are_one_clear_error(url, needle):
    with pytest.raises(StoreError, match=needle):
        Database(url)


def test_unreachable_database_is_one_clear_error():
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/nothing?connect_timeout=2")
    with pytest.raises(StoreError, match=r"cannot use the database at .*127\.0\.0\.1:1.*check the URL"):
        db.open()
    with pytest.raises(StoreError, match="127.0.0.1:1"):
        db.ping()


def test_unwritable_sqlite_path_is_one_clear_error(tmp_path):
    with pytest.raises(StoreError, match="cannot use the database"):
        Database(f"sqlite:///{tmp_path}/no/such/folder/x.db").open()


def test_postgres_urls_use_psycopg3():
    assert normalize_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    assert Database("postgresql://u:secret@h/d").safe_url == "postgresql+psycopg://u:***@h/d"


def test_reads_do_not_wait_for_a_writer(tmp_path):
    """A snapshot read proceeds while another connection holds the write lock (WAL + deferred BEGIN)."""
    db = Database(_url(tmp_path)).open()
    db.set_default_setting("k", "v1")
    holding, release = threading.Event(), threading.Event()

    def writer(conn):
        conn.execute(schema_info.update().where(schema_info.c.key == "k").values(value="v2"))
        holding.set()
        release.wait(10)

    t = threading.Thread(target=db.run, args=(writer,))
    t.start()
    assert holding.wait(10)
    try:
        assert db.get_setting("k") == "v1"  # the committed snapshot, immediately
    finally:
        release.set()
        t.join()
    assert db.get_setting("k") == "v2"
    assert db.set_default_setting("k", "other") == "v2"  # first value wins
    db.dispose()


def test_run_retries_lock_conflicts(tmp_path, monkeypatch):
    db = Database(_url(tmp_path)).open()
    calls = []

    def flaky(conn):
        calls.append(1)
        if len(calls) < 3:
            from sqlalchemy.exc import OperationalError

            raise OperationalError("stmt", {}, sqlite3.OperationalError("database is locked"))
        return "done"

    assert db.run(flaky) == "done" and len(calls) == 3

    def always_locked(conn):
        from sqlalchemy.exc import OperationalError

        raise OperationalError("stmt", {}, sqlite3.OperationalError("database is locked"))

    with pytest.raises(StoreError, match="stayed locked"):
        db.run(always_locked, retries=2)
    db.dispose()


def test_a_version_1_store_gets_the_parent_copy_and_keeps_every_version(tmp_path):
    """Version 2 copies each version's parent into ``model_versions``; a version 1 store is migrated in place."""
    from modelyard.testing.results import sample_result, variant
    from modelyard.yard import Yard

    with Yard(tmp_path / "s") as yard:
        reg = yard.registry
        root = reg.register(sample_result(), "m")
        child = reg.register(variant(sample_result(), 1), "m", parent=root.id)
        reg.register(variant(sample_result(), 2), "m", parent=child.id)
        before = reg.list("m")
    con = sqlite3.connect(tmp_path / "s" / "modelyard.db")  # turn it back into a version 1 store
    con.execute("ALTER TABLE model_versions DROP COLUMN parent_id")
    con.execute("UPDATE schema_info SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with Yard(tmp_path / "s") as yard:
        assert yard.registry.list("m") == before and [v.parent_id for v in before] == [child.id, root.id, None]
        assert yard.registry.lineage("m/3").ancestors[-1].id == root.id
    assert _version(f"sqlite:///{tmp_path / 's' / 'modelyard.db'}") == str(dbmod.SCHEMA_VERSION)
