"""The house rules: imports flow down the layers, only the right parts touch SQLAlchemy, the web framework and rich,
and ``docs/architecture.md`` names only folders that exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "modelyard"


def test_the_import_contracts_are_kept():
    # in a subprocess: import-linter reconfigures logging, which would silence other tests' log capture
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True))"
    run = subprocess.run([sys.executable, "-c", code, str(ROOT / ".importlinter")], capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, f"an import breaks the layering in .importlinter:\n{run.stdout[-4000:]}"


def test_every_part_folder_is_a_package_and_named_in_the_contract():
    contract = (ROOT / ".importlinter").read_text()
    parts = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    for part in parts:
        assert f"modelyard.{part}" in contract, f"the layering contract does not place {part}/"


@pytest.mark.parametrize("folder", ["data", "models", "train", "tune", "registry", "compare", "store", "cli",
                                    "server", "testing"])
def test_the_parts_the_house_issue_names_exist(folder):
    assert (PACKAGE / folder / "__init__.py").is_file()


def test_architecture_doc_names_only_existing_paths():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    tree = doc.split("```", 2)[1]  # the first fenced block is the tree
    named = re.findall(r"^\s*([a-z_]+/|[a-z_]+\.py)\s", tree, flags=re.MULTILINE)
    assert len(named) >= 10
    for name in named:
        assert (PACKAGE / name.rstrip("/")).exists(), f"docs/architecture.md names {name}, which does not exist"
    for path in re.findall(r"`((?:src|tests|benchmarks|docs)/[\w/.-]+)`", doc):
        assert (ROOT / path).exists(), f"docs/architecture.md names {path}, which does not exist"
