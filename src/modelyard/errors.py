"""The one exception tree of modelyard.

Every error a user can cause is a ``ModelyardError``; the CLI prints its message
(one sentence: the problem and the fix) and exits with code 2. Each class also
derives from the builtin that fits, so ``except ValueError`` keeps working::

    ModelyardError
    ├── DataError(ValueError)             bad file, column, NaN/inf, too few rows
    │   └── SchemaMismatchError           data does not match a model's stored schema
    ├── ModelError(ValueError)            unknown family, bad custom model
    │   └── ParamError                    unknown, ill-typed or out-of-range hyperparameter
    ├── TrainingError(RuntimeError)       training failed (diverged, worker died)
    │   └── DistributedError              a rank crashed, hung or could not start
    ├── StoreError(RuntimeError)          bad store URL, unreachable database, schema version
    │   ├── NotFoundError(LookupError)    unknown ref, alias, study
    │   ├── AmbiguousRefError             id prefix matches several versions
    │   ├── LineageError                  cycle, rollback of a root, delete with descendants
    │   └── ArtifactError                 missing artifact
    │       └── CorruptArtifactError      checksum mismatch
    ├── SpaceError(ValueError)            bad search space
    └── StudyError(RuntimeError)          study misuse (tell twice, no completed trial)
"""

from __future__ import annotations

__all__ = [
    "AmbiguousRefError",
    "ArtifactError",
    "CorruptArtifactError",
    "DataError",
    "DistributedError",
    "LineageError",
    "ModelError",
    "ModelyardError",
    "NotFoundError",
    "ParamError",
    "SchemaMismatchError",
    "SpaceError",
    "StoreError",
    "StudyError",
    "TrainingError",
]


class ModelyardError(Exception):
    """Base of every error a user can cause; the message names the problem and the fix."""


class DataError(ModelyardError, ValueError):
    """The data cannot be loaded or used as given."""


class SchemaMismatchError(DataError):
    """The data does not match the schema a model was trained on."""


class ModelError(ModelyardError, ValueError):
    """The model family or custom model cannot be used."""


class ParamError(ModelError):
    """A hyperparameter is unknown, ill-typed or out of range."""


class TrainingError(ModelyardError, RuntimeError):
    """Training could not finish."""


class DistributedError(TrainingError):
    """A distributed run failed: a rank crashed, hung or could not start."""


class StoreError(ModelyardError, RuntimeError):
    """The store (database or artifact storage) cannot be used."""


class NotFoundError(StoreError, LookupError):
    """A ref, alias, study or record does not exist."""


class AmbiguousRefError(StoreError, LookupError):
    """An id prefix matches more than one version."""


class LineageError(StoreError):
    """The operation would break the lineage rules (cycles, rollback of a root, orphaning)."""


class ArtifactError(StoreError):
    """An artifact is missing or unreadable."""


class CorruptArtifactError(ArtifactError):
    """An artifact's bytes do not match its checksum."""


class SpaceError(ModelyardError, ValueError):
    """A hyperparameter search space is invalid."""


class StudyError(ModelyardError, RuntimeError):
    """A study was used in a way it does not allow."""
