"""Odd values end a command at once: one sentence, exit 2, nothing stored.

Every number and duration option of every command refuses NaN and infinity while the arguments
are parsed (``float`` alone accepts "nan" and "inf"), checked here by walking the whole parser,
so an option added later with a plain ``type=float`` fails this test. ``compare`` refuses two refs
naming one version, and a ``--task`` the versions do not do.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from modelyard.cli import common
from modelyard.cli.main import build_parser, main
from modelyard.testing.results import sample_result, variant
from modelyard.yard import Yard

ODD = ("nan", "NaN", "inf", "-inf", "Infinity", "-infinity", "1e400")
NUMERIC_NAMES = ("time", "timeout", "older_than", "budget", "heartbeat", "alpha", "size", "rate", "interval")


def _options(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, action) for every option of every (sub)command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        elif action.option_strings and action.nargs != 0:
            yield path, action


ALL = list(_options(build_parser()))


def _rejects(type_func, text: str) -> bool:
    try:
        type_func(text)
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        return True
    return False


def test_the_walk_sees_every_command():
    commands = {path[0] for path, _ in ALL}
    assert {"train", "tune", "models", "compare", "comparisons", "studies", "ui"} <= commands
    assert len(ALL) > 40


@pytest.mark.parametrize("path, action", ALL, ids=[f"{' '.join(p)} {a.option_strings[-1]}" for p, a in ALL])
def test_no_number_or_duration_option_takes_nan_or_infinity(path, action):
    looks_numeric = isinstance(action.default, (int, float)) and not isinstance(action.default, bool) or any(
        n in action.dest for n in NUMERIC_NAMES)
    if action.type is None:
        assert not looks_numeric or action.choices is not None, (
            f"{' '.join(path)} {action.option_strings[-1]} looks numeric but is parsed as text; give it "
            "type=int, common.finite_float, common.duration or common.age")
        return
    assert action.type is not float, f"{' '.join(path)} {action.option_strings[-1]}: use common.finite_float"
    for text in ODD:
        assert _rejects(action.type, text), f"{' '.join(path)} {action.option_strings[-1]} accepted {text!r}"


@pytest.mark.parametrize("text, seconds", [("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("2h", 7200.0), (" 30M ", 1800.0)])
def test_durations_read_as_before(text, seconds):
    assert common.duration(text) == seconds == common.parse_duration(text) == common.parse_duration(seconds)


def test_an_age_guard_may_be_zero_but_a_duration_may_not():
    assert common.age("0") == 0.0 == common.age("0s")
    for bad in ("0", "-1", "nan", "inf", "5x", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            common.duration(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="finite"):
        common.age("nan")


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "store"
    with Yard(path) as yard:
        result = sample_result()
        yard.registry.register(result, "churn")
        yard.registry.register(variant(result, 1), "churn")
        yard.registry.set_alias("churn", "production", "churn/2")
    return path


def _files(path: Path) -> dict[str, int]:
    return {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*"))
            if p.is_file() and not p.name.endswith(("-wal", "-shm", ".lock"))}


def _snapshot(path: Path):
    with Yard(path) as yard:
        return (yard.registry.list(), yard.studies.list_studies(), yard.comparisons.list(), _files(path / "artifacts"))


@pytest.mark.parametrize("argv, needle", [
    (["tune", "sklearn:iris", "--timeout", "nan", "--trials", "2"], "argument --timeout: duration must be a finite"),
    (["tune", "sklearn:iris", "--timeout", "inf"], "argument --timeout: duration must be a finite"),
    (["tune", "sklearn:iris", "--heartbeat", "nan"], "argument --heartbeat: must be a finite number"),
    (["tune", "sklearn:iris", "--val-size", "inf"], "argument --val-size: must be a finite number"),
    (["models", "gc", "--older-than", "nan"], "argument --older-than: duration must be a finite"),
    (["models", "gc", "--older-than=-1s"], "argument --older-than: duration must be >= 0"),
    (["models", "branch", "churn/1", "--max-time", "nan"], "argument --max-time: duration must be a finite"),
    (["train", "sklearn:iris", "--max-time", "inf"], "argument --max-time: duration must be a finite"),
    (["train", "sklearn:iris", "--test-size", "nan"], "argument --test-size: must be a finite number"),
    (["train", "sklearn:iris", "--nodes", "2", "--dist-timeout", "nan"], "argument --dist-timeout: duration must"),
    (["compare", "churn/1", "churn/2", "--data", "sklearn:iris", "--alpha", "nan", "--save"],
     "argument --alpha: must be a finite number"),
    (["compare", "churn/1", "churn/2", "--data", "sklearn:iris", "--latency-budget", "inf", "--save"],
     "argument --latency-budget: must be a finite number"),
])
def test_odd_numbers_end_the_command_with_exit_2_and_store_nothing(store, capsys, argv, needle):
    before = _snapshot(store)
    code = main([*argv, "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 2 and needle in err, err
    assert err.count("\n") == 1 and err.startswith("error: argument --") and "Traceback" not in err  # one line
    assert _snapshot(store) == before


def test_gc_with_a_zero_age_guard_runs(store, capsys):
    assert main(["models", "gc", "--older-than", "0", "--json", "--store", str(store)]) == 0


@pytest.mark.parametrize("refs", [["churn/2", "churn@production"], ["churn@production", "churn/2"],
                                  ["churn/1", "churn/2", "churn@latest"]])
def test_compare_refuses_two_refs_naming_one_version(store, capsys, refs):
    before = _snapshot(store)
    code = main(["compare", *refs, "--data", "sklearn:iris", "--save", "--no-latency", "--store", str(store)])
    err = capsys.readouterr().err
    a, b = (refs[0], refs[1]) if len(refs) == 2 else (refs[1], refs[2])
    assert code == 2 and err.startswith(f"error: {a} and {b} name the same version (id "), err
    assert err.count("\n") == 1 and _snapshot(store) == before


def test_registry_compare_refuses_two_refs_naming_one_version(store):
    import modelyard as my
    from modelyard.errors import ParamError

    with Yard(store) as yard, pytest.raises(ParamError, match="churn/2 and churn@production name the same version"):
        yard.registry.compare(["churn/2", "churn@production"], my.load_dataset("sklearn:iris"), latency=False)


def test_compare_refuses_a_task_the_versions_do_not_do(store, capsys):
    before = _snapshot(store)
    code = main(["compare", "churn/1", "churn/2", "--data", "sklearn:iris", "--task", "regression", "--save",
                 "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 2 and "--task regression does not match the versions: churn/1 is a classification model" in err
    assert err.count("\n") == 1 and _snapshot(store) == before
    assert main(["compare", "churn/1", "churn/2", "--data", "sklearn:iris", "--task", "classification",
                 "--no-latency", "--json", "--store", str(store)]) == 0


def test_the_walk_would_catch_a_plain_float_option():
    bad = argparse.ArgumentParser()
    bad.add_argument("--ratio", type=float)
    (_, action), = _options(bad)
    assert action.type is float and not _rejects(action.type, "nan")  # what the walk above refuses to let in
