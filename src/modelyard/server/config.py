"""What the app and its routers share, below both: the server's own error, its guard settings, and status codes.

The API modules import these from here, never from ``app.py`` (which imports the API modules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import errors as E

__all__ = ["STATUS", "ApiError", "ServerConfig", "status_for"]

# most specific class first: the first isinstance match wins
STATUS: tuple[tuple[type[E.ModelyardError], int], ...] = (
    (E.NotFoundError, 404),
    (E.AmbiguousRefError, 409),
    (E.LineageError, 409),
    (E.StudyError, 409),
    (E.ArtifactError, 500),  # the store's bytes are missing or corrupt: a server-side fault
    (E.StoreError, 503),  # database unreachable or locked
    (E.ModelyardError, 400),
)

class ApiError(Exception):
    """An HTTP error raised by the server itself (auth, read-only mode), rendered as ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ServerConfig:
    """How one app instance guards itself: token, mutation switch, Host allow-list and dataset roots."""

    token: str | None = None
    allow_mutations: bool = True
    allowed_hosts: tuple[str, ...] | None = None  # None: any Host header (non-loopback binds)
    data_roots: tuple[Path, ...] = field(default_factory=tuple)
    token_file: str | None = None  # where the token lives, for error messages
    public_read: bool = False  # with a token: reads pass without it
    max_body: int = 1 << 20  # bytes a request body may have (the gate refuses more before reading it)


def status_for(e: E.ModelyardError) -> int:
    """The HTTP status of a modelyard error."""
    for cls, code in STATUS:
        if isinstance(e, cls):
            return code
    return 400
