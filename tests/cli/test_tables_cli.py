"""``train``/``tune`` on tables with gaps and imbalance: --impute, --class-weight, --drop-columns, --drop-missing[=force]."""

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

from modelyard.testing.datasets import real_table


def modelyard(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("MODELYARD_STORE", None)
    env.pop("MODELYARD_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "modelyard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(0)
    n = 200
    plan = rng.choice(["basic", "plus", "pro"], n)
    monthly = np.round(rng.normal(50, 15, n), 2)
    df = pd.DataFrame({"age": rng.integers(18, 80, n).astype(float), "plan": plan, "monthly": monthly,
                       "churned": np.where((plan == "basic") & (monthly > 45), "yes", "no")})
    holes = df.copy()
    holes.loc[[3, 8, 40], "monthly"] = np.nan
    holes.loc[[5], "plan"] = None
    holes.loc[[7], "churned"] = None
    holes.to_csv(folder / "holes.csv", index=False)
    sparse = df.copy()
    sparse.loc[: n // 2, "age"] = np.nan  # half the rows miss age
    sparse.to_csv(folder / "sparse.csv", index=False)
    X = rng.normal(size=(120, 3))
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": X @ [1.0, -2.0, 0.5]}).to_csv(folder / "reg.csv",
                                                                                               index=False)
    return folder


BAD_INPUTS = {
    "unknown --drop-columns": (["holes.csv", "--target", "churned", "--drop-columns", "plan,nope"],
                               ["'nope'", "not a column", "age, plan, monthly, churned"]),
    "--drop-columns the target": (["holes.csv", "--target", "churned", "--drop-columns", "churned"],
                                  ["target column 'churned'"]),
    "unknown class in --class-weight": (["holes.csv", "--target", "churned", "--model", "random_forest",
                                         "--class-weight", "maybe=3"], ["names class 'maybe'", "no, yes"]),
    "bad weight in --class-weight": (["holes.csv", "--target", "churned", "--model", "random_forest",
                                      "--class-weight", "yes=-2"], ["weight > 0"]),
    "--class-weight on a regressor": (["reg.csv", "--target", "y", "--model", "linear_regression",
                                       "--class-weight", "balanced"], ["takes no class weights"]),
    "--class-weight on regression": (["reg.csv", "--target", "y", "--model", "random_forest",
                                      "--class-weight", "balanced"], ["applies to classification"]),
    "bad --impute": (["holes.csv", "--target", "churned", "--impute", "mean"],
                     ["impute must be one of median, most_frequent, got 'mean'"]),
    "nan without --impute": (["holes.csv", "--target", "churned", "--model", "mlp"],
                             ["mlp cannot train on missing values", "'monthly' (3 missing)", "'plan' (1 missing)",
                              "--impute median"]),
    "--drop-missing past 20%": (["sparse.csv", "--target", "churned", "--model", "random_forest", "--drop-missing"],
                                ["would drop 101 of 200 rows (50%", "'age' (101 rows)", "--drop-columns age",
                                 "--drop-missing=force"]),
}


@pytest.fixture(scope="module")
def bad_runs(files):
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(modelyard, "train", *args, "--store", str(files / f"store-{i}"), cwd=files)
                   for i, (name, (args, _)) in enumerate(BAD_INPUTS.items())}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_sentence_exit_2_and_nothing_stored(files, bad_runs, case):
    run = bad_runs[case]
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert run.stdout == "" and len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    for fragment in BAD_INPUTS[case][1]:
        assert fragment in lines[0]
    index = list(BAD_INPUTS).index(case)
    assert not (files / f"store-{index}").exists(), "a refused run must not create or write the store"


def test_drop_missing_takes_only_force(files):
    run = modelyard("train", "holes.csv", "--target", "churned", "--drop-missing=always", "--no-register", cwd=files)
    assert run.returncode == 2 and "--drop-missing=force" in run.stderr


def test_impute_trains_reports_and_is_registered(files):
    store = str(files / "store-ok")
    run = modelyard("train", "holes.csv", "--target", "churned", "--model", "logistic_regression", "--impute",
                    "median", "--class-weight", "balanced", "--epochs", "5", "--name", "churn", "--store", store,
                    cwd=files)
    assert run.returncode == 0, run.stderr
    assert "note: dropped 1 of 200 rows: 1 without a value of target 'churned'" in run.stderr
    show = modelyard("models", "show", "churn/1", "--json", "--store", store, cwd=files)
    assert show.returncode == 0, show.stderr
    doc = json.loads(show.stdout)
    assert doc["params"]["class_weight"] == "balanced"
    assert doc["model_config"]["impute"] == "median"


def test_native_family_notes_impute_and_drop_missing_reports(files):
    run = modelyard("train", "holes.csv", "--target", "churned", "--model", "random_forest", "--set",
                    "n_estimators=5", "--impute", "median", "--no-register", cwd=files)
    assert run.returncode == 0, run.stderr
    assert "note: random_forest takes missing values natively, so --impute median is not applied" in run.stderr
    run = modelyard("train", "holes.csv", "--target", "churned", "--model", "random_forest", "--set",
                    "n_estimators=5", "--drop-missing", "--json", "--no-register", cwd=files)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert sum(doc["split"][k] for k in ("train", "validation", "test")) == 195
    assert doc["notes"] == [("dropped 5 of 200 rows: 1 without a value of target 'churned'; "
                             "4 with missing values ('monthly' (3 rows), 'plan' (1 rows))")]
    run = modelyard("train", "sparse.csv", "--target", "churned", "--model", "random_forest", "--set",
                    "n_estimators=5", "--drop-missing=force", "--json", "--no-register", cwd=files)
    assert run.returncode == 0, run.stderr
    assert sum(json.loads(run.stdout)["split"][k] for k in ("train", "validation", "test")) == 99
    run = modelyard("train", "sparse.csv", "--target", "churned", "--model", "random_forest", "--set",
                    "n_estimators=5", "--drop-columns", "age", "--drop-missing", "--json", "--no-register", cwd=files)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert [c["name"] for c in doc["schema"]["columns"]] == ["plan", "monthly"] and "notes" not in doc


def test_a_real_table_from_the_command_line(files):
    penguins = real_table("penguins")
    run = modelyard("train", str(penguins.path), "--target", "species", "--model", "mlp", "--impute", "median",
                    "--json", "--no-register", cwd=files)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["metrics"]["accuracy"] > 0.8 and doc["params"]["class_weight"] is None


def test_tune_with_impute_and_class_weight(files):
    run = modelyard("tune", "holes.csv", "--target", "churned", "--model", "logistic_regression", "--impute",
                    "median", "--class-weight", "balanced", "--trials", "2", "--epochs", "2", "--pruner", "none",
                    "--study", "holes", "--json", "--store", str(files / "store-tune"), cwd=files)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["study"]["counts"]["complete"] == 2 and doc["version"]["ref"] == "holes-logistic_regression/1"
    show = modelyard("models", "show", "holes-logistic_regression/1", "--json", "--store", str(files / "store-tune"), cwd=files)
    assert json.loads(show.stdout)["params"]["class_weight"] == "balanced"
    bad = modelyard("tune", "holes.csv", "--target", "churned", "--model", "logistic_regression", "--trials", "1",
                    "--store", str(files / "store-tune-bad"), cwd=files)
    assert bad.returncode == 2 and "cannot train on missing values" in bad.stderr
