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
from typing import Any, NoReturn

from .helptext import DefaultsFormatter

__all__ = ["COMMANDS", "build_parser", "main"]

# command name -> module under modelyard.cli; each module has add_parser(subparsers) and run(args) -> int
COMMANDS = ("train", "models", "tune", "studies", "compare", "comparisons", "ui", "predict", "serve", "export")


class UsageError(SystemExit):
    """A command line argparse refuses (exit code 2): argparse's ``message`` and the command it concerns."""

    def __init__(self, message: str, prog: str):
        super().__init__(2)
        self.message = message
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse, raising ``UsageError`` instead of printing and exiting, so ``main`` prints it as one line like every
    other error (and answers ``--json`` too); every option's help says its default (``DefaultsFormatter``) unless a
    command picks its own formatter."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)


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
    """Run the CLI; returns the process exit code (0 ok, 2 user error, 1 internal error, 130 interrupted).

    With ``--json`` a failure also prints ``{"error": MESSAGE, "exit_code": CODE}`` on stdout, so a
    script that reads stdout always gets one JSON document.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        print(f"error: {e.message} (see {e.prog} --help)", file=sys.stderr)
        if "--json" in argv:
            _json_error(e.message, 2)
        return 2
    debug = args.debug or os.environ.get("MODELYARD_DEBUG") == "1"
    if not args.command:
        parser.print_help()
        return 2
    from modelyard.errors import ModelyardError

    as_json = bool(getattr(args, "json", False))
    try:
        code = int(args.func(args) or 0)
    except ModelyardError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return _failed(as_json, str(e), 2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return _failed(as_json, "interrupted", 130)
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug of ours: say so, briefly
        if debug:
            raise
        text = f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback and report it)"
        print(text, file=sys.stderr)
        return _failed(as_json, text, 1)
    return code


def _failed(as_json: bool, message: str, code: int) -> int:
    if as_json:
        _json_error(message, code)
    return code


def _json_error(message: str, code: int) -> None:
    """The failure as the one JSON document on stdout."""
    import json

    payload: dict[str, Any] = {"error": message, "exit_code": code}
    try:
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):  # stdout closed: the exit code still tells
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
