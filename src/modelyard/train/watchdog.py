"""Hang detection on a rank: a watchdog thread that ends a rank whose own work stops, and the error file it leaves.

A rank's failure is written as ``error-RANK.json`` in the run folder (atomically), where the
local launcher (``launch.py``) finds it and names the rank.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Watchdog", "write_error"]


class Watchdog:
    """Fails this rank when its own work makes no progress for ``timeout`` seconds (waits on peers excluded).

    The main thread calls ``beat()`` at every step and marks collective waits with ``waiting()``;
    a daemon thread checks, writes a heartbeat file for the local launcher, and ends the process
    with the rank and what it was doing. Waits on other ranks are bounded by the collective timeout.
    """

    def __init__(self, rank: int, timeout: float, run_dir: Path | None = None):
        self.rank = rank
        self.timeout = timeout
        self.run_dir = run_dir
        self.last = time.monotonic()
        self.activity = "starting"
        self.step = 0
        self.waits = 0
        self._stop = threading.Event()
        self._parent = int(os.environ.get("MODELYARD_PARENT_PID", "0") or 0)
        self._thread = threading.Thread(target=self._run, name="modelyard-watchdog", daemon=True)

    def start(self) -> Watchdog:
        """Start the checking thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop checking."""
        self._stop.set()

    def beat(self, activity: str | None = None) -> None:
        """Record progress of this rank's own work."""
        self.last = time.monotonic()
        if activity is not None:
            self.activity = activity

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Mark a wait on other ranks (not this rank's hang)."""
        self.waits += 1
        try:
            yield
        finally:
            self.waits -= 1
            self.last = time.monotonic()

    @contextmanager
    def working(self) -> Iterator[None]:
        """Inside a wait, mark a stretch of this rank's own work (a callback between a library's collectives)."""
        saved = self.waits
        self.waits = 0
        self.last = time.monotonic()
        try:
            yield
        finally:
            self.waits = saved
            self.last = time.monotonic()

    def _run(self) -> None:
        interval = min(1.0, max(0.05, self.timeout / 20))
        while not self._stop.wait(interval):
            now = time.monotonic()
            if self.run_dir is not None:
                hb = self.run_dir / f"heartbeat-{self.rank}"
                try:
                    hb.write_text(f"{time.time():.3f} {self.step}\n")
                except OSError:
                    pass
            if self._parent and os.getppid() != self._parent:
                os._exit(4)  # the launcher is gone: do not linger as an orphan
            if self.waits == 0 and now - self.last > self.timeout:
                message = (
                    f"rank {self.rank} made no progress for {now - self.last:.1f} s while {self.activity} "
                    f"(step {self.step}), more than the {self.timeout:g} s timeout: it is hung; "
                    "fix what blocks it, or raise --dist-timeout if a step legitimately takes that long"
                )
                if self.run_dir is not None:
                    write_error(self.run_dir, self.rank, "hang", "DistributedError", message)
                print(f"error: {message}", file=sys.stderr, flush=True)
                os._exit(3)


def write_error(run_dir: Path, rank: int, kind: str, type_name: str, message: str) -> None:
    """Record why a rank failed (``error-RANK.json``, written atomically) for the launcher to report."""
    path = run_dir / f"error-{rank}.json"
    tmp = run_dir / f".error-{rank}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"rank": rank, "kind": kind, "type": type_name, "message": message, "time": time.time()}))
    os.replace(tmp, path)
