"""Yard: where the store and artifacts live, resolved from arguments, environment and defaults."""

from __future__ import annotations

import pytest

from modelyard.errors import StoreError
from modelyard.yard import Yard


def test_default_is_dot_modelyard_in_the_working_directory(in_tmp, monkeypatch):
    monkeypatch.delenv("MODELYARD_ARTIFACTS", raising=False)
    yard = Yard()
    assert not (in_tmp / ".modelyard").exists()  # constructing touches nothing
    assert yard.url == f"sqlite:///{in_tmp / '.modelyard' / 'modelyard.db'}"
    assert yard.describe() == {"store": yard.url, "artifacts": str(in_tmp / ".modelyard" / "artifacts")}
    assert (in_tmp / ".modelyard" / "modelyard.db").is_file()
    yard.close()


def test_environment_and_argument_precedence(in_tmp, monkeypatch):
    monkeypatch.setenv("MODELYARD_STORE", str(in_tmp / "from-env"))
    assert Yard().url.endswith("from-env/modelyard.db")
    assert Yard(in_tmp / "explicit").url.endswith("explicit/modelyard.db")
    assert Yard("~/somewhere").url == f"sqlite:///{(in_tmp / 'x').home() / 'somewhere' / 'modelyard.db'}"


def test_sqlite_url_keeps_artifacts_next_to_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("MODELYARD_ARTIFACTS", raising=False)
    with Yard(f"sqlite:///{tmp_path / 'reg.db'}") as yard:
        assert yard.artifacts.url == str(tmp_path / "artifacts")
    monkeypatch.setenv("MODELYARD_ARTIFACTS", str(tmp_path / "elsewhere"))
    with Yard(f"sqlite:///{tmp_path / 'reg.db'}") as yard:
        assert yard.artifacts.url == str(tmp_path / "elsewhere")


def test_a_file_is_not_a_store_folder(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StoreError, match="is a file, not a folder"):
        Yard(f).registry  # noqa: B018


def test_bad_storage_options_are_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELYARD_ARTIFACTS_OPTIONS", "{not json")
    with pytest.raises(StoreError, match="MODELYARD_ARTIFACTS_OPTIONS is not valid JSON"):
        Yard(tmp_path / "s").artifacts  # noqa: B018
    monkeypatch.setenv("MODELYARD_ARTIFACTS_OPTIONS", "[1, 2]")
    with pytest.raises(StoreError, match="must be a JSON object"):
        Yard(tmp_path / "s").artifacts  # noqa: B018
    monkeypatch.setenv("MODELYARD_ARTIFACTS_OPTIONS", '{"anon": true}')
    assert Yard(tmp_path / "s").artifacts.storage_options == {"anon": True}


def test_durable_mode_fsyncs_weights_and_commits(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("MODELYARD_DURABLE", "1")
    yard = Yard(tmp_path / "s")
    assert yard.durable and yard.artifacts.fsync
    with yard.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    yard.artifacts.put(b"weights")
    assert len(calls) == 3  # a new pack's folder entry, the bytes, then their index entry
    yard.artifacts.put(b"more weights")
    assert len(calls) == 5  # the bytes, then their index entry
    yard.close()
    assert not Yard(tmp_path / "t", durable=False).durable


def test_empty_store_is_refused():
    with pytest.raises(StoreError, match="store is empty"):
        Yard("  ")
