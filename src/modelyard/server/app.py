"""The FastAPI application: routers, error mapping, security middleware and the dashboard's static files.

``create_app(yard)`` serves one store. Every error a user can cause comes back as JSON
``{"error": message}`` with the message the CLI prints for the same mistake; the status code
follows the error class (see ``STATUS``). The OpenAPI document is at ``/api/openapi.json``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors as E
from .config import STATUS, ApiError, ServerConfig, status_for
from .gate import DEFAULT_MAX_BODY, GatePolicy, add_gate

__all__ = ["STATUS", "ApiError", "ServerConfig", "create_app", "status_for"]

log = logging.getLogger("modelyard.server")

STATIC = Path(__file__).parent / "static"

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def create_app(
    yard: Any,
    *,
    token: str | None = None,
    allow_mutations: bool = True,
    allowed_hosts: Sequence[str] | None = None,
    data_roots: Sequence[str | os.PathLike[str]] | None = None,
    token_file: str | None = None,
    public_read: bool = False,
    max_body: int = DEFAULT_MAX_BODY,
) -> FastAPI:
    """The dashboard and REST API over ``yard``; with a ``token``, every request needs it (reads too, unless
    ``public_read``), checked with the body size (``max_body``) before any body is read (``gate.py``)."""
    from .. import __version__
    from .api import comparisons, health, models, studies

    roots = tuple(Path(r).resolve() for r in (data_roots if data_roots is not None else [os.getcwd()]))
    config = ServerConfig(
        token=token, allow_mutations=allow_mutations,
        allowed_hosts=tuple(allowed_hosts) if allowed_hosts is not None else None,
        data_roots=roots, token_file=token_file, public_read=public_read, max_body=max_body,
    )
    app = FastAPI(
        title="modelyard",
        version=__version__,
        description="REST API of the modelyard dashboard: studies, trials, registered versions, lineage, "
        "aliases and comparisons. Errors are JSON objects `{\"error\": message}`. When the server is bound to a "
        "non-loopback address, every request (or, with --public-read, every change) needs "
        "`Authorization: Bearer TOKEN`; request bodies are limited in size.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # Swagger UI loads from a CDN; the dashboard has its own offline API page
        redoc_url=None,
    )
    app.state.yard = yard
    app.state.config = config

    _add_error_handlers(app)
    _add_middleware(app)
    add_gate(app, GatePolicy(  # outermost: refuses on the headers, before any body is read
        token=token, public_read=public_read, max_body=max_body, allowed_hosts=config.allowed_hosts,
        read_only=not allow_mutations, token_file=token_file,
        read_only_hint="restart `modelyard ui` without --read-only to change the registry or save comparisons, "
                       "or use the `modelyard models` and `modelyard compare` commands",
    ))
    for module in (health, studies, models, comparisons):
        app.include_router(module.router, prefix="/api")
    _add_pages(app)
    return app


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    errs = exc.errors()
    if not errs:
        return "the request is not valid; see /api/openapi.json for the expected parameters"
    e = errs[0]
    loc = [str(p) for p in e.get("loc", ())]
    where = {"query": "query parameter", "path": "path parameter", "body": "request body field",
             "header": "header"}.get(loc[0] if loc else "", "field")
    name = ".".join(loc[1:]) or (loc[0] if loc else "request")
    got = e.get("input")
    got_text = "" if got is None or isinstance(got, dict) else f", got {got!r}"[:120]
    more = f" (and {len(errs) - 1} more problem{'s' if len(errs) > 2 else ''})" if len(errs) > 1 else ""
    return f"{where} {name!r}: {e.get('msg', 'invalid').rstrip('.').lower()}{got_text}{more}; fix it and retry"


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(E.ModelyardError)
    async def _modelyard(request: Request, exc: E.ModelyardError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return _error(status, str(exc))

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404 and exc.detail == "Not Found":
            msg = f"no endpoint {request.method} {request.url.path}; the API is described at /api/openapi.json"
        elif exc.status_code == 405:
            msg = f"{request.method} is not allowed on {request.url.path}; see /api/openapi.json"
        else:
            msg = str(exc.detail)
        return _error(exc.status_code, msg, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}: {exc}; this is a modelyard bug, please report it")


def _add_middleware(app: FastAPI) -> None:
    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Content-Security-Policy", _CSP)
        if request.url.path.startswith("/api/"):
            h.setdefault("Cache-Control", "no-store")
        return response


def _add_pages(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def _index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def _favicon() -> Response:
        return Response(status_code=204)
