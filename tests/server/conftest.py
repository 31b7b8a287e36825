"""A small store shared by the server tests: one study with every trial state, one model with lineage and aliases."""

from __future__ import annotations

import random
import socket
import threading
import time

import pytest

SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
    "layers": {"type": "int", "low": 1, "high": 4},
    "act": {"type": "categorical", "choices": ["relu", "tanh"]},
}


def add_trials(studies, name, n, *, seed=0, states=("complete", "complete", "pruned", "failed"), steps=6):
    """Claim ``n`` trials in ``name``, report intermediate values and finish them cycling through ``states``."""
    from modelyard.records.trials import TrialState

    rng = random.Random(seed)
    numbers = []
    for i in range(n):
        t = studies.claim(name, lambda h: {"lr": 10 ** rng.uniform(-4, 0), "layers": rng.randint(1, 4),
                                           "act": rng.choice(["relu", "tanh"])},
                          budget=None, grace=None, worker="test")
        state = states[i % len(states)]
        last = None
        for s in range(steps if state != "pruned" else 2):
            last = 1.0 / (s + 1) + rng.random() * 0.3
            studies.report(name, t.number, s, last)
        if state == "running":
            numbers.append(t.number)
            continue
        value = None if state == "failed" else (last if state == "pruned" else rng.random())
        studies.finish(name, t.number, TrialState(state), value, "diverged" if state == "failed" else None)
        numbers.append(t.number)
    return numbers


def make_study(yard, name="demo", n=24, direction="minimize"):
    """A study with ``n`` finished trials and two running ones."""
    from modelyard.records.trials import StudyInfo

    yard.studies.create_study(StudyInfo(name=name, direction=direction, space=SPACE, optimizer="random",
                                        pruner="median", seed=0, created_at=0.0))
    add_trials(yard.studies, name, n)
    add_trials(yard.studies, name, 2, seed=99, states=("running",))


@pytest.fixture(scope="session")
def seeded(tmp_path_factory):
    """(yard, folder, refs): a study ``demo`` and a model ``iris-lr`` with versions 1-3, aliases moved and rolled back."""
    import modelyard as my
    import modelyard.store.trials
    import modelyard.store.versions
    from modelyard.yard import Yard

    folder = tmp_path_factory.mktemp("ui")
    yard = Yard(folder / "store")
    make_study(yard)
    ds = my.load_dataset("sklearn:iris")
    reg = yard.registry
    v1 = reg.register(my.train(ds, model="logistic_regression", epochs=3, seed=0), "iris-lr")
    v2 = reg.register(my.train(ds, model="logistic_regression", params={"learning_rate": 0.05}, epochs=3, seed=1),
                      "iris-lr", parent=v1.id)
    v3 = reg.branch(v2.ref, {"weight_decay": 0.001})
    reg.set_alias("iris-lr", "production", v2.ref, reason="first release")
    reg.set_alias("iris-lr", "production", v3.ref, reason="try decay")
    reg.rollback("iris-lr", "production", reason="decay hurt")
    reg.set_alias("iris-lr", "staging", v3.ref)
    (folder / "data").mkdir()
    import numpy as np
    import pandas as pd

    X, y = ds.X, ds.y
    frame = pd.DataFrame(np.asarray(X), columns=ds.feature_names)
    frame["target"] = np.asarray(ds.schema.classes, dtype=object)[np.asarray(y)]  # the labels training saw
    frame.to_csv(folder / "data" / "iris.csv", index=False)
    yield yard, folder, {"v1": v1, "v2": v2, "v3": v3}
    yard.close()


@pytest.fixture
def app_factory(seeded):
    """Build an app over the seeded store with the given security options."""
    from modelyard.server.app import create_app
    from modelyard.server.security import loopback_hosts

    yard, folder, _ = seeded

    def make(**kwargs):
        kwargs.setdefault("data_roots", [folder])
        kwargs.setdefault("allowed_hosts", loopback_hosts())
        return create_app(yard, **kwargs)

    return make


@pytest.fixture
def client(app_factory):
    """A TestClient on a loopback-style app (Host 127.0.0.1)."""
    from fastapi.testclient import TestClient

    with TestClient(app_factory(), base_url="http://127.0.0.1:8765") as c:
        yield c


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving an app on 127.0.0.1 in a background thread."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("the test server did not start within 20 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def tools():
    """The seeding helpers and the live server class, for test modules (tests/ is not a package)."""
    import types

    return types.SimpleNamespace(add_trials=add_trials, make_study=make_study, LiveServer=LiveServer)
