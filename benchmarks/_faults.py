"""Faults injected by ``benchmarks/reliability.py`` inside distributed ranks (importable there through PYTHONPATH)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import torch


class _Suspending(torch.nn.Module):
    """A linear layer whose rank ``rank`` suspends itself (SIGSTOP) after ``after`` training forward calls."""

    def __init__(self, n_in: int, n_out: int, rank: int, after: int):
        super().__init__()
        self.lin = torch.nn.Linear(n_in, n_out)
        self.rank, self.after, self.calls = rank, after, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and int(os.environ.get("RANK", "0")) == self.rank:
            self.calls += 1
            if self.calls > self.after:
                stamp = os.environ.get("RELIABILITY_STOP_STAMP")
                if stamp:
                    Path(stamp).write_text(repr(time.time()))
                os.kill(os.getpid(), signal.SIGSTOP)
        return self.lin(x)


def suspending(n_features: int, n_outputs: int, rank: int = 1, after: int = 3) -> torch.nn.Module:
    """``--model _faults:suspending``: rank ``rank`` is suspended after ``after`` steps, as ``kill -STOP`` would."""
    return _Suspending(n_features, n_outputs, rank, after)
