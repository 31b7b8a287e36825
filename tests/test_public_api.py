"""The public API: every name in ``modelyard.__all__`` resolves, and importing modelyard stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import modelyard
from modelyard import errors


@pytest.mark.parametrize("name", modelyard.__all__)
def test_every_public_name_resolves(name):
    assert getattr(modelyard, name) is not None


def test_dir_is_the_public_api():
    assert sorted(dir(modelyard)) == sorted(modelyard.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        modelyard.nope  # noqa: B018


def test_core_names_are_public():
    for name in ("load_dataset", "train", "split", "shard", "Dataset", "TrainResult", "Predictor", "FAMILIES",
                 "get_family", "ModelyardError", "DataError", "ParamError", "ModelError", "__version__"):
        assert name in modelyard.__all__


def test_error_tree():
    assert issubclass(errors.DataError, ValueError) and issubclass(errors.DataError, errors.ModelyardError)
    assert issubclass(errors.ParamError, errors.ModelError) and issubclass(errors.ModelError, ValueError)
    assert issubclass(errors.SchemaMismatchError, errors.DataError)
    assert issubclass(errors.TrainingError, RuntimeError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.ModelyardError)
        assert name in modelyard.__all__


def _fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout


def test_import_is_light():
    out = _fresh("import sys, modelyard; print(sorted(m for m in ('torch', 'sklearn', 'pandas') if m in sys.modules))")
    assert out.strip() == "[]"


def test_train_stays_callable_after_importing_its_submodules():
    # modelyard.train is both a function and a package: importing modelyard.train.metrics first must not break it
    out = _fresh(
        "import modelyard.train.metrics, modelyard as my\n"
        "r = my.train(my.load_dataset('sklearn:iris'), model='random_forest', params={'n_estimators': 3})\n"
        "print(type(r).__name__)"
    )
    assert out.strip() == "TrainResult"
