"""Reliability: what a user sees when something goes wrong, on this tree and on an older one, side by side.

Run (the tables in docs/benchmarks.md, section "Reliability", come from this command)::

    mkdir -p /tmp/modelyard-before && git archive 35de170 src | tar -x -C /tmp/modelyard-before
    python benchmarks/reliability.py all --baseline-src /tmp/modelyard-before/src

Every measurement runs in fresh processes with ``PYTHONPATH`` set to the source tree under test
("before": ``--baseline-src``, the code before issue 19; "after": this tree), so both columns
come from one run on one machine. Sections (each can run alone):

gc-race
    ``modelyard.testing.gc_race``: two processes register, load and delete identical weights
    (one content-addressed blob) ``--rounds`` times each while a third runs ``gc(older_than=0)``
    in a loop; for a packed blob (a logistic regression) and a loose one (an MLP past 1 MiB).
    Lost = acknowledged versions that could not be loaded while they existed.
corruption
    one store with two versions, damaged one way per case (the database file, a weights blob,
    one byte of a version's stored record, a read-only mount); the command a user would run,
    its exit code and the last line it printed.
hung-rank
    ``--nodes 2`` training where rank 1 suspends itself (SIGSTOP, as ``kill -STOP`` or a
    debugger would); seconds from the stop to the error, for several ``--dist-timeout`` values.
server-memory
    ``modelyard ui --host 0.0.0.0`` (a public bind: a token is needed) and a 256 MiB POST: the
    server's peak memory growth (VmHWM, Linux) and the answer, unauthenticated, with the token
    but too large, and with the token streamed without a length (chunked).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
THIS_SRC = BENCH.parent / "src"
RACE_SCRIPT = THIS_SRC / "modelyard" / "testing" / "gc_race.py"


def _env(src: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(BENCH)]), "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1", **extra}
    for k in ("MODELYARD_STORE", "MODELYARD_ARTIFACTS", "MODELYARD_DEBUG"):
        env.pop(k, None)
    return env


def _sources(args: argparse.Namespace) -> list[tuple[str, Path]]:
    out = [("before", Path(args.baseline_src).resolve())] if args.baseline_src else []
    return out + [("after", THIS_SRC)]


def _table(title: str, head: list[str], rows: list[list[Any]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(head) + " |")
    print("| " + " | ".join("---" for _ in head) + " |")
    for r in rows:
        print("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |")
    sys.stdout.flush()


# --- gc race ---------------------------------------------------------------------------------------------------------


def gc_race(args: argparse.Namespace, work: Path) -> None:
    import modelyard as my
    from modelyard.testing.results import sample_result, save_result

    results = {"packed": sample_result()}
    results["loose"] = my.train(my.load_dataset("sklearn:iris"), model="mlp", params={"hidden_sizes": (512, 512)},
                                epochs=1)
    rows = []
    for kind, result in results.items():
        path = work / f"{kind}.json"
        save_result(result, path)
        for label, src in _sources(args):
            store = work / f"race-{kind}-{label}"
            r = subprocess.run([sys.executable, str(RACE_SCRIPT), "race", str(store), str(path), "--workers", "2",
                                "--rounds", str(args.rounds)], env=_env(src), capture_output=True, text=True,
                               timeout=3600, check=False)
            if r.returncode != 0:
                rows.append([kind, label, "-", "-", "-", "-", "-", "-", f"failed: {r.stderr.strip()[-200:]}"])
                continue
            d = json.loads(r.stdout)
            example = (d["errors"][0][:110] + "...") if d["errors"] else ""
            rows.append([kind, label, d["rounds"], d["acknowledged"], d["lost"], d["collections"], d["removed"],
                         f"{d['seconds']:.1f}", example])
    _table("gc race: 2 processes re-register identical weights while a third runs gc(older_than=0) in a loop",
           ["blob", "modelyard", "rounds", "acknowledged", "lost", "gc runs", "blobs removed", "seconds",
            "first loss"], rows)


# --- corruption matrix -----------------------------------------------------------------------------------------------

SETUP = r"""
import sys
import numpy as np, pandas as pd
import modelyard as my
from modelyard.yard import Yard
store, folder = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
n = 600
plan = rng.choice(["basic", "plus", "pro"], n)
x = rng.normal(size=n)
y = np.where(x + 1.5 * (plan == "plus") - 0.5 > 0, "yes", "no")
frame = pd.DataFrame({"plan": plan, "x": x, "churned": y})
frame.iloc[:400].to_csv(folder + "/train.csv", index=False)
frame.iloc[400:].to_csv(folder + "/holdout.csv", index=False)
ds = my.load_dataset(folder + "/train.csv", target="churned")
with Yard(store) as yard:
    for seed in (0, 1):
        yard.registry.register(my.train(ds, model="logistic_regression", epochs=30, seed=seed), "churn")
"""


def _damage_db(kind: str, store: Path) -> str:
    db = store / "modelyard.db"
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    size = db.stat().st_size
    if kind == "garbage":
        db.write_bytes(os.urandom(size))
    elif kind == "truncated":
        os.truncate(db, size // 2)
    elif kind == "zeroed":
        db.write_bytes(bytes(size))
    elif kind == "text file":
        notes = store / "notes.txt"
        notes.write_text("these are my notes, not a database\n")
        return f"sqlite:///{notes}"
    return str(store)


def _version_row(store: Path, ref_number: int) -> tuple[str, str]:
    con = sqlite3.connect(store / "modelyard.db")
    try:
        vid, artifact = con.execute("SELECT id, artifact FROM model_versions WHERE name='churn' AND number=?",
                                    (ref_number,)).fetchone()
        return vid, artifact
    finally:
        con.close()


def _edit_record(store: Path, section: str, old: str, new: str) -> None:
    vid, _ = _version_row(store, 1)
    con = sqlite3.connect(store / "modelyard.db")
    try:
        payload = con.execute("SELECT payload FROM model_version_data WHERE id=?", (vid,)).fetchone()[0]
        at = payload.index(f'"{section}":')
        assert old in payload[at:], (section, old)
        payload = payload[:at] + payload[at:].replace(old, new, 1)
        con.execute("UPDATE model_version_data SET payload=? WHERE id=?", (payload, vid))
        con.commit()
    finally:
        con.close()


def _damage_weights(kind: str, store: Path) -> None:
    from modelyard.store.artifacts import ArtifactStore
    from modelyard.testing.results import overwrite_artifact

    _, digest = _version_row(store, 1)
    artifacts = ArtifactStore(store / "artifacts")
    if kind == "flipped":
        data = bytearray(artifacts.get(digest))
        data[len(data) // 2] ^= 0x01
        overwrite_artifact(artifacts, digest, bytes(data))
    else:
        artifacts.delete(digest)
    artifacts.close()


def _run(src: Path, argv: list[str], cwd: Path) -> tuple[int, str, str]:
    r = subprocess.run([sys.executable, "-m", "modelyard", *argv], env=_env(src), cwd=cwd, capture_output=True,
                       text=True, timeout=600, check=False)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    return r.returncode, r.stdout, lines[-1] if lines else ""


PREDICT = r"""
import json, sys
import pandas as pd
from modelyard.errors import ModelyardError
from modelyard.yard import Yard
rows = pd.read_csv(sys.argv[2]).drop(columns=["churned"])
try:
    with Yard(sys.argv[1]) as yard:
        print(json.dumps([str(v) for v in yard.registry.load_model("churn/1").predict(rows)]))
except ModelyardError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
"""


def _predict(src: Path, store: str, holdout: Path) -> tuple[int, list[str] | None, str]:
    """``load_model("churn/1").predict(holdout rows)``: (exit code, predictions, last line of stderr)."""
    r = subprocess.run([sys.executable, "-c", PREDICT, store, str(holdout)], env=_env(src), capture_output=True,
                       text=True, timeout=600, check=False)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    return r.returncode, json.loads(r.stdout) if r.returncode == 0 else None, lines[-1] if lines else ""


def _accuracy(stdout: str) -> float | None:
    try:
        return float(json.loads(stdout)["entries"][0]["metrics"]["accuracy"])
    except (ValueError, KeyError, IndexError):
        return None


def _mount_read_only(path: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "--bind", "-o", "ro", str(path), str(path)], capture_output=True,
                          check=False).returncode == 0


def corruption(args: argparse.Namespace, work: Path) -> None:
    compare = ["compare", "churn/1", "churn/2", "--data", "holdout.csv", "--target", "churned", "--no-latency",
               "--resamples", "1000", "--json"]
    predict = ["(python) registry.load_model('churn/1').predict(holdout rows)"]
    cases: list[tuple[str, tuple[str, ...], list[str]]] = [
        ("database file: random bytes", ("db", "garbage"), ["models", "list"]),
        ("database file: cut in half", ("db", "truncated"), ["models", "list"]),
        ("database file: zeroed", ("db", "zeroed"), ["models", "list"]),
        ("a text file given as sqlite:///notes.txt", ("db", "text file"), ["models", "list"]),
        ("weights of churn/1: one bit flipped", ("weights", "flipped"), compare),
        ("weights of churn/1: deleted", ("weights", "missing"), compare),
        ("record of churn/1: category 'plus' renamed 'plux' (1 byte)",
         ("record", "data_schema", '"plus"', '"plux"'), predict),
        ("record of churn/1: class 'yes' renamed 'yep' (1 byte)", ("record", "data_schema", '"yes"', '"yep"'), predict),
        ("record of churn/1: learning_rate 0.01 -> 0.02 (1 byte)",
         ("record", "params", '"learning_rate":0.01', '"learning_rate":0.02'), predict),
        ("read-only mount: list", ("ro",), ["models", "list"]),
        ("read-only mount: compare", ("ro",), compare),
        ("read-only mount: move an alias", ("ro",), ["models", "alias", "churn", "production", "churn/2"]),
    ]
    rows = []
    for label, src in _sources(args):
        base = work / f"corrupt-{label}"
        base.mkdir()
        r = subprocess.run([sys.executable, "-c", SETUP, str(base / "store"), str(base)], env=_env(src),
                           capture_output=True, text=True, timeout=600, check=False)
        if r.returncode != 0:
            raise SystemExit(f"setting up the {label} store failed: {r.stderr[-2000:]}")
        pristine = _accuracy(_run(src, [*compare, "--store", str(base / "store")], base)[1])
        predictions = _predict(src, str(base / "store"), base / "holdout.csv")[1] or []
        for i, (what, damage, argv) in enumerate(cases):
            case = base / f"case{i}"
            shutil.copytree(base / "store", case)
            spec = str(case)
            mounted = False
            if damage[0] == "db":
                spec = _damage_db(damage[1], case)
            elif damage[0] == "weights":
                _damage_weights(damage[1], case)
            elif damage[0] == "record":
                _edit_record(case, *damage[1:])
            elif damage[0] == "ro":
                mounted = _mount_read_only(case)
                if not mounted:
                    rows.append([what, label, "-", "(skipped: cannot mount read-only here)"])
                    continue
            try:
                if argv == predict:
                    code, got, last = _predict(src, spec, base / "holdout.csv")
                    out = ""
                else:
                    code, out, last = _run(src, [*argv, "--store", spec], base)
            finally:
                if mounted:
                    subprocess.run(["umount", "-l", str(case)], check=False)
            if code == 0 and argv == predict:
                changed = sum(a != b for a, b in zip(got or [], predictions))
                shown = (f"runs, no warning: {changed} of {len(predictions)} predictions differ from the undamaged "
                         f"version's ({got[:1]} ...)" if got else "runs")
            elif code == 0:
                acc = _accuracy(out)
                shown = (f"runs; churn/1 accuracy {acc:.4f} (undamaged: {pristine:.4f})" if acc is not None
                         else "runs")
            else:
                last = last.replace(str(case), "STORE").replace(str(base), "DIR")
                shown = last[:300] + ("..." if len(last) > 300 else "")
            rows.append([what, label, code, shown])
    rows.sort(key=lambda r: [c[0] for c in cases].index(r[0]) * 2 + (r[1] == "after"))
    _table("corruption matrix: the damage, the command a user runs, exit code and what it prints "
           "(STORE: the damaged store's folder)",
           ["damage", "command", "modelyard", "exit", "what the user sees (last line)"],
           [[r[0], _command(cases, r[0]), *r[1:]] for r in rows])


def _command(cases: list[tuple[str, tuple[str, ...], list[str]]], what: str) -> str:
    argv = next(a for w, _, a in cases if w == what)
    return argv[0] if argv[0].startswith("(") else "modelyard " + " ".join(argv[:3 if argv[0] == "compare" else 5])


# --- hung rank -------------------------------------------------------------------------------------------------------

HUNG = r"""
import json, sys, time
import numpy as np
import modelyard as my
timeout = float(sys.argv[1])
rng = np.random.default_rng(0)
X = rng.normal(size=(400, 4)).astype(np.float32)
y = (X[:, 0] > 0).astype(np.int64)
t0 = time.time()
try:
    my.train(my.from_arrays(X, y), model="_faults:suspending", params={"rank": 1, "after": 3}, nodes=2, epochs=50,
             dist_timeout=timeout)
    print(json.dumps({"t": time.time(), "message": "(no error)", "start": t0}))
except Exception as e:
    print(json.dumps({"t": time.time(), "message": str(e), "type": type(e).__name__, "start": t0}))
"""


def hung_rank(args: argparse.Namespace, work: Path) -> None:
    rows = []
    for timeout in args.dist_timeouts:
        for label, src in _sources(args):
            stamp = work / f"stopped-{label}-{timeout}"
            stamp.unlink(missing_ok=True)
            r = subprocess.run([sys.executable, "-c", HUNG, str(timeout)], capture_output=True, text=True,
                               env=_env(src, RELIABILITY_STOP_STAMP=str(stamp)), timeout=600, check=False)
            try:
                d = json.loads(r.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                rows.append([f"{timeout:g}", label, "-", f"no result: {r.stderr.strip()[-200:]}"])
                continue
            stopped = float(stamp.read_text()) if stamp.exists() else None
            detected = f"{d['t'] - stopped:.1f}" if stopped is not None else "-"
            msg = d["message"]
            rows.append([f"{timeout:g}", label, detected, (msg[:200] + "...") if len(msg) > 200 else msg])
    _table("hung rank: rank 1 of 2 is suspended (SIGSTOP); seconds from the stop to the error",
           ["--dist-timeout (s)", "modelyard", "named after (s)", "error"], rows)


# --- server memory ---------------------------------------------------------------------------------------------------


def _hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def _serve(src: Path, store: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-m", "modelyard", "ui", "--host", "0.0.0.0", "--port", "0", "--store",
                             str(store)], env=_env(src), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    port = int(line.split("dashboard at http://0.0.0.0:", 1)[1].split("/", 1)[0])
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain the rest
    return proc, port


def _post(port: int, size: int, *, token: str | None, chunked: bool) -> tuple[str, float, int]:
    """Send a ``size``-byte POST; (status line, seconds to the first answer byte, bytes the server took)."""
    head = ["POST /api/comparisons HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json"]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    if token:
        head.append(f"Authorization: Bearer {token}")
    answer = bytearray()
    first: list[float] = []
    s = socket.create_connection(("127.0.0.1", port), timeout=120)

    def read() -> None:
        try:
            while chunk := s.recv(65536):
                if not first:
                    first.append(time.perf_counter())
                answer.extend(chunk)
        except OSError:
            pass

    t0 = time.perf_counter()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sent = 0
    block = b"[" * (1 << 20)  # not JSON: a server that reads it all has to parse it too
    try:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        while sent < size and not first:
            s.sendall(f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block)
            sent += len(block)
        if chunked and not first:
            s.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    reader.join(120)
    s.close()
    status = bytes(answer).split(b"\r\n", 1)[0].decode(errors="replace")
    return status, (first[0] - t0) if first else float("nan"), sent


def server_memory(args: argparse.Namespace, work: Path) -> None:
    if not sys.platform.startswith("linux"):
        print("\nserver memory: skipped (reads VmHWM from /proc)")
        return
    size = args.body_mib << 20
    cases = [("no token", False, False), ("with the token, too large", True, False),
             ("with the token, chunked (no length)", True, True)]
    rows = []
    for what, with_token, chunked in cases:
        for label, src in _sources(args):
            store = work / f"ui-{label}-{len(rows)}"
            proc, port = _serve(src, store)
            try:
                token = (store / "ui-token").read_text().strip() if with_token else None
                socket.create_connection(("127.0.0.1", port), timeout=30).close()
                time.sleep(0.3)
                before = _hwm_kib(proc.pid)
                status, seconds, sent = _post(port, size, token=token, chunked=chunked)
                time.sleep(0.3)
                grown = (_hwm_kib(proc.pid) - before) / 1024
            finally:
                proc.terminate()
                proc.wait(30)
            rows.append([what, label, status, f"{grown:.0f}", f"{sent >> 20}", f"{seconds:.2f}"])
    _table(f"server memory: a {args.body_mib} MiB POST to `modelyard ui --host 0.0.0.0`",
           ["request", "modelyard", "answer", "peak memory growth (MiB)", "MiB the client got to send",
            "seconds to the answer"], rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("section", choices=("all", "gc-race", "corruption", "hung-rank", "server-memory"))
    p.add_argument("--baseline-src", default=None, help="an older modelyard's src folder: the 'before' column")
    p.add_argument("--rounds", type=int, default=200, help="gc race rounds per process (default 200)")
    p.add_argument("--dist-timeouts", type=float, nargs="+", default=[4.0, 6.0, 12.0])
    p.add_argument("--body-mib", type=int, default=256)
    args = p.parse_args()
    print(f"machine: {os.cpu_count()} cores; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    sections = {"gc-race": gc_race, "corruption": corruption, "hung-rank": hung_rank, "server-memory": server_memory}
    with tempfile.TemporaryDirectory(prefix="modelyard-reliability-") as tmp:
        for name, fn in sections.items():
            if args.section in ("all", name):
                folder = Path(tmp) / name
                folder.mkdir()
                t0 = time.perf_counter()
                fn(args, folder)
                print(f"\n({name}: {time.perf_counter() - t0:.0f} s)")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    sys.path.insert(0, str(THIS_SRC))  # this tree drives the runs (damage, results); each run picks its own source
    main()
