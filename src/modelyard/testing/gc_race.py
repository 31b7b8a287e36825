"""The gc race, run for real: processes register, delete and re-register identical weights while another collects.

Each churn worker (``python -m modelyard.testing.gc_race churn ...``) registers the same saved
result (so every registration names the same content-addressed blob), loads it back, and
deletes it, round after round: the blob is unreferenced between a delete and the next
registration, which is exactly when a collector with a zero age guard may remove it. The
collector (``... collect ...``) runs ``Registry.gc(older_than=0)`` in a loop until a stop file
appears. At the end every worker registers the weights once more and keeps that version,
the collector runs a few more rounds, and every kept version is loaded again. A version
that a registration acknowledged (``register`` returned) and that cannot be loaded while
it exists is *lost*; ``run_race`` counts them (the answer must be 0).

The workers are separate processes with their own connections and pack writers, as
separate ``modelyard train`` runs and a ``modelyard models gc`` would be. The file uses only
the public API and runs as a script too (``python gc_race.py race STORE RESULT``), so
``benchmarks/reliability.py`` can race an older modelyard (``PYTHONPATH=OLD/src``) the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RaceResult", "churn", "collect", "run_race"]


@dataclass(frozen=True)
class RaceResult:
    """What one race run did: rounds of register/load/delete, versions acknowledged, and how many were lost."""

    rounds: int  # register -> load -> delete cycles, all workers together
    acknowledged: int  # registrations that returned a version (rounds plus the kept final versions)
    lost: int  # acknowledged versions that could not be loaded while they existed
    collections: int  # gc runs that completed meanwhile
    removed: int  # blobs those gc runs removed
    seconds: float
    errors: tuple[str, ...] = ()  # the first few load errors, if any

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {**vars(self), "errors": list(self.errors)}


def churn(store: str, result_path: str, name: str, rounds: int, seed: int = 0,
          artifacts: str | None = None) -> dict[str, Any]:
    """Register, load and delete the saved result ``rounds`` times, then register it once more and keep it.

    After each delete the worker waits up to 10 ms (at random), so the blob stays unreferenced
    long enough for the collector to find it now and then.
    """
    import random

    from modelyard.errors import ArtifactError
    from modelyard.testing.results import load_result
    from modelyard.yard import Yard

    rng = random.Random(seed)
    result = load_result(result_path)
    lost: list[str] = []
    with Yard(store, artifacts=artifacts) as yard:
        reg = yard.registry
        for _ in range(rounds):
            v = reg.register(result, name)
            try:
                reg.load_model(v.ref)
            except ArtifactError as e:
                lost.append(str(e))
            reg.delete(v.ref)
            time.sleep(rng.uniform(0, 0.01))
        kept = reg.register(result, name)
    return {"rounds": rounds, "acknowledged": rounds + 1, "lost": lost, "kept": kept.id}


def collect(store: str, stop_file: str, artifacts: str | None = None) -> dict[str, Any]:
    """Run ``gc(older_than=0)`` in a loop until ``stop_file`` exists; returns the runs and blobs removed."""
    from modelyard.yard import Yard

    runs = removed = 0
    with Yard(store, artifacts=artifacts) as yard:
        reg = yard.registry
        while not os.path.exists(stop_file):
            removed += len(reg.gc(older_than=0))
            runs += 1
    return {"collections": runs, "removed": removed}


def run_race(store: str | os.PathLike[str], result_path: str | os.PathLike[str], *, workers: int = 2,
             rounds: int = 100, timeout: float = 600.0, artifacts: str | os.PathLike[str] | None = None) -> RaceResult:
    """Race ``workers`` churn processes (``rounds`` each) against one collector on ``store``; count the lost.

    ``artifacts``: where the weights go for a database URL (e.g. PostgreSQL); a store folder keeps its own.
    """
    from modelyard.errors import ArtifactError
    from modelyard.yard import Yard

    store, result_path = os.fspath(store), os.fspath(result_path)
    extra = [] if artifacts is None else ["--artifacts", os.fspath(artifacts)]
    artifacts = None if artifacts is None else os.fspath(artifacts)
    with Yard(store, artifacts=artifacts) as yard:
        yard.db  # noqa: B018  (create the store before the processes race to)
    stop = Path(store) / "gc-race.stop" if "://" not in store else Path(result_path).with_suffix(".stop")
    stop.unlink(missing_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    me = [sys.executable, os.path.abspath(__file__)]  # this file as a script: whichever modelyard is importable
    t0 = time.perf_counter()
    collector = subprocess.Popen([*me, "collect", store, str(stop), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=env)
    procs = [subprocess.Popen([*me, "churn", store, result_path, f"race{w % 2}", str(rounds), str(w), *extra],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for w in range(workers)]
    outs = [p.communicate(timeout=timeout) for p in procs]
    time.sleep(0.2)  # a few more collections while every kept version exists
    stop.touch()
    c_out, c_err = collector.communicate(timeout=timeout)
    for p, (out, err) in [*zip(procs, outs), (collector, (c_out, c_err))]:
        if p.returncode != 0:
            raise RuntimeError(f"a race process failed (exit {p.returncode}): {err.strip()[-2000:]}")
    reports = [json.loads(out) for out, _ in outs]
    gc_report = json.loads(c_out)
    errors = [e for r in reports for e in r["lost"]]
    with Yard(store, artifacts=artifacts) as yard:
        for r in reports:
            try:
                yard.registry.load_model(r["kept"])
            except ArtifactError as e:
                errors.append(str(e))
    stop.unlink(missing_ok=True)
    return RaceResult(
        rounds=sum(r["rounds"] for r in reports), acknowledged=sum(r["acknowledged"] for r in reports),
        lost=len(errors), collections=gc_report["collections"], removed=gc_report["removed"],
        seconds=time.perf_counter() - t0, errors=tuple(errors[:5]),
    )


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m modelyard.testing.gc_race", description="gc race worker")
    sub = p.add_subparsers(dest="role", required=True)
    c = sub.add_parser("churn")
    c.add_argument("store")
    c.add_argument("result")
    c.add_argument("name")
    c.add_argument("rounds", type=int)
    c.add_argument("seed", type=int)
    c.add_argument("--artifacts", default=None)
    g = sub.add_parser("collect")
    g.add_argument("store")
    g.add_argument("stop_file")
    g.add_argument("--artifacts", default=None)
    r = sub.add_parser("race", help="run_race and print its result as JSON")
    r.add_argument("store")
    r.add_argument("result")
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--rounds", type=int, default=100)
    a = p.parse_args(argv)
    if a.role == "churn":
        out = churn(a.store, a.result, a.name, a.rounds, a.seed, artifacts=a.artifacts)
    elif a.role == "collect":
        out = collect(a.store, a.stop_file, artifacts=a.artifacts)
    else:
        out = run_race(a.store, a.result, workers=a.workers, rounds=a.rounds).to_dict()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a subprocess by run_race
    sys.exit(_main())
