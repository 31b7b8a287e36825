"""``modelyard models``: list, show, branch, lineage, alias, rollback, history and delete registered versions.

``--json`` prints exactly the records' ``to_dict`` shapes (the REST API returns the same).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import add_data_args, add_store_arg, age, duration, parse_duration, parse_sets
from .models_render import diff_text, lineage_tree, move_text, version_panel, versions_table
from .render import add_plain_arg, local_time

__all__ = ["add_parser", "run"]

_TABLE_LIMIT = 50


def add_parser(sub: Any) -> None:
    """Register the ``models`` command and its subcommands."""
    p: argparse.ArgumentParser = sub.add_parser(
        "models", help="list, inspect, branch and alias registered model versions",
        description="The model registry. Refs name versions as NAME/NUMBER, NAME@ALIAS (NAME@latest: the newest) "
        "or a unique id prefix.",
    )
    msub = p.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: _usage(p))

    s = msub.add_parser("list", help="versions with family, key metric, aliases and creation time")
    s.add_argument("name", nargs="?", help="only versions of this model")
    s.add_argument("--limit", type=int, default=None,
                   help=f"show at most N versions, newest first (default: {_TABLE_LIMIT} in the table, all with --json)")
    _common(s, json=True)
    add_plain_arg(s)
    s.set_defaults(func=_list)

    s = msub.add_parser("show", help="everything recorded about one version")
    s.add_argument("ref", help="NAME/NUMBER, NAME@ALIAS, NAME@latest or an id prefix")
    _common(s, json=True)
    s.set_defaults(func=_show)

    s = msub.add_parser(
        "branch", help="a child version with changed hyperparameters (same weights, or --retrain)",
        description="Create a child of REF with --set overrides. Without --retrain the child shares REF's weights "
        "(no bytes are copied); with --retrain DATA it is warm-started from them, trained and evaluated.",
    )
    s.add_argument("ref", help="the parent version")
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="a hyperparameter to change (repeatable)")
    s.add_argument("--retrain", metavar="DATA", help="train the branch on this data, starting from the parent's weights")
    add_data_args(s, positional=False)
    s.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: the parent's)")
    s.add_argument("--patience", type=int, default=None, help="early-stopping patience (default: the parent's)")
    s.add_argument("--max-time", type=duration, default=None, help="wall-clock budget, e.g. 90s, 5m")
    s.add_argument("--seed", type=int, default=None, help="seed of split and training (default: the parent's)")
    s.add_argument("--device", default=None, help="cpu, cuda, cuda:N")
    s.add_argument("--threads", type=int, default=None, help="torch threads")
    s.add_argument("--name", default=None, help="register under this model name (default: the parent's)")
    s.add_argument("--tag", action="append", metavar="KEY=VALUE", help="a tag on the new version (repeatable)")
    s.add_argument("--description", default=None, help="a description of the new version")
    _common(s, json=True)
    s.set_defaults(func=_branch)

    s = msub.add_parser("lineage", help="ancestors to the root and descendants, with the param diff on each edge")
    s.add_argument("ref")
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print one JSON object")
    fmt.add_argument("--dot", action="store_true", help="print a Graphviz digraph (pipe to: dot -Tsvg > lineage.svg)")
    add_store_arg(s)
    s.set_defaults(func=_lineage)

    s = msub.add_parser("alias", help="point NAME@ALIAS at a version (recorded in the history)")
    s.add_argument("name")
    s.add_argument("alias", help="e.g. production, staging")
    s.add_argument("ref", nargs="?", help="the version to point at (omit with --unset)")
    s.add_argument("--why", default=None, help="the reason, kept in the alias history")
    s.add_argument("--unset", action="store_true", help="remove the alias instead")
    _common(s, json=True)
    s.set_defaults(func=_alias)

    s = msub.add_parser("rollback", help="move an alias back to the parent of the version it holds (or --to an ancestor)")
    s.add_argument("name")
    s.add_argument("--alias", default="production", help="the alias to move (default: production)")
    s.add_argument("--to", default=None, metavar="REF", help="an ancestor to move to (default: the parent)")
    s.add_argument("--why", default=None, help="the reason, kept in the alias history")
    _common(s, json=True)
    s.set_defaults(func=_rollback)

    s = msub.add_parser("history", help="every move of a model's aliases: when, who, from, to, why")
    s.add_argument("name")
    s.add_argument("alias", nargs="?", help="only this alias")
    _common(s, json=True)
    add_plain_arg(s)
    s.set_defaults(func=_history)

    s = msub.add_parser(
        "delete", help="delete a version (refused while it has descendants or an alias, unless --force)",
        description="Delete a version. While it has child versions or aliases this is refused unless --force, "
        "which re-parents its children to its own parent (recorded on their lineage edge) and removes its "
        "aliases (recorded in the alias history). Its weights stay stored while other versions share them.",
    )
    s.add_argument("ref")
    s.add_argument("--force", action="store_true", help="re-parent children and drop aliases")
    s.add_argument("--why", default=None, help="the reason, kept in the alias history of dropped aliases")
    _common(s, json=True)
    s.set_defaults(func=_delete)

    s = msub.add_parser(
        "gc", help="remove stored weights no version references (and give their space back)",
        description="Remove artifacts that no version references and that are older than --older-than (younger "
        "ones may belong to a registration in progress), then compact a local store's pack files.",
    )
    s.add_argument("--older-than", type=age, default="1h", metavar="DURATION", help="age guard, e.g. 90s, 30m, 24h (default 1h)")
    s.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    _common(s, json=True)
    s.set_defaults(func=_gc)


def run(args: argparse.Namespace) -> int:
    """Execute ``modelyard models ...`` (dispatches to the subcommand)."""
    return int(args.func(args) or 0)


def _common(p: argparse.ArgumentParser, *, json: bool) -> None:
    if json:
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_store_arg(p)


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def _registry(args: argparse.Namespace) -> Any:
    from modelyard.yard import Yard

    return Yard(args.store).registry


# --- subcommands ------------------------------------------------------------------------
def _list(args: argparse.Namespace) -> int:
    from .render import print_json, print_table, stdout_console

    reg = _registry(args)
    if args.limit is not None and args.limit < 0:
        from modelyard.errors import ParamError

        raise ParamError(f"--limit must be >= 0, got {args.limit}; pass e.g. --limit 20 (0 shows all)")
    limit = args.limit if args.limit else None
    if args.json:
        print_json(reg.list(args.name, limit=limit))
        return 0
    shown_limit = limit if args.limit is not None else _TABLE_LIMIT
    versions = reg.list(args.name, limit=shown_limit)
    con = stdout_console()
    if not versions:
        where = f"model {args.name}" if args.name else "the store"
        con.print(f"no versions in {where} yet; register one with: modelyard train DATA --name NAME", soft_wrap=True)
        return 0
    print_table(con, versions_table(versions), plain=args.plain)
    total = reg.count(args.name)
    if total > len(versions):
        con.print(f"showing {len(versions)} of {total} versions; --limit 0 shows all", soft_wrap=True)
    return 0


def _show(args: argparse.Namespace) -> int:
    from .render import print_json, stdout_console

    reg = _registry(args)
    v = reg.get(args.ref)
    if args.json:
        print_json(v)
        return 0
    parent = reg.resolve(v.parent_id).ref if v.parent_id else None
    con = stdout_console()
    con.print(version_panel(v, parent))
    return 0


def _branch(args: argparse.Namespace) -> int:
    from .render import metrics_table, print_json, stderr_console, stdout_console

    reg = _registry(args)
    params = parse_sets(args.set)
    tags = _parse_tags(args.tag)
    options: dict[str, Any] = {}
    for key in ("epochs", "patience", "seed", "device", "threads"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.max_time is not None:
        options["max_time"] = parse_duration(args.max_time)
    if args.retrain is None:
        given = [f"--{k.replace('_', '-')}" for k in options]
        given += [flag for flag, v in (("--target", args.target), ("--task", args.task)) if v is not None]
        if args.drop_missing:
            given.append("--drop-missing")
        if given:
            from modelyard.errors import ParamError

            raise ParamError(f"{', '.join(given)} apply only with --retrain DATA; add --retrain or drop them")
        version = reg.branch(args.ref, params, name=args.name, tags=tags, description=args.description)
    else:
        import modelyard as my

        ds = my.load_dataset(args.retrain, target=args.target, task=args.task, drop_missing=args.drop_missing)
        if not args.json:
            stderr_console().print(f"retraining {args.ref} on {ds.source}: {len(ds)} rows")
            if ds.dropped:
                stderr_console().print(f"note: {ds.dropped.sentence()}", markup=False, highlight=False)
        version = reg.branch(args.ref, params, retrain=ds, name=args.name, tags=tags, description=args.description,
                             **options)
    if args.json:
        print_json(version)
        return 0
    con = stdout_console()
    parent = reg.resolve(version.parent_id)
    if args.retrain is None:
        con.print(f"registered [bold]{version.ref}[/] (id {version.short_id}), parent {parent.ref}, same weights "
                  f"(no bytes copied); {diff_text(version, reg)}", soft_wrap=True)
    else:
        con.print(metrics_table(version.metrics, title=f"{version.ref} — held-out metrics"))
        con.print(f"registered [bold]{version.ref}[/] (id {version.short_id}), warm-started from {parent.ref}; "
                  f"{diff_text(version, reg)}", soft_wrap=True)
    return 0


def _lineage(args: argparse.Namespace) -> int:
    from ..registry.lineage import to_dot
    from .render import print_json, stdout_console

    lin = _registry(args).lineage(args.ref)
    if args.json:
        print_json(lin)
    elif args.dot:
        sys.stdout.write(to_dot(lin))
    else:
        stdout_console().print(lineage_tree(lin))
    return 0


def _alias(args: argparse.Namespace) -> int:
    from modelyard.errors import ParamError

    reg = _registry(args)
    if args.unset:
        if args.ref is not None:
            raise ParamError(f"--unset removes {args.name}@{args.alias}; drop the ref {args.ref!r} or drop --unset")
        move = reg.unset_alias(args.name, args.alias, reason=args.why)
    else:
        if args.ref is None:
            raise ParamError(f"name the version for {args.name}@{args.alias}, e.g. modelyard models alias "
                             f"{args.name} {args.alias} {args.name}/1 (or pass --unset to remove it)")
        move = reg.set_alias(args.name, args.alias, args.ref, reason=args.why)
    return _print_move(args, move)


def _rollback(args: argparse.Namespace) -> int:
    return _print_move(args, _registry(args).rollback(args.name, args.alias, args.to, reason=args.why))


def _print_move(args: argparse.Namespace, move: Any) -> int:
    from .render import print_json, stdout_console

    if args.json:
        print_json(move)
    else:
        stdout_console().print(move_text(move), soft_wrap=True, markup=False)
    return 0


def _history(args: argparse.Namespace) -> int:
    from .render import print_json, print_table, stdout_console

    moves = _registry(args).alias_history(args.name, args.alias)
    if args.json:
        print_json(moves)
        return 0
    con = stdout_console()
    if not moves:
        con.print(f"{args.name} has no alias moves yet; set one with: modelyard models alias {args.name} production REF",
                  soft_wrap=True)
        return 0
    from rich.table import Table

    t = Table(title=f"alias history of {args.name}" + (f"@{args.alias}" if args.alias else ""), header_style="bold")
    for col in ("when", "who", "alias", "action", "from", "to", "why"):
        t.add_column(col)
    for m in moves:
        t.add_row(local_time(m.at), m.user, m.alias, m.action, m.from_ref or "-", m.to_ref or "-", m.reason or "")
    print_table(con, t, plain=args.plain)
    return 0


def _delete(args: argparse.Namespace) -> int:
    from .render import print_json, stdout_console

    reg = _registry(args)
    d = reg.delete(args.ref, force=args.force, reason=args.why)
    if args.json:
        print_json(d)
        return 0
    con = stdout_console()
    con.print(f"deleted {d.version.ref} (id {d.version.short_id})", soft_wrap=True)
    for child in d.reparented:
        s = reg.resolve(child)
        new_parent = reg.resolve(s.parent_id).ref if s.parent_id else "none (now a root)"
        con.print(f"  re-parented {s.ref} to {new_parent}", soft_wrap=True)
    for m in d.dropped:
        con.print(f"  removed alias {m.name}@{m.alias}", soft_wrap=True)
    return 0


def _gc(args: argparse.Namespace) -> int:
    from .common import parse_duration
    from .render import print_json, stdout_console

    older_than = parse_duration(args.older_than, allow_zero=True)
    removed = _registry(args).gc(older_than=older_than or 0.0, dry_run=args.dry_run)
    if args.json:
        print_json({"removed": removed, "dry_run": args.dry_run})
        return 0
    verb = "would remove" if args.dry_run else "removed"
    stdout_console().print(f"{verb} {len(removed)} unreferenced artifact(s)" + "".join(f"\n  {d}" for d in removed),
                           soft_wrap=True)
    return 0


def _parse_tags(items: list[str] | None) -> dict[str, str]:
    from modelyard.errors import ParamError

    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParamError(f"--tag expects KEY=VALUE, got {item!r}; e.g. --tag team=growth")
        out[key.strip()] = value.strip()
    return out
