"""``modelyard train`` registering, and every ``modelyard models`` subcommand, through the CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from modelyard.cli.main import main


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with iris/1 trained by the CLI (shared by the read-only tests of this module)."""
    import torch

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("cli") / "store"
    assert main(["train", "sklearn:iris", "--model", "logistic_regression", "--epochs", "2", "--name", "iris",
                 "--store", str(path), "--json"]) == 0
    return str(path)


def _run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys, *args):
    code, out, err = _run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_train_registers_and_prints_the_ref(in_tmp, capsys):
    code, out, err = _run(capsys, "train", "sklearn:iris", "--model", "logistic_regression", "--epochs", "1")
    assert code == 0, err
    assert "registered iris-logistic_regression/1 (id " in out
    data = _json(capsys, "train", "sklearn:iris", "--model", "logistic_regression", "--epochs", "1")
    assert data["version"]["ref"] == "iris-logistic_regression/2" and len(data["version"]["id"]) == 64
    assert (in_tmp / ".modelyard" / "modelyard.db").is_file()
    code, out, _ = _run(capsys, "train", "sklearn:iris", "--epochs", "1", "--no-register", "--json")
    assert code == 0 and "version" not in json.loads(out)
    listed = _json(capsys, "models", "list")
    assert [v["ref"] for v in listed] == ["iris-logistic_regression/2", "iris-logistic_regression/1"]


def test_train_refuses_a_bad_name_before_training(in_tmp, capsys):
    code, out, err = _run(capsys, "train", "sklearn:iris", "--epochs", "1", "--name", "bad/name")
    assert code == 2 and "model name 'bad/name' is not allowed" in err and "Traceback" not in err
    assert "epoch" not in err.lower() and out == ""


def test_list_and_show_print_the_record_shapes(store, capsys):
    from modelyard.yard import Yard

    reg = Yard(store).registry
    listed = _json(capsys, "models", "list", "iris", "--store", store)
    assert listed == [s.to_dict() for s in reg.list("iris")]
    shown = _json(capsys, "models", "show", "iris/1", "--store", store)
    assert shown == json.loads(json.dumps(reg.get("iris/1").to_dict()))
    code, out, _ = _run(capsys, "models", "show", shown["id"][:6], "--store", store)
    assert code == 0 and "iris/1" in out and "hyperparameters" in out and "safetensors" in out
    code, out, _ = _run(capsys, "models", "list", "--store", store)
    assert code == 0 and "iris/1" in out and shown["id"][:12] in out and "f1 " in out


def test_branch_lineage_alias_rollback_history_delete(store, capsys, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("COLUMNS", "200")  # tables unwrapped, to search them

    s = str(tmp_path / "copy")
    shutil.copytree(store, s)
    code, out, err = _run(capsys, "models", "branch", "iris/1", "--set", "learning_rate=0.05", "--store", s)
    assert code == 0, err
    assert "registered iris/2" in out and "same weights (no bytes copied)" in out and "learning_rate" in out
    v3 = _json(capsys, "models", "branch", "iris/2", "--set", "learning_rate=0.02", "--retrain", "sklearn:iris",
               "--epochs", "1", "--tag", "data=q3", "--store", s)
    assert v3["ref"] == "iris/3" and v3["tags"] == {"data": "q3"} and v3["links"]["warm_start"]
    lin = _json(capsys, "models", "lineage", "iris/3", "--store", s)
    assert [a["ref"] for a in lin["ancestors"]] == ["iris/2", "iris/1"]
    assert {(e["retrained"], tuple(e["diff"])) for e in lin["edges"]} == {(False, ("learning_rate",)),
                                                                           (True, ("learning_rate",))}
    code, out, _ = _run(capsys, "models", "lineage", "iris/1", "--store", s)
    assert code == 0 and out.index("iris/1") < out.index("iris/2") < out.index("iris/3") and "retrained" in out
    code, dot, _ = _run(capsys, "models", "lineage", "iris/2", "--dot", "--store", s)
    assert code == 0 and dot.startswith("digraph lineage") and dot.count('" -> "') == 2
    move = _json(capsys, "models", "alias", "iris", "production", "iris/3", "--why", "beats iris/2 on Q3",
                 "--store", s)
    assert (move["from"], move["to"], move["reason"], move["action"]) == (None, "iris/3", "beats iris/2 on Q3", "set")
    code, out, _ = _run(capsys, "models", "rollback", "iris", "--why", "Q4 regression", "--store", s)
    assert code == 0 and "rolled back iris@production: iris/3 -> iris/2" in out
    back = _json(capsys, "models", "rollback", "iris", "--alias", "production", "--to", "iris/1", "--store", s)
    assert (back["from"], back["to"]) == ("iris/2", "iris/1")
    code, out, err = _run(capsys, "models", "rollback", "iris", "--store", s)
    assert code == 2 and "root version" in err and "Traceback" not in err
    hist = _json(capsys, "models", "history", "iris", "production", "--store", s)
    assert [(h["from"], h["to"], h["action"]) for h in hist] == [
        (None, "iris/3", "set"), ("iris/3", "iris/2", "rollback"), ("iris/2", "iris/1", "rollback")]
    code, out, _ = _run(capsys, "models", "history", "iris", "--store", s)
    assert code == 0 and "Q4 regression" in out and "rollback" in out
    code, _, err = _run(capsys, "models", "delete", "iris/2", "--store", s)
    assert code == 2 and "--force" in err and "iris/3" in err
    code, out, _ = _run(capsys, "models", "delete", "iris/2", "--force", "--store", s)
    assert code == 0 and "deleted iris/2" in out and "re-parented iris/3 to iris/1" in out
    code, _, _ = _run(capsys, "models", "alias", "iris", "production", "--unset", "--store", s)
    assert code == 0
    d = _json(capsys, "models", "delete", "iris/1", "--force", "--why", "retired", "--store", s)
    assert d["deleted"]["ref"] == "iris/1" and d["reparented"] == [v3["id"]]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["models", "show", "iris/9"], "iris has no version 9"),
        (["models", "show", "ab"], "at least 4 hex"),
        (["models", "show", "iris@prod"], "has no alias 'prod'"),
        (["models", "list", "nope"], "no model named 'nope'"),
        (["models", "alias", "iris", "production"], "name the version"),
        (["models", "alias", "iris", "9lives", "iris/1"], "alias '9lives' is not allowed"),
        (["models", "branch", "iris/1", "--epochs", "3"], "--epochs apply only with --retrain"),
        (["models", "branch", "iris/1", "--set", "nope=1"], "unknown hyperparameter"),
        (["models", "branch", "iris/1", "--retrain", "missing.csv"], "does not exist"),
        (["models", "list", "--limit", "-1"], "--limit must be >= 0"),
    ],
)
def test_user_errors_are_one_sentence_and_exit_2(store, capsys, args, needle):
    code, out, err = _run(capsys, *args, "--store", store)
    assert code == 2 and needle in err and "Traceback" not in err and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize(
    "store_arg, needle",
    [
        ("nosuch://x", "bad store URL"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/x?connect_timeout=2", "cannot use the database"),
    ],
)
def test_store_errors_exit_2(capsys, store_arg, needle):
    code, _, err = _run(capsys, "models", "list", "--store", store_arg)
    assert code == 2 and needle in err and "Traceback" not in err


def test_corrupted_artifact_names_version_and_artifact(store, capsys, tmp_path):
    import shutil

    from modelyard.testing.results import overwrite_artifact
    from modelyard.yard import Yard

    s = str(tmp_path / "copy")
    shutil.copytree(store, s)
    with Yard(s) as yard:
        v = yard.registry.get("iris/1")
        data = yard.artifacts.get(v.artifact)
        overwrite_artifact(yard.artifacts, v.artifact, data[:-1] + bytes([data[-1] ^ 1]))
    code, _, err = _run(capsys, "models", "branch", "iris/1", "--set", "learning_rate=0.1", "--store", s)
    assert code == 2 and "iris/1" in err and v.artifact in err and "corrupted" in err


def test_models_help_stays_light():
    code = ("import sys; from modelyard.cli.main import main\n"
            "try:\n    main(['models', '--help'])\nexcept SystemExit:\n    pass\n"
            "bad = [m for m in ('torch', 'sklearn', 'sqlalchemy', 'numpy') if m in sys.modules]\n"
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "lineage" in proc.stdout and "rollback" in proc.stdout


def test_gc_removes_unreferenced_weights_and_compacts_the_packs(store, capsys, tmp_path):
    import shutil
    import time

    from modelyard.testing.results import sample_result, variant
    from modelyard.yard import Yard

    s = str(tmp_path / "gc")
    shutil.copytree(store, s)
    with Yard(s) as yard:
        v = yard.registry.register(variant(sample_result(), 1), "iris")
    assert _run(capsys, "models", "delete", v.ref, "--store", s)[0] == 0
    assert _json(capsys, "models", "gc", "--store", s)["removed"] == []  # younger than the 1h guard
    time.sleep(1.1)
    assert _json(capsys, "models", "gc", "--older-than", "1s", "--dry-run", "--store", s)["removed"] == [v.artifact]
    code, out, _ = _run(capsys, "models", "gc", "--older-than", "1s", "--store", s)
    assert code == 0 and "removed 1 unreferenced artifact(s)" in out and v.artifact in out
    with Yard(s) as yard:
        assert not yard.artifacts.exists(v.artifact)
        yard.registry.load_model("iris/1")  # the kept version still loads from the compacted packs
    # refused while the arguments are parsed (tests/cli/test_odd_values.py)
    code, _, err = _run(capsys, "models", "gc", "--older-than", "soon", "--store", s)
    assert code == 2 and "cannot read duration 'soon'" in err and "Traceback" not in err

