"""``modelyard --help`` and ``modelyard train --help`` import neither torch nor scikit-learn."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

HEAVY = ("torch", "sklearn")


def imported_modules(cmd: list[str]) -> set[str]:
    """Every module the command imported, from Python's own import-time log (PYTHONPROFILEIMPORTTIME)."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage:" in run.stdout
    names = set()
    for line in run.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "modelyard.cli.main" in names  # the log really covers the command
    return names


def _entry_points() -> list[list[str]]:
    points = [[sys.executable, "-m", "modelyard"]]
    script = shutil.which("modelyard")
    if script:
        points.append([script])
    return points


@pytest.mark.parametrize("entry", _entry_points(), ids=lambda e: "console-script" if len(e) == 1 else "python-m")
@pytest.mark.parametrize("args", [["--help"], ["train", "--help"]], ids=["help", "train-help"])
def test_help_imports_neither_torch_nor_sklearn(entry, args):
    names = imported_modules([*entry, *args])
    heavy = sorted(n for n in names if n.split(".")[0] in HEAVY)
    assert not heavy, f"{' '.join(args)} imported {heavy[:5]}"


def test_train_help_lists_the_options():
    run = subprocess.run([sys.executable, "-m", "modelyard", "train", "--help"], capture_output=True, text=True,
                         timeout=120, check=True)
    for option in ("--target", "--model", "--set", "--epochs", "--patience", "--max-time", "--json", "--drop-missing"):
        assert option in run.stdout


def test_reading_studies_does_not_load_the_gp_or_scipy(tmp_path):
    """``modelyard studies list`` reads the trial store only; the GP (and scipy) load on the first suggestion."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    run = subprocess.run([sys.executable, "-m", "modelyard", "studies", "list", "--store", str(tmp_path / "s")],
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    assert "modelyard.tune.study" in names
    heavy = sorted(n for n in names if n.split(".")[0] in ("scipy", "torch", "sklearn") or n.startswith("modelyard.tune.gp"))
    assert not heavy, f"studies list imported {heavy[:5]}"


@pytest.mark.parametrize("family", ["logistic_regression", "linear_regression"])
def test_predicting_with_a_linear_model_does_not_import_torch(tmp_path, family):
    """A linear model is rebuilt and scored with numpy: ``modelyard predict`` on one never pays torch's import."""
    store, data = str(tmp_path / "s"), "sklearn:breast_cancer" if family == "logistic_regression" else "sklearn:diabetes"
    subprocess.run([sys.executable, "-m", "modelyard", "train", data, "--model", family, "--name", "m",
                    "--store", store], capture_output=True, text=True, timeout=300, check=True)
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    out = tmp_path / "scored.csv"
    run = subprocess.run([sys.executable, "-m", "modelyard", "predict", "m/1", data, "--out", str(out), "--store", store],
                         env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    assert "modelyard.serve.batch" in names  # the log really covers the command
    assert not any(n.split(".")[0] == "torch" for n in names)
    assert out.read_text().count("\n") > 400
