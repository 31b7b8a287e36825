"""Fixtures shared by the whole suite; folder-specific fixtures live in each folder's conftest.py."""

from __future__ import annotations

import os
import uuid

import pytest


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run the test with the working directory in a fresh temporary folder (so ./.modelyard is private)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODELYARD_STORE", raising=False)
    return tmp_path


@pytest.fixture
def postgres_url():
    """URL of a fresh, empty PostgreSQL database; skipped unless MODELYARD_TEST_POSTGRES names a server."""
    base = os.environ.get("MODELYARD_TEST_POSTGRES")
    if not base:
        pytest.skip("set MODELYARD_TEST_POSTGRES=postgresql+psycopg://... to run PostgreSQL tests (.ci/run does)")
    from sqlalchemy import create_engine, text

    name = "my_" + uuid.uuid4().hex[:12]
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
