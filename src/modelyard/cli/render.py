"""Terminal output: tables that never cut an identifier or a number, JSON, and the training progress (rich).

At a terminal, tables fit its width by wrapping text columns; identifier and number columns
keep their whole width (a table wider than the terminal is printed whole and the terminal
wraps its lines). Off a terminal (a pipe, a file) the console has no width limit, so every
table and line prints full width, without colours; ``--plain`` prints tables as
tab-separated values instead. Numbers get significant digits (``num``), never fixed decimals.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Self

__all__ = [
    "TrainProgress", "add_plain_arg", "local_time", "metrics_table", "num", "print_json", "print_table",
    "stderr_console", "stdout_console", "to_jsonable",
]

UNLIMITED = 1_000_000  # the console width off a terminal: nothing wraps, nothing is cut


def to_jsonable(obj: Any) -> Any:
    """Numbers, arrays, tuples, records -> plain JSON values (NaN/inf become null)."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "to_dict"):
        return to_jsonable(obj.to_dict())
    if hasattr(obj, "value") and hasattr(obj, "name"):  # enums
        return obj.value
    return obj


def print_json(obj: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def local_time(t: float | None, *, seconds: bool = True) -> str:
    """A timestamp as local ``YYYY-MM-DD HH:MM[:SS]``, or "-" when there is none."""
    import time

    if t is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M", time.localtime(t))


def stderr_console() -> Any:
    """A rich console on stderr (progress and notes, so stdout stays clean); off a terminal, lines never wrap."""
    from rich.console import Console

    if sys.stderr.isatty():
        return Console(stderr=True)
    return Console(stderr=True, width=UNLIMITED, no_color=True, highlight=False)


def stdout_console() -> Any:
    """A rich console on stdout: the terminal's width at a terminal, unlimited width off one (pipes, files)."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=UNLIMITED, no_color=True, highlight=False)


def num(v: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits: ``0.9651``, ``0.0001234``, ``1.2e-07``, ``123457``, ``1,024``.

    Integers print whole (with thousands separators); floats keep ``digits`` significant
    digits, in plain notation from 1e-4 up to 1e15 (a large value's integer part is never
    rounded away) and in scientific notation beyond; None is ``-``.
    """
    if v is None:
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "__float__"):
        return str(v)
    if isinstance(v, int) or (hasattr(v, "dtype") and getattr(v.dtype, "kind", "") in "iu"):
        return f"{int(v):,}"
    f = float(v)
    if not math.isfinite(f):
        return str(f)
    if f == 0:
        return "0"
    a = abs(f)
    if a >= 10 ** digits and a < 1e15:
        return f"{f:.0f}"
    if 1e-4 <= a < 1e15:
        return f"{f:.{digits}g}"
    return f"{f:.{max(digits - 1, 0)}e}"


def add_plain_arg(parser: Any) -> None:
    """``--plain``: tables as tab-separated values (a header line, then one line per row)."""
    parser.add_argument("--plain", action="store_true",
                        help="print tables as tab-separated values, for scripts (default: aligned tables)")


def _plain_cell(cell: Any) -> str:
    from rich.text import Text

    text = cell.plain if isinstance(cell, Text) else Text.from_markup(str(cell)).plain
    return " ".join(text.split())  # no tab or newline inside a field


def _atomic(cells: list[str]) -> bool:
    """Cells that should never wrap: single words, or short values such as ``40.0 KiB`` or ``f1 0.9346``."""
    return bool(cells) and all(" " not in c or len(c) <= _SHORT for c in cells)


_SHORT = 20  # a cell this short is a value, not prose


def _shrink(widths: list[int], floors: list[int], room: int) -> list[int]:
    """``widths`` narrowed one character at a time, widest first, never below ``floors``, to fit ``room`` if they can."""
    out = list(widths)
    while sum(out) > room:
        candidates = [i for i in range(len(out)) if out[i] > floors[i]]
        if not candidates:
            break
        out[max(candidates, key=lambda i: out[i])] -= 1
    return out


def print_table(con: Any, table: Any, *, plain: bool = False) -> None:
    """Print a rich Table whole: TSV with ``plain``; otherwise no identifier or number is ever cut.

    Columns of identifiers, numbers and short values keep them on one line while the table fits;
    text columns wrap between words. If the table still does not fit, short values wrap between
    their words too, and if even that is too wide, the table prints at its own width (the
    terminal wraps the lines): a word is never cut. Off a terminal there is no width limit and
    the table has no borders but a rule under the header.
    """
    from rich import box

    columns = list(table.columns)
    cells = [[_plain_cell(c) for c in col.cells] for col in columns]
    title, table.title = table.title, None  # a line of its own: a title never wraps to the table's width
    if plain:
        if title:
            con.file.write(f"# {_plain_cell(title)}\n")
        con.file.write("\t".join(_plain_cell(col.header) for col in columns) + "\n")
        for row in zip(*cells, strict=True):
            con.file.write("\t".join(row) + "\n")
        con.file.flush()
        return
    natural, whole, word = [], [], []
    for col, texts in zip(columns, cells, strict=True):
        header = _plain_cell(col.header)
        longest_word = max((len(w) for t in [header, *texts] for w in t.split()), default=1)
        natural.append(max(len(t) for t in [header, *texts]))
        word.append(longest_word)  # the least any column gets: no word is ever cut
        # identifiers, numbers and short values are kept on one line when the table can afford it
        whole.append(max([longest_word, *(len(t) for t in texts)]) if col.no_wrap or _atomic(texts) else longest_word)
        col.no_wrap, col.overflow = False, "fold"

    def overhead() -> int:
        for col, n in zip(columns, natural, strict=True):
            col.width = n
        from rich.segment import Segment

        lines = Segment.split_lines(con.render(table, con.options.update(width=UNLIMITED, max_width=UNLIMITED)))
        return max((Segment.get_line_length(line) for line in lines), default=0) - sum(natural)

    if not con.is_terminal or sum(natural) + overhead() > con.width:  # lighter borders: more room for the cells
        table.box, table.pad_edge, table.show_edge, table.collapse_padding = box.SIMPLE_HEAD, False, False, True
    room = con.width - overhead()
    widths = _shrink(natural, whole, room)
    if sum(widths) > room:  # short values may wrap between their words too; words stay whole
        widths = _shrink(natural, word, room)
    for col, w in zip(columns, widths, strict=True):
        col.width = w
    need = sum(widths) + (con.width - room)
    if title:
        con.print(title if isinstance(title, str) else str(title), style="bold", soft_wrap=True)
    width = con.width
    con.width = max(width, need)  # still wider than the terminal: print it whole and let the terminal wrap
    try:
        con.print(table, crop=False)
    finally:
        con.width = width


def metrics_table(metrics: dict[str, Any], title: str = "metrics") -> Any:
    """A two-column table of scalar metrics."""
    from rich.table import Table

    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            table.add_row(k, num(v))
    return table


class TrainProgress:
    """Training progress on stderr, also a training callback: a spinner while the model fits, and once the
    family reports epochs, a bar over them with the training loss and validation metric.

    Families that report no epochs (a random forest fits its trees in one call) show "fitting"
    and then "done", never an epoch bar stuck at 0.
    """

    def __init__(self, epochs: int | None, label: str, *, enabled: bool = True):
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.enabled = enabled
        self.epochs = epochs
        self.seen = 0
        self.progress = Progress(
            SpinnerColumn(finished_text=" "),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=stderr_console(),
            disable=not enabled,
            transient=False,
        )
        self.task = self.progress.add_task(label, total=None, status="fitting")

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None and self.seen == 0:
            self.progress.update(self.task, total=1, completed=1, status="done")
        self.progress.stop()

    def __call__(self, log: Any) -> None:
        """Training callback: move to the logged epoch (or boosting round; a log may cover a block of rounds)."""
        self.seen = max(self.seen, int(log.epoch))
        val = "-" if log.val_metric is None else num(log.val_metric)
        of = f"/{self.epochs}" if self.epochs else ""  # no cap: the family budgets itself, the bar is open-ended
        status = f"epoch {self.seen}{of}  loss {num(log.train_loss)}  val {val}"
        self.progress.update(self.task, total=self.epochs or None, completed=self.seen, status=status)
