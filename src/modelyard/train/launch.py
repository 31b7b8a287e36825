"""Local launch: N worker processes on this machine under the torchrun contract, supervised until they end.

The launcher (which never imports torch) picks a free port, sets RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT and ``OMP_NUM_THREADS = max(1, cores // N)`` for each
worker, and starts ``python -m modelyard.train.launch RUN_DIR`` in its own process group. A
worker runs ``spec.json``'s target function; failures are recorded as ``error-RANK.json``. When
any worker fails, the launcher waits briefly for the others' reports, kills every process group
(nothing is left behind), and raises one ``DistributedError`` naming the rank that failed first
and its message. A worker whose heartbeat stops for the whole ``--dist-timeout`` (a frozen or
suspended process: SIGSTOP, swapped out) is named the same way, within the timeout plus the
heartbeat interval: every live rank's watchdog thread writes one at least every second.
Rank 0 can stream epoch logs to the launcher, which runs the caller's callbacks and answers
whether to stop, and send it one-line announcements (what it is training on) to show.
"""

from __future__ import annotations

import importlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import DistributedError, ModelyardError, ParamError

__all__ = ["announce", "control_callback", "free_port", "launch"]

_GRACE = 3.0  # seconds to collect the other ranks' reports after the first failure
_FROZEN_GRACE = 0.3  # after a silent rank is found: its peers are healthy, there is nothing to wait for
_KIND_ORDER = {"crash": 0, "hang": 1, "exit": 2, "frozen": 3, "peer": 4}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _threads(nodes: int, threads: int | None) -> int:
    cores = _cores()
    if threads is None:
        return max(1, cores // nodes)
    if threads * nodes > cores:
        raise ParamError(
            f"{nodes} processes x {threads} threads = {threads * nodes} threads on {cores} cores would oversubscribe "
            f"them (and run several times slower); use --threads {max(1, cores // nodes)} or leave it unset"
        )
    return threads


def launch(
    target: str,
    payload: Mapping[str, Any],
    *,
    nodes: int,
    timeout: float,
    threads: int | None = None,
    run_dir: str | Path | None = None,
    echo_rank0: bool = False,
    callbacks: Sequence[Callable[[Any], bool | None]] = (),
    on_announce: Callable[[str], None] | None = None,
) -> dict[str, Any] | None:
    """Run ``target`` ("pkg.module:function", called with ``payload``) on ``nodes`` local ranks; rank 0's result.

    Rank 0's function may write ``result.json`` and other files into ``$MODELYARD_RUN_DIR``;
    the parsed ``result.json`` is returned (None if absent). ``echo_rank0`` lets rank 0 print to
    this terminal (the CLI); otherwise every rank's output goes to ``log-RANK.txt``. Rank 0's
    ``announce(text)`` calls reach ``on_announce`` here.
    """
    if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1:
        raise ParamError(f"nodes must be an int >= 1, got {nodes!r}; e.g. --nodes 2")
    if not timeout > 0:
        raise ParamError(f"the distributed timeout must be > 0 seconds, got {timeout!r}; e.g. --dist-timeout 600")
    n_threads = _threads(nodes, threads)
    own_dir = run_dir is None
    rd = Path(tempfile.mkdtemp(prefix="modelyard-run-")) if run_dir is None else Path(run_dir)
    rd.mkdir(parents=True, exist_ok=True)
    (rd / "spec.json").write_text(json.dumps({"target": target, "payload": dict(payload)}))
    port = free_port()
    procs: list[subprocess.Popen] = []
    logs = []
    ctrl = None
    try:
        started = time.monotonic()
        for rank in range(nodes):
            env = _worker_env(rank, nodes, port, n_threads, rd, timeout)
            pass_fds: tuple[int, ...] = ()
            if rank == 0 and (callbacks or on_announce is not None):
                ctrl = _Control(on_announce)
                env["MODELYARD_CONTROL_FDS"] = f"{ctrl.child_w},{ctrl.child_r}"
                pass_fds = (ctrl.child_w, ctrl.child_r)
            if rank == 0 and echo_rank0:
                out = err = None
            else:
                log = open(rd / f"log-{rank}.txt", "wb")  # noqa: SIM115 (closed below)
                logs.append(log)
                out = err = log
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "modelyard.train.launch", str(rd)], env=env, stdout=out, stderr=err,
                stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=pass_fds,
            ))
        if ctrl is not None:
            ctrl.parent_side()
        _supervise(procs, rd, timeout, started, ctrl, callbacks)
        result = rd / "result.json"
        return json.loads(result.read_text()) if result.is_file() else None
    finally:
        _kill_all(procs)
        for log in logs:
            log.close()
        if ctrl is not None:
            ctrl.close()
        if own_dir:
            shutil.rmtree(rd, ignore_errors=True)


def _worker_env(rank: int, nodes: int, port: int, threads: int, run_dir: Path, timeout: float) -> dict[str, str]:
    env = dict(os.environ)
    paths = [p for p in sys.path if p and os.path.isdir(p)]  # what the caller can import, the workers can
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env.update({
        "RANK": str(rank), "WORLD_SIZE": str(nodes), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(nodes),
        "GROUP_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
        "MODELYARD_RUN_DIR": str(run_dir), "MODELYARD_PARENT_PID": str(os.getpid()),
        "MODELYARD_DIST_TIMEOUT": repr(float(timeout)), "PYTHONPATH": os.pathsep.join(paths),
        "PYTHONUNBUFFERED": "1",
    })
    if sys.platform.startswith("linux") and "GLOO_SOCKET_IFNAME" not in env:
        env["GLOO_SOCKET_IFNAME"] = "lo"  # local ranks talk over loopback, whatever the hostname resolves to
    return env


def _supervise(
    procs: list[subprocess.Popen], rd: Path, timeout: float, started: float, ctrl: _Control | None,
    callbacks: Sequence[Callable[[Any], bool | None]],
) -> None:
    not_started_after = timeout + 70.0
    while True:
        if ctrl is not None:
            ctrl.serve(callbacks, wait=0.05)
        else:
            time.sleep(0.05)
        codes = [p.poll() for p in procs]
        if all(c == 0 for c in codes):
            return
        if any(c not in (None, 0) for c in codes):
            _fail(procs, rd, timeout)
        now = time.monotonic()
        for rank, p in enumerate(procs):
            if p.poll() is not None:
                continue
            age = _silence(rd, rank)
            if age is not None and age > timeout:
                _write_frozen(rd, rank, _frozen_message(rank, age, timeout))
                _fail(procs, rd, timeout, grace=_FROZEN_GRACE)
            elif age is None and now - started > not_started_after:
                _write_frozen(rd, rank, f"rank {rank} did not start within {now - started:.0f} s; check its log")
                _fail(procs, rd, timeout)


def _silence(rd: Path, rank: int) -> float | None:
    """Seconds since ``rank`` last wrote its heartbeat, or None before its first."""
    try:
        return time.time() - (rd / f"heartbeat-{rank}").stat().st_mtime
    except FileNotFoundError:
        return None


def _frozen_message(rank: int, age: float, timeout: float) -> str:
    return (f"rank {rank} stopped responding (no heartbeat for {age:.0f} s, the --dist-timeout is {timeout:g} s): "
            "its process is frozen or suspended (e.g. SIGSTOP, or swapped out); check that process or machine, "
            "or raise --dist-timeout")


def _write_frozen(rd: Path, rank: int, message: str) -> None:
    from .watchdog import write_error

    write_error(rd, rank, "frozen", "DistributedError", message)


def _fail(procs: list[subprocess.Popen], rd: Path, timeout: float, grace: float = _GRACE) -> None:
    """Collect reports for a moment, kill everything, raise one error naming the first failure.

    A rank still alive but silent for the whole timeout is named as frozen, ahead of the peers
    that lost contact with it (a suspended process writes no report of its own).
    """
    end = time.monotonic() + grace
    while time.monotonic() < end and any(p.poll() is None for p in procs):
        if any(
            p.poll() not in (None, 0) and not (rd / f"error-{r}.json").exists() for r, p in enumerate(procs)
        ) and time.monotonic() > end - grace + min(0.5, grace):
            break  # a rank died without a report (signal): no point in waiting longer
        time.sleep(0.05)
    codes = [p.poll() for p in procs]
    for rank, code in enumerate(codes):
        age = _silence(rd, rank) if code is None else None
        if age is not None and age > timeout and not (rd / f"error-{rank}.json").exists():
            _write_frozen(rd, rank, _frozen_message(rank, age, timeout))
    _kill_all(procs)
    reports = []
    for rank, code in enumerate(codes):
        path = rd / f"error-{rank}.json"
        if path.exists():
            try:
                reports.append(json.loads(path.read_text()))
                continue
            except (OSError, ValueError):
                pass
        if code not in (None, 0):
            reports.append({"rank": rank, "kind": "exit", "type": "", "time": time.time(),
                            "message": _exit_message(rank, code, rd)})
    if not reports:
        raise DistributedError("the distributed run failed without a report from any rank; rerun with --debug")
    first = min(reports, key=lambda r: (_KIND_ORDER.get(r["kind"], 9), r["time"]))
    others = sorted({r["rank"] for r in reports} - {first["rank"]})
    tail = f" (rank{'s' if len(others) > 1 else ''} {', '.join(map(str, others))} stopped with it)" if others else ""
    if first["kind"] == "crash":
        msg = f"rank {first['rank']} failed with {first['type']}: {first['message']}"
    else:
        msg = first["message"]
    raise DistributedError(f"{msg}{tail}; the run was stopped and nothing was registered")


def _exit_message(rank: int, code: int, rd: Path) -> str:
    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    text = ""
    log = rd / f"log-{rank}.txt"
    if log.exists():
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        if lines:
            text = "; its last output: " + " | ".join(lines[-3:])[-500:]
    return f"rank {rank} died with {how} without reporting an error{text}"


def _kill_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


# --- rank 0 <-> launcher: epoch logs out, stop decisions back ------------------------------------------------


class _Control:
    """Two pipes between the launcher and rank 0."""

    def __init__(self, on_announce: Callable[[str], None] | None = None) -> None:
        self.on_announce = on_announce
        self.parent_r, self.child_w = os.pipe()
        self.child_r, self.parent_w = os.pipe()
        self.buf = b""
        self.sel: selectors.BaseSelector | None = None

    def parent_side(self) -> None:
        os.close(self.child_w)
        os.close(self.child_r)
        self.child_w = self.child_r = -1
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.parent_r, selectors.EVENT_READ)

    def serve(self, callbacks: Sequence[Callable[[Any], bool | None]], wait: float) -> None:
        from ..records.training import EpochLog

        assert self.sel is not None
        for _ in self.sel.select(timeout=wait):
            data = os.read(self.parent_r, 1 << 16)
            if not data:
                self.sel.unregister(self.parent_r)
                return
            self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            message = json.loads(line)
            if "announce" in message:  # one-way: no answer
                if self.on_announce is not None:
                    self.on_announce(str(message["announce"]))
                continue
            log = EpochLog.from_dict(message)
            stop = False
            for cb in callbacks:  # an exception here aborts the run (the caller's own error)
                if cb(log):
                    stop = True
            os.write(self.parent_w, b"1\n" if stop else b"0\n")

    def close(self) -> None:
        for fd in (self.parent_r, self.parent_w, self.child_w, self.child_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if self.sel is not None:
            self.sel.close()


def control_callback(watch: Any = None) -> Callable[[Any], bool] | None:
    """On rank 0 of a local launch with callbacks: a callback that asks the launcher's callbacks (else None)."""
    spec = os.environ.get("MODELYARD_CONTROL_FDS")
    if not spec or os.environ.get("RANK", "0") != "0":
        return None
    w, r = (int(x) for x in spec.split(","))
    reader = os.fdopen(r, "rb", buffering=0)

    def ask(log: Any) -> bool:
        os.write(w, (json.dumps(log.to_dict()) + "\n").encode())
        ctx = watch.waiting() if watch is not None else _nullctx()
        with ctx:
            line = reader.readline()
        if not line:
            raise DistributedError("rank 0 lost the launcher (it exited); stopping")
        return line.strip() == b"1"

    return ask


class _nullctx:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def announce(text: str) -> bool:
    """On rank 0 of a local launch: show ``text`` through the launcher (True), else do nothing (False)."""
    spec = os.environ.get("MODELYARD_CONTROL_FDS")
    if not spec or os.environ.get("RANK", "0") != "0":
        return False
    w = int(spec.split(",")[0])
    os.write(w, (json.dumps({"announce": text}) + "\n").encode())
    return True


# --- the worker ------------------------------------------------------------------------------------------------


def _import_target(target: str) -> Callable[[Any], Any]:
    mod, _, name = target.partition(":")
    fn: Any = importlib.import_module(mod)
    for part in name.split("."):
        fn = getattr(fn, part)
    return fn


def _worker(run_dir: str) -> int:
    from .distributed import LostPeerError
    from .watchdog import write_error

    rd = Path(run_dir)
    rank = int(os.environ.get("RANK", "0"))
    try:
        spec = json.loads((rd / "spec.json").read_text())
        _import_target(spec["target"])(spec["payload"])
        return 0
    except LostPeerError as e:
        write_error(rd, rank, "peer", type(e).__name__, str(e))
        return 1
    except ModelyardError as e:
        write_error(rd, rank, "crash", type(e).__name__, str(e))
        return 2
    except KeyboardInterrupt:
        write_error(rd, rank, "crash", "KeyboardInterrupt", "interrupted")
        return 130
    except BaseException as e:  # noqa: BLE001 (a bug or the user model code: keep the traceback in the log)
        import traceback

        traceback.print_exc()
        write_error(rd, rank, "crash", type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else "")
        return 1


if __name__ == "__main__":
    sys.stdout.flush()
    code = _worker(sys.argv[1])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown: nothing is left to flush, and it costs ~0.5 s with torch loaded
