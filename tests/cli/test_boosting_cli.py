"""``modelyard train/tune --model gradient_boosting`` and ``--cv`` end to end, through subprocesses as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def my(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MODELYARD_STORE", None)
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return subprocess.run([sys.executable, "-m", "modelyard", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def versions(store: Path) -> int:
    from modelyard.yard import Yard

    if not store.exists():
        return 0
    with Yard(str(store)) as yard:
        return yard.registry.count()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """churn.csv: a text column (a category) and numbers; the class depends on both."""
    root = tmp_path_factory.mktemp("gb")
    rng = np.random.default_rng(0)
    n = 400
    plan = rng.choice(["basic", "plus", "pro"], n)
    monthly = np.round(rng.normal(50, 15, n), 2)
    churned = np.where(((plan == "basic") & (monthly > 45)) | (monthly > 75), "yes", "no")
    pd.DataFrame({"age": rng.integers(18, 80, n), "plan": plan, "monthly": monthly, "churned": churned}).to_csv(
        root / "churn.csv", index=False)
    frame = pd.DataFrame(rng.integers(0, 50, size=(3000, 4)).astype(float), columns=list("abcd"))
    frame["kind"] = rng.choice(["x", "y", "z"], 3000)
    frame["y"] = np.where(frame["a"] + frame["b"] + 20 * (frame["kind"] == "z") > 55, "hi", "lo")
    frame.to_parquet(root / "big.parquet", row_group_size=500)
    return root


GB = ["--model", "gradient_boosting", "--set", "n_estimators=40", "--set", "n_jobs=1"]


def test_train_registers_the_model_with_its_importance_and_models_show_draws_it(folder, tmp_path):
    store = tmp_path / "store"
    out = my("train", str(folder / "churn.csv"), "--target", "churned", *GB, "--json", "--store", str(store),
             "--name", "churn", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["metrics"]["accuracy"] > 0.85
    assert doc["history"][0]["epoch"] == 1 and len(doc["history"]) <= 40
    assert doc["library_versions"]["xgboost"]
    show = my("models", "show", "churn/1", "--json", "--store", str(store), cwd=tmp_path)
    v = json.loads(show.stdout)
    assert v["importance"]["method"] == "gain" and set(v["importance"]["values"]) == {"age", "plan", "monthly"}
    assert v["importance"]["values"]["age"] < v["importance"]["values"]["monthly"]
    table = my("models", "show", "churn/1", "--store", str(store), cwd=tmp_path).stdout
    assert "feature importance (gain)" in table and "█" in table


def test_cv_prints_mean_and_sd_per_fold_and_says_the_model_is_refit_on_all_rows(folder, tmp_path):
    store = tmp_path / "store"
    out = my("train", str(folder / "churn.csv"), "--target", "churned", *GB, "--cv", "4", "--store", str(store),
             cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "4-fold cross-validation" in out.stdout and "fold 4" in out.stdout
    assert "refit on all 400 training rows" in " ".join(out.stdout.split())
    assert "fold 1/4: f1" in out.stderr
    js = my("train", str(folder / "churn.csv"), "--target", "churned", *GB, "--cv", "4", "--json", "--no-register",
            cwd=tmp_path)
    doc = json.loads(js.stdout)
    assert doc["metrics"]["evaluated_on"] == "4-fold cross-validation" and doc["metrics"]["f1_std"] >= 0
    assert len(doc["extra"]["cv"]["folds"]) == 4 and doc["split"]["test"] == 0
    assert versions(store) == 1


@pytest.mark.parametrize("extra, message", [
    (["--cv", "1"], "error: cv must be a number of folds >= 2, got 1; use e.g. --cv 5"),
    (["--cv", "500"], "error: --cv 500 needs at least 500 rows of every class for stratified folds, but class"),
    (["--set", "max_depht=3"], "error: unknown hyperparameter(s) 'max_depht' for gradient_boosting; valid ones are"),
    (["--set", "learning_rate=fast"], "error: gradient_boosting: learning_rate must be a float between 1e-06 and 1"),
    (["--set", "max_depth=0"], "error: gradient_boosting: max_depth=0 (no depth limit) needs a leaf limit"),
    (["--cv", "3", "--nodes", "2"], "error: --cv cannot be combined with --nodes"),
])
def test_bad_input_is_one_sentence_exit_2_and_nothing_stored(folder, tmp_path, extra, message):
    store = tmp_path / "store"
    out = my("train", str(folder / "churn.csv"), "--target", "churned", "--model", "gradient_boosting", *extra,
             "--store", str(store), cwd=tmp_path, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(message), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and out.stdout == ""
    assert versions(store) == 0


def test_branch_retrain_continues_boosting_from_the_parents_trees(folder, tmp_path):
    store = tmp_path / "store"
    data = str(folder / "churn.csv")
    assert my("train", data, "--target", "churned", *GB, "--set", "early_stopping_rounds=None", "--name", "c",
              "--store", str(store), "--json", cwd=tmp_path).returncode == 0
    out = my("models", "branch", "c/1", "--set", "n_estimators=10", "--retrain", data, "--target", "churned",
             "--store", str(store), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    from modelyard.yard import Yard

    with Yard(str(store)) as yard:
        parent, child = yard.registry.load_model("c/1"), yard.registry.load_model("c/2")
        assert yard.registry.get("c/2").links["warm_start"] == yard.registry.get("c/1").id
    assert parent.model.booster_.num_boosted_rounds() == 40
    assert child.model.booster_.num_boosted_rounds() == 50  # 10 more rounds on top of the parent's 40 trees
    assert parent.model.booster_.get_dump()[:40] == child.model.booster_.get_dump()[:40]


def test_nodes_2_boosts_data_parallel_from_the_shards_with_the_single_process_accuracy(folder, tmp_path):
    args = ["train", str(folder / "big.parquet"), "--target", "y", *GB, "--json", "--no-register"]
    one = my(*args, "--threads", "1", cwd=tmp_path)
    two = my(*args, "--nodes", "2", cwd=tmp_path)
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    a, b = json.loads(one.stdout), json.loads(two.stdout)
    info = b["extra"]["distributed"]
    assert info["nodes"] == 2 and info["aggregate"] == "histogram_sum" and info["sharded_read"] is True
    # integer features (< max_bin distinct values): exact cuts, so the same trees and metrics
    assert b["metrics"]["accuracy"] == pytest.approx(a["metrics"]["accuracy"])
    assert b["metrics"]["log_loss"] == pytest.approx(a["metrics"]["log_loss"], rel=1e-5)


def test_tune_with_cv_scores_trials_by_the_fold_mean_and_refits_the_best(folder, tmp_path):
    store = tmp_path / "store"
    out = my("tune", str(folder / "churn.csv"), "--target", "churned", "--model", "gradient_boosting", "--trials", "3",
             "--cv", "3", "--pruner", "none", "--optimizer", "random", "--study", "cvs", "--json",
             "--store", str(store), cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["cv"] == 3 and doc["study"]["attrs"]["cv"] == 3
    best = doc["best_trial"]
    assert sorted(int(s) for s in best["intermediate"]) == [1, 2, 3]  # one value per fold
    assert doc["test_metrics"]["f1"] == pytest.approx(best["value"], rel=1e-9)  # the refit reports the same CV mean
    again = my("tune", str(folder / "churn.csv"), "--target", "churned", "--model", "gradient_boosting", "--trials",
               "4", "--cv", "5", "--study", "cvs", "--store", str(store), cwd=tmp_path, timeout=120)
    assert again.returncode == 2 and "scored its trials with --cv 3, not --cv 5" in again.stderr
