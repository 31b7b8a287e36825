"""``modelyard compare``: evaluate registered versions on the same data, test the differences, weigh the cost.

Prints rich tables (verdicts, metrics with deltas and bootstrap intervals, McNemar counts,
cost, parameter distances), or with ``--json`` exactly ``Comparison.to_dict()`` (the REST
API's shape); ``--report FILE.html`` also writes the standalone page with plots. ``--save``
stores the result in the store (``Yard.comparisons``), where the dashboard lists it, and
prints its id (with ``--json``, as the object's ``"id"``).
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_data_args, add_store_arg, finite_float
from .render import add_plain_arg, num

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Register the ``compare`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "compare", help="compare versions on the same data: metrics, significance, cost",
        description="Rebuild each version from its verified artifact, evaluate all on the same rows, and say "
        "whether the differences are real (McNemar's exact test for classifiers, paired bootstrap intervals for "
        "every metric; Holm-corrected against the best for more than two versions).",
    )
    p.add_argument("refs", nargs="+", metavar="REF", help="two or more versions: NAME/NUMBER, NAME@ALIAS or id prefix")
    p.add_argument("--data", default=None,
                   help="rows to evaluate on (required, no default): .csv, .parquet, .npz or sklearn:NAME; rows "
                        "any compared version trained or validated on are left out, so the versions' own training "
                        "data works")
    add_data_args(p, positional=False)
    p.add_argument("--allow-training-rows", action="store_true",
                   help="evaluate on every row of --data, even rows a compared version trained on (the result says "
                        "how many; they flatter that version)")
    p.add_argument("--json", action="store_true", help="print one JSON object (Comparison.to_dict) and nothing else")
    p.add_argument("--report", metavar="FILE.html", default=None, help="also write a standalone HTML report with plots")
    p.add_argument("--save", action="store_true",
                   help="also save the result in the store and print its id (the dashboard lists saved comparisons)")
    p.add_argument("--alpha", type=finite_float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--resamples", type=int, default=2000, help="paired bootstrap resamples, >= 1000 (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--metric", default=None, help="ranking metric (default: f1 for classification, rmse for regression)")
    p.add_argument("--test", choices=("auto", "mcnemar", "bootstrap"), default="auto",
                   help="test behind the verdict: mcnemar (classifiers), bootstrap of the ranking metric, or auto")
    p.add_argument("--batch-size", type=int, default=1024, help="rows per batch when timing inference (default 1024)")
    p.add_argument("--latency-budget", type=finite_float, default=1.0, metavar="SECONDS",
                   help="time spent timing inference per version (default 1.0)")
    p.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    add_plain_arg(p)
    add_store_arg(p)
    p.set_defaults(func=run)


def _check_report_path(path: str | None) -> None:
    if path is None:
        return
    from pathlib import Path

    from modelyard.errors import DataError

    target = Path(path).expanduser()
    if target.is_dir():
        raise DataError(f"--report {path!r} is a folder; pass a file name such as compare.html")
    if not target.parent.exists():
        raise DataError(f"the folder of --report {path!r} does not exist; create it or pick another path")


def run(args: argparse.Namespace) -> int:
    """Execute ``modelyard compare``."""
    from modelyard.compare import CompareOptions, compare_refs, write_report
    from modelyard.compare.core import check_distinct
    from modelyard.data import load_dataset
    from modelyard.errors import ParamError
    from modelyard.yard import Yard

    from .render import print_json, stderr_console

    if args.data is None:
        if args.allow_training_rows:
            raise ParamError("--allow-training-rows applies to the rows of --data, which is missing; pass --data FILE")
        raise ParamError("compare needs the rows to evaluate on; pass --data FILE (a .csv, .parquet, .npz or sklearn:NAME)")
    options = CompareOptions(
        alpha=args.alpha, resamples=args.resamples, seed=args.seed, metric=args.metric, test=args.test,
        latency=not args.no_latency, batch_size=args.batch_size, latency_budget_s=args.latency_budget,
        allow_training_rows=args.allow_training_rows,
    )

    if len(args.refs) < 2:
        raise ParamError(f"compare needs at least two versions, got {len(args.refs)}; e.g. compare churn/1 churn/2")
    twice = [r for i, r in enumerate(args.refs) if r in args.refs[:i]]
    if twice:
        raise ParamError(f"{twice[0]!r} is given more than once; pass each version once")
    _check_report_path(args.report)
    with Yard(args.store) as yard:
        if args.save:
            yard.db.require_writable()  # before any work whose result could not be saved
        registry = yard.registry
        versions = [registry.get(ref) for ref in args.refs]  # bad refs fail here, before the data is read
        check_distinct(args.refs, [v.id for v in versions])
        first = versions[0]
        if args.task is not None and args.task != first.schema.task.value:
            raise ParamError(
                f"--task {args.task} does not match the versions: {args.refs[0]} is a {first.schema.task.value} "
                f"model; drop --task (the versions' task is used) or compare {args.task} models"
            )
        task = args.task or first.schema.task.value
        ds = load_dataset(args.data, target=args.target or first.schema.target, task=task,
                          drop_missing=args.drop_missing)
        if not args.json:
            stderr_console().print(
                f"comparing {len(args.refs)} versions on {ds.source}: {len(ds):,} rows, {options.resamples:,} "
                "paired resamples" + ("" if args.no_latency else ", timing inference")
            )
            if ds.dropped:
                stderr_console().print(f"note: {ds.dropped.sentence()}", markup=False, highlight=False)
        result = compare_refs(registry, args.refs, ds, options)
        saved = yard.comparisons.save(result) if args.save else None
    if args.report:
        path = write_report(result, args.report)
    if args.json:
        print_json({**result.to_dict(), "id": saved} if saved else result.to_dict())
    else:
        from .render import stdout_console

        _print(stdout_console(), result, plain=args.plain)
        if args.report:
            print(f"report written to {path}")  # plain print: rich would wrap a long path
        if saved:
            print(f"saved as comparison {saved}; the dashboard (modelyard ui) shows it at /#/comparisons/{saved}")
    return 0


# --- terminal rendering ------------------------------------------------------------------
def _f(v: Any) -> str:
    return num(v)


def _p(v: float | None) -> str:
    return "-" if v is None else ("<1e-4" if v < 1e-4 else num(v, 3))


def _s(v: float | None) -> str:
    if v is None:
        return "-"
    if v < 1e-3:
        return f"{v * 1e6:.1f} µs"
    return f"{v * 1e3:.2f} ms" if v < 1 else f"{v:.2f} s"


def _b(v: int | None) -> str:
    if v is None:
        return "-"
    return f"{v} B" if v < 1024 else (f"{v / 1024:.1f} KiB" if v < 1024**2 else f"{v / 1024**2:.1f} MiB")


def _verdict_line(p: Any, alpha: float) -> str:
    how = "McNemar exact" if p.test == "mcnemar_exact" else f"bootstrap {p.test.split(':', 1)[-1]}"
    adj = f", Holm {_p(p.p_adjusted)}" if p.p_adjusted != p.p_value else ""
    if p.winner:
        head = f"[bold green]{p.winner} better[/]"
    else:
        head = "[bold]no significant difference[/]"
    return f"{head}  (A = {p.a}, B = {p.b}; {how} p = {_p(p.p_value)}{adj}, α = {alpha})"


def _delta_table(title: str, deltas: Any, alpha: float, *, per_class: bool = False) -> Any:
    from rich.table import Table

    t = Table(title=title, header_style="bold")
    for name in ("class" if per_class else "metric", "A", "B", "Δ B−A", f"{(1 - alpha) * 100:g}% CI", "p", "better"):
        t.add_column(name, justify="left" if name in ("metric", "class") else "right", no_wrap=name.endswith("CI"))
    for d in deltas:
        ci = "-" if d.ci_low is None else f"[{_f(d.ci_low)}, {_f(d.ci_high)}]"
        better = d.better or "="
        better = f"[green]{better}*[/]" if d.significant else better
        t.add_row(str(d.label) if per_class else d.metric, _f(d.a), _f(d.b), _f(d.delta), ci, _p(d.p_value), better)
    return t


def _print(con: Any, c: Any, *, plain: bool = False) -> None:
    from rich.table import Table

    from .render import print_table

    def show(table: Any) -> None:
        print_table(con, table, plain=plain)

    con.print(f"[bold]{c.task.value}[/] on {c.data_source}: {c.n_rows:,} rows; ranked by {c.metric} "
              f"({'higher' if c.higher_is_better else 'lower'} is better); α = {c.alpha}; {c.resamples:,} paired "
              f"resamples, seed {c.seed}")
    if c.rows is not None:
        con.print(c.rows.note, markup=False, highlight=False)
    else:
        con.print("the rows were not checked against the versions' training rows (saved before modelyard did)")
    if len(c.entries) > 2:
        t = Table(title="leaderboard", header_style="bold")
        for name in ("rank", "version", "family", c.metric, "vs best", "p (Holm)"):
            t.add_column(name, justify="right" if name in ("rank", c.metric, "p (Holm)") else "left")
        vs = {p.b: p for p in c.pairs}
        for e in c.leaderboard:
            p = vs.get(e.label)
            t.add_row(str(e.rank), e.label, e.family, _f(e.metrics.get(c.metric)),
                      (p.winner + " better" if p and p.winner else p.verdict) if p else "best",
                      _p(p.p_adjusted) if p else "-")
        show(t)
    for p in c.pairs:
        con.print(_verdict_line(p, c.alpha))
        if len(c.pairs) == 1 or p.winner is None:
            show(_delta_table(f"A = {p.a}  vs  B = {p.b}", p.metrics, c.alpha))
        if p.mcnemar is not None and len(c.pairs) == 1:
            m = p.mcnemar
            con.print(f"McNemar: both right {m.both_right:,}, only A right {m.a_only:,}, only B right {m.b_only:,}, "
                      f"both wrong {m.both_wrong:,}; exact p {_p(m.p_exact)}, mid-p {_p(m.p_midp)}, "
                      f"χ² {num(m.statistic)} (p {_p(m.p_chi2)})")
        if len(c.pairs) == 1 and p.per_class and len(c.classes or ()) <= 10:
            f1 = [d for d in p.per_class if d.metric == "f1"]
            show(_delta_table("F1 per class", f1, c.alpha, per_class=True))
    con.print("[dim]* the bootstrap interval of the difference excludes 0[/]")
    t = Table(title="cost", header_style="bold")
    for name in ("version", "train time", "size", "params", "batch p50/p95", "row p50/p95", "rows/s"):
        t.add_column(name, justify="left" if name == "version" else "right")
    for e in c.entries:
        lat = e.cost.latency
        t.add_row(e.label, _s(e.cost.train_time_s), _b(e.cost.size_bytes), f"{e.cost.n_parameters:,}",
                  f"{_s(lat.batch_p50_s)} / {_s(lat.batch_p95_s)}" if lat else "-",
                  f"{_s(lat.row_p50_s)} / {_s(lat.row_p95_s)}" if lat else "-",
                  f"{lat.rows_per_s:,.0f}" if lat else "-")
    show(t)
    lat = next((e.cost.latency for e in c.entries if e.cost.latency), None)
    if lat:
        con.print(f"[dim]latency after warm-up: {lat.repeats} interleaved calls of {lat.batch_size:,} rows and of 1 row[/]")
    if c.distances:
        t = Table(title="parameter space", header_style="bold")
        for name in ("A", "B", "L2", "relative L2", "cosine", "note"):
            t.add_column(name, justify="right" if name in ("L2", "relative L2", "cosine") else "left")
        for d in c.distances:
            t.add_row(d.a, d.b, _f(d.l2), _f(d.relative_l2), _f(d.cosine), d.reason or "")
        show(t)
