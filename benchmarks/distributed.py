"""Distributed training: ``modelyard train --nodes 2`` vs a minimal torchrun + DDP script, and 1 vs 2 processes.

Side by side in one run, alternating order, medians over repeats:

1. modelyard vs ``torchrun benchmarks/ddp_reference.py`` on the same Parquet file, model
   (logistic regression = Linear + BCE, Adam lr 1e-2), global batch, epochs and threads (one per
   process): wall time from launch to exit, and launch to the first optimizer step.
2. modelyard with 1 process x 2 threads vs 2 processes x 1 thread, training time per epoch
   (``train_time_s``) by batch size: where the gloo all-reduce stops dominating (the crossover).

    python benchmarks/distributed.py --rows 1000000 --features 50 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make_data(path: Path, rows: int, features: int, seed: int = 0) -> None:
    """A Parquet file of ``rows`` x ``features`` float32 features and a binary target, 64K-row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    w = rng.normal(size=features)
    writer = None
    for start in range(0, rows, 65536):
        n = min(65536, rows - start)
        X = rng.normal(size=(n, features)).astype(np.float32)
        y = (X @ w + rng.logistic(size=n) > 0).astype(np.int64)
        cols = {f"x{j}": X[:, j] for j in range(features)}
        cols["y"] = y
        table = pa.table(cols)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def _env(threads: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_modelyard(data: Path, *, nodes: int, batch: int, epochs: int, threads: int | None = None) -> dict:
    cmd = [sys.executable, "-m", "modelyard", "train", str(data), "--target", "y", "--epochs", str(epochs),
           "--set", f"batch_size={batch}", "--json", "--no-register", "--nodes", str(nodes)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(None), check=False)
    end = time.time()
    if out.returncode:
        raise SystemExit(f"modelyard failed: {out.stderr[-2000:]}")
    doc = json.loads(out.stdout)
    first = doc["extra"]["distributed"]["first_step_unix"] if "extra" in doc else None
    return {"wall": end - t0, "first_step": (first - t0) if first else None, "train_time": doc["metrics"]["train_time_s"],
            "accuracy": doc["metrics"]["accuracy"]}


def run_reference(data: Path, *, nodes: int, batch: int, epochs: int) -> dict:
    torchrun = shutil.which("torchrun") or "torchrun"
    cmd = [torchrun, "--standalone", "--nproc-per-node", str(nodes), str(HERE / "ddp_reference.py"), str(data),
           "--target", "y", "--epochs", str(epochs), "--batch", str(batch)]
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(1), check=False)
    end = time.time()
    if out.returncode:
        raise SystemExit(f"reference failed: {out.stderr[-2000:]}")
    doc = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1])
    return {"wall": end - t0, "first_step": doc["first_step_unix"] - t0, "accuracy": doc["accuracy"]}


def med(xs: list[float]) -> float:
    return float(statistics.median(xs))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--features", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=1024, help="global batch of the modelyard-vs-torchrun comparison")
    p.add_argument("--batches", default="256,1024,4096,16384,65536", help="batch sizes of the 1-vs-2-process table")
    p.add_argument("--cache", default="/tmp/modelyard-bench")
    p.add_argument("--skip-scaling", action="store_true")
    p.add_argument("--skip-pair", action="store_true", help="skip the modelyard-vs-torchrun comparison")
    p.add_argument("--single-threads", type=int, default=None, help="threads of the 1-process run (default: all cores)")
    a = p.parse_args()
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    data = cache / f"dist-{a.rows}x{a.features}.parquet"
    if not data.exists():
        make_data(data, a.rows, a.features)
    cores = len(os.sched_getaffinity(0))
    print(f"data: {a.rows} x {a.features} ({data.stat().st_size / 2**20:.0f} MiB parquet); {cores} cores")

    if not a.skip_pair:
        pair_table(data, a)
    if not a.skip_scaling:
        scaling_table(data, a, cores)


def pair_table(data: Path, a: argparse.Namespace) -> None:
    """modelyard --nodes 2 vs torchrun + DDP."""
    ours, ref = [], []
    for i in range(a.repeats):
        pair = [("m", lambda: run_modelyard(data, nodes=2, batch=a.batch, epochs=a.epochs)),
                ("r", lambda: run_reference(data, nodes=2, batch=a.batch, epochs=a.epochs))]
        for name, fn in pair if i % 2 == 0 else pair[::-1]:
            (ours if name == "m" else ref).append(fn())
        print(f"  repeat {i + 1}: modelyard wall {ours[-1]['wall']:.2f} s, first step {ours[-1]['first_step']:.2f} s; "
              f"torchrun+DDP wall {ref[-1]['wall']:.2f} s, first step {ref[-1]['first_step']:.2f} s", flush=True)
    mw, rw = med([r["wall"] for r in ours]), med([r["wall"] for r in ref])
    mf, rf = med([r["first_step"] for r in ours]), med([r["first_step"] for r in ref])
    print(f"\n## 2 processes, batch {a.batch}, {a.epochs} epochs, 1 thread per process, medians of {a.repeats}")
    print("| | modelyard --nodes 2 | torchrun + DDP script | ratio | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    print(f"| wall time, launch to exit (s) | {mw:.2f} | {rw:.2f} | {mw / rw:.2f} | <= 1.10 |")
    print(f"| launch to first step (s) | {mf:.2f} | {rf:.2f} | {mf / rf:.2f} | <= 1.2 |")
    print(f"| test accuracy | {med([r['accuracy'] for r in ours]):.4f} | {med([r['accuracy'] for r in ref]):.4f} | | |")



def scaling_table(data: Path, a: argparse.Namespace, cores: int) -> None:
    """One process vs two processes with one thread each, by batch size."""
    single = a.single_threads or cores
    print(f"\n## 1 process x {single} threads vs 2 processes x {max(1, cores // 2)} thread(s): training time for "
          f"{a.epochs} epoch(s) (train_time_s, median of {a.repeats})")
    print("| batch | 1 process (s) | 2 processes (s) | speed-up of 2 processes |")
    print("| ---: | ---: | ---: | ---: |")
    for b in [int(x) for x in a.batches.split(",")]:
        one, two = [], []
        for i in range(a.repeats):
            pair = [("1", lambda b=b: run_modelyard(data, nodes=1, batch=b, epochs=a.epochs, threads=single)),
                    ("2", lambda b=b: run_modelyard(data, nodes=2, batch=b, epochs=a.epochs))]
            for name, fn in pair if i % 2 == 0 else pair[::-1]:
                (one if name == "1" else two).append(fn()["train_time"])
        print(f"| {b} | {med(one):.2f} | {med(two):.2f} | {med(one) / med(two):.2f}x |", flush=True)


if __name__ == "__main__":
    main()
