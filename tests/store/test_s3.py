"""Artifacts on S3-compatible object storage, against moto's server on 127.0.0.1 (through s3fs)."""

from __future__ import annotations

import uuid

import pytest

from modelyard.store.artifacts import ArtifactStore
from modelyard.testing.stores import artifact_store_checks
from modelyard.yard import Yard

ARTIFACT_CHECKS = [name for name, _ in artifact_store_checks(lambda: None)]


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 with one bucket; yields its endpoint URL."""
    import os

    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    import s3fs

    s3fs.S3FileSystem(endpoint_url=endpoint).mkdir("modelyard-test")
    yield endpoint
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.mark.parametrize("name", ARTIFACT_CHECKS)
def test_artifact_contract_s3(name, s3_endpoint):
    def make():
        return ArtifactStore(f"s3://modelyard-test/{uuid.uuid4().hex}?endpoint_url={s3_endpoint}")

    dict(artifact_store_checks(make))[name]()


def test_registry_with_s3_artifacts_end_to_end(s3_endpoint, tmp_path, trained_result, monkeypatch):
    """Register into SQLite + S3, branch (no bytes copied), load back; options come from the environment."""
    import numpy as np

    prefix = f"s3://modelyard-test/{uuid.uuid4().hex}"
    monkeypatch.setenv("MODELYARD_ARTIFACTS", prefix)
    monkeypatch.setenv("MODELYARD_ARTIFACTS_OPTIONS", f'{{"endpoint_url": "{s3_endpoint}"}}')
    with Yard(f"sqlite:///{tmp_path / 'reg.db'}") as yard:
        reg = yard.registry
        assert reg.artifacts.url == prefix
        v = reg.register(trained_result, "m")
        b = reg.branch("m/1", {"learning_rate": 0.02})
        assert b.artifact == v.artifact and len(list(reg.artifacts.digests())) == 1
        X = np.zeros((3, len(trained_result.schema.columns)), dtype=np.float32)
        assert np.array_equal(reg.load_model("m/2").predict(X), trained_result.model.predict(X))


def test_unreachable_object_store_is_one_clear_error(tmp_path, trained_result):
    from modelyard.errors import ArtifactError

    with Yard(tmp_path / "s", artifacts="s3://bucket/p?endpoint_url=http://127.0.0.1:1", storage_options={
        "config_kwargs": {"connect_timeout": 1, "read_timeout": 1, "retries": {"max_attempts": 1}}}) as yard:
        with pytest.raises(ArtifactError, match=r"cannot write artifact .* to s3://bucket/p"):
            yard.registry.register(trained_result, "m")
        assert yard.registry.count() == 0  # nothing half-registered


@pytest.mark.parametrize("reuse", [False, True], ids=["new-blob", "reused-blob"])
def test_a_gc_between_the_object_and_the_row_cannot_lose_the_weights(s3_endpoint, tmp_path, trained_result, reuse):
    """On object storage as on a folder: a gc that removes the object after put, before the row, is survived."""
    prefix = f"s3://modelyard-test/{uuid.uuid4().hex}?endpoint_url={s3_endpoint}"
    with Yard(f"sqlite:///{tmp_path / 'reg.db'}", artifacts=prefix) as yard:
        reg = yard.registry
        if reuse:  # the object is there (and listed, so cached by s3fs), unreferenced
            reg.delete(reg.register(trained_result, "m").ref)
            assert [d for d, _ in reg.artifacts.digests()]
        put = reg.artifacts.put
        collected = []

        def put_then_collect(data):
            digest = put(data)
            collected.append(reg.gc(older_than=0) if not collected else [])
            return digest

        reg.artifacts.put = put_then_collect
        v = reg.register(trained_result, "m")
        reg.artifacts.put = put
        assert collected == [[v.artifact], []]  # removed once, so written again before the row
        reg.load_model(v.ref)
        assert reg.gc(older_than=0) == []
