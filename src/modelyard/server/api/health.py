"""``GET /api/health``: is the server up and the store reachable, and what may a client do."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from .common import ERRORS, ConfigDep, YardDep, database

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/health", responses=ERRORS, summary="Server and store status")
def health(yard: YardDep, config: ConfigDep) -> dict[str, Any]:
    """Pings the database; says whether the server is read-only and whether changes need a token."""
    from ... import __version__

    db = database(yard)
    db.ping()
    return {
        "status": "ok",
        "version": __version__,
        "store": db.safe_url,
        "read_only": not config.allow_mutations,
        "token_required": config.token is not None,
    }
