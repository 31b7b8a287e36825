"""Output that reads: whole identifiers and significant digits at 80 columns and through a pipe, TSV with --plain,
help that lists every default and every family's hyperparameters, JSON failures, progress without epochs."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest

LONG = "credit-scoring-logistic_regression-quarterly-refresh"


def _run(*args: str, cwd, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    e = {**os.environ, **(env or {})}
    e.pop("MODELYARD_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "modelyard", *args], cwd=cwd, env=e, capture_output=True,
                          text=True, timeout=240, check=False)  # stdout is a pipe, as in `modelyard ... | cat`


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two versions under a long name and one under a short one, trained on iris (a few epochs)."""
    root = tmp_path_factory.mktemp("output")
    for name, model in ((LONG, "logistic_regression"), (LONG, "random_forest"), ("x", "logistic_regression")):
        r = _run("train", "sklearn:iris", "--model", model, "--epochs", "2", "--set" if model == "random_forest"
                 else "--seed", "n_estimators=5" if model == "random_forest" else "0", "--name", name,
                 "--store", str(root / "yard"), cwd=root)
        assert r.returncode == 0, r.stderr
    return root


def test_models_list_through_a_pipe_is_full_width_with_whole_names(store):
    r = _run("models", "list", "--store", str(store / "yard"), cwd=store, env={"COLUMNS": "40"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    rows = [line for line in lines if line.startswith(LONG)]
    assert len(rows) == 2 and all("logistic_regression" in x or "random_forest" in x for x in rows)
    assert "…" not in r.stdout and "\x1b[" not in r.stdout  # nothing cut, no colour codes in a pipe
    assert all(re.search(r"f1 \d\.\d+", x) for x in rows)


def test_plain_prints_tab_separated_values(store):
    r = _run("models", "list", "--plain", "--store", str(store / "yard"), cwd=store)
    lines = r.stdout.splitlines()
    assert lines[0].split("\t") == ["version", "id", "family", "key metric", "aliases", "created"]
    cells = [line.split("\t") for line in lines[1:]]
    assert {c[0] for c in cells} == {f"{LONG}/1", f"{LONG}/2", "x/1"} and all(len(c) == 6 for c in cells)


def _cost_table():
    from rich.table import Table

    t = Table(title="cost", header_style="bold")
    for name in ("version", "train time", "size", "params", "batch p50/p95", "row p50/p95", "rows/s"):
        t.add_column(name, justify="left" if name == "version" else "right")
    t.add_row("credit-mlp-tuned/12", "1.23 s", "40.0 KiB", "5,481", "1.02 ms / 1.40 ms", "85.1 µs / 97.3 µs", "1,003,921")
    t.add_row("credit-mlp-tuned/13", "1.31 s", "40.0 KiB", "5,481", "1.11 ms / 1.52 ms", "86.0 µs / 99.0 µs", "922,335")
    return t


SNAPSHOT_80 = """\
cost
                        train                        batch        row
version                  time      size  params    p50/p95    p50/p95     rows/s
────────────────────────────────────────────────────────────────────────────────
credit-mlp-tuned/12    1.23 s  40.0 KiB   5,481  1.02 ms /  85.1 µs /  1,003,921
                                                   1.40 ms    97.3 µs
credit-mlp-tuned/13    1.31 s  40.0 KiB   5,481  1.11 ms /  86.0 µs /    922,335
                                                   1.52 ms    99.0 µs"""


def test_a_table_at_80_columns_fits_and_cuts_nothing():
    """The compare cost table (two versions sharing a long prefix, once shown as `credit-m…`) at a terminal 80
    columns wide: borders give way, then short values wrap between words; identifiers and numbers stay whole."""
    from rich.console import Console

    from modelyard.cli.render import print_table

    out = io.StringIO()
    print_table(Console(file=out, width=80, force_terminal=True, color_system=None), _cost_table())
    lines = [line.rstrip() for line in out.getvalue().splitlines()]
    assert "\n".join(lines) == SNAPSHOT_80
    assert max(len(line) for line in out.getvalue().splitlines()) <= 80


def test_a_table_wider_than_the_terminal_prints_whole():
    from rich.console import Console
    from rich.table import Table

    from modelyard.cli.render import print_table

    t = Table()
    for name in ("name", "model", "best"):
        t.add_column(name)
    t.add_row(LONG + "-" + LONG, "logistic_regression", "0.0001234")
    out = io.StringIO()
    print_table(Console(file=out, width=40, force_terminal=True, color_system=None), t)
    assert LONG + "-" + LONG in out.getvalue() and "0.0001234" in out.getvalue() and "…" not in out.getvalue()


@pytest.mark.parametrize(("value", "text"), [
    (0.96512345, "0.9651"), (0.00012345, "0.0001234"), (1.2e-7, "1.200e-07"), (123456.7, "123457"), (1024, "1,024"),
    (0.0, "0"), (12.5, "12.5"), (-0.5, "-0.5"), (None, "-"),
])
def test_numbers_keep_significant_digits(value, text):
    from modelyard.cli.render import num

    assert num(value) == text


def test_train_help_lists_every_default_and_every_familys_hyperparameters(tmp_path):
    r = _run("train", "--help", cwd=tmp_path, env={"COLUMNS": "100"})
    assert r.returncode == 0
    options, _, families = r.stdout.partition("model families and their hyperparameters")
    # every option line of the help, except --help and --debug, says its default
    blocks = re.split(r"\n  (?=-)", options.split("options:", 1)[1])
    for block in blocks[1:]:
        flag = block.split()[0]
        if flag in ("-h,", "--debug"):
            continue
        assert "default" in " ".join(block.split()), f"{flag} does not show its default"
    from modelyard.models import FAMILIES

    for family, cls in FAMILIES.items():
        section = families.split(f"\n  {family}", 1)[1]
        for p in cls.params:
            assert re.search(rf"\n    {p.name} +\S", section), (family, p.name)
    assert re.search(r"learning_rate +float, in \[1e-07, 10\]; default 0\.01", families)
    assert re.search(r"n_estimators +int, in \[1, 100000\]; default 100", families)
    assert re.search(r"activation +str, one of relu, tanh", families)


@pytest.mark.parametrize("command", [
    "tune", "compare", "predict", "serve", "export", "ui", "models list", "models show", "models branch",
    "models alias", "models rollback", "models delete", "models gc", "models lineage", "studies list",
    "studies show", "comparisons list",
])
def test_every_commands_help_says_each_options_default(command):
    from modelyard.cli.main import build_parser

    text = _subparser(build_parser(), command.split()).format_help()
    blocks = re.split(r"\n  (?=-)", text.split("options:", 1)[1])
    for block in blocks[1:]:
        flag = block.split()[0]
        if flag in ("-h,", "--debug"):
            continue
        said = " ".join(block.split())
        assert "default" in said or "(required)" in said, f"{command} {flag} does not show its default"


def _subparser(parser, names):
    import argparse

    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def test_json_failures_print_one_json_document_on_stdout(store):
    r = _run("models", "show", "nope/3", "--json", "--store", str(store / "yard"), cwd=store)
    assert r.returncode == 2 and json.loads(r.stdout) == {"error": json.loads(r.stdout)["error"], "exit_code": 2}
    assert "nope" in json.loads(r.stdout)["error"] and r.stderr.startswith("error: ")
    r = _run("train", "--json", cwd=store)  # argparse's refusal too
    assert r.returncode == 2 and json.loads(r.stdout)["error"] == "the following arguments are required: data"
    r = _run("models", "show", "nope/3", "--store", str(store / "yard"), cwd=store)
    assert r.returncode == 2 and r.stdout == ""  # without --json, stdout stays empty


def test_a_family_without_epochs_shows_fitting_not_an_epoch_bar(tmp_path):
    r = _run("train", "sklearn:iris", "--model", "random_forest", "--set", "n_estimators=5", "--no-register",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "done" in r.stderr and "0/20" not in r.stderr and "loss -" not in r.stderr
    r = _run("train", "sklearn:iris", "--epochs", "3", "--no-register", cwd=tmp_path)
    assert re.search(r"epoch 3/3 +loss \d", r.stderr)
