"""Many processes registering under one name, and processes killed mid-registration.

Workers are separate Python processes (``python -m modelyard.testing.results``), each with its
own connections, exactly as separate ``modelyard train`` runs would be.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from modelyard.registry.lineage import is_acyclic
from modelyard.testing.results import load_result, save_result
from modelyard.yard import Yard

WORKERS = 8
EACH = 200


def _spawn(store, name, count, result_file, worker, artifacts=None):
    cmd = [sys.executable, "-m", "modelyard.testing.results", str(store), name, str(count), str(result_file), str(worker)]
    if artifacts is not None:
        cmd += ["--artifacts", str(artifacts)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MODELYARD_USER": f"worker{worker}"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _run_workers(store, result_file, artifacts=None):
    procs = [_spawn(store, "shared", EACH, result_file, w, artifacts) for w in range(WORKERS)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "locked" not in err.lower() and "locked" not in out.lower()
        assert len(out.split()) == EACH
    return [ref for out, _ in outs for ref in out.split()]


def _check_complete(yard, refs, total):
    reg = yard.registry
    versions = reg.list("shared")
    numbers = sorted(v.number for v in versions)
    assert numbers == list(range(1, total + 1))  # no gap, no duplicate
    assert sorted(refs, key=lambda r: int(r.split("/")[1])) == [f"shared/{n}" for n in numbers]
    assert len({(v.tags["worker"], v.tags["i"]) for v in versions}) == total
    assert {v.creator for v in versions} == {f"worker{w}" for w in range(WORKERS)}
    # every version's weights are there and intact; each registration had its own weights
    digests = {reg.get(v.id).artifact for v in versions}
    assert len(digests) == total
    for d in digests:
        reg.artifacts.get(d)


@pytest.fixture
def result_file(tmp_path, trained_result):
    path = tmp_path / "result.json"
    save_result(trained_result, path)
    return path


@pytest.mark.slow
def test_eight_processes_on_sqlite_number_without_gaps(tmp_path, result_file):
    store = tmp_path / "store"
    Yard(store).db  # noqa: B018  (create the store first, as a training run would have)
    refs = _run_workers(store, result_file)
    with Yard(store) as yard:
        _check_complete(yard, refs, WORKERS * EACH)


@pytest.mark.slow
@pytest.mark.postgres
def test_eight_processes_on_postgres_number_without_gaps(tmp_path, result_file, postgres_url):
    artifacts = tmp_path / "artifacts"
    refs = _run_workers(postgres_url, result_file, artifacts)  # workers race to create the schema too
    with Yard(postgres_url, artifacts=artifacts) as yard:
        _check_complete(yard, refs, WORKERS * EACH)


def _collect(stream, lines):
    lines.extend(iter(stream.readline, ""))


def _killed_mid_registration(store, result_file, rounds, artifacts=None):
    rng = np.random.default_rng(7)
    printed = []
    for r in range(rounds):
        p = _spawn(store, "crash", -1, result_file, r, artifacts)
        lines: list[str] = []
        reader = threading.Thread(target=_collect, args=(p.stdout, lines), daemon=True)
        reader.start()
        want = 5 + int(rng.integers(0, 20))
        deadline = time.monotonic() + 60
        while len(lines) < want and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.002)
        time.sleep(float(rng.uniform(0, 0.01)))  # land anywhere inside a registration
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        reader.join(timeout=30)
        err = p.stderr.read()
        assert p.returncode == -signal.SIGKILL, err
        printed += [line.strip() for line in lines if line.strip()]
    return printed


def _check_after_kills(yard, printed, result_file):
    reg = yard.registry
    versions = reg.list("crash")
    numbers = sorted(v.number for v in versions)
    # a killed transaction rolls back its number too: still 1..n without gaps
    assert numbers == list(range(1, len(numbers) + 1))
    assert set(printed) <= {v.ref for v in versions}  # every acknowledged registration survived
    assert len(versions) <= len(printed) + 3 * 1  # at most one unacknowledged commit per killed process
    edges = reg.versions.edges("crash")
    assert set(edges) == {v.id for v in versions} and is_acyclic(edges)
    for v in versions:  # no half-visible version: full record, readable weights
        full = reg.get(v.id)
        reg.artifacts.get(full.artifact)
    reg.load_model(versions[0].ref)
    reg.register(load_result(result_file), "crash")  # and the store still takes writes


@pytest.mark.slow
def test_sigkill_mid_registration_leaves_a_consistent_store(tmp_path, result_file):
    store = tmp_path / "store"
    printed = _killed_mid_registration(store, result_file, rounds=3)
    assert len(printed) >= 15
    with Yard(store) as yard:
        _check_after_kills(yard, printed, result_file)


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_mid_registration_on_postgres(tmp_path, result_file, postgres_url):
    artifacts = tmp_path / "artifacts"
    printed = _killed_mid_registration(postgres_url, result_file, rounds=2, artifacts=artifacts)
    with Yard(postgres_url, artifacts=artifacts) as yard:
        _check_after_kills(yard, printed, result_file)
