"""How many threads a serving worker lets the numeric libraries use."""

from __future__ import annotations

import os
import sys

__all__ = ["limit_threads"]


def limit_threads(n: int) -> None:
    """At most ``n`` threads for PyTorch and OpenMP in this process (one per worker avoids oversubscription)."""
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    os.environ["OMP_NUM_THREADS"] = str(n)
    torch = sys.modules.get("torch")  # not loaded yet: it reads OMP_NUM_THREADS when it is
    if torch is not None:
        torch.set_num_threads(n)
