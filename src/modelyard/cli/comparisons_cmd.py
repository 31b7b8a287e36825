"""``modelyard comparisons list | show ID | delete ID``: the comparisons saved with ``compare --save`` or the dashboard."""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_store_arg
from .render import add_plain_arg, local_time

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    """Register the ``comparisons`` command and its ``list``, ``show`` and ``delete`` subcommands."""
    p: argparse.ArgumentParser = sub.add_parser(
        "comparisons", help="list, show and delete saved comparisons",
        description="Comparisons saved by `modelyard compare --save` or run from the dashboard.",
    )
    csub = p.add_subparsers(dest="comparisons_command", metavar="SUBCOMMAND")
    s = csub.add_parser("list", help="saved comparisons, newest first")
    s.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    s.add_argument("--json", action="store_true", help="print one JSON array and nothing else")
    add_plain_arg(s)
    add_store_arg(s)
    s.set_defaults(func=_list)
    s = csub.add_parser("show", help="one saved comparison, as `modelyard compare` printed it")
    s.add_argument("id", help="the comparison's id or a unique prefix of it (at least 4 characters)")
    s.add_argument("--json", action="store_true", help="print one JSON object (Comparison.to_dict) and nothing else")
    s.add_argument("--report", metavar="FILE.html", default=None, help="also write the standalone HTML report")
    add_plain_arg(s)
    add_store_arg(s)
    s.set_defaults(func=_show)
    s = csub.add_parser("delete", help="remove one saved comparison")
    s.add_argument("id", help="the comparison's id or a unique prefix of it")
    add_store_arg(s)
    s.set_defaults(func=_delete)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _list(args: argparse.Namespace) -> int:
    from modelyard.errors import ParamError
    from modelyard.yard import Yard

    from .render import print_json, print_table, stdout_console

    if args.limit < 1:
        raise ParamError(f"--limit must be >= 1, got {args.limit}")
    with Yard(args.store) as yard:
        items = yard.comparisons.list(limit=args.limit)
    if args.json:
        print_json([i.to_dict() for i in items])
        return 0
    con = stdout_console()
    if not items:
        con.print("no saved comparisons yet; save one with `modelyard compare REF REF --data DATA --save`")
        return 0
    from rich.table import Table

    table = Table(title="saved comparisons", header_style="bold")
    for col in ("id", "computed", "versions", "best", "metric", "rows", "data"):
        table.add_column(col, justify="right" if col == "rows" else "left", no_wrap=col in ("id", "computed"),
                         overflow="fold")
    for i in items:
        table.add_row(i.id[:12], local_time(i.created_at, seconds=False), ", ".join(i.refs),
                      i.best, i.metric, f"{i.n_rows:,}", i.data_source)
    print_table(con, table, plain=args.plain)
    return 0


def _show(args: argparse.Namespace) -> int:
    from modelyard.yard import Yard

    from .compare_cmd import _check_report_path, _print
    from .render import print_json, stdout_console

    _check_report_path(args.report)
    with Yard(args.store) as yard:
        cid = yard.comparisons.resolve(args.id)
        result = yard.comparisons.get(cid)
    if args.report:
        from modelyard.compare import write_report

        path = write_report(result, args.report)
    if args.json:
        print_json({**result.to_dict(), "id": cid})
        return 0
    con = stdout_console()
    con.print(f"comparison {cid}")
    _print(con, result, plain=args.plain)
    if args.report:
        print(f"report written to {path}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    from modelyard.yard import Yard

    with Yard(args.store) as yard:
        cid = yard.comparisons.delete(args.id)
    print(f"deleted comparison {cid}")
    return 0
