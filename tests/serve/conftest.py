"""A store with three versions of ``iris``: two good ones that answer differently and one whose artifact is corrupt."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build_store(folder):
    """(yard, {"v1", "v2", "bad"}): iris logistic regressions 1 and 2, and 3 whose weights fail their checksum."""
    import modelyard as my
    import modelyard.store.versions
    from modelyard.testing.results import overwrite_artifact
    from modelyard.yard import Yard

    yard = Yard(folder)
    ds = my.load_dataset("sklearn:iris")
    reg = yard.registry
    v1 = reg.register(my.train(ds, model="logistic_regression", epochs=2, seed=0), "iris")
    v2 = reg.register(my.train(ds, model="mlp", params={"hidden_sizes": (8,)}, epochs=4, seed=1), "iris")
    bad = reg.register(my.train(ds, model="logistic_regression", epochs=3, seed=2), "iris")
    data = yard.artifacts.get(bad.artifact)
    overwrite_artifact(yard.artifacts, bad.artifact, data[:-1] + bytes([data[-1] ^ 0xFF]))
    reg.set_alias("iris", "production", v1.ref)
    return yard, {"v1": v1, "v2": v2, "bad": bad}


@pytest.fixture
def store(tmp_path):
    yard, versions = build_store(tmp_path / "store")
    yield yard, versions
    yard.close()
