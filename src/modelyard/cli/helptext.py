"""Help that answers: every option's default, and each model family's hyperparameters (type, range, default).

The families' list is built only when a help page that shows it is printed: ``modelyard --help``
builds every command's parser but formats none of their pages, so it never imports the model
families (which need numpy; torch and scikit-learn are imported by the families only to train).
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

__all__ = ["DefaultsFormatter", "FamiliesFormatter", "families_text"]


class DefaultsFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to every option whose help does not already say its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or action.default is argparse.SUPPRESS or "default" in text
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            return text
        if action.required:
            return text + " (required)"
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            return text + (" (default: off)" if action.default is False else " (default: on)")
        if action.default is None:
            return text + " (default: none)"
        default = action.default
        if isinstance(default, (list, tuple)):
            default = ",".join(map(str, default))
        return text + f" (default: {str(default).replace('%', '%%')})"


def _bound(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def _range(p: Any) -> str:
    if p.choices is not None:
        return "one of " + ", ".join(map(str, p.choices))
    low = "-inf" if p.low is None else _bound(p.low)
    high = "inf" if p.high is None else _bound(p.high)
    if p.low is None and p.high is None:
        return ""
    return f"{'each ' if p.type == 'ints' else ''}in [{low}, {high}]"


def families_text(width: int = 100) -> str:
    """The hyperparameters of every built-in family: name, type, range, default and what it does."""
    from ..models import FAMILIES

    lines = ["model families and their hyperparameters (set with --set NAME=VALUE):"]
    for family, cls in FAMILIES.items():
        tasks = ", ".join(getattr(t, "value", str(t)) for t in getattr(cls, "tasks", ()))
        lines.append(f"  {family}" + (f" ({tasks})" if tasks else ""))
        params = list(cls.params)
        name_w = max((len(p.name) for p in params), default=0)
        for p in params:
            tname = p.type if isinstance(p.type, str) else p.type.__name__
            if tname == "ints":
                tname = "ints (comma-separated)"
            rng = _range(p)
            head = f"    {p.name:<{name_w}}  {tname}{', ' + rng if rng else ''}; default {p.example()}"
            if p.nullable and p.default is not None:
                head += " (None allowed)"
            body = f"{head}: {p.help}" if p.help else head
            lines.extend(textwrap.wrap(body, width=width, subsequent_indent=" " * (name_w + 6)) or [body])
    lines.append("  package.module:Class  a custom model (see the README); its declared params are listed by an "
                 "unknown --set")
    return "\n".join(lines)


class FamiliesFormatter(DefaultsFormatter):
    """The defaults formatter, with the families' hyperparameters after the options."""

    def format_help(self) -> str:
        text = super().format_help()
        return text.rstrip("\n") + "\n\n" + families_text(max(self._width, 60)) + "\n"
