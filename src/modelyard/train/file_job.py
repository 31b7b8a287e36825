"""``modelyard train`` on a file, as plain data: one job that a process runs as a rank, or launches on N ranks.

``FileJob`` is the whole configuration (JSON-safe), so the CLI and the rank worker call the same
function of this layer and no rank re-enters the CLI: ``run_file`` trains as one rank of the
environment's run (a single process, or a rank under torchrun); ``launch_file`` starts N local
ranks, streams rank 0's epoch logs and announcement to the caller's callbacks, and rebuilds rank
0's ``TrainResult`` here, where the caller registers it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TrainingError
from ..records.jsonsafe import jsonable
from ..records.training import EpochLog, FitConfig
from ..schema import Schema
from .distributed import DEFAULT_TIMEOUT, RankContext
from .result import TrainResult
from .shards import RankData

__all__ = ["FileJob", "announcement", "launch_file", "run_file"]

Callback = Callable[[EpochLog], bool | None]


@dataclasses.dataclass(frozen=True)
class FileJob:
    """Everything ``modelyard train`` needs to train one family on one file, data-parallel or not."""

    source: str
    model: str
    params: dict[str, Any]
    config: FitConfig
    target: str | None = None
    task: str | None = None
    drop_missing: bool = False
    val_size: float = 0.15
    test_size: float = 0.2
    aggregate: str = "gradient"
    sync_every: int = 8
    checkpoint_every: int | None = None
    checkpoint_dir: str | None = None
    resume: bool = False
    timeout: float = DEFAULT_TIMEOUT

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (what a launched rank receives)."""
        d = dataclasses.asdict(self)
        d["config"] = self.config.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FileJob:
        """Inverse of ``to_dict``."""
        return cls(**{**d, "config": FitConfig.from_dict(d["config"])})


def announcement(model: str, data: RankData, ctx: RankContext) -> str:
    """The one line a run starts with: family, source, rows, features, task, and how it is spread."""
    how = f"{ctx.world_size} ranks ({ctx.backend}), {ctx.threads} thread(s) each" if ctx.world_size > 1 else "1 process"
    read = ", each reading only its shard" if data.sharded_read and ctx.world_size > 1 else ""
    return (f"{model} on {data.source}: {data.rows} rows, {len(data.schema.columns)} features, "
            f"{data.schema.task.value}; {how}{read}")


def run_file(
    job: FileJob, *, callbacks: Sequence[Callback] = (), announce: Callable[[str], None] | None = None,
) -> TrainResult | None:
    """Train as one rank of the environment's run; rank 0 gets the result, other ranks None."""
    from .dist_fit import train_file

    def on_data(data: RankData, ctx: RankContext) -> None:
        if announce is not None:
            announce(announcement(job.model, data, ctx))

    return train_file(
        job.source, job.model, job.params, job.config, target=job.target, task=job.task,
        drop_missing=job.drop_missing, val_size=job.val_size, test_size=job.test_size, aggregate=job.aggregate,
        sync_every=job.sync_every, checkpoint_every=job.checkpoint_every, checkpoint_dir=job.checkpoint_dir,
        resume=job.resume, timeout=job.timeout, callbacks=callbacks, announce=on_data,
    )


def launch_file(
    job: FileJob, *, nodes: int, threads: int | None = None, callbacks: Sequence[Callback] = (),
    announce: Callable[[str], None] | None = None,
) -> TrainResult:
    """Run ``job`` on ``nodes`` local ranks under the launcher's supervision; rank 0's result, rebuilt here."""
    import tempfile

    from .launch import launch

    with tempfile.TemporaryDirectory(prefix="modelyard-run-") as tmp:
        launch("modelyard.train.file_job:_rank", job.to_dict(), nodes=nodes, timeout=job.timeout, threads=threads,
               run_dir=tmp, callbacks=callbacks, on_announce=announce)
        return load_result(Path(tmp))


def _rank(payload: Mapping[str, Any]) -> None:
    """Worker target of ``launch_file``: train as this rank; rank 0 writes its result into the run folder."""
    from .distributed import DistEnv
    from .launch import announce, control_callback

    job = FileJob.from_dict(payload)
    remote = control_callback()
    result = run_file(job, callbacks=[remote] if remote is not None else [], announce=announce)
    if result is not None and DistEnv.from_env().rank == 0:
        save_result(Path(os.environ["MODELYARD_RUN_DIR"]), result)


# --- rank 0's result through the run folder: JSON and safetensors, never pickle --------------------------------

_RESULT = "result.json"
_WEIGHTS = "model.safetensors"



def save_result(run_dir: Path, result: TrainResult) -> None:
    """Write ``result`` (predictor config and weights, metrics, provenance) into ``run_dir``, atomically."""
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in result.model.state().items()}, str(run_dir / _WEIGHTS))
    body = {**result.to_dict(), "predictor": result.model.config()}
    tmp = run_dir / (_RESULT + ".tmp")
    tmp.write_text(json.dumps(jsonable(body)))
    os.replace(tmp, run_dir / _RESULT)


def load_result(run_dir: Path) -> TrainResult:
    """Inverse of ``save_result``."""
    from safetensors.numpy import load_file

    from ..models.predictor import Predictor

    path = run_dir / _RESULT
    if not path.is_file():
        raise TrainingError("rank 0 finished without a result; rerun with --debug and report it")
    d = json.loads(path.read_text())
    model = Predictor.from_parts(d["predictor"], load_file(str(run_dir / _WEIGHTS)))
    return TrainResult(
        model=model, family=d["model"], params=d["params"], config=FitConfig.from_dict(d["config"]),
        metrics=d["metrics"], history=[EpochLog.from_dict(h) for h in d["history"]],
        schema=Schema.from_dict(d["schema"]), fingerprint=d["fingerprint"], seed=d["seed"],
        library_versions=d["library_versions"], split=d["split"], source=d["source"], best_epoch=d["best_epoch"],
        stop_reason=d["stop_reason"], extra=d.get("extra") or {},
    )
