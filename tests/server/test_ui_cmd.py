"""``modelyard ui``: argument errors are one sentence with exit code 2; the server starts and prints its address."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest


def test_help_is_fast_and_light():
    code = ("import sys; from modelyard.cli.main import build_parser; build_parser(); "
            "print(any(m in sys.modules for m in ('torch', 'sklearn', 'fastapi', 'uvicorn', 'sqlalchemy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("argv, message", [
    (["ui", "--port", "70000"], "--port must be between 0 and 65535"),
    (["ui", "--data-root", "/nonexistent/dir"], "is not a folder"),
])
def test_bad_arguments(in_tmp, capsys, argv, message):
    from modelyard.cli.main import main

    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_port_in_use(in_tmp, capsys):
    from modelyard.cli.main import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert main(["ui", "--port", str(port)]) == 2
    assert "pass another --port" in capsys.readouterr().err


def _serve(tmp_path, *extra):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "modelyard", "ui", "--port", "0", "--store",
                             str(tmp_path / "store"), *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=tmp_path, env=env)
    lines = []
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "dashboard at" in line or not line:
            break
    while "0.0.0.0" in " ".join(extra) and "the token in" not in "".join(lines) and time.time() < deadline:
        line = proc.stdout.readline()  # the REST API line, then the token line
        lines.append(line)
        if not line:
            break
    return proc, lines


def test_serves_on_loopback_and_prints_address(tmp_path):
    proc, lines = _serve(tmp_path)
    try:
        url = lines[0].split("dashboard at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "api/health", timeout=10).json()["status"] == "ok"
        assert "modelyard" in httpx.get(url, timeout=10).text
        assert not (tmp_path / "store" / "ui-token").exists()  # loopback: no token needed
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_non_loopback_creates_token(tmp_path):
    proc, lines = _serve(tmp_path, "--host", "0.0.0.0")
    try:
        text = "".join(lines)
        token_file = tmp_path / "store" / "ui-token"
        assert "every request needs the token" in text and token_file.exists()
        assert token_file.read_text().strip() not in text  # stdout is not a terminal here: the token is not shown
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        port = lines[0].split("dashboard at ", 1)[1].split()[0].rsplit(":", 1)[1].strip("/")
        r = httpx.delete(f"http://127.0.0.1:{port}/api/versions/x/1", timeout=10)
        assert r.status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/api/models", timeout=10).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)
