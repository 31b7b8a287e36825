"""The store contract suite over every backend: artifact stores (folder, fsspec memory) and registries
(SQLite here; PostgreSQL in test_postgres.py; S3 artifacts in test_s3.py)."""

from __future__ import annotations

import itertools
import uuid

import pytest

from modelyard.store.artifacts import ArtifactStore
from modelyard.testing.stores import artifact_store_checks, registry_checks

REGISTRY_CHECKS = [name for name, _ in registry_checks(lambda: None, result=object())]
ARTIFACT_CHECKS = [name for name, _ in artifact_store_checks(lambda: None)]


@pytest.mark.parametrize("name", REGISTRY_CHECKS)
def test_registry_contract_sqlite(name, make_yard, trained_result):
    checks = dict(registry_checks(lambda: make_yard().registry, result=trained_result))
    checks[name]()


@pytest.mark.parametrize("name", ARTIFACT_CHECKS)
def test_artifact_contract_folder(name, tmp_path):
    counter = itertools.count()
    checks = dict(artifact_store_checks(lambda: ArtifactStore(tmp_path / f"a{next(counter)}")))
    checks[name]()


@pytest.mark.parametrize("name", ARTIFACT_CHECKS)
def test_artifact_contract_fsspec_memory(name):
    """A non-object-store fsspec filesystem: writes go to a temporary key and are moved into place."""
    checks = dict(artifact_store_checks(lambda: ArtifactStore(f"memory://modelyard-test/{uuid.uuid4().hex}")))
    checks[name]()


def test_registry_contract_covers_each_rule():
    assert len(REGISTRY_CHECKS) == len(set(REGISTRY_CHECKS)) >= 15
