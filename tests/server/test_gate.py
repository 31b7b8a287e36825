"""The gate answers from the headers, before any body is read: an unauthenticated or oversized request costs nothing.

The unit tests drive ``Gate`` with raw ASGI messages and an app that records whether it ran and
whether the body was received; the end-to-end test sends a large unauthenticated POST to a real
``modelyard ui`` on a public address and watches the server's peak memory.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import pytest

from modelyard.server.gate import Gate, GatePolicy, gate

TOKEN = "k" * 43


class Recorder:
    """An ASGI app that reads the whole body, then answers 200 with the number of bytes it got."""

    def __init__(self):
        self.called = False
        self.received = 0
        self.saw_disconnect = False

    async def __call__(self, scope, receive, send):
        self.called = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.saw_disconnect = True
                raise ConnectionResetError("client went away")  # what a framework raises here
            self.received += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(self.received).encode()})


def _call(app, method="POST", path="/api/x", headers=(), chunks=(b"",)):
    """Run one request through ``app``: (status, body, number of receive() calls)."""
    sent, calls = [], [0]
    pending = list(chunks)

    async def receive():
        calls[0] += 1
        body = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path,
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers]}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body.decode(), calls[0], {k.decode(): v.decode() for k, v in start["headers"]}


def test_a_request_without_the_token_is_answered_before_its_body_is_read():
    inner = Recorder()
    status, body, receives, headers = _call(gate(inner, GatePolicy(token=TOKEN)),
                                            headers=[("content-length", str(256 << 20))])
    assert status == 401 and "every request needs its token" in body and receives == 0 and not inner.called
    assert headers["www-authenticate"] == "Bearer" and headers["connection"] == "close"


def test_a_wrong_token_is_refused_and_the_right_one_passes():
    inner = Recorder()
    app = gate(inner, GatePolicy(token=TOKEN, token_file="/s/ui-token"))
    status, body, receives, _ = _call(app, headers=[("authorization", "Bearer nope")])
    assert status == 401 and "the token is wrong" in body and "/s/ui-token" in body and receives == 0
    status, body, _, _ = _call(app, headers=[("authorization", f"Bearer {TOKEN}"), ("content-length", "3")],
                               chunks=(b"abc",))
    assert status == 200 and body == "3"
    status, _, _, _ = _call(app, headers=[("x-modelyard-token", TOKEN)])
    assert status == 200


@pytest.mark.parametrize("token", [None, TOKEN])
def test_a_declared_body_over_the_limit_is_refused_unread_even_with_the_token(token):
    inner = Recorder()
    app = gate(inner, GatePolicy(token=token, max_body=1000))
    status, body, receives, _ = _call(app, headers=[("authorization", f"Bearer {TOKEN}"),
                                                    ("content-length", "1001")])
    assert status == 413 and "1,001 bytes" in body and "limit of 1,000" in body and receives == 0
    assert not inner.called
    assert _call(app, headers=[("content-length", "1000"), ("authorization", f"Bearer {TOKEN}")],
                 chunks=(b"x" * 1000,))[0] == 200


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit():
    inner = Recorder()
    app = gate(inner, GatePolicy(max_body=1000))
    status, body, receives, _ = _call(app, chunks=[b"x" * 400] * 100)  # 40,000 bytes, no Content-Length
    assert status == 413 and "limit of 1,000 bytes" in body
    assert receives == 3 and inner.saw_disconnect  # it stopped reading at the third chunk
    assert _call(gate(Recorder(), GatePolicy(max_body=1000)), chunks=[b"x" * 400] * 2)[:2] == (200, "800")


def test_public_read_opens_reads_but_not_changes():
    app = gate(Recorder(), GatePolicy(token=TOKEN, public_read=True))
    assert _call(app, method="GET")[0] == 200
    assert _call(app, method="HEAD")[0] == 200
    status, body, _, _ = _call(app, method="DELETE")
    assert status == 401 and "changes need its token" in body


@pytest.mark.parametrize("path, needs", [("/", False), ("/static/app.js", False), ("/api/health", False),
                                         ("/favicon.ico", False), ("/api/models", True), ("/api/healthz", True),
                                         ("/staticx", True)])
def test_pages_and_liveness_need_no_token_and_data_does(path, needs):
    status = _call(gate(Recorder(), GatePolicy(token=TOKEN)), method="GET", path=path)[0]
    assert status == (401 if needs else 200)


def test_host_allow_list_read_only_and_bad_lengths():
    app = gate(Recorder(), GatePolicy(allowed_hosts=("127.0.0.1", "localhost"), read_only=True,
                                      read_only_hint="restart without --read-only"))
    status, body, _, _ = _call(app, method="GET", headers=[("host", "evil.example:80")])
    assert status == 421 and "DNS-rebinding" in body
    assert _call(app, method="GET", headers=[("host", "localhost:8765")])[0] == 200
    status, body, _, _ = _call(app, headers=[("host", "127.0.0.1:8765")])
    assert status == 403 and "this server is read-only; restart without --read-only" in body
    status, body, _, _ = _call(app, method="GET", headers=[("host", "127.0.0.1"), ("content-length", "lots")])
    assert status == 400 and "Content-Length 'lots'" in body


def test_other_scopes_pass_through():
    seen = []

    async def inner(scope, receive, send):
        seen.append(scope["type"])

    asyncio.run(Gate(inner, token=TOKEN)({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]


# --- a real server ---------------------------------------------------------------------------------------------------


def _peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the server's peak memory from /proc")
def test_a_large_unauthenticated_post_to_a_public_server_costs_no_memory(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "modelyard", "ui", "--host", "0.0.0.0", "--port", "0",
                             "--store", str(tmp_path / "store")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=tmp_path, env=env)
    try:
        line = proc.stdout.readline()
        port = int(line.split("dashboard at http://0.0.0.0:", 1)[1].split("/", 1)[0])
        before = _peak_rss_kib(proc.pid)
        size = 256 << 20
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(f"POST /api/comparisons HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json"
                      f"\r\nContent-Length: {size}\r\n\r\n".encode())
            answer = ""
            while not answer.endswith("}"):  # answered on the headers alone: no body byte was sent yet
                answer += s.recv(4096).decode()
            chunk = b" " * (1 << 20)
            sent = 0
            try:  # the client insists on sending its 256 MiB anyway
                while sent < size:
                    s.sendall(chunk)
                    sent += len(chunk)
            except OSError:
                pass  # the server closed the connection: it does not take the body
        time.sleep(0.5)
        grown_mib = (_peak_rss_kib(proc.pid) - before) / 1024
        assert answer.startswith("HTTP/1.1 401") and "every request needs its token" in answer
        assert grown_mib < 16, f"the server's peak memory grew by {grown_mib:.0f} MiB"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
