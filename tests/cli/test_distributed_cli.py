"""``modelyard train --nodes N`` and ``torchrun -m modelyard train`` end to end, through real processes.

Few and fast on purpose: every run starts Python processes that import torch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HERE = Path(__file__).parent
HELPERS = HERE.parent / "train"  # dist_helpers.py (fault injection)


@pytest.fixture(scope="module")
def parquet(tmp_path_factory) -> Path:
    """A Parquet file in several row groups, with a text column, so shards, schema and split all matter."""
    rng = np.random.default_rng(0)
    n = 3000
    X = rng.normal(size=(n, 5)) * [1, 2, 3, 4, 5] + 1
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    frame["color"] = rng.choice(["red", "green", "blue"], n)
    score = X @ rng.normal(size=5) + (frame["color"] == "red") * 2
    frame["churn"] = np.where(score > np.median(score), "yes", "no")
    path = tmp_path_factory.mktemp("data") / "churn.parquet"
    frame.to_parquet(path, row_group_size=400)
    return path


def _run(cmd: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HELPERS), os.environ.get("PYTHONPATH", "")])}
    env.pop("MODELYARD_STORE", None)
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _document(out: subprocess.CompletedProcess) -> dict:
    """The one JSON document on stdout; on failure the message shows what was printed instead."""
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"stdout is not one JSON document ({e}):\n{out.stdout[-2000:]}\nstderr:\n"
                             f"{out.stderr[-2000:]}") from None


def _versions(store: Path) -> int:
    from modelyard.yard import Yard

    with Yard(str(store)) as yard:
        return yard.registry.count()


ARGS = ["--target", "churn", "--epochs", "3", "--seed", "1", "--set", "batch_size=64", "--json"]


def test_nodes_2_registers_one_version_with_the_single_process_metrics(parquet, tmp_path):
    store = tmp_path / "store"
    one = _run([sys.executable, "-m", "modelyard", "train", str(parquet), *ARGS, "--no-register"], tmp_path)
    assert one.returncode == 0, one.stderr
    two = _run([sys.executable, "-m", "modelyard", "train", str(parquet), *ARGS, "--nodes", "2", "--store", str(store)],
               tmp_path)
    assert two.returncode == 0, two.stderr
    single, dist = _document(one), _document(two)  # exactly one JSON document: rank 0's
    for k in ("accuracy", "f1", "log_loss", "roc_auc"):
        assert dist["metrics"][k] == pytest.approx(single["metrics"][k], rel=1e-5)
    # the same rows in each part; a sharded read fingerprints the data per rank, so only that field differs
    assert {k: v for k, v in dist["split"].items() if k != "fingerprint"} == {
        k: v for k, v in single["split"].items() if k != "fingerprint"}
    info = dist["extra"]["distributed"]
    assert info["nodes"] == 2 and info["sharded_read"] is True and info["threads_per_process"] >= 1
    assert dist["version"]["ref"].endswith("/1")
    assert _versions(store) == 1


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is installed with torch")
def test_torchrun_runs_the_same_command_and_rank_0_alone_prints(parquet, tmp_path):
    out = _run(["torchrun", "--standalone", "--nproc-per-node", "2", "-m", "modelyard", "train", str(parquet), *ARGS,
                "--no-register"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    doc = _document(out)  # one document: the other rank printed nothing
    assert doc["extra"]["distributed"]["nodes"] == 2
    assert doc["metrics"]["accuracy"] > 0.8


def test_a_failing_rank_exits_2_names_the_rank_and_registers_nothing(parquet, tmp_path):
    store = tmp_path / "store"
    out = _run([sys.executable, "-m", "modelyard", "train", str(parquet), "--target", "churn", "--nodes", "2",
                "--model", "dist_helpers:faulty", "--set", "mode=crash", "--set", "fail_rank=1", "--epochs", "2",
                "--store", str(store)], tmp_path)
    assert out.returncode == 2
    assert "error: rank 1 failed with ValueError: injected failure in forward call 4" in out.stderr
    assert "Traceback" not in out.stderr.split("error: rank 1")[-1]
    assert _versions(store) == 0


def test_oversubscribing_the_cores_is_refused_before_any_process_starts(parquet, tmp_path):
    cores = len(os.sched_getaffinity(0))
    out = _run([sys.executable, "-m", "modelyard", "train", str(parquet), "--target", "churn", "--nodes", "2",
                "--threads", str(cores), "--no-register"], tmp_path, timeout=60)
    assert out.returncode == 2
    assert f"2 processes x {cores} threads = {2 * cores} threads on {cores} cores would oversubscribe" in out.stderr
