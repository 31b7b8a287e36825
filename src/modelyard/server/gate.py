"""The gate every request passes before its body is read: Host allow-list, access token, body size, read-only.

A pure ASGI middleware (no framework needed), so a request it refuses costs its headers and
nothing more: the app is never called, ``receive`` is never awaited (the body is neither read
nor buffered; a client that sent ``Expect: 100-continue`` is answered before it sends it), and
the connection is closed after the answer. A body without a ``Content-Length`` (chunked) is
counted as the app reads it and cut off with 413 past the limit. Refusals are JSON
``{"error": message}`` like every other API error.

Reuse it for any ASGI app (the dashboard's ``create_app``, a serving app)::

    from modelyard.server.gate import GatePolicy, add_gate, gate

    add_gate(fastapi_app, GatePolicy(token=token, max_body=64 << 20))  # Starlette/FastAPI
    app = gate(any_asgi_app, GatePolicy(...))                           # anything else

What a policy asks of a request, in order: the Host header is allowed (``allowed_hosts``, set
on loopback binds against DNS rebinding); when ``token`` is set, the request carries it
(``Authorization: Bearer TOKEN`` or ``X-Modelyard-Token``) unless its path is one of
``open_paths`` (pages and liveness, which hold no data) or it is a read (GET, HEAD) and
``public_read`` is on; a mutating method is refused on a read-only server; and the declared
body is at most ``max_body`` bytes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from .security import host_allowed, token_matches

__all__ = ["DEFAULT_MAX_BODY", "Gate", "GatePolicy", "add_gate", "gate", "request_headers"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY = 1 << 20  # the dashboard's bodies are a few hundred bytes of JSON
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class GatePolicy:
    """What the gate asks of every request (see the module docstring)."""

    token: str | None = None  # None: no token needed (a loopback bind)
    public_read: bool = False  # with a token: reads (GET, HEAD) pass without it
    max_body: int = DEFAULT_MAX_BODY  # bytes a request body may have
    allowed_hosts: tuple[str, ...] | None = None  # None: any Host header
    read_only: bool = False  # refuse every mutating method (403)
    open_paths: tuple[str, ...] = ("/", "/favicon.ico", "/static/", "/api/health")  # a trailing "/" is a prefix
    token_file: str | None = None  # where the token lives, named in 401 answers
    read_only_hint: str = "restart the server without --read-only to make changes"
    address_hint: str = "open the dashboard at http://127.0.0.1:PORT"  # what a refused Host should use instead
    check_length: bool = True  # False: the app checks the declared length itself (in its own words)

    def is_open(self, path: str) -> bool:
        """Whether ``path`` never needs the token."""
        return any(path == p or (p.endswith("/") and p != "/" and path.startswith(p)) for p in self.open_paths)

    def refusal(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str] | None:
        """``(status, message)`` when a request's method, path and (lower-cased) headers refuse it, else None."""
        host = headers.get("host")
        if self.allowed_hosts is not None and not host_allowed(host, self.allowed_hosts):
            return 421, f"Host {host!r} is not served here; {self.address_hint} (this check stops DNS-rebinding attacks)"
        mutating = method not in _READS
        if self.token is not None and not self.is_open(path) and (mutating or not self.public_read):
            given = _presented_token(headers)
            where = f" (it is in {self.token_file})" if self.token_file else ""
            if not given:
                what = "changes need" if self.public_read else "every request needs"
                return 401, (f"this server is reachable from other machines, so {what} its token; send "
                             f"'Authorization: Bearer TOKEN'{where}")
            if not token_matches(given, self.token):
                return 401, f"the token is wrong; copy it from the token file{where}"
        if self.read_only and mutating and path.startswith("/api/"):
            return 403, f"this server is read-only; {self.read_only_hint}"
        length = headers.get("content-length")
        if self.check_length and length is not None:
            try:
                declared = int(length)
            except ValueError:
                return 400, f"Content-Length {length!r} is not a number of bytes; send a valid request"
            if declared > self.max_body:
                return 413, (f"the request body is {declared:,} bytes, more than this server's limit of "
                             f"{self.max_body:,}; send less per request")
        return None


class Gate:
    """ASGI middleware applying a ``GatePolicy`` to every HTTP request before the app sees its body."""

    def __init__(self, app: ASGIApp, policy: GatePolicy | None = None, **fields: Any):
        self.app = app
        self.policy = policy if policy is not None else GatePolicy(**fields)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.check(scope)
        if refusal is not None:
            status, message = refusal
            await _refuse(send, status, message)
            return
        body = _BodyLimit(receive, send, self.policy.max_body)
        try:
            await self.app(scope, body.receive, body.send)
        except Exception:
            if not body.refused:
                raise
            # the app saw the client "disconnect" when the body passed the limit; it has been answered (413)

    def check(self, scope: Scope) -> tuple[int, str] | None:
        """``(status, message)`` when the request's headers alone refuse it, else None."""
        return self.policy.refusal(scope.get("method", "GET").upper(), scope.get("path", "/"), request_headers(scope))


def add_gate(app: Any, policy: GatePolicy) -> None:
    """Put the gate in front of a Starlette or FastAPI ``app`` (outermost of the middleware added so far)."""
    app.add_middleware(Gate, policy=policy)


def gate(app: ASGIApp, policy: GatePolicy) -> ASGIApp:
    """Any ASGI ``app`` behind the gate."""
    return Gate(app, policy)


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-cased name (the first of repeated ones), as text."""
    out: dict[str, str] = {}
    for k, v in scope.get("headers") or ():
        out.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
    return out


def _presented_token(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization") or ""
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return (headers.get("x-modelyard-token") or "").strip() or None


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the unread body is not worth receiving: the client may stop sending
        (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _BodyLimit:
    """The app's ``receive`` and ``send`` for a body without a trustworthy length: 413 once it passes ``limit``.

    Past the limit the client is answered, the app is told the client disconnected (so it stops
    reading), and whatever the app sends afterwards is dropped.
    """

    def __init__(self, receive: Receive, send: Send, limit: int):
        self._receive, self._send, self.limit = receive, send, limit
        self.seen = 0
        self.started = False  # the app began its response
        self.refused = False

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message.get("type") == "http.request":
            self.seen += len(message.get("body") or b"")
            if self.seen > self.limit:
                self.refused = True
                if not self.started:
                    await _refuse(self._send, 413, f"the request body passed this server's limit of "
                                                   f"{self.limit:,} bytes; send less per request")
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        if message.get("type") == "http.response.start":
            self.started = True
        await self._send(message)
