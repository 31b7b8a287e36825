"""``modelyard compare`` end to end: train and register through the CLI, compare, --json, --report, bad input."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest


def _run(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "MODELYARD_STORE": str(cwd / "store")}
    env.pop("MODELYARD_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "modelyard", *args], cwd=cwd, env=env, capture_output=True, check=False,
                          text=True, timeout=240)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with churn/1 (logistic regression) and churn/2 (random forest), and a held-out file."""
    root = tmp_path_factory.mktemp("cli-compare")
    rng = np.random.default_rng(0)
    n = 900
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    plan = rng.choice(["basic", "plus", "pro"], n)
    churned = ((x1 > 0) ^ (x2 > 0)) ^ (rng.random(n) < 0.05)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "plan": plan, "churned": np.where(churned, "yes", "no")})
    frame.iloc[:600].to_csv(root / "train.csv", index=False)
    frame.iloc[600:].to_csv(root / "holdout.csv", index=False)
    for model, extra in (("logistic_regression", ["--epochs", "5"]), ("random_forest", ["--set", "n_estimators=30"])):
        r = _run("train", "train.csv", "--target", "churned", "--model", model, "--name", "churn", "--json", *extra,
                 cwd=root)
        assert r.returncode == 0, r.stderr
    r = _run("models", "alias", "churn", "production", "churn/2", cwd=root)
    assert r.returncode == 0, r.stderr
    return root


FAST = ["--resamples", "1000", "--latency-budget", "0.05"]


def test_compare_json_shape_and_verdict(store):
    r = _run("compare", "churn/1", "churn@production", "--data", "holdout.csv", "--target", "churned", "--json",
             *FAST, cwd=store)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)  # nothing but the JSON document on stdout
    assert set(out) >= {"task", "metric", "alpha", "resamples", "seed", "n_rows", "best", "entries", "pairs",
                        "distances", "correction", "classes"}
    assert out["n_rows"] == 300 and out["resamples"] == 1000 and out["classes"] == ["no", "yes"]
    assert [e["label"] for e in out["entries"]] == ["churn/1", "churn@production"]
    assert out["entries"][1]["ref"] == "churn/2" and out["entries"][1]["cost"]["size_bytes"] > 0
    assert out["entries"][0]["cost"]["train_time_s"] > 0 and out["entries"][0]["cost"]["latency"]["rows_per_s"] > 0
    (pair,) = out["pairs"]
    assert pair["verdict"] == "B better" and pair["winner"] == "churn@production" and pair["test"] == "mcnemar_exact"
    assert {m["metric"] for m in pair["metrics"]} == {"accuracy", "precision", "recall", "f1", "log_loss", "roc_auc"}
    assert pair["mcnemar"]["b_only"] > pair["mcnemar"]["a_only"]
    from modelyard.records.comparisons import Comparison

    assert Comparison.from_dict(out).to_dict() == out


def test_compare_table_and_report(store):
    report = store / "compare.html"
    r = _run("compare", "churn/1", "churn/2", "--data", "holdout.csv", "--target", "churned", "--report",
             str(report), *FAST, cwd=store)
    assert r.returncode == 0, r.stderr
    assert "churn/2 better" in r.stdout and "McNemar" in r.stdout and "cost" in r.stdout
    assert "report written to" in r.stdout
    page = report.read_text()
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == 2 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)


def test_leaderboard_of_three(store):
    r = _run("models", "branch", "churn/2", "--set", "max_depth=4", cwd=store)  # churn/3: churn/2's weights
    assert r.returncode == 0, r.stderr
    try:
        r = _run("compare", "churn/1", "churn/2", "churn@latest", "--data", "holdout.csv", "--target", "churned",
                 "--json", "--no-latency", "--resamples", "1000", cwd=store)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["correction"] == "holm" and len(out["pairs"]) == 2
        same = next(p for p in out["pairs"] if {p["a"], p["b"]} == {"churn/2", "churn@latest"})
        assert same["verdict"] == "no significant difference"
        assert any(d["comparable"] and d["l2"] == 0 for d in out["distances"])  # two versions, one set of weights
    finally:
        assert _run("models", "delete", "churn/3", cwd=store).returncode == 0


def _save_json(store) -> tuple[str, dict]:
    """``compare churn/1 churn/2 --json --save``: the saved id and the printed comparison without it."""
    r = _run("compare", "churn/1", "churn/2", "--data", "holdout.csv", "--target", "churned", "--json", "--save",
             "--no-latency", "--resamples", "1000", cwd=store)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    return out.pop("id"), out


def test_save_stores_the_result_and_prints_its_id(store):
    cid, out = _save_json(store)
    r = _run("compare", "churn/1", "churn@production", "--data", "holdout.csv", "--target", "churned", "--save",
             "--no-latency", "--resamples", "1000", cwd=store)
    assert r.returncode == 0, r.stderr
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("saved as comparison ")]
    table_id = line.split()[3].rstrip(";")
    from modelyard.records.comparisons import Comparison
    from modelyard.yard import Yard

    with Yard(store / "store") as yard:
        assert yard.comparisons.get(cid) == Comparison.from_dict(out)  # exactly what --json printed
        assert yard.comparisons.get(table_id).entries[1].label == "churn@production"
        assert [s.id for s in yard.comparisons.list()][:2] == [table_id, cid]  # newest first
        saved = yard.comparisons.count()
    r = _run("compare", "churn/1", "churn/2", "--data", "holdout.csv", "--target", "churned", "--json",
             "--no-latency", "--resamples", "1000", cwd=store)
    assert r.returncode == 0 and "id" not in json.loads(r.stdout)  # without --save nothing is stored
    with Yard(store / "store") as yard:
        assert yard.comparisons.count() == saved


def test_saved_comparison_is_in_the_dashboard(store):
    """A comparison saved by the CLI is served by the REST API the dashboard reads."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from modelyard.server.app import create_app
    from modelyard.yard import Yard

    r = _run("compare", "churn/1", "churn/2", "--data", "holdout.csv", "--target", "churned", "--json", "--save",
             "--no-latency", "--resamples", "1000", cwd=store)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    cid = out.pop("id")
    with Yard(store / "store") as yard, TestClient(create_app(yard, data_roots=[store]),
                                                   base_url="http://127.0.0.1:8765") as client:
        assert client.get(f"/api/comparisons/{cid[:8]}").json() == {
            "id": cid, "refs": ["churn/1", "churn/2"], "comparison": out}
        assert client.get("/api/comparisons").json()["items"][0]["id"] == cid


@pytest.mark.parametrize("args, message", [
    (["churn/1", "churn/7"], "no version 7"),
    (["churn/1"], "at least two versions"),
    (["churn/1", "churn/1"], "given more than once"),
    (["churn/1", "churn/2", "--alpha", "2"], "alpha must be a number in (0, 1)"),
    (["churn/1", "churn/2", "--resamples", "50"], "resamples must be an int >= 1000"),
    (["churn/1", "churn/2", "--metric", "rmse"], "does not apply to classification"),
    (["churn/1", "churn/2", "--report", "nowhere/x.html"], "does not exist"),
    (["churn/1", "churn/2", "--data", "missing.csv"], "does not exist"),
])
def test_bad_input_is_one_sentence_and_exit_code_2(store, args, message, monkeypatch, capsys):
    """In-process through the CLI's main (same code path as the process; the subprocess case is below)."""
    from modelyard.cli.main import main

    monkeypatch.chdir(store)
    monkeypatch.setenv("MODELYARD_STORE", str(store / "store"))
    monkeypatch.delenv("MODELYARD_DEBUG", raising=False)
    data = [] if "--data" in args else ["--data", "holdout.csv"]
    code = main(["compare", "--no-latency", "--resamples", "1000", *data, "--target", "churned", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert _error_line(err).startswith("error: ")


def _error_line(stderr: str) -> str:
    """The one line of the error (a progress note may precede it on stderr)."""
    lines = stderr.strip().splitlines()
    assert sum(line.startswith("error: ") for line in lines) == 1, stderr
    return lines[-1]


def test_data_not_matching_the_schema_exits_2(store):
    frame = pd.read_csv(store / "holdout.csv").drop(columns="x2").assign(account_id=1)
    frame.to_csv(store / "bad.csv", index=False)
    r = _run("compare", "churn/1", "churn/2", "--data", "bad.csv", "--target", "churned", *FAST, cwd=store)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = _error_line(r.stderr)
    assert line.startswith("error: the data does not match") and "'x2'" in line and "'account_id'" in line


def test_comparisons_list_show_and_delete(store):
    cid, saved = _save_json(store)
    listed = json.loads(_run("comparisons", "list", "--json", cwd=store).stdout)
    assert listed[0]["id"] == cid and listed[0]["refs"] == ["churn/1", "churn/2"]
    assert listed[0]["best"] == saved["entries"][[e["rank"] for e in saved["entries"]].index(1)]["label"]
    table = _run("comparisons", "list", cwd=store)
    assert table.returncode == 0 and cid[:12] in table.stdout and "saved comparisons" in table.stdout
    shown = _run("comparisons", "show", cid[:8], "--json", "--report", "again.html", cwd=store)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {**saved, "id": cid} and (store / "again.html").is_file()
    text = _run("comparisons", "show", cid[:8], cwd=store)
    assert text.returncode == 0 and cid in text.stdout and "churn/1" in text.stdout
    gone = _run("comparisons", "delete", cid[:8], cwd=store)
    assert gone.returncode == 0 and cid in gone.stdout
    missing = _run("comparisons", "show", cid[:8], cwd=store)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr and cid[:8] in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


# --- held-out rows ------------------------------------------------------------------------------------------------

def test_the_training_file_is_compared_on_the_rows_held_out_from_every_version(store):
    r = _run("compare", "churn/1", "churn/2", "--data", "train.csv", "--target", "churned", *FAST, cwd=store)
    assert r.returncode == 0, r.stderr
    held = re.search(r"evaluated on the (\d+) rows held out from every version \((\d+) of the 600 rows were "
                     r"training or validation rows of churn/1 and churn/2 and are left out\)", r.stdout)
    assert held and int(held[1]) + int(held[2]) == 600 and int(held[1]) == 120  # the 20% test rows of both
    out = json.loads(_run("compare", "churn/1", "churn/2", "--data", "train.csv", "--target", "churned", "--json",
                          *FAST, cwd=store).stdout)
    assert out["n_rows"] == out["rows"]["used"] == 120 and [c["how"] for c in out["rows"]["checks"]] == ["split"] * 2
    allowed = json.loads(_run("compare", "churn/1", "churn/2", "--data", "train.csv", "--target", "churned", "--json",
                              "--allow-training-rows", *FAST, cwd=store).stdout)
    assert allowed["n_rows"] == 600 and allowed["rows"]["allowed"]


def test_held_out_rows_appear_in_the_report(store):
    r = _run("compare", "churn/1", "churn/2", "--data", "train.csv", "--target", "churned", "--report", "rows.html",
             *FAST, cwd=store)
    assert r.returncode == 0, r.stderr
    assert "evaluated on the 120 rows held out from every version" in (store / "rows.html").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--allow-training-rows"], "--allow-training-rows applies to the rows of --data, which is missing; pass --data"),
    ([], "compare needs the rows to evaluate on; pass --data FILE"),
])
def test_without_data_one_sentence_and_exit_2(store, args, message):
    r = _run("compare", "churn/1", "churn/2", *args, cwd=store)
    assert r.returncode == 2 and _error_line(r.stderr).startswith(f"error: {message}")
    assert "Traceback" not in r.stderr and "usage:" not in r.stderr


def test_save_split_writes_files_a_comparison_finds_no_training_row_in(store, tmp_path):
    r = _run("train", "train.csv", "--target", "churned", "--model", "logistic_regression", "--epochs", "3",
             "--name", "split-check", "--save-split", str(tmp_path / "parts"), cwd=store)
    assert r.returncode == 0, r.stderr
    assert f"wrote the split to {tmp_path / 'parts'}: train.csv (" in r.stdout
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == ["split.json", "test.csv", "train.csv",
                                                                     "validation.csv"]
    test = pd.read_csv(tmp_path / "parts" / "test.csv")
    assert list(test.columns) == ["x1", "x2", "plan", "churned"] and len(test) == 120
    out = json.loads(_run("compare", "split-check/1", "churn/1", "--data", str(tmp_path / "parts" / "test.csv"),
                          "--target", "churned", "--json", *FAST, cwd=store).stdout)
    assert out["n_rows"] == 120 and out["rows"]["training"] == 0  # the same rows churn/1 held out (same seed)
    r = _run("compare", "split-check/1", "churn/1", "--data", str(tmp_path / "parts" / "train.csv"), "--target",
             "churned", *FAST, cwd=store)
    assert r.returncode == 2 and "no row is held out from every version" in r.stderr
    # a folder that already holds files: one sentence, exit 2, nothing trained or registered
    before = _run("models", "list", "split-check", "--json", cwd=store).stdout
    r = _run("train", "train.csv", "--target", "churned", "--epochs", "2", "--name", "split-check",
             "--save-split", str(tmp_path / "parts"), cwd=store)
    assert r.returncode == 2 and _error_line(r.stderr).startswith("error: --save-split folder")
    assert "is not empty; pass a new or empty folder" in r.stderr
    assert _run("models", "list", "split-check", "--json", cwd=store).stdout == before
