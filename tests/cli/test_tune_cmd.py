"""``modelyard tune`` and ``modelyard studies`` end to end, through a subprocess like a user runs them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (fast, for commands that start no workers): (exit code, stdout, stderr)."""
    from modelyard.cli.main import main

    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as e:  # refused while the arguments are parsed (a bad number or duration)
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def my(*args: str, cwd, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MODELYARD_STORE", None)
    return subprocess.run([sys.executable, "-m", "modelyard", *args], check=False, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """One small study: iris, logistic regression, 6 trials on 2 worker processes (JSON), then resumed to 7 (table)."""
    root = tmp_path_factory.mktemp("tune")
    args = ["tune", "sklearn:iris", "--model", "logistic_regression", "--epochs", "4", "--study", "iris-lr",
            "--pruner", "none", "--store", str(root / "yard")]  # no pruning: every trial completes its 4 epochs
    first = my(*args, "--trials", "6", "--workers", "2", "--json", cwd=root)
    second = my(*args, "--trials", "7", cwd=root)
    return root, first, second


def test_tune_json_reports_the_study_best_trial_and_registered_version(tuned):
    root, first, _ = tuned
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert set(out) >= {"study", "metric", "direction", "best_trial", "top_trials", "test_metrics", "version"}
    assert out["metric"] == "f1" and out["direction"] == "maximize"
    study = out["study"]
    assert study["name"] == "iris-lr" and study["n_trials"] == 6 and study["counts"]["running"] == 0
    assert study["attrs"]["model"] == "logistic_regression" and study["attrs"]["data"] == "sklearn:iris"
    best = out["best_trial"]
    assert best["state"] == "complete" and best["number"] == study["best_number"]
    assert best["value"] == max(t["value"] for t in out["top_trials"])
    assert set(best["params"]) == {"C"}  # the default space of an exact solver: the L2 strength
    assert 1 <= len(best["intermediate"]) <= 4  # one validation value per L-BFGS iteration, --epochs 4 the cap
    # two worker processes were started; a fast one may claim every trial before the other has imported torch
    assert 1 <= len({t["worker"].rsplit(":", 1)[0] for t in out["top_trials"]}) <= 2
    assert out["failed_workers"] == 0
    assert 0.0 <= out["test_metrics"]["f1"] <= 1.0
    version = out["version"]
    assert version["ref"] == "iris-logistic_regression/1" and version["new"] is True  # the name train gives

    from modelyard.yard import Yard

    v = Yard(str(root / "yard")).registry.get(version["ref"])
    assert v.links["study"] == "iris-lr" and v.links["trial"] == best["number"]
    assert v.params["C"] == pytest.approx(best["params"]["C"])


def test_rerun_with_the_same_study_runs_only_the_remainder_and_prints_tables(tuned):
    root, first, second = tuned
    assert second.returncode == 0, second.stderr
    before = json.loads(first.stdout)
    shown = json.loads(my("studies", "show", "iris-lr", "--json", "--store", str(root / "yard"), cwd=root).stdout)
    assert [t["number"] for t in shown["trials"]] == list(range(7))
    assert "resuming study iris-lr (6 trials so far)" in second.stderr
    assert "7 finished of 7" in second.stderr  # the live summary's last state
    flat = " ".join(second.stdout.split())  # a one-parameter table is narrow: its title wraps
    assert "study iris-lr: top 7 of 7 complete trials" in flat and re.search(r"\bC\b", second.stdout)
    assert "retrained: test f1" in second.stdout
    assert second.stderr.endswith("\n")  # the live summary's last line is a whole line
    if shown["study"]["best_number"] == before["best_trial"]["number"]:
        assert f"already registered as {before['version']['ref']}" in second.stdout  # not registered twice


def test_tune_with_name_adds_a_version_of_that_model_noting_study_and_trial(tmp_path):
    store = ["--store", str(tmp_path / "yard")]
    r = my("train", "sklearn:iris", "--model", "logistic_regression", "--epochs", "2", "--name", "credit", *store,
           cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = my("tune", "sklearn:iris", "--model", "logistic_regression", "--epochs", "2", "--trials", "2", "--pruner",
           "none", "--study", "credit-lr", "--name", "credit", "--json", *store, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["version"]["ref"] == "credit/2"
    trial = out["best_trial"]["number"]
    lineage = my("models", "lineage", "credit/2", *store, cwd=tmp_path)
    assert f"(tuned: study credit-lr trial {trial})" in lineage.stdout
    shown = json.loads(my("models", "show", "credit/2", "--json", *store, cwd=tmp_path).stdout)
    assert shown["links"] == {"study": "credit-lr", "trial": trial} and "credit-lr" in shown["description"]
    r = my("tune", "sklearn:iris", "--model", "logistic_regression", "--trials", "1", "--name", "bad name", *store,
           cwd=tmp_path)
    assert r.returncode == 2 and "model name 'bad name' is not allowed" in r.stderr  # before any trial runs


def test_studies_list_and_show(tuned, capsys, monkeypatch):
    root, _, _ = tuned
    monkeypatch.setenv("COLUMNS", "200")
    store = str(root / "yard")
    code, out, err = run_main(capsys, "studies", "list", "--json", "--store", store)
    assert code == 0, err
    (info,) = json.loads(out)
    assert info["name"] == "iris-lr" and info["n_trials"] == 7 and info["attrs"]["metric"] == "f1"
    code, out, _ = run_main(capsys, "studies", "show", "iris-lr", "--json", "--store", store)
    detail = json.loads(out)
    assert [t["number"] for t in detail["trials"]] == list(range(7))
    assert detail["study"]["best_number"] == info["best_number"]
    assert all(1 <= len(t["intermediate"]) <= 4 for t in detail["trials"])  # L-BFGS may converge before the cap
    code, out, _ = run_main(capsys, "studies", "show", "iris-lr", "--store", store)
    assert code == 0 and "iris-lr" in out and re.search(r"\bC\b", out) and "complete" in out
    code, out, _ = run_main(capsys, "studies", "list", "--store", store)
    assert "iris-lr" in out and "logistic_regression" in out
    code, _, err = run_main(capsys, "studies", "show", "nope", "--store", store)
    assert code == 2 and "no study named 'nope'" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metric", "rmse"], "metric 'rmse' does not apply to classification"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["--model", "nope"], "unknown model family 'nope'"),
        (["--space", "space.yaml"], "'depth' are not hyperparameters of logistic_regression"),
        (["--space", "missing.yaml"], "cannot read search space file"),
        (["--timeout", "soon"], "cannot read duration 'soon'"),
        (["--study", "bad name"], "study name 'bad name' is not valid"),
    ],
)
def test_bad_input_gets_one_clear_sentence(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.yaml").write_text("depth: {type: int, low: 1, high: 4}\n")
    code, _, err = run_main(capsys, "tune", "sklearn:iris", "--model", "logistic_regression", "--trials", "2",
                            *extra, "--store", str(tmp_path / "yard"))
    assert code == 2, err
    assert message in err and "Traceback" not in err


def test_resuming_with_another_model_is_refused(tuned, capsys):
    root, _, _ = tuned
    code, _, err = run_main(capsys, "tune", "sklearn:iris", "--model", "mlp", "--study", "iris-lr", "--trials", "8",
                            "--store", str(root / "yard"))
    assert code == 2
    assert "study 'iris-lr' was made with model 'logistic_regression', not 'mlp'" in err
    assert "Traceback" not in err


def test_ctrl_c_stops_every_worker_and_leaves_the_study_resumable(tmp_path):
    import signal
    import time

    from modelyard.records.trials import TrialState
    from modelyard.tune.study import open_trial_store

    store_dir = tmp_path / "yard"
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelyard", "tune", "sklearn:digits", "--model", "mlp", "--epochs", "60",
         "--trials", "40", "--workers", "2", "--optimizer", "random", "--pruner", "none", "--study", "stopme",
         "--store", str(store_dir)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job has
    )
    try:
        deadline = time.monotonic() + 180
        running = []
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                running = open_trial_store(str(store_dir)).trials("stopme", [TrialState.RUNNING])
            except Exception:  # noqa: BLE001  (the store or study may not exist yet)
                running = []
            if len(running) == 2 and all(t.intermediate for t in running):
                break
            time.sleep(0.2)
        assert len(running) == 2, "both workers should be training when Ctrl-C comes"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "interrupted: study stopme is saved" in err and "Traceback" not in err
    assert "retrained" not in out  # an interrupted study is not finished: nothing retrained or registered
    trials = open_trial_store(str(store_dir)).trials("stopme")
    assert not [t for t in trials if t.state is TrialState.RUNNING]
    stopped = [t for t in trials if t.number in {r.number for r in running}]
    assert all(t.state is TrialState.FAILED and t.reason.startswith("interrupted") for t in stopped)


def test_the_cli_offers_every_registered_optimizer_and_pruner():
    """``--optimizer``/``--pruner`` list their names literally (so ``--help`` stays light); they must match the registries."""
    from modelyard.cli.main import build_parser
    from modelyard.tune.optimizers import OPTIMIZERS
    from modelyard.tune.pruners import PRUNERS

    tune = build_parser()._subparsers._group_actions[0].choices["tune"]
    choices = {a.dest: set(a.choices) for a in tune._actions if a.dest in ("optimizer", "pruner")}
    assert choices == {"optimizer": set(OPTIMIZERS), "pruner": set(PRUNERS)}


def _claim_and_vanish(store_url: str) -> None:
    """A worker that claims a trial and dies before it can give the trial back (as one stopped mid-claim)."""
    import modelyard as my

    study = my.Study({"x": {"type": "float", "low": 0, "high": 1}}, storage=store_url, name="orphans")
    study.ask()
    os._exit(130)


def test_trials_left_running_by_stopped_workers_are_given_back(tmp_path):
    import multiprocessing as mp

    from modelyard.cli.tune_cmd import _give_back
    from modelyard.records.trials import TrialState
    from modelyard.store.trialstore import INTERRUPTED_REASON
    from modelyard.tune.study import open_trial_store

    url = str(tmp_path / "yard")
    proc = mp.get_context("spawn").Process(target=_claim_and_vanish, args=(url,))
    proc.start()
    proc.join(120)
    store = open_trial_store(url)
    assert [t.state for t in store.trials("orphans")] == [TrialState.RUNNING]  # what the dead worker left
    _give_back([proc], store, "orphans")
    (trial,) = store.trials("orphans")
    assert trial.state is TrialState.FAILED and trial.reason == INTERRUPTED_REASON
    import modelyard as my  # uncounted: a resumed study with a budget of one trial still runs one

    study = my.Study({"x": {"type": "float", "low": 0, "high": 1}}, storage=url, name="orphans")
    study.optimize(lambda t: t.params["x"], n_trials=1)
    assert [t.state for t in store.trials("orphans")] == [TrialState.FAILED, TrialState.COMPLETE]
