"""Data-parallel ``train``: the per-rank job (fit with ⊕, held-out metrics over all ranks) and its two entry points.

``train(ds, nodes=N)`` splits in memory exactly as a single process does, writes each rank's
block of every part to its own files, launches N local ranks and rebuilds the result from
rank 0's weights. ``train_file`` is what ``modelyard train`` runs on each rank (under our
launcher or torchrun): it reads only its shard of the file. Both end in ``fit_on_rank``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.dataset import Dataset
from ..errors import DataError, ModelError, ParamError, TrainingError
from ..models import get_family
from ..models.boosting import GradientBoosting
from ..models.forest import RandomForest
from ..models.glm import MINIBATCH_SOLVERS, LinearModel
from ..models.predictor import Predictor
from ..models.torch_base import TorchModel
from ..records.jsonsafe import jsonable
from ..records.training import EpochLog, FitConfig
from ..schema import Schema
from .aggregate import Shard, TreeUnion, fold, tree_counts
from .checkpoint import Checkpointer
from .data_parallel import DataParallel
from .distributed import AGGREGATES, DEFAULT_TIMEOUT, RankContext, rank_session, under_launcher
from .fit import fit_extra, refuse_missing
from .metrics import predict_outputs, score
from .result import TrainResult
from .shards import PARTS, RankData, from_dataset, load_rank_data

__all__ = ["RankOutcome", "check_options", "fit_on_rank", "train_distributed", "train_file"]


@dataclasses.dataclass
class RankOutcome:
    """What rank 0 keeps of a data-parallel fit."""

    predictor: Predictor
    metrics: dict[str, Any]
    history: list[EpochLog]
    best_epoch: int | None
    stop_reason: str | None
    extra: dict[str, Any]


def check_options(
    family: str, *, nodes: int | None, aggregate: str, sync_every: int, checkpoint_every: int | None, resume: bool,
    params: Mapping[str, Any] | None = None,
) -> None:
    """Refuse bad distributed options before any process starts."""
    if nodes is not None and (not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1):
        raise ParamError(f"nodes must be an int >= 1, got {nodes!r}; e.g. --nodes 2")
    if aggregate not in AGGREGATES:
        raise ParamError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    if not isinstance(sync_every, int) or isinstance(sync_every, bool) or sync_every < 1:
        raise ParamError(f"sync_every must be an int >= 1 (steps), got {sync_every!r}; e.g. --sync-every 8")
    if checkpoint_every is not None and (not isinstance(checkpoint_every, int) or checkpoint_every < 1):
        raise ParamError(f"checkpoint_every must be an int >= 1 (epochs), got {checkpoint_every!r}")
    if dict(params or {}).get("class_weight") is not None:
        raise ParamError("class_weight cannot be combined with nodes > 1 or checkpointing yet; train on one process")
    cls = get_family(family)
    if (checkpoint_every or resume) and not issubclass(cls, TorchModel):
        raise ParamError(
            f"{family} trains in one pass, so it has no epochs to checkpoint; drop --checkpoint-every/--resume"
        )
    if (checkpoint_every or resume) and issubclass(cls, LinearModel):
        solver = cls.params.validate(params, family)["solver"]
        if solver not in MINIBATCH_SOLVERS:
            raise ParamError(
                f"{family} with solver={solver} runs an exact solver, which finishes in a few passes and keeps no "
                "checkpoints; drop --checkpoint-every/--resume, or train with --set solver=adam"
            )
    if not issubclass(cls, (TorchModel, RandomForest, GradientBoosting)):
        raise ModelError(
            f"{family} cannot train data-parallel: only the torch families (and torch module factories), "
            "random_forest and gradient_boosting can; train it with nodes=1"
        )
    if issubclass(cls, RandomForest) and nodes and nodes > 1:
        tree_counts(cls.params.validate(params, family)["n_estimators"], [1] * nodes)


def _empty_like_outputs(predictor: Predictor, n_classes: int) -> tuple[NDArray, NDArray | None]:
    if predictor.schema.task.value == "regression":
        return np.zeros(0), None
    proba = np.zeros((0, n_classes)) if predictor.has_proba else None
    return np.zeros(0, dtype=np.int64), proba


def fit_on_rank(
    ctx: RankContext,
    family: str,
    params: Mapping[str, Any],
    schema: Schema,
    config: FitConfig,
    parts: Mapping[str, tuple[NDArray, NDArray]],
    *,
    aggregate: str = "gradient",
    sync_every: int = 8,
    checkpoint: Checkpointer | None = None,
    callbacks: Sequence[Callable[[EpochLog], bool | None]] = (),
) -> RankOutcome | None:
    """Fit on this rank's rows with ⊕ across ranks; held-out metrics over every rank's rows; rank 0's outcome."""
    comm = ctx.comm
    cls = get_family(family)
    is_torch = issubclass(cls, TorchModel)
    if not getattr(cls, "handles_missing", False):  # every rank learns of gaps on any rank: all refuse alike
        local = sum(np.isnan(np.asarray(x, dtype=np.float32)).sum(axis=0) for x, _ in parts.values())
        total = np.sum(comm.gather(np.asarray(local, dtype=np.int64).reshape(-1)), axis=0)
        refuse_missing(family, {schema.feature_names[j]: int(total[j]) for j in np.flatnonzero(total)})
    is_boosting = issubclass(cls, GradientBoosting)
    p = dict(params)
    if issubclass(cls, (RandomForest, GradientBoosting)):
        p["n_jobs"] = ctx.threads
    model = cls(task=schema.task, n_classes=schema.n_classes, **p)
    predictor = Predictor(family, model, schema)
    X, y = parts["train"]
    Xv, yv = parts["validation"]
    X = predictor.encoder.transform(X)
    Xv = predictor.encoder.transform(Xv)
    counts = comm.gather_counts(len(X))
    start = sum(counts[: ctx.rank])
    cfg = dataclasses.replace(config, device=ctx.device if is_torch or is_boosting else config.device,
                              threads=ctx.threads)
    if ctx.watch is not None:
        ctx.watch.beat("training")
    t0 = time.perf_counter()
    hook = None
    if is_torch:
        hook = DataParallel(ctx, start=start, rows=len(X), aggregate=aggregate, sync_every=sync_every,
                            seed=config.seed, checkpoint=checkpoint)
        model.fit(X, y, eval_set=(Xv, yv), config=cfg, callbacks=list(callbacks) if ctx.is_main else [], hook=hook)
    elif is_boosting:
        from .boost_dist import boost_on_rank

        boost_on_rank(ctx, model, X, y, (Xv, yv), cfg, callbacks)
    else:
        agg = TreeUnion(counts, ctx.rank, seed=config.seed)
        mine = agg.local(model, Shard(X, y, start, sum(counts)))
        gathered = {k: comm.gather(v) for k, v in mine.items()}
        states = [{k: gathered[k][r] for k in mine} for r in range(ctx.world_size)]
        fitted = agg.apply(model, fold(agg, states))
        predictor = Predictor(family, fitted, schema)
    train_time = time.perf_counter() - t0
    if ctx.watch is not None:
        ctx.watch.beat("measuring held-out metrics")

    sizes = comm.gather_counts(len(parts["test"][0]))
    part = "test" if sum(sizes) else "validation"
    Xe, ye = parts[part]
    t1 = time.perf_counter()
    if len(Xe):
        pred, proba = predict_outputs(predictor, Xe)
    else:
        pred, proba = _empty_like_outputs(predictor, schema.n_classes)
    infer_time = time.perf_counter() - t1
    preds = comm.gather(np.asarray(pred))
    probas = comm.gather(np.asarray(proba, dtype=np.float64)) if proba is not None else None
    ys = comm.gather(np.asarray(ye))
    infer_total = comm.all_sum([infer_time, len(Xe)])
    comm.barrier()  # every rank got here: nothing can fail any more, so rank 0 may report and register
    if not ctx.is_main:
        return None
    y_all = np.concatenate(ys)
    metrics = score(schema, y_all, np.concatenate(preds), np.concatenate(probas) if probas is not None else None)
    metrics["train_time_s"] = train_time
    metrics["inference_time_per_row_s"] = float(infer_total[0] / max(infer_total[1], 1))
    metrics["evaluated_on"] = part
    inner = predictor.model
    exact = getattr(inner, "aggregate_", None)  # the exact solvers' sums ("loss_gradient_sum", "gram_sum")
    extra = {
        **fit_extra(inner),
        "distributed": {
            "nodes": ctx.world_size, "backend": ctx.backend or "none",
            "aggregate": exact or (aggregate if is_torch else "histogram_sum" if is_boosting else "tree_union"),
            "sync_every": sync_every if is_torch and not exact and aggregate == "average" else None,
            "threads_per_process": ctx.threads, "rows_per_rank": counts,
            "first_step_unix": hook.first_step_at if hook is not None else None,
            "resumed_from_epoch": checkpoint.resumed_from if checkpoint is not None else None,
        }
    }
    return RankOutcome(predictor, metrics, list(getattr(inner, "history_", [])), getattr(inner, "best_epoch_", None),
                       getattr(inner, "stop_reason_", None), extra)


def _checkpointer(
    directory: str | Path | None, every: int | None, resume: bool, key: Mapping[str, Any]
) -> Checkpointer | None:
    if not every and not resume:
        return None
    if directory is None:
        raise ParamError("checkpointing needs a folder: pass checkpoint_dir=PATH (the CLI defaults to .modelyard/checkpoints)")
    return Checkpointer(directory, every=every, resume=resume, config=key)


def checkpoint_key(family: str, params: Mapping[str, Any], config: FitConfig, *, aggregate: str, sync_every: int,
                   world: int, sizes: Mapping[str, int], fingerprint: str) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed: model, settings, ranks and data."""
    fit = {k: v for k, v in config.to_dict().items() if k not in ("device", "threads", "max_time")}
    return {"family": family, "params": dict(params), "fit": fit, "aggregate": aggregate,
            "sync_every": sync_every if aggregate == "average" else None, "world_size": world,
            "sizes": dict(sizes), "data": fingerprint}


def _result(outcome: RankOutcome, family: str, config: FitConfig, schema: Schema, fingerprint: str, seed: int,
            sizes: Mapping[str, Any], source: str) -> TrainResult:
    from .fit import library_versions

    return TrainResult(
        model=outcome.predictor, family=family, params=outcome.predictor.get_params(), config=config,
        metrics=outcome.metrics, history=outcome.history, schema=schema, fingerprint=fingerprint, seed=seed,
        library_versions=library_versions(), split=dict(sizes), source=source, best_epoch=outcome.best_epoch,
        stop_reason=outcome.stop_reason, extra=outcome.extra,
    )


# --- train(ds, nodes=N) ------------------------------------------------------------------------------------------


def train_distributed(
    dataset: Dataset,
    model: str,
    params: Mapping[str, Any] | None,
    config: FitConfig,
    *,
    nodes: int,
    aggregate: str = "gradient",
    sync_every: int = 8,
    val_size: float = 0.15,
    test_size: float = 0.2,
    callbacks: Sequence[Callable[[EpochLog], bool | None]] = (),
    checkpoint_every: int | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> TrainResult:
    """``train`` on ``nodes`` local ranks (or, inside torchrun, as this rank); same split and metrics as one process."""
    if dataset.y is None:
        raise DataError("the dataset has no target; load it with target=COLUMN")
    check_options(model, nodes=nodes, aggregate=aggregate, sync_every=sync_every,
                  checkpoint_every=checkpoint_every, resume=resume, params=params)
    full = get_family(model).params.validate(params, model)
    if under_launcher() or nodes == 1:
        with rank_session(timeout=timeout, device=config.device, threads=config.threads) as ctx:
            data = from_dataset(dataset, ctx.comm, val_size=val_size, test_size=test_size, seed=config.seed)
            key = checkpoint_key(model, full, config, aggregate=aggregate, sync_every=sync_every,
                                 world=ctx.world_size, sizes=data.sizes, fingerprint=data.fingerprint)
            ckpt = _checkpointer(checkpoint_dir, checkpoint_every, resume, key)
            out = fit_on_rank(ctx, model, full, data.schema, config, data.parts, aggregate=aggregate,
                              sync_every=sync_every, checkpoint=ckpt, callbacks=callbacks)
        if out is None:
            return None  # type: ignore[return-value]  # not rank 0 under torchrun
        return _result(out, model, config, dataset.schema, dataset.fingerprint, config.seed, data.split or data.sizes,
                       dataset.source)

    from ..data.split import split_record, split_rows
    from .launch import launch

    rows = split_rows(dataset, val_size=val_size, test_size=test_size, seed=config.seed)
    train_ds, val_ds, test_ds = (dataset.take(r) for r in rows)
    sizes = {"train": len(train_ds), "validation": len(val_ds), "test": len(test_ds)}
    record = split_record(dataset, rows, val_size=val_size, test_size=test_size, seed=config.seed)
    key = checkpoint_key(model, full, config, aggregate=aggregate, sync_every=sync_every, world=nodes,
                         sizes=sizes, fingerprint=dataset.fingerprint)
    _checkpointer(checkpoint_dir, checkpoint_every, resume, key)  # refuse a missing folder here, not on each rank
    from .shards import part_bounds

    with tempfile.TemporaryDirectory(prefix="modelyard-run-") as tmp:
        rd = Path(tmp)
        for name, part in zip(PARTS, (train_ds, val_ds, test_ds), strict=True):
            for r, (a, b) in enumerate(part_bounds(len(part), nodes)):
                np.save(rd / f"{name}.{r}.X.npy", np.ascontiguousarray(part.X[a:b]), allow_pickle=False)
                np.save(rd / f"{name}.{r}.y.npy", np.ascontiguousarray(part.y[a:b]), allow_pickle=False)
        payload = {
            "family": model, "params": jsonable(full), "schema": dataset.schema.to_dict(), "config": config.to_dict(),
            "aggregate": aggregate, "sync_every": sync_every, "sizes": sizes, "timeout": timeout,
            "checkpoint_every": checkpoint_every, "resume": resume, "key": key,
            "checkpoint_dir": str(Path(checkpoint_dir).resolve()) if checkpoint_dir is not None else None,
        }
        res = launch("modelyard.train.dist_fit:_api_rank", payload, nodes=nodes, timeout=timeout,
                     threads=config.threads, run_dir=rd, callbacks=callbacks)
        if res is None:
            raise TrainingError("rank 0 finished without a result; rerun with MODELYARD_DEBUG=1 and report it")
        from safetensors.numpy import load_file

        state = load_file(str(rd / "model.safetensors"))
    predictor = Predictor.from_parts(res["predictor"], state)
    outcome = RankOutcome(predictor, res["metrics"], [EpochLog.from_dict(h) for h in res["history"]],
                          res["best_epoch"], res["stop_reason"], res["extra"])
    return _result(outcome, model, config, dataset.schema, dataset.fingerprint, config.seed, record, dataset.source)



def _preload(family: str) -> None:
    """Import XGBoost before the rank's watchdog starts (seconds on a busy machine): an import is not a hang."""
    if issubclass(get_family(family), GradientBoosting):
        import xgboost  # noqa: F401


def _api_rank(payload: Mapping[str, Any]) -> None:
    """Worker target of ``train(ds, nodes=N)``: read my block of each part, fit, rank 0 writes the result."""
    from safetensors.numpy import save_file

    from .launch import control_callback

    rd = Path(os.environ["MODELYARD_RUN_DIR"])
    rank = int(os.environ["RANK"])
    parts = {
        name: (np.load(rd / f"{name}.{rank}.X.npy", allow_pickle=False), np.load(rd / f"{name}.{rank}.y.npy", allow_pickle=False))
        for name in PARTS
    }
    config = FitConfig.from_dict(payload["config"])
    schema = Schema.from_dict(payload["schema"])
    _preload(payload["family"])
    with rank_session(timeout=payload["timeout"], device=config.device, threads=config.threads) as ctx:
        ckpt = _checkpointer(payload["checkpoint_dir"], payload["checkpoint_every"], payload["resume"], payload["key"])
        remote = control_callback(ctx.watch)
        out = fit_on_rank(ctx, payload["family"], payload["params"], schema, config, parts,
                          aggregate=payload["aggregate"], sync_every=payload["sync_every"], checkpoint=ckpt,
                          callbacks=[remote] if remote is not None else [])
    if out is None:
        return
    save_file({k: np.ascontiguousarray(v) for k, v in out.predictor.state().items()}, str(rd / "model.safetensors"))
    result = {
        "predictor": out.predictor.config(), "metrics": out.metrics, "history": [h.to_dict() for h in out.history],
        "best_epoch": out.best_epoch, "stop_reason": out.stop_reason, "extra": out.extra,
    }
    tmp = rd / "result.json.tmp"
    tmp.write_text(json.dumps(jsonable(result)))
    os.replace(tmp, rd / "result.json")


# --- modelyard train, on each rank -------------------------------------------------------------------------------


def train_file(
    source: Any,
    model: str,
    params: Mapping[str, Any] | None,
    config: FitConfig,
    *,
    target: str | None = None,
    task: str | None = None,
    drop_missing: bool = False,
    val_size: float = 0.15,
    test_size: float = 0.2,
    aggregate: str = "gradient",
    sync_every: int = 8,
    checkpoint_every: int | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    callbacks: Sequence[Callable[[EpochLog], bool | None]] = (),
    announce: Callable[[RankData, RankContext], None] | None = None,
) -> TrainResult | None:
    """Train as one rank of the environment's run on this rank's shard of ``source``; the result on rank 0 only."""
    check_options(model, nodes=None, aggregate=aggregate, sync_every=sync_every,
                  checkpoint_every=checkpoint_every, resume=resume)
    full = get_family(model).params.validate(params, model)
    _preload(model)
    with rank_session(timeout=timeout, device=config.device, threads=config.threads) as ctx:
        if ctx.watch is not None:
            ctx.watch.beat("reading its shard")
        data = load_rank_data(source, ctx.comm, target=target, task=task, drop_missing=drop_missing,
                              val_size=val_size, test_size=test_size, seed=config.seed)
        if announce is not None and ctx.is_main:
            announce(data, ctx)
        key = checkpoint_key(model, full, config, aggregate=aggregate, sync_every=sync_every,
                             world=ctx.world_size, sizes=data.sizes, fingerprint=data.fingerprint)
        ckpt = _checkpointer(checkpoint_dir, checkpoint_every, resume, key)
        out = fit_on_rank(ctx, model, full, data.schema, config, data.parts, aggregate=aggregate,
                          sync_every=sync_every, checkpoint=ckpt, callbacks=callbacks)
    if out is None:
        return None
    out.extra["distributed"]["sharded_read"] = data.sharded_read
    return _result(out, model, config, data.schema, data.fingerprint, config.seed, data.split or data.sizes,
                   data.source)
