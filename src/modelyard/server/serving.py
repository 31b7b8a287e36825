"""The serving endpoint of ``modelyard serve``: a thin ASGI app (no framework) over a ``ModelHolder``.

Routes: ``POST /predict``, ``GET /metadata``, ``GET /health``, ``GET /openapi.json``. Every
answer names the version that gave it (``x-modelyard-version`` header; ``version`` in JSON).
A request reads ``holder.current`` once, so it is answered by one fully loaded version even
while the holder switches to a new one.

Why no FastAPI here: on this endpoint the framework's routing, dependency injection and
validation cost more than scoring a row (see ``benchmarks/serve.py --frameworks`` and
``docs/benchmarks.md``); the rows are checked against the version's schema by
``data/encode.py``, which gives the same one-sentence errors as the CLI.

Checks before the body is read, from the headers alone: Host allow-list on loopback binds
(DNS rebinding) and the token on other binds, by the dashboard's ``GatePolicy`` (``gate.py``),
then ``content-length`` against ``max_body`` (413); a body sent without a length is
counted as it arrives and cut off at the limit. Status codes: 400 malformed body, 401 token,
404/405 route, 413 too large, 415 body type, 422 rows that do not match the schema; never 500
for anything a client sends.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import numpy as np

from .. import errors as E
from ..serve.inputs import ARROW_TYPES, MalformedBody, UnsupportedMediaType, decode_body
from ..serve.openapi import openapi_document
from ..serve.scoring import Scores, score
from .gate import GatePolicy, request_headers

if TYPE_CHECKING:
    from ..serve.holder import Loaded, ModelHolder

__all__ = ["DEFAULT_MAX_BODY", "ServingApp"]

log = logging.getLogger("modelyard.serve")

DEFAULT_MAX_BODY = 64 * 1024 * 1024
INLINE_BYTES = 64 * 1024  # larger bodies are decoded and scored on a worker thread, keeping the loop responsive
_JSON = [(b"content-type", b"application/json")]
_COMMON = [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]


class HttpError(Exception):
    """An error answer: status and one sentence."""

    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or []


def _too_large(n: int, limit: int) -> HttpError:
    return HttpError(413, f"the body has {n} bytes, more than this server's limit of {limit}; send fewer rows per "
                          "request (or restart `modelyard serve` with a larger --max-body)")


class ServingApp:
    """ASGI app serving the version ``holder`` holds."""

    def __init__(self, holder: ModelHolder, *, token: str | None = None, token_file: str | None = None,
                 allowed_hosts: tuple[str, ...] | None = None, max_body: int = DEFAULT_MAX_BODY,
                 unknown: str = "error"):
        from ..data.encode import check_unknown_policy

        self.holder = holder
        self.max_body = int(max_body)
        # Host and token as the dashboard checks them; the body size below, in this command's words
        self.policy = GatePolicy(token=token, token_file=token_file, open_paths=("/health",),
                                 allowed_hosts=tuple(allowed_hosts) if allowed_hosts is not None else None,
                                 address_hint="use http://127.0.0.1:PORT", check_length=False)
        self.unknown = check_unknown_policy(unknown)
        self._openapi: tuple[str, bytes] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        loaded = self.holder.current  # read once: this request is answered by this version, whatever happens
        vid = loaded.id.encode()
        try:
            headers = dict(scope["headers"])
            path, method = scope["path"], scope["method"]
            refusal = self.policy.refusal(method, path, request_headers(scope))
            if refusal is not None:
                status, message = refusal
                raise HttpError(status, message, [(b"www-authenticate", b"Bearer")] if status == 401 else [])
            if path == "/predict":
                self._check_length(headers.get(b"content-length"))
                if method != "POST":
                    raise HttpError(405, f"{method} is not allowed on /predict; POST rows to it", [(b"allow", b"POST")])
                body = await self._body(receive)
                status, out, extra = await self._predict(loaded, body, headers, scope.get("query_string", b""))
            elif path in ("/health", "/metadata", "/openapi.json"):
                if method not in ("GET", "HEAD"):
                    raise HttpError(405, f"{method} is not allowed on {path}; use GET", [(b"allow", b"GET")])
                status, out, extra = 200, self._get(path, loaded), _JSON
            else:
                raise HttpError(404, f"no endpoint {method} {path}; the endpoints are POST /predict, GET /metadata, "
                                     "GET /health and GET /openapi.json")
        except HttpError as e:
            status, out, extra = e.status, _error_json(e.message), [*_JSON, *e.headers]
        except Exception as e:  # a bug of ours; say so without a traceback to the client
            log.exception("internal error on %s %s", scope.get("method"), scope.get("path"))
            status, out = 500, _error_json(f"internal error: {type(e).__name__}: {e}; this is a modelyard bug, please report it")
            extra = _JSON
        await _respond(send, status, out, [*extra, *_COMMON, (b"x-modelyard-version", vid)],
                       head=scope.get("method") == "HEAD")

    # --- routes -------------------------------------------------------------------------
    def _get(self, path: str, loaded: Loaded) -> bytes:
        import orjson

        if path == "/health":
            return orjson.dumps({"status": "ok", "version": {"id": loaded.id, "ref": loaded.ref},
                                 "following": self.holder.ref if self.holder.follows else None})
        if path == "/metadata":
            v = loaded.version
            return orjson.dumps({
                "version": {"id": v.id, "ref": v.ref}, "id": v.id, "ref": v.ref, "served_ref": self.holder.ref,
                "name": v.name, "number": v.number, "family": v.family, "task": v.task,
                "schema": v.schema.to_dict(), "metrics": v.metrics, "params": v.params,
                "created_at": v.to_dict()["created_at"], "unknown_categories": self.unknown,
                "loaded_at": loaded.loaded_at,
            }, default=str, option=orjson.OPT_SERIALIZE_NUMPY)
        if self._openapi is None or self._openapi[0] != loaded.id:
            from .. import __version__

            doc = openapi_document(loaded.predictor.schema, title=f"modelyard serve {self.holder.ref}",
                                   version=__version__, nullable=loaded.predictor.takes_missing)
            self._openapi = (loaded.id, orjson.dumps(doc))
        return self._openapi[1]

    async def _predict(self, loaded: Loaded, body: bytes, headers: dict[bytes, bytes],
                       query: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        proba = _query_flag(query, "proba")
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        arrow_out = ARROW_TYPES[0] in headers.get(b"accept", b"").decode("latin-1")

        def work() -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
            try:
                columns, _, options = decode_body(body, content_type, loaded.predictor.schema)
                want = _options_proba(options, proba)
            except UnsupportedMediaType as e:
                raise HttpError(415, str(e)) from None
            except MalformedBody as e:
                raise HttpError(400, str(e)) from None
            except E.ModelyardError as e:  # nested values and the like: the rows are the problem
                raise HttpError(422, str(e)) from None
            try:
                scores = score(loaded.predictor, columns, proba=want, unknown=self.unknown)
            except E.ParamError as e:
                raise HttpError(400, str(e)) from None
            except E.ModelError as e:
                raise HttpError(400, str(e)) from None
            except E.ModelyardError as e:
                raise HttpError(422, str(e)) from None
            if arrow_out:
                return 200, _arrow(scores), [(b"content-type", ARROW_TYPES[0].encode())]
            return 200, _scores_json(loaded, scores), _JSON

        if len(body) <= INLINE_BYTES:
            return work()
        return await asyncio.get_running_loop().run_in_executor(None, work)

    def _check_length(self, length: bytes | None) -> None:
        """Refuse a declared body over ``max_body`` (413) or a length that is not a number (400)."""
        if length is None:
            return
        try:
            n = int(length)
        except ValueError:
            raise HttpError(400, f"content-length {length.decode('latin-1')!r} is not a number") from None
        if n > self.max_body:
            raise _too_large(n, self.max_body)

    async def _body(self, receive: Any) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HttpError(400, "the client went away before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _too_large(size, self.max_body)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.holder.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.holder.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _query_flag(query: bytes, name: str) -> bool | None:
    for k, v in parse_qsl(query.decode("latin-1")):
        if k == name:
            low = v.lower()
            if low in ("true", "1", "yes", ""):
                return True
            if low in ("false", "0", "no"):
                return False
            raise HttpError(400, f"query parameter {name}={v!r} must be true or false")
    return None


def _options_proba(options: dict[str, Any], query: bool | None) -> bool:
    unknown = sorted(set(options) - {"proba"})
    if unknown:
        raise MalformedBody(f"unknown key(s) {', '.join(map(repr, unknown))} in the JSON body; it takes \"rows\" or "
                            "\"columns\", and optionally \"proba\": true")
    proba = options.get("proba", False)
    if not isinstance(proba, bool):
        raise MalformedBody(f"\"proba\" must be true or false, got {proba!r}")
    return proba if query is None else query


def _scores_json(loaded: Loaded, scores: Scores) -> bytes:
    import orjson

    out: dict[str, Any] = {"version": {"id": loaded.id, "ref": loaded.ref},
                           "predictions": _plain(scores.predictions)}
    if scores.probabilities is not None:
        out["classes"] = list(scores.classes or ())
        out["probabilities"] = scores.probabilities
    return orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)


def _plain(values: np.ndarray) -> Any:
    if values.dtype.kind in "fiub":
        return values if values.dtype.kind != "f" or np.isfinite(values).all() else values.tolist()
    return values.tolist()


def _arrow(scores: Scores) -> bytes:
    import pyarrow as pa

    from ..serve.scoring import proba_columns

    cols = {"prediction": pa.array(scores.predictions.tolist())}
    if scores.probabilities is not None:
        for name, j in zip(proba_columns(scores.classes or ()), range(scores.probabilities.shape[1]), strict=True):
            cols[name] = pa.array(scores.probabilities[:, j])
    table = pa.table(cols)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _error_json(message: str) -> bytes:
    import orjson

    return orjson.dumps({"error": message})


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]], *, head: bool = False) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": b"" if head else body})
