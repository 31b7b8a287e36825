"""``modelyard studies list | show NAME``: the stored studies, their tallies, best values and trials."""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_store_arg
from .render import add_plain_arg, local_time, num

__all__ = ["add_parser", "run_list", "run_show"]


def add_parser(sub: Any) -> None:
    """Register the ``studies`` command and its ``list`` and ``show`` subcommands."""
    p: argparse.ArgumentParser = sub.add_parser(
        "studies", help="list and inspect tuning studies", description="List and inspect stored tuning studies."
    )
    ssub = p.add_subparsers(dest="studies_command", metavar="SUBCOMMAND")
    pl = ssub.add_parser("list", help="every study with its trial counts and best value")
    pl.add_argument("--json", action="store_true", help="print one JSON array and nothing else on stdout")
    add_plain_arg(pl)
    add_store_arg(pl)
    pl.set_defaults(func=run_list)
    ps = ssub.add_parser("show", help="one study: definition, best trial and every trial")
    ps.add_argument("name", help="the study name")
    ps.add_argument("--json", action="store_true", help="print one JSON object and nothing else on stdout")
    ps.add_argument("--state", choices=("running", "complete", "pruned", "failed"), default=None,
                    help="only trials in this state")
    add_plain_arg(ps)
    add_store_arg(ps)
    ps.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _num(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return num(v, 6) if isinstance(v, float) else ("-" if v is None else str(v))


def run_list(args: argparse.Namespace) -> int:
    """Execute ``modelyard studies list``."""
    from modelyard.yard import Yard

    from ..tune.study import open_trial_store
    from .render import print_json, print_table, stdout_console

    infos = open_trial_store(Yard(args.store)).list_studies()
    if args.json:
        print_json([i.to_dict() for i in infos])
        return 0
    from rich.table import Table

    con = stdout_console()
    if not infos:
        con.print("no studies yet; start one with `modelyard tune DATA --target COL --model FAMILY`")
        return 0
    table = Table(title="studies", header_style="bold")
    for col, just in (("name", "left"), ("model", "left"), ("metric", "left"), ("complete", "right"),
                      ("pruned", "right"), ("failed", "right"), ("running", "right"), ("best", "right"),
                      ("trial", "right"), ("created", "left")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for i in infos:
        c = i.counts
        metric = f"{i.attrs.get('metric', 'value')} ({'max' if i.direction == 'maximize' else 'min'})"
        table.add_row(i.name, str(i.attrs.get("model", "-")), metric, str(c.get("complete", 0)),
                      str(c.get("pruned", 0)), str(c.get("failed", 0)), str(c.get("running", 0)),
                      _num(i.best_value), _num(i.best_number), local_time(i.created_at, seconds=False))
    print_table(con, table, plain=args.plain)
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Execute ``modelyard studies show NAME``."""
    from modelyard.yard import Yard

    from ..records.trials import TrialState
    from ..tune.study import open_trial_store
    from .render import print_json, print_table, stdout_console

    store = open_trial_store(Yard(args.store))
    info = store.get_study(args.name)
    trials = store.trials(args.name, [TrialState(args.state)] if args.state else None)
    if args.json:
        print_json({"study": info.to_dict(), "trials": [t.to_dict() for t in trials]})
        return 0
    from rich.table import Table

    con = stdout_console()
    c = info.counts
    con.print(f"[bold]{info.name}[/]  {info.direction} {info.attrs.get('metric', 'value')}  optimizer {info.optimizer}, "
              f"pruner {info.pruner}, seed {info.seed}, created {local_time(info.created_at, seconds=False)}")
    for key in ("model", "data", "target"):
        if info.attrs.get(key) is not None:
            con.print(f"  {key}: {info.attrs[key]}")
    con.print("  space: " + "; ".join(f"{n} {_describe(d)}" for n, d in info.space.items()))
    con.print(f"  trials: {c.get('complete', 0)} complete, {c.get('pruned', 0)} pruned, {c.get('failed', 0)} failed, "
              f"{c.get('running', 0)} running")
    if info.best_number is not None:
        best = store.trial(info.name, info.best_number)
        con.print(f"  best: {_num(info.best_value)} (trial {best.number}) "
                  + ", ".join(f"{k}={_num(v)}" for k, v in best.params.items()))
    names = list(info.space)
    table = Table(header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("state")
    table.add_column("value", justify="right")
    for n in names:
        table.add_column(n, justify="right")
    table.add_column("epochs", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("reason", overflow="fold")
    style = {"complete": "", "running": "cyan", "pruned": "yellow", "failed": "red"}
    for t in trials:
        table.add_row(str(t.number), t.state.value, _num(t.value), *(_num(t.params.get(n)) for n in names),
                      _num(t.last_step), num(t.duration, 3) if t.duration is not None else "-", t.reason or "",
                      style=style[t.state.value])
    print_table(con, table, plain=args.plain)
    return 0


def _describe(d: dict[str, Any]) -> str:
    if d.get("type") == "categorical":
        return "{" + ", ".join(map(str, d["choices"])) + "}"
    log = " log" if d.get("log") else ""
    step = f" step {d['step']}" if d.get("step", 1) != 1 else ""
    return f"{d.get('type')} [{d.get('low')}, {d.get('high')}]{log}{step}"
