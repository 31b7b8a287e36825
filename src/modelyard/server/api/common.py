"""What every router shares: the yard dependency, the mutation guard, pagination and the error schema."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field

from ..config import ApiError, ServerConfig
from ..security import token_matches

__all__ = [
    "ERRORS",
    "MUTATION_ERRORS",
    "ConfigDep",
    "ErrorBody",
    "Limit",
    "Offset",
    "Page",
    "YardDep",
    "clean",
    "database",
    "get_config",
    "get_yard",
    "page",
    "require_mutation",
]

MAX_LIMIT = 500


class ErrorBody(BaseModel):
    """Every error response: one sentence naming the problem and the fix."""

    error: str = Field(description="what went wrong and how to fix it (the CLI prints the same message)")


class Page(BaseModel):
    """One page of a list in a stable order; ask again with ``offset=next_offset`` for the next page."""

    items: list[dict[str, Any]]
    total: int = Field(description="items matching the filters, over all pages")
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page, or null on the last page")


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "bad input"},
    404: {"model": ErrorBody, "description": "not found"},
    409: {"model": ErrorBody, "description": "conflicts with the store's state"},
    422: {"model": ErrorBody, "description": "malformed parameters"},
}
MUTATION_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    401: {"model": ErrorBody, "description": "token missing or wrong"},
    403: {"model": ErrorBody, "description": "read-only server or cross-site request"},
}

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"items per page (1-{MAX_LIMIT})")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="items to skip")]


def get_yard(request: Request) -> Any:
    """The Yard this app serves."""
    return request.app.state.yard


def get_config(request: Request) -> ServerConfig:
    """The app's security configuration."""
    return request.app.state.config


YardDep = Annotated[Any, Depends(get_yard)]
ConfigDep = Annotated[ServerConfig, Depends(get_config)]


def require_mutation(request: Request, config: ConfigDep) -> None:
    """Refuse a mutating request unless mutations are on, it is same-origin, and it carries the token if one is set."""
    if not config.allow_mutations:
        raise ApiError(403, "this dashboard is read-only; restart `modelyard ui` without --read-only to change the "
                            "registry or save comparisons, or use the `modelyard models` and `modelyard compare` commands")
    origin = request.headers.get("origin")
    if origin and origin.split("://", 1)[-1].lower() != (request.headers.get("host") or "").lower():
        raise ApiError(403, f"cross-site request from {origin!r} refused; use the dashboard served by this "
                            "server or a non-browser client")
    if config.token is None:
        return
    auth = request.headers.get("authorization") or ""
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-modelyard-token")
    where = f" (it is in {config.token_file})" if config.token_file else ""
    if not given:
        raise ApiError(401, "this server is reachable from other machines, so changes need its token; send "
                            f"'Authorization: Bearer TOKEN'{where}")
    if not token_matches(given, config.token):
        raise ApiError(401, f"the token is wrong; copy it from the token file{where}")


def page(items: list[Any], total: int, limit: int, offset: int) -> Page:
    """A Page of records (``to_dict`` is applied) or plain dicts."""
    out = [clean(i) for i in items]
    nxt = offset + len(out)
    return Page(items=out, total=total, limit=limit, offset=offset, next_offset=nxt if nxt < total else None)


def clean(obj: Any) -> Any:
    """Records, tuples and non-finite floats -> JSON values (NaN and infinities become null)."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "to_dict"):
        return clean(obj.to_dict())
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return clean(obj.item())
    return obj


def database(yard: Any) -> Any:
    """The yard's ``Database`` (for the read queries of ``store/study_queries.py`` and ``store/version_queries.py``)."""
    return yard.db
