"""``modelyard serve`` as a user starts it: a subprocess on 127.0.0.1 answering over HTTP, with 1 and 2 workers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from modelyard.cli.main import main

httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "store"
    assert main(["train", "sklearn:iris", "--model", "logistic_regression", "--epochs", "1", "--name", "iris",
                 "--store", str(path), "--json"]) == 0
    assert main(["models", "alias", "iris", "production", "iris/1", "--store", str(path)]) == 0
    return str(path)


def _start(store, *args):
    proc = subprocess.Popen([sys.executable, "-m", "modelyard", "serve", *args, "--port", "0", "--store", store],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
    url = line.split(" at ", 1)[1].split("/predict", 1)[0]
    return proc, url


def _wait_ready(url, deadline=60):
    end = time.monotonic() + deadline
    while True:
        try:
            return httpx.get(url + "/health", timeout=5)
        except httpx.TransportError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_answers_over_http_and_stops_on_ctrl_c(store, workers, capsys):
    proc, url = _start(store, "iris@production", "--workers", workers)
    try:
        health = _wait_ready(url)
        assert health.status_code == 200 and health.json()["version"]["ref"] == "iris/1"
        row = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}
        r = httpx.post(url + "/predict", json={"rows": [row]})
        assert r.status_code == 200 and r.json()["predictions"][0] in ("setosa", "versicolor", "virginica")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()


def test_a_bad_ref_or_port_exits_2_before_binding(store, capsys):
    assert main(["serve", "iris@nope", "--store", store]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["serve", "iris/1", "--port", "70000", "--store", store]) == 2
    assert main(["serve", "iris/1", "--max-body", "lots", "--store", store]) == 2
    assert "cannot read size 'lots'" in capsys.readouterr().err
