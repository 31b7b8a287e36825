"""``modelyard tune --trial-timeout`` and ``--timeout`` with a model whose training hangs, through a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

STALLING_MODEL = textwrap.dedent('''
    """A nearest-centroid classifier whose fit hangs when its ``stall`` hyperparameter is above 0.5."""
    import time

    import numpy as np

    from modelyard.models import Param, ParamSpec
    from modelyard.schema import Task


    class Stalling:
        tasks = (Task.CLASSIFICATION,)
        params = ParamSpec((Param("stall", float, 0.0, low=0.0, high=1.0, help="above 0.5: fit never returns"),))

        def __init__(self, *, task=Task.CLASSIFICATION, n_classes=0, **params):
            self.task, self.n_classes = Task(task), n_classes
            self.hparams = self.params.validate(params, "Stalling")
            self.centroids_ = None

        def fit(self, X, y, *, eval_set=None, config=None, callbacks=()):
            if self.hparams["stall"] > 0.5:
                time.sleep(3600)
            self.centroids_ = np.stack([X[y == c].mean(axis=0) for c in range(self.n_classes)])
            return self

        def predict(self, X):
            return ((X[:, None, :] - self.centroids_[None]) ** 2).sum(axis=2).argmin(axis=1)

        def get_params(self):
            return dict(self.hparams)

        def state(self):
            return {"centroids": self.centroids_}

        @classmethod
        def from_state(cls, params, state, *, task, n_classes=0):
            self = cls(task=task, n_classes=n_classes, **params)
            self.centroids_ = np.asarray(state["centroids"])
            return self
''')


@pytest.fixture
def root(tmp_path):
    (tmp_path / "stalling_model.py").write_text(STALLING_MODEL)
    (tmp_path / "space.yaml").write_text("stall: {type: float, low: 0.0, high: 1.0}\n")
    return tmp_path


def _tune(root, *args, timeout=240):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    env.pop("MODELYARD_STORE", None)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "modelyard", "tune", "sklearn:iris", "--model", "stalling_model:Stalling",
                        "--space", "space.yaml", "--optimizer", "random", "--pruner", "none", "--epochs", "1",
                        "--store", str(root / "store"), "--study", "s", *args],
                       cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return r, time.monotonic() - t0


def _trials(root):
    from modelyard.yard import Yard

    with Yard(root / "store") as yard:
        return yard.studies.trials("s")


def test_trial_timeout_ends_hung_trials_and_the_search_goes_on(root):
    r, _ = _tune(root, "--trials", "6", "--workers", "2", "--trial-timeout", "2s", "--json", "--no-register")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    trials = _trials(root)
    hung = [t for t in trials if t.params["stall"] > 0.5]
    assert len(trials) == 6 and hung and len(hung) < 6
    assert all(t.state.value == "failed" and t.reason.startswith("timed out after 2 s") for t in hung)
    assert all(t.state.value == "complete" for t in trials if t.params["stall"] <= 0.5)
    assert out["best_trial"]["params"]["stall"] <= 0.5 and out["failed_workers"] == 0


@pytest.mark.slow
def test_timeout_ends_the_search_even_when_every_trial_hangs(root):
    (root / "space.yaml").write_text("stall: {type: float, low: 0.6, high: 1.0}\n")  # every trial hangs
    # long enough for the workers to start on a loaded machine (they count from the command's start)
    r, elapsed = _tune(root, "--trials", "4", "--workers", "1", "--timeout", "25s")
    assert elapsed < 150  # it used to never end
    assert r.returncode == 2 and "has no complete trial" in r.stderr and "timeout expired" in r.stderr, r.stderr
    trials = _trials(root)
    assert trials and all(t.state.value == "failed" and "the study's timeout expired" in t.reason for t in trials)
