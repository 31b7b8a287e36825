"""``modelyard tune``: search a family's hyperparameters with N worker processes sharing one stored study.

The parent process validates everything (data, space, metric, study), starts ``--workers``
spawned processes that each run ``Study.optimize`` on the same study in the store (so
several machines can join it with the same ``--study`` and ``--store``), shows a live
summary read from the store, and at the end retrains the best trial's params with
``modelyard.train`` (same split and seed: held-out test metrics, never used by the search)
and registers that model as a version linked to its study and trial. Ctrl-C stops every
worker, gives the running trials' slots back, and leaves the study resumable with ``--study``.
``--trial-timeout`` runs each trial in a process of its own that is ended when it runs too long
(``Study.optimize(trial_timeout=...)``); ``--timeout`` ends the whole search, running trials included.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any

from .common import add_data_args, add_store_arg, add_table_args, duration, finite_float, parse_duration
from .render import add_plain_arg

__all__ = ["add_parser", "run", "worker_main"]

_BACKSTOP_S = 20.0  # past the --timeout deadline: workers still alive then are killed (they stop by 2 s on their own)


def add_parser(sub: Any) -> None:
    """Register the ``tune`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "tune", help="tune a model family's hyperparameters",
        description="Search hyperparameters with Bayesian optimization (or random search) in parallel worker "
                    "processes; the study is stored, shared and resumable, and the best model is registered.",
    )
    add_data_args(p)
    add_table_args(p)
    p.add_argument("--model", default="logistic_regression",
                   help="linear_regression, logistic_regression, mlp, random_forest, gradient_boosting, "
                        "or package.module:Class")
    p.add_argument("--trials", type=int, default=20,
                   help="the study's total trial budget (a resumed study runs the remainder; default 20)")
    p.add_argument("--workers", type=int, default=1, help="trials run at once, each in its own process (default 1)")
    p.add_argument("--space", default=None, help="search space YAML/JSON file (default: the family's default space)")
    p.add_argument("--optimizer", choices=("gp", "random"), default="gp", help="default gp")
    p.add_argument("--pruner", choices=("median", "asha", "none"), default=None,
                   help="stops bad trials early from their per-epoch (with --cv: per-fold) validation metric "
                        "(default median; none with --cv)")
    p.add_argument("--metric", default=None,
                   help="validation metric: f1 (default), accuracy, precision, recall, log_loss, roc_auc; "
                        "rmse (default), mae, r2 for regression")
    p.add_argument("--timeout", type=duration, default=None,
                   help="wall-clock budget of the search, e.g. 90s, 30m, 2h: then no trial starts, and running "
                        "trials get 2 s to finish before they are stopped and failed")
    p.add_argument("--trial-timeout", type=duration, default=None, metavar="DURATION",
                   help="time limit per trial, e.g. 10m: each trial runs in a process of its own, which is ended "
                        "when it runs longer; the trial is recorded failed with the reason and the search goes on")
    p.add_argument("--study", default=None, help="study name; an existing study of that name is resumed")
    p.add_argument("--cv", type=int, default=None, metavar="K",
                   help="score each trial by K-fold cross-validation over all rows (the mean over folds; pruners "
                        "see each fold); the best params are then refit on all rows")
    p.add_argument("--epochs", type=int, default=20, help="maximum epochs per trial (default 20)")
    p.add_argument("--patience", type=int, default=None, help="early stopping within a trial")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the split, the optimizer and each trial's training (default 0)")
    p.add_argument("--val-size", type=finite_float, default=0.15, help="validation fraction: what trials are scored on")
    p.add_argument("--test-size", type=finite_float, default=0.2, help="test fraction: only the final model is scored on it")
    p.add_argument("--name", default=None,
                   help="register the best model as the next version of this name (default: the name train gives, "
                        "from the data and family, e.g. iris-mlp)")
    p.add_argument("--no-register", action="store_true", help="do not register the best model")
    p.add_argument("--top", type=int, default=10, help="rows of the final table of trials (default 10)")
    p.add_argument("--heartbeat", type=finite_float, default=10.0,
                   help="seconds between a worker's heartbeats; a trial silent for 6x this is failed (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else on stdout")
    add_plain_arg(p)
    add_store_arg(p)
    p.set_defaults(func=run)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS)
        return os.cpu_count() or 1


def _check_args(args: argparse.Namespace) -> None:
    from modelyard.errors import ParamError

    for flag, value, low in (("--trials", args.trials, 1), ("--workers", args.workers, 1), ("--top", args.top, 1),
                             ("--epochs", args.epochs, 1)):
        if value < low:
            raise ParamError(f"{flag} must be >= {low}, got {value}; e.g. {flag} {max(low, 4)}")
    if not args.heartbeat > 0:
        raise ParamError(f"--heartbeat must be > 0 seconds, got {args.heartbeat}; e.g. --heartbeat 10")
    if args.name is not None:
        from modelyard.registry import check_model_name

        check_model_name(args.name)  # before any trial runs
    if getattr(args, "cv", None) is not None:
        from modelyard.train.cv import check_folds

        check_folds(args.cv)
    if getattr(args, "pruner", None) is None:  # fold means are noisy: pruning on them cost more than it saved
        args.pruner = "none" if getattr(args, "cv", None) is not None else "median"


def _setup(args: argparse.Namespace, threads: int | None) -> tuple[Any, Any, Any]:
    """Dataset, search space and objective from the arguments (the same in the parent and every worker)."""
    import modelyard as my
    from modelyard.data.impute import check_strategy
    from modelyard.models.weights import merge_class_weight
    from modelyard.tune import SearchSpace
    from modelyard.tune.defaults import default_space
    from modelyard.tune.objective import TrainingObjective

    family = my.get_family(args.model)  # an unknown family is the first thing to say
    fixed = merge_class_weight({}, args.class_weight, args.model, family)
    if args.impute is not None:
        check_strategy(args.impute)
    ds = my.load_dataset(args.data, target=args.target, task=args.task, drop_missing=args.drop_missing,
                         drop_columns=args.drop_columns or ())
    space = SearchSpace.from_file(args.space) if args.space else default_space(args.model)
    objective = TrainingObjective(
        ds, args.model, space, metric=args.metric, epochs=args.epochs, patience=args.patience, seed=args.seed,
        val_size=args.val_size, test_size=args.test_size, threads=threads, fixed=fixed, impute=args.impute,
        cv=getattr(args, "cv", None),
    )
    return ds, space, objective


def _open_study(args: argparse.Namespace, store: Any, space: Any, objective: Any, ds: Any, name: str) -> Any:
    from modelyard.errors import NotFoundError, StudyError
    from modelyard.store.trialstore import check_study_name

    from ..tune.study import Study

    attrs = {"data": str(ds.source), "target": args.target, "model": args.model, "metric": objective.metric,
             "fingerprint": ds.fingerprint, "epochs": args.epochs, "val_size": args.val_size,
             "test_size": args.test_size, "cv": getattr(args, "cv", None)}
    try:
        existing = store.get_study(check_study_name(name)).attrs
    except NotFoundError:
        existing = {}
    for key, what in (("model", "model"), ("metric", "metric"), ("fingerprint", "data")):
        old = existing.get(key)
        if old is not None and old != attrs[key]:
            was, now = (existing.get("data"), attrs["data"]) if key == "fingerprint" else (old, attrs[key])
            raise StudyError(
                f"study {name!r} was made with {what} {was!r}, not {now!r}; resume it with the same {what} "
                f"(--{'metric' if key == 'metric' else 'model' if key == 'model' else 'data file'}) or pass a new "
                "--study name"
            )
    if existing and existing.get("cv") != attrs["cv"]:  # trial values scored otherwise are not comparable
        raise StudyError(
            f"study {name!r} scored its trials with --cv {existing.get('cv')}, not --cv {attrs['cv']}; resume it "
            "with the same --cv or pass a new --study name"
        )
    return Study(space, direction=objective.direction, optimizer=args.optimizer, pruner=args.pruner, seed=args.seed,
                 storage=store, name=name, attrs=attrs, heartbeat_interval=args.heartbeat)


def _worker_args(args: argparse.Namespace, store_url: str, name: str, deadline: float | None) -> dict[str, Any]:
    keys = ("data", "target", "task", "drop_missing", "model", "space", "metric", "epochs", "patience", "seed",
            "val_size", "test_size", "optimizer", "pruner", "trials", "heartbeat", "workers", "drop_columns", "impute",
            "class_weight", "cv", "trial_timeout")
    return {**{k: getattr(args, k) for k in keys}, "store_url": store_url, "study_name": name, "deadline": deadline}


def worker_main(cfg: dict[str, Any], index: int) -> None:
    """One worker process: rebuild the objective, join the study and optimize until the study is done."""
    threads = max(1, _cores() // cfg["workers"])
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)  # before numpy/torch load here: one worker, one share of the cores

    def on_stop(signum: int, frame: Any) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # one stop request is enough; let the cleanup finish
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)  # e.g. a job scheduler: give the trial's slot back too
    import logging

    logging.getLogger("modelyard.tune.study").addHandler(logging.NullHandler())
    logging.getLogger("modelyard.tune.study").propagate = False  # reasons go to the store, not over the live display
    try:
        from modelyard.errors import ModelyardError
        from modelyard.yard import Yard

        from ..tune.study import Study

        args = argparse.Namespace(**cfg)
        _, space, objective = _setup(args, threads)
        from modelyard.models.torch_base import TorchModel

        if isinstance(objective.cls, type) and issubclass(objective.cls, TorchModel):
            import torch  # loaded before the first claim, so trial durations measure training only

            torch.set_num_threads(threads)
        study = Study(space, direction=objective.direction, optimizer=args.optimizer, pruner=args.pruner,
                      seed=args.seed, storage=Yard(cfg["store_url"]), name=cfg["study_name"],
                      heartbeat_interval=args.heartbeat)
        timeout = None
        if cfg["deadline"] is not None:
            timeout = cfg["deadline"] - time.time()
            if timeout <= 0:
                return
        study.optimize(objective, n_trials=args.trials, timeout=timeout, trial_timeout=cfg["trial_timeout"])
    except KeyboardInterrupt:
        sys.exit(130)
    except ModelyardError as e:
        print(f"worker {index}: error: {e}", file=sys.stderr)
        sys.exit(2)


def run(args: argparse.Namespace) -> int:
    """Execute ``modelyard tune``."""
    _check_args(args)
    from modelyard.registry import default_model_name
    from modelyard.yard import Yard

    from ..records.trials import TrialState
    from ..tune.study import open_trial_store

    t_start = time.time()
    timeout = parse_duration(args.timeout)
    ds, space, objective = _setup(args, None)  # fail fast, before any process starts
    yard = Yard(args.store)
    store = open_trial_store(yard)
    name = args.study or f"{default_model_name(ds.source, args.model)}-{time.strftime('%Y%m%d-%H%M%S')}"
    study = _open_study(args, store, space, objective, ds, name)
    before = study.info
    quiet = args.json
    err = _stderr(quiet)
    if err is not None:
        done = before.n_trials - before.counts.get(TrialState.RUNNING.value, 0)
        verb = f"resuming study [bold]{name}[/] ({done} trials so far)" if done else f"study [bold]{name}[/]"
        on = f"{args.cv}-fold cross-validation" if args.cv else "validation"
        err.print(f"{verb}: {args.model} on {ds.source}, {objective.metric} ({objective.direction}) on {on}, "
                  f"{args.optimizer} optimizer, {args.pruner} pruner, {args.workers} worker(s)")
        from modelyard.train.fit import impute_note

        for note in (ds.dropped.sentence() if ds.dropped else None, impute_note(args.model, args.impute)):
            if note:
                err.print(f"note: {note}", markup=False, highlight=False)
    deadline = t_start + timeout if timeout else None
    cfg = _worker_args(args, yard.url, name, deadline)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # a kill stops the workers cleanly too
    try:
        interrupted, failed_workers = _run_workers(cfg, store, name, objective, args, err, t_start)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if interrupted:
        info = store.get_study(name)
        done = info.n_trials - info.counts.get(TrialState.RUNNING.value, 0)
        print(f"interrupted: study {name} is saved with {done} trials (running ones were given back); "
              f"rerun with --study {name} to continue", file=sys.stderr)
        return 130
    return _finish(args, yard, store, name, ds, objective, failed_workers)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stderr(quiet: bool) -> Any:
    if quiet:
        return None
    from .render import stderr_console

    return stderr_console()


def _run_workers(cfg: dict[str, Any], store: Any, name: str, objective: Any, args: argparse.Namespace,
                 err: Any, t_start: float) -> tuple[bool, int]:
    """Start the worker processes and show progress until they end; returns (interrupted, failed workers)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=worker_main, args=(cfg, i), name=f"modelyard-tune-{i}") for i in range(args.workers)]
    for p in procs:
        p.start()
    live = None
    try:
        if err is not None:
            from rich.live import Live

            live = Live(_status(store, name, objective, args, t_start), console=err, refresh_per_second=4,
                        transient=False)
            live.start()
        while any(p.is_alive() for p in procs):
            for p in procs:
                p.join(0.5 / len(procs))
            if cfg["deadline"] is not None and time.time() > cfg["deadline"] + _BACKSTOP_S:
                _reap(procs, store, name)  # a worker stuck past its own deadline (e.g. an objective holding the GIL)
            if live is not None:
                live.update(_status(store, name, objective, args, t_start))
        if live is not None:
            live.update(_status(store, name, objective, args, t_start))
    except KeyboardInterrupt:
        _stop(procs)
        _give_back(procs, store, name)
        return True, 0
    finally:
        if live is not None:
            live.stop()
            if not err.is_terminal:
                err.line()  # off a terminal rich ends the last frame without a newline
    if any(p.exitcode in (130, -signal.SIGINT, -signal.SIGTERM) for p in procs):
        _give_back(procs, store, name)
        return True, 0  # the workers were stopped (Ctrl-C reached them, or a kill): not a finished study
    return False, sum(1 for p in procs if p.exitcode not in (0, None))


def _reap(procs: list[Any], store: Any, name: str) -> None:
    """Kill the workers still alive and fail the trials they were running (the study's --timeout is long past)."""
    killed = []
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(5)
            killed.append(p)
    _fail_running(killed, store, name, "stopped: the study's --timeout expired and its worker process was killed",
                  counted=True)


def _give_back(procs: list[Any], store: Any, name: str) -> None:
    """Fail, uncounted, the trials still recorded as running by these (now ended) workers, so a resume reruns them.

    A worker gives its trial back itself on Ctrl-C; this is the backstop for one that could not (stopped by
    ``_stop`` before its cleanup ran, or interrupted between a claim's commit and its bookkeeping).
    """
    from ..store.trialstore import INTERRUPTED_REASON

    _fail_running([p for p in procs if not p.is_alive()], store, name, INTERRUPTED_REASON, counted=False)


def _fail_running(procs: list[Any], store: Any, name: str, reason: str, *, counted: bool) -> None:
    """Fail the trials still recorded as running by these ended worker processes of this machine."""
    import socket

    from ..errors import ModelyardError
    from ..records.trials import TrialState

    mine = {f"{socket.gethostname()}:{p.pid}" for p in procs if p.pid is not None}
    if not mine:
        return
    try:
        running = store.trials(name, [TrialState.RUNNING])
    except ModelyardError:
        return  # best effort: a missed heartbeat fails them on the next claim
    for t in running:
        if (t.worker or "").rsplit(":", 1)[0] not in mine:  # worker ids are host:pid:thread
            continue  # another machine's or another command's trial
        try:
            store.finish(name, t.number, TrialState.FAILED, None, reason, counted=counted)
        except ModelyardError:
            pass  # it ended meanwhile


def _stop(procs: list[Any]) -> None:
    """Interrupt the workers (they give their trials' slots back), then wait; terminate any that hang."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                try:
                    os.kill(p.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        end = time.monotonic() + 20
        for p in procs:
            p.join(max(0.1, end - time.monotonic()))
        for p in procs:
            if p.is_alive():
                p.terminate()  # its trial is failed by the next claim once its heartbeat is missed
                p.join(5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        from .render import num

        return num(v)
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return str(v)


def _params(p: dict[str, Any], limit: int = 6) -> str:
    items = [f"{k}={_fmt(v)}" for k, v in p.items()]
    return ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")


def _status(store: Any, name: str, objective: Any, args: argparse.Namespace, t_start: float) -> Any:
    """The live summary: trials per state, the best value with its params, the running trials."""
    from rich.console import Group
    from rich.text import Text

    from ..records.trials import TrialState

    try:
        info = store.get_study(name)
        running = store.trials(name, [TrialState.RUNNING])
    except Exception as e:  # noqa: BLE001  (a transient database hiccup must not end the display)
        return Text(f"(store busy: {e})")
    c = info.counts
    finished = sum(v for k, v in c.items() if k != TrialState.RUNNING.value)
    elapsed = time.strftime("%H:%M:%S", time.gmtime(time.time() - t_start))
    lines = [Text.from_markup(
        f"[bold]{name}[/]  {finished} finished of {args.trials}: [green]{c.get('complete', 0)} complete[/], "
        f"[cyan]{c.get('running', 0)} running[/], [yellow]{c.get('pruned', 0)} pruned[/], "
        f"[red]{c.get('failed', 0)} failed[/]   {elapsed}")]
    if info.best_number is not None:
        best = store.trial(name, info.best_number)
        lines.append(Text(f"best {objective.metric} {info.best_value:.6g} (trial {best.number}): {_params(best.params)}"))
    else:
        lines.append(Text(f"best {objective.metric}: -"))
    for t in running[:8]:
        step = t.last_step
        now = f"epoch {step} {objective.metric} {t.intermediate[step]:.4g}" if step is not None else "starting"
        lines.append(Text(f"  #{t.number} {now}: {_params(t.params, 4)}", style="dim"))
    return Group(*lines)


def _finish(args: argparse.Namespace, yard: Any, store: Any, name: str, ds: Any, objective: Any,
            failed_workers: int) -> int:
    """Retrain and register the best trial, print the top trials (table or JSON)."""
    import modelyard as my
    from modelyard.errors import StudyError

    from ..records.trials import TrialState

    info = store.get_study(name)
    trials = store.trials(name)
    if info.best_number is None:
        failed = [t for t in trials if t.state is TrialState.FAILED]
        why = f"; the first failure: {failed[0].reason}" if failed else ""
        hint = " (see the worker errors above)" if failed_workers else ""
        raise StudyError(
            f"study {name!r} has no complete trial ({info.counts or 'none run'}){why}{hint}; fix the cause and rerun "
            f"with --study {name}"
        )
    best = store.trial(name, info.best_number)
    result = my.train(
        ds, model=args.model, params=objective.params_for(best.params), epochs=args.epochs, patience=args.patience,
        seed=args.seed, val_size=args.val_size, test_size=args.test_size, device="cpu", impute=args.impute, cv=args.cv,
    )
    from modelyard.registry import check_model_name, default_model_name

    model_name = check_model_name(args.name) if args.name else default_model_name(ds.source, args.model)
    version = None if args.no_register else _register(yard, result, model_name, name, best, objective)
    sign = -1.0 if info.direction == "maximize" else 1.0
    done = sorted((t for t in trials if t.state is TrialState.COMPLETE), key=lambda t: (sign * t.value, t.number))
    top = done[: args.top]
    test = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if args.json:
        from .render import print_json

        print_json({
            "study": info.to_dict(), "metric": objective.metric, "direction": info.direction,
            "best_trial": best.to_dict(), "top_trials": [t.to_dict() for t in top], "test_metrics": test,
            "version": version, "failed_workers": failed_workers, "cv": args.cv,
        })
        return 1 if failed_workers == args.workers else 0
    from rich.table import Table

    from .render import num, print_table, stdout_console

    con = stdout_console()
    scored = f"{args.cv}-fold cross-validation mean" if args.cv else "validation"
    table = Table(title=f"study {name}: top {len(top)} of {len(done)} complete trials "
                        f"({objective.metric} on {scored}, {info.direction})", header_style="bold")
    table.add_column("#", justify="right")
    table.add_column(objective.metric, justify="right")
    for p in best.params:
        table.add_column(p, justify="right")
    table.add_column("seconds", justify="right")
    for t in top:
        table.add_row(str(t.number), num(t.value, 6), *(_fmt(t.params.get(p)) for p in best.params),
                      num(t.duration, 3) if t.duration is not None else "-")
    print_table(con, table, plain=args.plain)
    c = info.counts
    con.print(f"{c.get('complete', 0)} complete, {c.get('pruned', 0)} pruned, {c.get('failed', 0)} failed")
    key = objective.metric if objective.metric in test else next(iter(test), None)
    if args.cv is not None and key is not None:
        sd = test.get(f"{key}_std")
        con.print(f"best trial {best.number}: {args.cv}-fold cross-validated {key} {num(test[key], 6)}"
                  + (f" ± {num(sd, 3)} (sd over folds)" if sd is not None else "")
                  + f"; the registered model is its params refit on all {len(ds)} rows")
    elif key is not None:
        con.print(f"best trial {best.number} retrained: test {key} {num(test[key], 6)} "
                  f"(validation {objective.metric} {num(best.value, 6)})")
    if version is not None and version["new"]:
        con.print(f"registered [bold]{version['ref']}[/] (id {version['id'][:12]}), linked to study {name} "
                  f"trial {best.number}")
    elif version is not None:
        con.print(f"best trial {best.number} is already registered as [bold]{version['ref']}[/]")
    if failed_workers:
        con.print(f"[red]{failed_workers} worker process(es) exited with an error (see above)[/]")
    return 1 if failed_workers == args.workers else 0


def _register(yard: Any, result: Any, model_name: str, study: str, best: Any, objective: Any) -> dict[str, Any]:
    """Register the retrained best model unless this study's trial is already registered under that name."""
    reg = yard.registry
    tags = {"study": study, "trial": str(best.number)}
    for v in reg.list(model_name) if model_name in reg.names() else []:
        if v.tags.get("study") == study and v.tags.get("trial") == str(best.number):
            return {"ref": v.ref, "id": v.id, "new": False}
    version = reg.register(
        result, model_name, tags=tags, links={"study": study, "trial": best.number},
        description=f"best trial {best.number} of study {study} ({objective.metric} {best.value:.6g} on "
                    f"{'cross-validation' if objective.cv else 'validation'})",
    )
    return {"ref": version.ref, "id": version.id, "new": True}
