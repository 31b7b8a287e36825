"""Terminal output: metric tables, JSON, and the training progress bar (all on rich)."""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Self

__all__ = [
    "TrainProgress", "local_time", "metrics_table", "print_json", "stderr_console", "stdout_console", "to_jsonable",
]


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
    """A rich console on stderr (progress and notes, so stdout stays clean)."""
    from rich.console import Console

    return Console(stderr=True)


def stdout_console() -> Any:
    """A rich console on stdout."""
    from rich.console import Console

    return Console()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3e}"
        return f"{v:.4f}"
    return str(v)


def metrics_table(metrics: dict[str, Any], title: str = "metrics") -> Any:
    """A two-column table of scalar metrics."""
    from rich.table import Table

    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            table.add_row(k, _fmt(v))
    return table


class TrainProgress:
    """A progress bar over epochs showing the training loss and validation metric; also a training callback."""

    def __init__(self, epochs: int, label: str, *, enabled: bool = True):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  val {task.fields[val]}"),
            TimeElapsedColumn(),
            console=stderr_console(),
            disable=not enabled,
            transient=False,
        )
        self.task = self.progress.add_task(label, total=epochs, loss="-", val="-")

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, log: Any) -> None:
        """Training callback: move to the logged epoch (or boosting round; a log may cover a block of rounds)."""
        val = "-" if log.val_metric is None else f"{log.val_metric:.4f}"
        self.progress.update(self.task, completed=log.epoch, loss=f"{log.train_loss:.4f}", val=val)
