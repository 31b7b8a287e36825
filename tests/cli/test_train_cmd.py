"""``modelyard train`` end to end, through a subprocess: table, --json, and one clean line for every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "models"  # custom_examples.py


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(EXAMPLES), env.get("PYTHONPATH")]))
    env.pop("MODELYARD_DEBUG", None)
    env.pop("MODELYARD_STORE", None)
    env["COLUMNS"] = "120"
    return env


def modelyard(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args],
        cwd=cwd, env=_env(), capture_output=True, text=True, timeout=240, check=False,
    )


def write_files(folder: Path) -> None:
    rng = np.random.default_rng(0)
    n = 150
    plan = rng.choice(["basic", "plus", "pro"], n)
    monthly = np.round(rng.normal(50, 15, n), 2)
    df = pd.DataFrame({"age": rng.integers(18, 80, n), "plan": plan, "monthly": monthly,
                       "churned": np.where((plan == "basic") & (monthly > 45), "yes", "no")})
    df.to_csv(folder / "churn.csv", index=False)
    holes = df.astype({"monthly": float})
    holes.loc[[3, 8, 40], "monthly"] = np.nan
    holes.to_csv(folder / "holes.csv", index=False)
    df.assign(churned="yes").to_csv(folder / "one_class.csv", index=False)
    df.head(6).to_csv(folder / "tiny.csv", index=False)
    df.assign(note=[f"free text {i}" for i in range(n)] * 1).pipe(
        lambda d: pd.concat([d] * 8, ignore_index=True).assign(note=[f"t{i}" for i in range(8 * n)])
    ).to_csv(folder / "text.csv", index=False)
    (folder / "data.xlsx").write_text("not really")
    X = rng.normal(size=(120, 4))
    np.savez(folder / "reg.npz", X=X, y=X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=120))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    write_files(folder)
    return folder


# every bad input -> exit code 2, one line on stderr naming the problem and the fix, nothing on stdout
BAD_INPUTS = {
    "missing file": (["missing.csv", "--target", "y"], ["missing.csv", "does not exist"]),
    "unknown format": (["data.xlsx"], ["'.xlsx'", ".csv, .parquet or .npz"]),
    "unknown target": (["churn.csv", "--target", "churn"], ["'churn'", "age, plan, monthly, churned"]),
    "nan in a feature": (["holes.csv", "--target", "churned"], ["'monthly' (3 missing)", "--impute", "--drop-missing"]),
    "single class": (["one_class.csv", "--target", "churned"], ["single class ('yes')"]),
    "too few rows": (["tiny.csv", "--target", "churned"], ["6 rows", "at least 10"]),
    "text that cannot be encoded": (["text.csv", "--target", "churned"], ["'note'", "1200 distinct", "drop it"]),
    "text target regressed": (["churn.csv", "--target", "churned", "--task", "regression"], ["non-numeric"]),
    "unknown family": (["churn.csv", "--target", "churned", "--model", "xgboost"],
                       ["'xgboost'", "logistic_regression, mlp, random_forest"]),
    "unknown param": (["churn.csv", "--target", "churned", "--set", "lr=0.1"],
                      ["'lr'", "learning_rate", "batch_size"]),
    "out-of-range param": (["churn.csv", "--target", "churned", "--model", "mlp", "--set", "dropout=1.5"],
                           ["dropout must be a float between 0 and 0.95, got '1.5'", "dropout=0.0"]),
    "ill-typed param": (["churn.csv", "--target", "churned", "--model", "random_forest", "--set", "n_estimators=many"],
                        ["n_estimators must be an int"]),
    "malformed --set": (["churn.csv", "--target", "churned", "--set", "learning_rate"], ["NAME=VALUE"]),
    "family for another task": (["reg.npz", "--model", "logistic_regression"], ["does not do regression"]),
    "custom model that does not import": (["churn.csv", "--target", "churned", "--model", "nowhere.models:Net"],
                                          ["cannot import module 'nowhere.models'"]),
    "custom model without the protocol": (["churn.csv", "--target", "churned", "--model", "custom_examples:NotAModel"],
                                          ["NotAModel lacks", "Model protocol"]),
    "bad epochs": (["churn.csv", "--target", "churned", "--epochs", "0"], ["epochs must be an int >= 1"]),
    "bad max-time": (["churn.csv", "--target", "churned", "--max-time", "soon"], ["cannot read duration 'soon'"]),
    "bad split": (["churn.csv", "--target", "churned", "--val-size", "0.6", "--test-size", "0.5"],
                  ["sum to less than 1"]),
}


@pytest.fixture(scope="module")
def bad_runs(files):
    # run all the bad inputs at once: each is a short process that stops before any training
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = {name: pool.submit(modelyard, "train", *args, "--no-register", cwd=files)
                   for name, (args, _) in BAD_INPUTS.items()}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_clean_line(bad_runs, case):
    run = bad_runs[case]
    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert "Traceback" not in run.stderr
    for fragment in BAD_INPUTS[case][1]:
        assert fragment in lines[0]


def test_debug_shows_the_traceback(files):
    run = modelyard("train", "missing.csv", "--no-register", "--debug", cwd=files)
    assert run.returncode != 0 and "Traceback" in run.stderr and "DataError" in run.stderr
    run = modelyard("--debug", "train", "missing.csv", "--no-register", cwd=files)
    assert "Traceback" in run.stderr


def test_table_output(files):
    run = modelyard("train", "churn.csv", "--target", "churned", "--model", "mlp", "--set", "hidden_sizes=16,8",
                    "--set", "dropout=0.1", "--epochs", "4", "--patience", "2", "--threads", "1", "--no-register",
                    cwd=files)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "held-out test metrics" in out
    for metric in ("accuracy", "precision", "recall", "f1", "log_loss", "roc_auc", "train_time_s",
                   "inference_time_per_row_s"):
        assert metric in out
    assert "stopped:" in out and "best epoch" in out
    assert "mlp on churn.csv: 150 rows, 3 features, classification" in run.stderr


def test_json_output_is_exactly_one_object(files):
    run = modelyard("train", "churn.csv", "--target", "churned", "--model", "logistic_regression", "--epochs", "3",
                    "--set", "learning_rate=0.05", "--seed", "5", "--json", "--threads", "1", "--no-register",
                    cwd=files)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)  # the whole of stdout is one JSON document
    assert isinstance(doc, dict)
    assert {"model", "params", "metrics", "history"} <= set(doc)
    assert doc["model"] == "logistic_regression" and doc["params"]["learning_rate"] == 0.05
    assert set(doc["metrics"]["per_class"]) == {"no", "yes"}
    assert len(doc["history"]) == 3 and {"epoch", "train_loss", "val_loss", "val_metric"} <= set(doc["history"][0])
    assert doc["seed"] == 5 and len(doc["fingerprint"]) == 64
    assert doc["schema"]["columns"][1]["categories"] == ["basic", "plus", "pro"]


def test_json_regression_from_npz_and_drop_missing(files):
    run = modelyard("train", "reg.npz", "--model", "linear_regression", "--json", "--epochs", "5", "--threads", "1",
                    "--no-register", cwd=files)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert {"rmse", "mae", "r2"} <= set(doc["metrics"])
    run = modelyard("train", "holes.csv", "--target", "churned", "--model", "random_forest", "--set", "n_estimators=5",
                    "--drop-missing", "--json", "--no-register", cwd=files)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert sum(doc["split"][part] for part in ("train", "validation", "test")) == doc["split"]["rows"] == 147


def test_custom_model_from_the_command_line(files):
    run = modelyard("train", "churn.csv", "--target", "churned", "--model", "custom_examples:CentroidClassifier",
                    "--set", "shrink=0.2", "--json", "--no-register", cwd=files)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["model"] == "custom_examples:CentroidClassifier" and doc["params"]["shrink"] == 0.2
