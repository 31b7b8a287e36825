"""A fresh install runs every command the README shows: a new virtual environment (no system packages), the
package installed without extras with its real dependencies, then each README command's ``--help``, the
README's main job as written, and a smoke run of the other commands.

The venv is built once per test session (about three minutes: torch's CPU wheel, then the package and its
dependencies, from the index pip is configured with). Without a way to build it offline the tests are skipped,
saying why.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # the first test builds the venv (minutes)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TORCH = "torch==2.13.0"  # the CPU build the README installs first (an unpinned torch would pull CUDA)


def _clean_env(venv: Path) -> dict[str, str]:
    """The environment of a user who just installed: no PYTHONPATH to this checkout, no store settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("MODELYARD_")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["COLUMNS"] = "120"
    return env


def _pip(venv: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *args],
                          env=_clean_env(venv), capture_output=True, text=True, timeout=1800, check=False)


def _unavailable(run: subprocess.CompletedProcess) -> bool:
    """pip failed because the index offers no such distribution (offline), not because of the package."""
    text = run.stderr + run.stdout
    return any(s in text for s in ("No matching distribution found", "Could not find a version that satisfies",
                                   "Failed to establish a new connection", "Network is unreachable"))


@pytest.fixture(scope="session")
def venv(tmp_path_factory) -> Path:
    """A plain venv with torch (CPU) and this package installed without extras: built once per session."""
    folder = tmp_path_factory.mktemp("fresh") / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", str(folder)], capture_output=True, text=True, timeout=300,
                          check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot create a virtual environment here ({made.stderr.strip()[-300:]})")
    run = _pip(folder, TORCH)
    if run.returncode != 0:
        if _unavailable(run):
            pytest.skip(f"cannot install {TORCH} offline from the configured index: {run.stderr.strip()[-300:]}")
        pytest.fail(f"pip install {TORCH} failed:\n{run.stderr[-3000:]}")
    run = _pip(folder, str(ROOT))
    if run.returncode != 0:
        if _unavailable(run):
            pytest.skip(f"cannot install modelyard's dependencies offline: {run.stderr.strip()[-300:]}")
        pytest.fail(f"pip install {ROOT} (no extras) failed:\n{run.stderr[-3000:]}")
    return folder


def _shell(venv: Path, command: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=_clean_env(venv), capture_output=True, text=True,
                          timeout=timeout, check=False)


def readme_commands() -> list[str]:
    """Every ``modelyard ...`` command in the README's bash blocks (chains split at ``&&``), comments dropped."""
    text = README.read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                part = part.split(" #", 1)[0].strip()
                if part.startswith("modelyard "):
                    commands.append(part)
    return commands


def help_path(command: str) -> list[str]:
    """The command words of a README command (``models branch`` of ``modelyard models branch churn/1 ...``)."""
    words = []
    for token in shlex.split(command.replace("|", " "))[1:3]:
        if not re.fullmatch(r"[a-z]+", token):
            break
        words.append(token)
    return words


def test_the_readme_shows_commands_to_check():
    commands = readme_commands()
    paths = {" ".join(help_path(c)) for c in commands}
    assert {"train", "tune", "compare", "ui", "models list", "models branch", "studies list"} <= paths


def test_every_readme_command_answers_help_in_a_fresh_install(venv, tmp_path):
    paths = sorted({" ".join(help_path(c)) for c in readme_commands()})
    script = " && ".join(f"modelyard {p} --help > /dev/null" for p in paths)
    run = _shell(venv, f"set -e; modelyard --help > /dev/null && {script}", tmp_path, timeout=600)
    assert run.returncode == 0, f"{run.stderr[-2000:]}"


def test_the_readme_main_job_runs_in_a_fresh_install(venv, tmp_path):
    """The README's first command, as written, less its pip installs (done by the fixture)."""
    first = next(line for line in README.read_text().splitlines() if line.startswith("pip install torch"))
    job = " && ".join(p.strip() for p in first.split("&&") if not p.strip().startswith("pip install"))
    run = _shell(venv, job, tmp_path)
    assert run.returncode == 0, f"{job}\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    assert "held out from every version" in run.stdout  # the main job compares on rows no version trained on
    assert (tmp_path / "compare.html").is_file()


def test_the_other_readme_commands_run_or_name_their_extra(venv, tmp_path):
    steps = [
        "modelyard train sklearn:iris --model logistic_regression --name iris --epochs 2",
        "modelyard train sklearn:iris --model random_forest --name iris --set n_estimators=10 --json > train.json",
        "modelyard tune sklearn:iris --model logistic_regression --trials 2 --epochs 2 --study iris-lr --name iris",
        "modelyard studies list", "modelyard studies show iris-lr --json > study.json",
        "modelyard models list", "modelyard models show iris/1", "modelyard models lineage iris/1 --dot",
        "modelyard models branch iris/1 --set learning_rate=0.01",  # iris/4, a child of iris/1
        "modelyard models alias iris production iris/4 --why smoke", "modelyard models rollback iris",
        "modelyard models history iris production",
        "modelyard compare iris/1 iris/2 --data sklearn:iris --save --no-latency",
        "modelyard comparisons list", "modelyard models delete iris/4", "modelyard models gc --dry-run",
    ]
    run = _shell(venv, "set -e; " + " && ".join(steps), tmp_path)
    assert run.returncode == 0, f"{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    ui = _shell(venv, "modelyard ui --port 0", tmp_path, timeout=120)
    assert ui.returncode == 2, ui.stderr
    assert "pip install 'modelyard[ui]'" in ui.stderr and "Traceback" not in ui.stderr
