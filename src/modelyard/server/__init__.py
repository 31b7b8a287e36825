"""The dashboard: a FastAPI REST API over one store and the static pages that use it (``modelyard ui``)."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(yard: Any, **kwargs: Any) -> Any:
    """The dashboard app (see ``modelyard.server.app.create_app``)."""
    from .app import create_app as _create

    return _create(yard, **kwargs)
