"""``modelyard train``: load data, train one model family, print metrics (table or JSON), register it."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .common import add_data_args, add_store_arg, duration, finite_float, parse_duration, parse_sets

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Register the ``train`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "train", help="train a model on a data file", description="Train one model family on a dataset."
    )
    add_data_args(p)
    p.add_argument("--model", default="logistic_regression",
                   help="linear_regression, logistic_regression, mlp, random_forest, or package.module:Class")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="a hyperparameter (repeatable)")
    p.add_argument("--epochs", type=int, default=20, help="maximum epochs (default 20)")
    p.add_argument("--patience", type=int, default=None, help="stop after this many epochs without validation improvement")
    p.add_argument("--max-time", type=duration, default=None, help="wall-clock budget, e.g. 90s, 5m; stops with the best weights so far")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-size", type=finite_float, default=0.15, help="validation fraction (early stopping)")
    p.add_argument("--test-size", type=finite_float, default=0.2, help="test fraction (final metrics)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (per process with --nodes)")
    _add_distributed_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else on stdout")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of errors")
    p.add_argument("--name", default=None, help="register the model under this name (default: from data and family)")
    p.add_argument("--no-register", action="store_true", help="do not register the trained model")
    add_store_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``modelyard train``."""
    import modelyard as my

    from .render import TrainProgress, metrics_table, print_json, stderr_console

    if _distributed(args):  # --nodes, a rank under torchrun, or checkpointing
        result = _train_distributed(args)
        if result is None:
            return 0  # a rank other than 0 under torchrun: rank 0 reports and registers
    else:
        from modelyard.train.fit import check_training

        params = parse_sets(args.set)
        max_time = parse_duration(args.max_time)
        family = my.get_family(args.model)
        family.params.validate(params, args.model)  # refuse bad params before loading any data
        ds = my.load_dataset(args.data, target=args.target, task=args.task, drop_missing=args.drop_missing)
        check_training(ds, args.model, params, epochs=args.epochs, patience=args.patience, max_time=max_time,
                       seed=args.seed, val_size=args.val_size, test_size=args.test_size)  # before any output
        _check_register(args)  # and a bad --name or unusable store
        kwargs = {
            "epochs": args.epochs, "patience": args.patience, "max_time": max_time, "seed": args.seed,
            "val_size": args.val_size, "test_size": args.test_size, "device": args.device, "threads": args.threads,
        }
        if args.json:
            result = my.train(ds, model=args.model, params=params, **kwargs)
        else:
            err = stderr_console()
            err.print(f"[bold]{args.model}[/] on {ds.source}: {len(ds)} rows, {ds.n_features} features, {ds.task.value}")
            with TrainProgress(args.epochs, args.model) as bar:
                result = my.train(ds, model=args.model, params=params, callbacks=[bar], **kwargs)
    ref = _register(args, result)
    if args.json:
        out = result.to_dict()
        if ref is not None:
            out["version"] = ref
        print_json(out)
    else:
        from rich.console import Console

        con = Console()
        con.print(metrics_table(result.metrics, title=f"{args.model} — held-out {result.metrics['evaluated_on']} metrics"))
        if result.stop_reason:
            con.print(f"stopped: {result.stop_reason} (best epoch {result.best_epoch} of {len(result.history)})")
        if ref is not None:
            con.print(f"registered [bold]{ref['ref']}[/] (id {ref['id'][:12]})")
    return 0


def _check_register(args: argparse.Namespace) -> None:
    """Fail before training if the result could not be registered: bad --name, unusable store."""
    if args.no_register:
        return
    from modelyard.registry import check_model_name
    from modelyard.yard import Yard

    if args.name:
        check_model_name(args.name)
    with Yard(args.store) as yard:
        yard.db.require_writable()  # opens (creates or migrates) the store, or raises StoreError (also read-only)


def _register(args: argparse.Namespace, result: Any) -> dict[str, Any] | None:
    """Register the result in the store unless --no-register; returns {"ref", "id"} or None."""
    if args.no_register:
        return None
    from modelyard.registry import check_model_name, default_model_name
    from modelyard.yard import Yard

    name = check_model_name(args.name) if args.name else default_model_name(result.source, result.family)
    with Yard(args.store) as yard:
        version = yard.registry.register(result, name)
    return {"ref": version.ref, "id": version.id}


# --- data-parallel training (--nodes, torchrun, checkpoints) -------------------------------------------------


def _add_distributed_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("distributed training and checkpoints")
    g.add_argument("--nodes", type=int, default=None, metavar="N",
                   help="train data-parallel on N local processes (under torchrun: WORLD_SIZE ranks)")
    g.add_argument("--aggregate", choices=("gradient", "average"), default="gradient",
                   help="gradient: synchronous all-reduce, same result as one process (default); "
                        "average: local SGD, parameters averaged every --sync-every steps")
    g.add_argument("--sync-every", type=int, default=8, metavar="K", help="steps between averages (--aggregate average)")
    g.add_argument("--checkpoint-every", type=int, default=None, metavar="K", help="write a checkpoint every K epochs")
    g.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                   help="where checkpoints go (default: .modelyard/checkpoints/<hash of data and settings>)")
    g.add_argument("--resume", action="store_true", help="continue from the latest checkpoint of the same settings")
    g.add_argument("--dist-timeout", type=duration, default="600s",
                   help="a rank that makes no progress this long fails the run, e.g. 60s, 10m (default 600s)")


def _world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1") or 1)
    except ValueError:
        return 1


def _distributed(args: argparse.Namespace) -> bool:
    return bool((args.nodes or 1) > 1 or _world_size() > 1 or args.checkpoint_every or args.resume)


def _train_distributed(args: argparse.Namespace) -> Any:
    """Launch local ranks or train as one rank (torchrun): the TrainResult here or on rank 0, None elsewhere."""
    from pathlib import Path

    import modelyard as my
    from modelyard.errors import DataError, ParamError
    from modelyard.records.training import FitConfig
    from modelyard.train.dist_fit import check_options
    from modelyard.train.file_job import FileJob, launch_file, run_file

    from .render import TrainProgress, stderr_console

    params = parse_sets(args.set)
    my.get_family(args.model).params.validate(params, args.model)
    check_options(args.model, nodes=args.nodes, aggregate=args.aggregate, sync_every=args.sync_every,
                  checkpoint_every=args.checkpoint_every, resume=args.resume, params=params)
    timeout = parse_duration(args.dist_timeout)
    world = _world_size()
    if world > 1 and args.nodes not in (None, world):
        raise ParamError(f"--nodes {args.nodes} does not match WORLD_SIZE={world} set by the launcher; drop --nodes")
    rank0 = int(os.environ.get("RANK", "0") or 0) == 0
    launching = world == 1 and (args.nodes or 1) > 1  # this process launches the ranks and supervises them
    if launching and not str(args.data).startswith("sklearn:") and not Path(args.data).expanduser().is_file():
        raise DataError(f"data file {args.data!r} does not exist; check the path")
    if rank0:
        _check_register(args)
    config = FitConfig(epochs=args.epochs, patience=args.patience, max_time=parse_duration(args.max_time),
                       seed=args.seed, device=args.device, threads=args.threads)
    ckpt_dir = args.checkpoint_dir
    if ckpt_dir is None and (args.checkpoint_every or args.resume):
        from modelyard.train.checkpoint import config_key

        key = config_key({"data": str(Path(args.data).expanduser().resolve()) if not str(args.data).startswith("sklearn:")
                          else args.data, "model": args.model, "params": params, "fit": config.to_dict(),
                          "aggregate": args.aggregate, "world": args.nodes if launching else world})
        ckpt_dir = str(Path(".modelyard") / "checkpoints" / key)
    job = FileJob(
        source=str(args.data), model=args.model, params=params, config=config, target=args.target, task=args.task,
        drop_missing=args.drop_missing, val_size=args.val_size, test_size=args.test_size, aggregate=args.aggregate,
        sync_every=args.sync_every, checkpoint_every=args.checkpoint_every, checkpoint_dir=ckpt_dir,
        resume=args.resume, timeout=timeout,
    )
    show = rank0 and not args.json
    err = stderr_console()

    def announce(text: str) -> None:
        if show:
            model, rest = text.split(" ", 1)
            err.print(f"[bold]{model}[/] {rest}")

    with TrainProgress(args.epochs, args.model, enabled=show) as bar:
        if launching:
            return launch_file(job, nodes=args.nodes, threads=args.threads, callbacks=[bar] if show else [],
                               announce=announce)
        return run_file(job, callbacks=[bar] if show else [], announce=announce)
