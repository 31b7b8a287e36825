"""Where a store lives: a folder (SQLite inside it) or a database URL -> an opened ``Database``.

``Yard`` and ``Study(storage=...)`` both resolve a store spec here, so a study can open its
database without going through the layer above it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StoreError

if TYPE_CHECKING:
    from .db import Database

__all__ = ["DB_FILE", "database_url", "open_database", "store_folder"]

DB_FILE = "modelyard.db"


def store_folder(spec: str | os.PathLike[str]) -> Path | None:
    """The store folder a spec names, or None for a database URL."""
    spec = os.fspath(spec)
    if not spec.strip():
        raise StoreError("the store is empty; pass a folder path or a database URL with --store")
    return None if "://" in spec else Path(spec).expanduser().absolute()


def database_url(spec: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL of a store spec: the URL itself, or SQLite inside the folder."""
    folder = store_folder(spec)
    return os.fspath(spec) if folder is None else f"sqlite:///{folder / DB_FILE}"


def open_database(spec: str | os.PathLike[str], *, durable: bool = False) -> Database:
    """Open (create or migrate) the database of a store folder or URL; a folder is created if missing."""
    folder = store_folder(spec)
    if folder is not None:
        if folder.exists() and not folder.is_dir():
            raise StoreError(
                f"store {str(folder)!r} is a file, not a folder; pass a folder path, or a database "
                "URL such as sqlite:///path/to/file.db"
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the store folder {str(folder)!r} ({e}); pass --store") from e
    from .db import Database  # SQLAlchemy loads only when a database is opened

    db = Database(database_url(spec), durable=durable)
    db.open()
    return db
