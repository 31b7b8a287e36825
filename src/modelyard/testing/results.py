"""Registrable results without training, and the worker of the multi-process store tests.

``sample_result`` trains a tiny model once (cached); ``variant`` derives results with their own
weights from it cheaply; ``save_result``/``load_result`` move one to another process (JSON and
safetensors); ``register_many`` (also ``python -m modelyard.testing.results``) registers variants
of a saved result in a loop; ``overwrite_artifact`` damages stored bytes on purpose.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..records.training import FitConfig
from ..schema import Schema

__all__ = [
    "StaticModel",
    "load_result",
    "overwrite_artifact",
    "register_many",
    "sample_result",
    "save_result",
    "temp_store",
    "variant",
]

class StaticModel:
    """Fixed hyperparameters and weights standing in for a fitted model of some family (for registering only)."""

    def __init__(self, params: Mapping[str, Any], state: Mapping[str, Any], encoding: str = "onehot"):
        self._params = dict(params)
        self._state = {k: np.asarray(v) for k, v in state.items()}
        self.encoding = encoding

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters."""
        return dict(self._params)

    def state(self) -> dict[str, Any]:
        """The weights."""
        return dict(self._state)


def sample_result(family: str = "logistic_regression", *, seed: int = 0, epochs: int = 2) -> Any:
    """A real TrainResult: ``family`` trained briefly on iris (imports torch for torch families)."""
    from ..data import load_dataset
    from ..train import train

    params = {"n_estimators": 4, "n_jobs": 1} if family == "random_forest" else None
    return train(load_dataset("sklearn:iris"), model=family, params=params, epochs=epochs, seed=seed)


def variant(result: Any, k: int) -> Any:
    """``result`` with every float weight shifted by ``k * 1e-3``: a distinct artifact, still loadable by the family."""
    from ..models.predictor import Predictor

    model = result.model
    state = {}
    for name, arr in model.state().items():
        arr = np.asarray(arr)
        state[name] = arr + np.asarray(k * 1e-3, dtype=arr.dtype) if arr.dtype.kind == "f" and "scaling" not in name else arr
    static = StaticModel(model.get_params(), state, getattr(model.model, "encoding", "onehot"))
    return replace(result, model=Predictor(model.family, static, model.schema))


def save_result(result: Any, path: str | os.PathLike[str]) -> None:
    """Write a TrainResult's record and weights to one JSON file (for worker processes)."""
    data = {
        "family": result.family, "params": result.model.get_params(), "schema": result.schema.to_dict(),
        "encoding": getattr(result.model.model, "encoding", "onehot"),
        "state": {k: {"dtype": str(np.asarray(v).dtype), "shape": list(np.shape(v)), "values": np.asarray(v).ravel().tolist()}
                  for k, v in result.model.state().items()},
        "config": result.config.to_dict(), "metrics": result.metrics, "fingerprint": result.fingerprint,
        "seed": result.seed, "library_versions": result.library_versions, "split": result.split, "source": result.source,
    }
    Path(path).write_text(json.dumps(data))


def load_result(path: str | os.PathLike[str]) -> Any:
    """Inverse of ``save_result`` (the model is a StaticModel: registrable without the family's libraries)."""
    from ..models.predictor import Predictor
    from ..train.result import TrainResult

    d = json.loads(Path(path).read_text())
    state = {k: np.asarray(v["values"], dtype=v["dtype"]).reshape(v["shape"]) for k, v in d["state"].items()}
    schema = Schema.from_dict(d["schema"])
    model = Predictor(d["family"], StaticModel(d["params"], state, d["encoding"]), schema)
    return TrainResult(
        model=model, family=d["family"], params=d["params"], config=FitConfig.from_dict(d["config"]),
        metrics=d["metrics"], history=[], schema=schema, fingerprint=d["fingerprint"], seed=d["seed"],
        library_versions=d["library_versions"], split=d["split"], source=d["source"],
    )


def register_many(store: str, name: str, count: int, result_path: str, worker: int,
                  artifacts: str | None = None) -> None:
    """Register ``count`` variants of the saved result under ``name`` (``count`` < 0: until killed); prints each ref."""
    from ..yard import Yard

    base = load_result(result_path)
    with Yard(store, artifacts=artifacts) as yard:
        reg = yard.registry
        i = 0
        while count < 0 or i < count:
            v = reg.register(variant(base, worker * 100_000 + i), name, tags={"worker": str(worker), "i": str(i)})
            sys.stdout.write(f"{v.ref}\n")
            sys.stdout.flush()
            i += 1


def overwrite_artifact(store: Any, digest: str, data: bytes) -> None:
    """Replace the stored bytes of ``digest`` in place (to simulate corruption in tests)."""
    if store._local:
        where = store.locate(digest)
        if where.offset == 0 and where.length == where.path.stat().st_size:  # a file of its own
            where.path.write_bytes(data)
        else:  # a range inside a pack
            assert len(data) == where.length, "a packed blob can only be overwritten with as many bytes"
            with open(where.path, "r+b") as f:
                f.seek(where.offset)
                f.write(data)
    else:
        store._filesystem().pipe_file(store._key(digest), data)


def temp_store() -> str:
    """A fresh folder for a throwaway store (the caller removes it)."""
    return tempfile.mkdtemp(prefix="modelyard-store-")


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m modelyard.testing.results", description="test worker")
    p.add_argument("store")
    p.add_argument("name")
    p.add_argument("count", type=int, help="registrations (< 0: until killed)")
    p.add_argument("result", help="a file written by save_result")
    p.add_argument("worker", type=int)
    p.add_argument("--artifacts", default=None)
    a = p.parse_args(argv)
    register_many(a.store, a.name, a.count, a.result, a.worker, artifacts=a.artifacts)
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a subprocess by the tests
    sys.exit(_main())
