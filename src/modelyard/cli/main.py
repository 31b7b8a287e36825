"""Entry point of the ``modelyard`` command: parses arguments, dispatches, maps errors to exit code 2.

Command modules are imported when the parser is built, so they must import only the
standard library at module level; heavy imports happen inside their ``run`` functions.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["COMMANDS", "build_parser", "main"]

# command name -> module under modelyard.cli; each module has add_parser(subparsers) and run(args) -> int
COMMANDS = ("train", "models", "tune", "studies", "compare", "comparisons", "ui")


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors (a missing argument, a bad number or duration) as one line like every other."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = _Parser(
        prog="modelyard",
        description="Train, tune, version and compare models on tabular data.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--version", action="version", version=f"modelyard {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"modelyard.cli.{name}_cmd")
        except ModuleNotFoundError as e:
            if e.name == f"modelyard.cli.{name}_cmd":
                continue  # command not built yet
            raise
        module.add_parser(sub)
    return parser


def _version() -> str:
    from modelyard import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 2 user error, 1 internal error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("MODELYARD_DEBUG") == "1"
    if not args.command:
        parser.print_help()
        return 2
    from modelyard.errors import ModelyardError

    try:
        return int(args.func(args) or 0)
    except ModelyardError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug of ours: say so, briefly
        if debug:
            raise
        print(f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback and report it)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
