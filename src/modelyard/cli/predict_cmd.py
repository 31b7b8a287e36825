"""``modelyard predict REF FILE``: score a CSV, Parquet or .npz file with a registered version."""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_store_arg

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Register the ``predict`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "predict", help="score a file with a registered version",
        description="Score every row of a CSV, Parquet or .npz file with a version (NAME@ALIAS, NAME/NUMBER or an id "
        "prefix). The rows are checked against the version's schema (columns, types, categories); predictions are "
        "class labels as in training, or values. Parquet is streamed by row group, so files larger than memory "
        "score in bounded memory. Without --out, CSV goes to stdout.",
    )
    p.add_argument("ref", help="the version: NAME@ALIAS, NAME/NUMBER or an id prefix")
    p.add_argument("file", help="rows to score: .csv, .parquet, .npz (array X) or sklearn:NAME (a bundled set; its labels are column target)")
    p.add_argument("--out", metavar="FILE", help="write the predictions to FILE (.csv or .parquet); default: CSV on stdout")
    p.add_argument("--proba", action="store_true", help="add one probability column per class (proba_<label>)")
    p.add_argument("--keep", metavar="COL,...", help="input columns to copy into the output (ids), comma-separated")
    p.add_argument("--unknown", choices=("error", "warn"), default="error",
                   help="a category never seen in training: refuse (exit 2, default) or score it as unseen with a "
                        "warning")
    p.add_argument("--batch-rows", type=int, default=65536, help="rows scored per batch (default 65536)")
    p.add_argument("--json", action="store_true", help="print a JSON summary (rows, seconds, version, output) on stdout")
    add_store_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``modelyard predict``."""
    import sys
    import warnings

    from modelyard.errors import ParamError
    from modelyard.serve.batch import predict_file
    from modelyard.serve.holder import load_version
    from modelyard.yard import Yard

    from .render import print_json, stderr_console

    if args.json and not args.out:
        raise ParamError("--json prints a summary on stdout, so the predictions need a file: add --out FILE.parquet")
    if not 1 <= args.batch_rows <= 100_000_000:
        raise ParamError(f"--batch-rows must be between 1 and 100000000, got {args.batch_rows}")
    keep = [k.strip() for k in (args.keep or "").split(",") if k.strip()]
    with Yard(args.store) as yard:
        loaded = load_version(yard.registry, args.ref)
    progress, bar = _progress(enabled=sys.stderr.isatty() and not args.json, label=f"scoring with {loaded.ref}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = predict_file(loaded.predictor, args.file, args.out, proba=args.proba, keep=keep,
                                  unknown=args.unknown, batch_rows=args.batch_rows, progress=progress)
        finally:
            if bar is not None:
                bar.stop()
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    for m in messages[:5]:
        print(f"warning: {m}", file=sys.stderr)
    if len(messages) > 5:
        print(f"warning: ... and {len(messages) - 5} more batches with unseen categories", file=sys.stderr)
    summary = {**result.to_dict(), "version": {"id": loaded.id, "ref": loaded.ref}, "ref": args.ref,
               "unseen_category_warnings": len(messages)}
    if args.json:
        print_json(summary)
    elif args.out:
        stderr_console().print(f"scored {result.rows} rows with {loaded.ref} (id {loaded.version.short_id}) in "
                               f"{result.seconds:.2f} s -> {args.out}", highlight=False)
    return 0


def _progress(*, enabled: bool, label: str) -> tuple[Any, Any]:
    """A progress callback and its rich bar (None, None when off)."""
    if not enabled:
        return None, None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .render import stderr_console

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=stderr_console(), transient=True)
    task = bar.add_task(label, total=None)
    bar.start()

    def update(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    return update, bar
