"""The batch half of ``benchmarks/serve.py``: ``modelyard predict`` vs ``mlflow models predict`` on the same rows,
wall time and peak RSS of each command, and modelyard's peak RSS at several Parquet sizes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["batch", "run_measured", "write_rows"]


def write_rows(ds: Any, n: int, parquet: Path, csv: Path | None = None) -> None:
    """``n`` rows resampled from the data set, as Parquet (row groups of 100,000) and optionally CSV."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    names = ds.feature_names
    writer = None
    csv_out = open(csv, "wb") if csv else None  # noqa: SIM115
    try:
        for start in range(0, n, 500_000):
            m = min(500_000, n - start)
            X = ds.X[rng.integers(0, len(ds.X), m)].astype(np.float64)
            table = pa.table({name: X[:, j] for j, name in enumerate(names)})
            if writer is None:
                writer = pq.ParquetWriter(parquet, table.schema)
            writer.write_table(table, row_group_size=100_000)
            if csv_out:
                pacsv.write_csv(table, csv_out, write_options=pacsv.WriteOptions(include_header=start == 0))
    finally:
        if writer:
            writer.close()
        if csv_out:
            csv_out.close()


def run_measured(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of a command, from GNU time (``/usr/bin/time -f``).

    Not ``os.wait4``: Linux carries the forking parent's high-water RSS (this benchmark's, with
    torch and MLflow loaded) over ``exec`` into the child's ``ru_maxrss``.
    """
    t = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, env={**os.environ, "OMP_NUM_THREADS": "2"}, check=False)
    seconds = time.perf_counter() - t
    if run.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed: {run.stderr[-2000:]}")
    kb = int(re.findall(r"maxrss_kb=(\d+)", run.stderr)[-1])
    return seconds, kb / 1024



def batch(ds: Any, store: str, model_dir: Path, folder: Path, rows: int, memory_rows: list[int]) -> dict[str, Any]:
    parquet, csv = folder / "rows.parquet", folder / "rows.csv"
    write_rows(ds, rows, parquet, csv)
    my = [sys.executable, "-m", "modelyard", "predict", "bench@production"]
    out: dict[str, Any] = {"rows": rows, "csv_mb": csv.stat().st_size / 2**20, "parquet_mb": parquet.stat().st_size / 2**20}
    out["modelyard_parquet"] = run_measured([*my, str(parquet), "--out", str(folder / "o.parquet"), "--store", store])
    out["modelyard_csv"] = run_measured([*my, str(csv), "--out", str(folder / "o.csv"), "--store", store])
    out["mlflow_csv"] = run_measured([shutil.which("mlflow") or "mlflow", "models", "predict", "-m", str(model_dir), "-i",
                                      str(csv), "-t", "csv", "-o", str(folder / "o.json"), "--env-manager", "local"])
    csv.unlink()
    out["memory"] = {}
    for n in memory_rows:
        path = folder / f"mem{n}.parquet"
        write_rows(ds, n, path)
        out["memory"][n] = run_measured([*my, str(path), "--out", str(folder / "m.parquet"), "--store", store])
        path.unlink()
    return out
