"""Yard: the one entry point. Resolves where the store lives, opens it, and hands out the services.

Where things live (first match wins):

store
    ``Yard(store=...)`` / ``--store``, then ``$MODELYARD_STORE``, then ``./.modelyard``.
    A folder path means SQLite at ``FOLDER/modelyard.db`` with artifacts in ``FOLDER/artifacts``.
    A database URL (``sqlite:///path.db``, ``postgresql+psycopg://user@host/db``; plain
    ``postgresql://`` uses psycopg too) is used as given.
artifacts, for a database URL
    ``Yard(artifacts=...)``, then ``$MODELYARD_ARTIFACTS`` (a folder or any fsspec URL such as
    ``s3://bucket/prefix``), then the location the store recorded when artifacts were first set
    explicitly (so every machine sharing a PostgreSQL store finds the same bucket), then
    ``artifacts/`` next to a SQLite file, or ``./.modelyard/artifacts`` for a server database.
storage options (fsspec keyword arguments, e.g. ``endpoint_url`` for an S3-compatible server)
    ``Yard(storage_options=...)``, then ``$MODELYARD_ARTIFACTS_OPTIONS`` (a JSON object), then the
    artifacts URL's query string (``s3://bucket/p?endpoint_url=http://127.0.0.1:9000``). Keep
    credentials in the usual places (``AWS_ACCESS_KEY_ID``, ``~/.aws``), not in URLs.

durability
    By default a registration is atomic and the store stays consistent when a process or the
    machine crashes, but after a power loss the last registrations may be gone (SQLite's WAL
    with ``synchronous=NORMAL``; weights written without fsync). ``Yard(durable=True)`` or
    ``MODELYARD_DURABLE=1`` fsyncs the weights and every SQLite commit before returning, at
    several milliseconds per registration. PostgreSQL commits are durable per its own settings.

Constructing a Yard touches nothing; the database is opened (created or migrated) on first use.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from .errors import StoreError

if TYPE_CHECKING:
    from .models.predictor import Predictor
    from .registry import Registry
    from .store.artifacts import ArtifactStore
    from .store.comparisons import ComparisonStore
    from .store.db import Database
    from .store.trials import SqlTrialStore

__all__ = ["DEFAULT_STORE", "Yard", "load_model"]

DEFAULT_STORE = ".modelyard"
_ARTIFACTS_KEY = "artifacts_url"


class Yard:
    """Configuration (a store folder or URLs) -> database, artifact store and registry."""

    def __init__(
        self,
        store: str | os.PathLike[str] | None = None,
        *,
        artifacts: str | os.PathLike[str] | None = None,
        storage_options: dict[str, Any] | None = None,
        user: str | None = None,
        durable: bool | None = None,
    ):
        from .store.location import database_url, store_folder

        spec = os.fspath(store) if store is not None else os.environ.get("MODELYARD_STORE") or DEFAULT_STORE
        self._spec = spec
        self._folder: Path | None = store_folder(spec)
        self.url = database_url(spec)
        self.user = user
        self.durable = durable if durable is not None else os.environ.get("MODELYARD_DURABLE", "") not in ("", "0")
        explicit = artifacts if artifacts is not None else os.environ.get("MODELYARD_ARTIFACTS") or None
        self._explicit_artifacts = os.fspath(explicit) if explicit is not None else None
        self._storage_options = storage_options
        self._db: Database | None = None
        self._artifacts: ArtifactStore | None = None
        self._registry: Registry | None = None
        self._comparisons: ComparisonStore | None = None

    def __repr__(self) -> str:
        return f"Yard({self.url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> Database:
        """The opened database (created or migrated on first access)."""
        if self._db is None:
            from .store.location import open_database

            self._db = open_database(self._spec, durable=self.durable)
        return self._db

    @property
    def artifacts(self) -> ArtifactStore:
        """Where weights are stored."""
        if self._artifacts is None:
            from .store.artifacts import ArtifactStore

            url = self._artifacts_url()
            self._artifacts = ArtifactStore(url, storage_options=self._options(), fsync=self.durable)
        return self._artifacts

    @property
    def registry(self) -> Registry:
        """The model registry."""
        if self._registry is None:
            from .registry import Registry

            self._registry = Registry(self.db, self.artifacts, user=self.user)
        return self._registry

    @property
    def comparisons(self) -> ComparisonStore:
        """Saved comparisons (``compare --save`` and the dashboard's), in this database."""
        if self._comparisons is None:
            from .store.comparisons import ComparisonStore

            self._comparisons = ComparisonStore(self.db)
        return self._comparisons

    @property
    def studies(self) -> SqlTrialStore:
        """The study and trial store in this database (shared by every worker and machine using it)."""
        from .store.trials import SqlTrialStore

        return SqlTrialStore(self.db)

    def describe(self) -> dict[str, str]:
        """Where the database and the artifacts are (passwords hidden)."""
        return {"store": self.db.safe_url, "artifacts": self.artifacts.url}

    def close(self) -> None:
        """Release database connections and open artifact files."""
        if self._db is not None:
            self._db.dispose()
        if self._artifacts is not None:
            self._artifacts.close()

    # --- internals --------------------------------------------------------------------
    def _artifacts_url(self) -> str:
        if self._folder is not None:
            return self._explicit_artifacts or str(self._folder / "artifacts")
        db = self.db
        if self._explicit_artifacts is not None:
            if not db.read_only:  # first explicit choice is remembered (a read-only store only reads)
                db.set_default_setting(_ARTIFACTS_KEY, self._explicit_artifacts)
            return self._explicit_artifacts
        recorded = db.get_setting(_ARTIFACTS_KEY)
        if recorded:
            return recorded
        if db.dialect == "sqlite":
            path = db.engine.url.database or ""
            return str(Path(path).expanduser().absolute().parent / "artifacts")
        return str(Path(DEFAULT_STORE).absolute() / "artifacts")

    def _options(self) -> dict[str, Any] | None:
        if self._storage_options is not None:
            return dict(self._storage_options)
        raw = os.environ.get("MODELYARD_ARTIFACTS_OPTIONS")
        if not raw:
            return None
        try:
            options = json.loads(raw)
        except json.JSONDecodeError as e:
            raise StoreError(
                f"MODELYARD_ARTIFACTS_OPTIONS is not valid JSON ({e}); set it to an object such as "
                '{"endpoint_url": "http://127.0.0.1:9000"}'
            ) from None
        if not isinstance(options, dict):
            raise StoreError(f"MODELYARD_ARTIFACTS_OPTIONS must be a JSON object, got {raw!r}")
        return options


def load_model(ref: str, store: str | os.PathLike[str] | Yard | None = None) -> Predictor:
    """The version ``ref`` names (``NAME@ALIAS``, ``NAME/NUMBER``, an id prefix), rebuilt from its verified weights.

    ``store`` is a folder, a database URL or a ``Yard`` (default: ``$MODELYARD_STORE`` or ``./.modelyard``).
    The model predicts on raw rows (``predict``, ``predict_proba``) and keeps nothing open.
    """
    if isinstance(store, Yard):
        return store.registry.load_model(ref)
    with Yard(store) as yard:
        return yard.registry.load_model(ref)
