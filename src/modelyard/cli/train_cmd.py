"""``modelyard train``: load data, train one model family, print metrics (table or JSON), register it."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .common import (
    add_data_args,
    add_store_arg,
    add_table_args,
    duration,
    finite_float,
    parse_duration,
    parse_sets,
)
from .helptext import FamiliesFormatter
from .render import add_plain_arg

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Register the ``train`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "train", help="train a model on a data file", description="Train one model family on a dataset.",
        formatter_class=FamiliesFormatter,
    )
    add_data_args(p)
    add_table_args(p)
    p.add_argument("--model", default="logistic_regression",
                   help="linear_regression, logistic_regression, mlp, random_forest, gradient_boosting, "
                        "or package.module:Class")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="a hyperparameter (repeatable); the families' hyperparameters are listed below (default: each "
                        "one's default)")
    p.add_argument("--epochs", type=int, default=None,
                   help="cap on epochs of the minibatch loop, iterations of an exact solver or rounds of boosting "
                        "(default: the family's budget: convergence for exact solvers, ~4000 steps with early stopping "
                        "for minibatches, n_estimators for boosting)")
    p.add_argument("--patience", type=int, default=None,
                   help="stop after this many epochs without validation improvement (default 10; 0 turns it off)")
    p.add_argument("--max-time", type=duration, default=None,
                   help="wall-clock budget, e.g. 90s, 5m; stops with the best weights so far (default: no limit)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, initialization and shuffling")
    p.add_argument("--val-size", type=finite_float, default=0.15, help="validation fraction (early stopping)")
    p.add_argument("--test-size", type=finite_float, default=0.2, help="test fraction (final metrics)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch or XGBoost threads (per process with --nodes) (default: the library's choice)")
    p.add_argument("--cv", type=int, default=None, metavar="K",
                   help="measure by K-fold cross-validation over all rows (stratified for classification: mean and "
                        "sd per metric), then refit the registered model on all rows (default: one held-out split)")
    _add_distributed_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else on stdout")
    add_plain_arg(p)
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of errors")
    p.add_argument("--name", default=None, help="register the model under this name (default: from data and family)")
    p.add_argument("--no-register", action="store_true", help="do not register the trained model")
    p.add_argument("--save-split", metavar="DIR", default=None,
                   help="also write the rows of the train/validation/test split into DIR (a new or empty folder), "
                        "in the input's format (CSV for sklearn:NAME), with split.json saying how they were drawn "
                        "(default: not written)")
    add_store_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``modelyard train``."""
    import modelyard as my

    from .render import TrainProgress, metrics_table, print_json, stderr_console

    if args.cv is not None and _distributed(args):
        from modelyard.errors import ParamError

        raise ParamError("--cv cannot be combined with --nodes, torchrun or checkpoints; drop --cv or train on one process")
    if args.cv is not None and args.save_split is not None:
        from modelyard.errors import ParamError

        raise ParamError("--save-split cannot be combined with --cv: a cross-validated version is refit on all rows, "
                         "so there is no split to write; drop one of them")
    if args.save_split is not None:
        from modelyard.data.export import check_split_folder

        check_split_folder(args.save_split)  # before any data is read or any work is done
    ds = None
    if _distributed(args):  # --nodes, a rank under torchrun, or checkpointing
        result = _train_distributed(args)
        if result is None:
            return 0  # a rank other than 0 under torchrun: rank 0 reports and registers
    else:
        from modelyard.data.impute import check_strategy
        from modelyard.models.weights import merge_class_weight
        from modelyard.train.fit import check_training, impute_note

        params = parse_sets(args.set)
        max_time = parse_duration(args.max_time)
        family = my.get_family(args.model)
        params = merge_class_weight(params, args.class_weight, args.model, family)
        full = family.params.validate(params, args.model)  # refuse bad params before loading any data
        if args.impute is not None:
            check_strategy(args.impute)
        if args.cv is not None:
            from modelyard.train.cv import check_folds

            check_folds(args.cv)  # refused before the data is read
        ds = my.load_dataset(args.data, target=args.target, task=args.task, drop_missing=args.drop_missing,
                             drop_columns=args.drop_columns or ())
        check_training(ds, args.model, params, epochs=args.epochs, patience=args.patience, max_time=max_time,
                       seed=args.seed, val_size=args.val_size, test_size=0.0 if args.cv else args.test_size,
                       impute=args.impute, cv=args.cv)  # before any output
        _check_register(args)  # and a bad --name or unusable store
        kwargs = {
            "epochs": args.epochs, "patience": args.patience, "max_time": max_time, "seed": args.seed,
            "val_size": args.val_size, "test_size": args.test_size, "device": args.device, "threads": args.threads,
            "impute": args.impute,
        }
        total = progress_total(family, full, args.epochs)
        if args.cv is not None:
            result = _train_cv(args, ds, params, kwargs, total)
        elif args.json:
            result = my.train(ds, model=args.model, params=params, **kwargs)
        else:
            err = stderr_console()
            err.print(f"[bold]{args.model}[/] on {ds.source}: {len(ds)} rows, {ds.n_features} features, {ds.task.value}")
            for note in (ds.dropped.sentence() if ds.dropped else None, impute_note(args.model, args.impute)):
                if note:
                    err.print(f"note: {note}", markup=False, highlight=False)
            with TrainProgress(total, args.model) as bar:
                result = my.train(ds, model=args.model, params=params, callbacks=[bar], **kwargs)
    ref = _register(args, result)
    written = _save_split(args, result, ds) if args.save_split is not None else None
    if args.json:
        out = result.to_dict()
        if ref is not None:
            out["version"] = ref
        if written is not None:
            out["split_files"] = written
        print_json(out)
    else:
        from .render import print_table, stdout_console

        con = stdout_console()
        if "cv" in result.extra:
            from .train_render import cv_table, refit_note

            print_table(con, cv_table(result.extra["cv"], title=f"{args.model} — {result.metrics['evaluated_on']}"),
                        plain=args.plain)
            con.print(refit_note(result))
        else:
            print_table(con, metrics_table(result.metrics, title=f"{args.model} — held-out "
                                           f"{result.metrics['evaluated_on']} metrics"), plain=args.plain)
        imp = result.model.importance()
        if imp is not None:
            from .train_render import importance_text

            con.print(importance_text(imp))
        rounds = getattr(my.get_family(args.model), "progress_param", None) is not None
        for line in fit_summary(result, rounds=rounds):
            con.print(line, highlight=False, markup=False)
        if ref is not None:
            con.print(f"registered [bold]{ref['ref']}[/] (id {ref['id'][:12]})")
        if written is not None:
            sizes = result.split
            con.print(f"wrote the split to {args.save_split}: " + ", ".join(
                f"{os.path.basename(path)} ({sizes.get(part, 0):,} rows)" for part, path in written.items()),
                soft_wrap=True, markup=False)
    return 0


def _save_split(args: argparse.Namespace, result: Any, ds: Any) -> dict[str, str] | None:
    """Write the rows of the split the result was trained on into ``--save-split DIR``; ``{part: path}``."""
    import modelyard as my
    from modelyard.data.export import write_split
    from modelyard.data.split import split_rows

    if ds is None:  # trained on ranks: read the data here the way the ranks did
        ds = my.load_dataset(args.data, target=args.target, task=args.task, drop_missing=args.drop_missing)
    rows = split_rows(ds, val_size=args.val_size, test_size=args.test_size, seed=args.seed)
    return write_split(ds, rows, args.save_split, record=result.split)


def progress_total(family: type, params: dict[str, Any], epochs: int | None) -> int | None:
    """What the progress bar counts to: epochs, or the family's rounds (``progress_param``, e.g. n_estimators)."""
    name = getattr(family, "progress_param", None)
    return int(params[name]) if name and isinstance(params.get(name), int) else epochs


def _train_cv(args: argparse.Namespace, ds: Any, params: dict[str, Any], kwargs: dict[str, Any], total: int) -> Any:
    """``--cv K``: one line per fold on stderr, then the refit on all rows with its progress bar."""
    from modelyard.records.training import FitConfig
    from modelyard.train.cv import train_cv
    from modelyard.train.fit import impute_note

    from .render import TrainProgress, stderr_console

    err = None if args.json else stderr_console()
    config = FitConfig(epochs=kwargs["epochs"], patience=kwargs["patience"], max_time=kwargs["max_time"],
                       seed=kwargs["seed"], device=kwargs["device"], threads=kwargs["threads"])
    if err is not None:
        err.print(f"[bold]{args.model}[/] on {ds.source}: {len(ds)} rows, {ds.n_features} features, "
                  f"{ds.task.value}; {args.cv}-fold cross-validation, then a refit on all rows")
    notes = [n for n in (ds.dropped.sentence() if ds.dropped else None, impute_note(args.model, kwargs["impute"])) if n]
    for note in notes if err is not None else ():
        err.print(f"note: {note}", markup=False, highlight=False)

    def on_fold(i: int, metrics: dict[str, Any]) -> None:
        if err is not None:
            shown = ", ".join(f"{m} {metrics[m]:.4f}" for m in ("f1", "accuracy", "rmse", "r2") if m in metrics)
            err.print(f"fold {i}/{args.cv}: {shown}")

    bar = TrainProgress(total, f"{args.model} refit", enabled=err is not None)
    started = False

    def refit_progress(log: Any) -> None:  # the bar starts with the refit, after the folds' lines
        nonlocal started
        if not started:
            bar.__enter__()
            started = True
        bar(log)

    try:
        return train_cv(ds, args.model, params, config, k=args.cv, val_size=args.val_size,
                        callbacks=[refit_progress] if err is not None else [], on_fold=on_fold,
                        impute=kwargs["impute"], notes=tuple(notes))
    finally:
        if started:
            bar.__exit__(None, None, None)


def fit_summary(result: Any, *, rounds: bool = False) -> list[str]:
    """How the fit ended (the solver, or the epochs or boosting rounds), then any note the fit left for the user."""
    solver = result.extra.get("solver") or {}
    lines = []
    if solver.get("solver") in ("lbfgs", "newton", "exact"):
        if result.stop_reason == "solved":
            how = "the Gram matrix solved by " + ("Cholesky" if solver.get("method") == "cholesky" else "SVD least squares")
            lines.append(f"solver: {solver['solver']}, {how} in one pass")
        else:
            lines.append(f"solver: {solver['solver']}, {result.stop_reason} after {solver['iterations']} iterations "
                         f"(largest gradient component {solver['grad_max']:.2g})")
    elif result.stop_reason:
        unit, ran = ("round", result.history[-1].epoch if result.history else 0) if rounds else ("epoch", len(result.history))
        lines.append(f"stopped: {result.stop_reason} (best {unit} {result.best_epoch} of {ran})")
    lines += [f"note: {n}" for n in result.extra.get("notes", ())]
    return lines


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
                   help="train data-parallel on N local processes (under torchrun: WORLD_SIZE ranks) (default: 1, "
                        "this process)")
    g.add_argument("--aggregate", choices=("gradient", "average"), default="gradient",
                   help="gradient: synchronous all-reduce, same result as one process (default); "
                        "average: local SGD, parameters averaged every --sync-every steps")
    g.add_argument("--sync-every", type=int, default=8, metavar="K", help="steps between averages (--aggregate average)")
    g.add_argument("--checkpoint-every", type=int, default=None, metavar="K", help="write a checkpoint every K epochs (default: no checkpoints)")
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
    for flag in ("drop_columns", "impute", "class_weight"):
        if getattr(args, flag, None) is not None:
            raise ParamError(f"--{flag.replace('_', '-')} cannot be combined with --nodes, torchrun or checkpoints yet; "
                             "train on one process")
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

    total = progress_total(my.get_family(args.model), my.get_family(args.model).params.validate(params, args.model),
                           args.epochs)
    with TrainProgress(total, args.model, enabled=show) as bar:
        if launching:
            return launch_file(job, nodes=args.nodes, threads=args.threads, callbacks=[bar] if show else [],
                               announce=announce)
        return run_file(job, callbacks=[bar] if show else [], announce=announce)
