"""Arguments and parsing shared by several commands."""

from __future__ import annotations

import argparse
import math
from typing import Any

__all__ = [
    "add_data_args", "add_store_arg", "add_table_args", "age", "duration", "finite_float", "listening_socket",
    "parse_duration", "parse_sets", "token_folder",
]


def add_store_arg(parser: argparse.ArgumentParser) -> None:
    """``--store URL`` (default: $MODELYARD_STORE or ./.modelyard)."""
    parser.add_argument(
        "--store", metavar="URL", default=None,
        help="store folder or database URL (default: $MODELYARD_STORE or ./.modelyard)",
    )


def add_data_args(parser: argparse.ArgumentParser, *, positional: bool = True) -> None:
    """The data source, ``--target``, ``--task`` and ``--drop-missing``."""
    if positional:
        parser.add_argument("data", help="a .csv, .parquet or .npz file, or sklearn:NAME (iris, wine, breast_cancer, digits, diabetes)")
    parser.add_argument("--target", help="target column (CSV/Parquet) (default: the column named target, label, y or "
                                         "class)")
    parser.add_argument("--task", choices=("classification", "regression"),
                        help="override the inferred task (default: inferred from the target)")
    parser.add_argument(
        "--drop-missing", nargs="?", const=True, default=False, type=_force, metavar="force",
        help="drop rows with missing or infinite values, reporting how many per column; refused when that is more than "
             "20%% of the rows unless written --drop-missing=force (default: keep them, missing values load as NaN)",
    )


def _force(text: str) -> str:
    if text != "force":
        raise argparse.ArgumentTypeError(f"the only value it takes is force (--drop-missing=force), got {text!r}")
    return text


def add_table_args(parser: argparse.ArgumentParser) -> None:
    """``--drop-columns``, ``--impute`` and ``--class-weight``: what a real table with gaps and imbalance needs."""
    parser.add_argument("--drop-columns", default=None, metavar="A,B",
                        help="leave these feature columns out (comma-separated names)")
    parser.add_argument("--impute", default=None, metavar="median|most_frequent",
                        help="fill missing values (fitted on the training rows, stored with the model) for families "
                             "that cannot take them: linear, logistic, mlp (default: none; tree families take NaN)")
    parser.add_argument("--class-weight", default=None, metavar="balanced|LABEL=W,...",
                        help="weight the loss by class: balanced, or explicit weights like yes=5 (classification; "
                             "recorded as the class_weight hyperparameter; default: none)")


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``["a=1", "b=x,y"]`` -> ``{"a": "1", "b": "x,y"}`` (values are typed by the family's declared params)."""
    from modelyard.errors import ParamError

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParamError(f"--set expects NAME=VALUE, got {item!r}; e.g. --set learning_rate=0.01")
        out[key.strip()] = value.strip()
    return out


def parse_duration(text: str | float | None, *, allow_zero: bool = False) -> float | None:
    """``90``, ``90s``, ``30m``, ``2h`` -> seconds (a number already parsed passes through, checked again).

    NaN and infinity are refused, as is a value <= 0 (or < 0 with ``allow_zero``).
    """
    from modelyard.errors import ParamError

    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        t = str(text).strip().lower()
        try:
            value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
        except ValueError:
            raise ParamError(f"cannot read duration {text!r}; use seconds or a suffix like 90s, 30m, 2h") from None
    if not math.isfinite(value):
        raise ParamError(f"duration must be a finite number of seconds, got {text!r}; e.g. 90s, 30m, 2h")
    if value < 0 or (value == 0 and not allow_zero):
        raise ParamError(f"duration must be {'>= 0' if allow_zero else 'positive'}, got {text!r}; e.g. 90s, 30m, 2h")
    return value


# --- argparse types: every number and duration option goes through one of these (or int) ----------------------------
# They refuse NaN and infinity (``float`` accepts "nan" and "inf") while the arguments are parsed, so a bad
# value ends the command before it loads data, starts workers or touches the store (exit 2, argparse's message).


def duration(text: str) -> float:
    """argparse type: a duration > 0 (``90``, ``90s``, ``30m``, ``2h``) in seconds."""
    return _typed(lambda: parse_duration(text))


def age(text: str) -> float:
    """argparse type: a duration >= 0 (an age guard such as ``0`` or ``24h``) in seconds."""
    return _typed(lambda: parse_duration(text, allow_zero=True))


def finite_float(text: str) -> float:
    """argparse type: a finite real number (NaN and infinity refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _typed(parse: Any) -> Any:
    from modelyard.errors import ParamError

    try:
        return parse()
    except ParamError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def token_folder(yard: Any) -> Any:
    """Where the dashboard token lives: the store folder, or the SQLite file's folder, or ./.modelyard."""
    from pathlib import Path

    from modelyard.yard import DEFAULT_STORE

    db = yard.db
    if db.dialect == "sqlite" and db.engine.url.database:
        return Path(db.engine.url.database).expanduser().absolute().parent
    return Path(DEFAULT_STORE).absolute()


def listening_socket(host: str, port: int) -> Any:
    """A socket listening on ``host:port`` (inheritable, for server worker processes); ModelyardError if it cannot."""
    import socket

    from modelyard.errors import ModelyardError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise ModelyardError(
            f"cannot listen on {host}:{port} ({e.strerror}); pass another --port (0 picks a free one) or --host"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
