"""A broken database is named, not dumped; a read-only store can be read, and writing to it says why not.

Every command that opens a store gets the same one sentence for a database file that is not a
readable modelyard database (garbage, truncated, zeroed, a text file given as ``sqlite:///``),
exit code 2. A store on a read-only mount serves ``models list/show``, ``compare`` and the other
reading commands; writing commands refuse up front, naming the store as read-only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from modelyard.cli.main import main
from modelyard.testing.results import sample_result
from modelyard.yard import Yard

# every command that opens the store (STORE is replaced by the store's --store value)
COMMANDS = [
    ["models", "list"],
    ["models", "show", "m/1"],
    ["models", "lineage", "m/1"],
    ["models", "history", "m"],
    ["models", "alias", "m", "production", "m/1"],
    ["models", "rollback", "m"],
    ["models", "delete", "m/1"],
    ["models", "gc", "--older-than", "0"],
    ["models", "branch", "m/1", "--set", "learning_rate=0.1"],
    ["studies", "list"],
    ["studies", "show", "s"],
    ["comparisons", "list"],
    ["compare", "m/1", "m/2", "--data", "sklearn:iris", "--no-latency"],
    ["train", "sklearn:iris", "--epochs", "1"],
    ["tune", "sklearn:iris", "--trials", "1", "--epochs", "1"],
    ["ui", "--port", "0"],
]


def _store_with_two_versions(path: Path) -> Path:
    with Yard(path) as yard:
        result = sample_result()
        yard.registry.register(result, "m")
        yard.registry.register(result, "m")
    return path


def _damage(kind: str, folder: Path) -> str:
    """A --store value whose database file is damaged in the way ``kind`` says."""
    db = folder / "modelyard.db"
    if kind == "text":  # a text file given as the database
        text = folder / "notes.txt"
        folder.mkdir(parents=True)
        text.write_text("these are my notes, not a database\n" * 20)
        return f"sqlite:///{text}"
    if kind == "truncated":  # a real store cut in half (a failed copy, a full disk)
        _store_with_two_versions(folder)
        for extra in ("-wal", "-shm"):
            Path(f"{db}{extra}").unlink(missing_ok=True)
        os.truncate(db, db.stat().st_size // 2)
        return str(folder)
    folder.mkdir(parents=True)
    db.write_bytes(os.urandom(16384) if kind == "garbage" else bytes(16384))
    return str(folder)


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    base = tmp_path_factory.mktemp("damaged")
    return {kind: (_damage(kind, base / kind), base / kind) for kind in ("garbage", "truncated", "zeroed", "text")}


@pytest.mark.parametrize("kind", ["garbage", "truncated", "zeroed", "text"])
@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_every_command_names_a_broken_database_in_one_sentence(damaged, capsys, kind, command):
    spec, folder = damaged[kind]
    before = sorted(p.name for p in folder.iterdir())
    code = main([*command, "--store", spec])
    err = capsys.readouterr().err
    file = spec.removeprefix("sqlite:///") if spec.startswith("sqlite:") else str(folder / "modelyard.db")
    assert code == 2, err
    assert err.startswith(f"error: {file} is not a readable modelyard database"), err
    assert '".recover"' in err and "backup" in err and "--store" in err
    assert err.count("\n") == 1 and "Traceback" not in err and "DatabaseError" not in err
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(("-wal", "-shm", ".lock"))) == [
        n for n in before if not n.endswith(("-wal", "-shm", ".lock"))]  # nothing new stored next to it


# --- read-only stores ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def read_only_store(tmp_path_factory):
    """A store with two versions, then made read-only: a read-only bind mount as root, permissions otherwise."""
    path = _store_with_two_versions(tmp_path_factory.mktemp("ro") / "store")
    if os.geteuid() != 0:
        for p in [path, *path.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
        yield path
        for p in [path, *path.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
        return
    if shutil.which("mount") is None or subprocess.run(
            ["mount", "--bind", "-o", "ro", str(path), str(path)], capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot make a read-only mount here (root without mount privileges)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)  # lazy: a connection a failed command left open


def test_the_store_really_is_read_only(read_only_store):
    with pytest.raises(OSError):
        (read_only_store / "probe").write_text("x")


@pytest.mark.parametrize("command", [
    ["models", "list", "--json"],
    ["models", "show", "m/1", "--json"],
    ["models", "lineage", "m/2", "--json"],
    ["models", "gc", "--older-than", "0", "--dry-run", "--json"],
    ["studies", "list", "--json"],
    ["comparisons", "list", "--json"],
    ["compare", "m/1", "m/2", "--data", "sklearn:iris", "--no-latency", "--json"],
], ids=lambda c: " ".join(c[:2]))
def test_reading_commands_work_on_a_read_only_store(read_only_store, capsys, command):
    code = main([*command, "--store", str(read_only_store)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip()


def test_a_read_only_store_loads_and_predicts(read_only_store):
    import numpy as np

    import modelyard as my

    with Yard(read_only_store) as yard:
        model = yard.registry.load_model("m@latest")
        ds = my.load_dataset("sklearn:iris")
        assert len(model.predict(ds.X[:5])) == 5 and np.isfinite(model.predict_proba(ds.X[:5])).all()


@pytest.mark.parametrize("command", [
    ["models", "alias", "m", "production", "m/1"],
    ["models", "delete", "m/1"],
    ["models", "gc", "--older-than", "0"],
    ["models", "branch", "m/1", "--set", "learning_rate=0.1"],
    ["compare", "m/1", "m/2", "--data", "sklearn:iris", "--no-latency", "--save"],
    ["train", "sklearn:iris", "--epochs", "1"],
    ["tune", "sklearn:iris", "--trials", "1", "--epochs", "1"],
], ids=lambda c: " ".join(c[:2]))
def test_writing_commands_say_the_store_is_read_only(read_only_store, capsys, command):
    code = main([*command, "--store", str(read_only_store)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"error: the store at {read_only_store / 'modelyard.db'} is read-only"), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_public_dashboard_on_a_read_only_store_without_a_token_says_why_it_cannot_start(read_only_store, capsys):
    code = main(["ui", "--host", "0.0.0.0", "--port", "0", "--store", str(read_only_store)])
    err = capsys.readouterr().err
    assert code == 2 and "cannot create the dashboard token" in err and "127.0.0.1" in err
    assert err.count("\n") == 1


def test_the_dashboard_serves_a_read_only_store_read_only(read_only_store):
    import sys

    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "modelyard", "ui", "--port", "0", "--store", str(read_only_store)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        url = lines[0].split("dashboard at ", 1)[1].split()[0]
        assert "read-only (the store cannot be written)" in lines[2], lines
        assert httpx.get(url + "api/health", timeout=10).json()["read_only"] is True
        assert httpx.get(url + "api/models/m", timeout=10).status_code == 200
        assert httpx.get(url + "api/versions/m/1", timeout=10).json()["ref"] == "m/1"
        r = httpx.put(url + "api/models/m/aliases/production", json={"ref": "m/1"}, timeout=10)
        assert r.status_code == 403 and "read-only" in r.json()["error"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
