"""Serving and batch prediction: modelyard vs MLflow's scoring server and ``mlflow models predict``, side by side.

Run (the table in docs/benchmarks.md, section "Serving", comes from this command)::

    python benchmarks/serve.py --duration 10 --repeats 3 --rows 2000000 --memory-rows 1000000,4000000

Needs ``wrk`` (Debian: ``apt-get install wrk``) as the load generator and MLflow
(``pip install 'modelyard[bench]'``: mlflow-skinny gives ``mlflow models serve`` and ``predict``).

The model: a logistic regression (``--family``) trained by modelyard on scikit-learn's breast
cancer set (30 numeric columns, string labels), registered as ``bench/1`` and aliased
``bench@production``; ``bench/2`` is an MLP for the alias switches. For MLflow the same
version is saved as an MLflow pyfunc model (``mlflow.pyfunc.save_model`` with a
``PythonModel`` that rebuilds the modelyard Predictor from the exported safetensors file and
the signature of the 30 columns), so both servers run the very same model code and the numbers
compare the serving stacks. Both servers run 2 worker processes on 127.0.0.1 with one torch
thread each: ``modelyard serve bench@production --workers 2`` and ``mlflow models serve
--env-manager local --workers 2``.

1. single row: ``wrk -t 2 -c 8`` (8 concurrent keep-alive connections) posts one row for
   ``--duration`` seconds (modelyard ``{"rows": [...]}``, MLflow ``{"dataframe_records": [...]}``);
   requests/s, p50 and p99 latency from wrk; median over ``--repeats`` runs. All servers are up
   at once and the runs alternate between them, so a shared machine's load drift hits each alike.
2. 10,000 rows: one request, end to end in a client (httpx: send the JSON body, receive and
   parse the answer), median of ``--repeats * 3``; modelyard also with an Arrow IPC body.
3. alias switches: ``bench@production`` moves 20 times between bench/1 and bench/2 (every
   0.6 s; this server polls the alias every 0.2 s) while wrk runs the single-row load;
   failed requests = wrk's non-2xx answers plus socket errors.
4. batch: ``modelyard predict bench@production FILE.parquet --out OUT.parquet`` vs
   ``mlflow models predict -m DIR -i FILE.csv -t csv -o OUT.json --env-manager local`` on the
   same ``--rows`` rows (MLflow reads JSON or CSV only, so it gets the CSV of the Parquet file;
   modelyard is timed on that CSV too), wall time of the command and its peak RSS; then
   modelyard's peak RSS on ``--memory-rows`` Parquet files (it should not grow with the rows).
5. ``--frameworks``: the thin ASGI app of ``modelyard serve`` vs the same endpoint on FastAPI
   (``benchmarks/serve_fastapi.py``), same workers, same wrk load: why ``server/serving.py`` is
   not a FastAPI app.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"throughput": 5.0, "p50_ms": 2.0, "p99_ms": 10.0, "big_request": 3.0, "batch": 3.0}


# --- setup ----------------------------------------------------------------------------------------------
def make_store(folder: Path, family: str) -> tuple[str, Any]:
    """bench/1 (``family``) and bench/2 (MLP) on breast cancer; bench@production -> bench/1."""
    import modelyard as my
    from modelyard.yard import Yard

    ds = my.load_dataset("sklearn:breast_cancer")
    store = str(folder / "store")
    with Yard(store) as yard:
        yard.registry.register(my.train(ds, model=family, epochs=30, seed=0), "bench")
        yard.registry.register(my.train(ds, model="mlp", epochs=10, seed=1), "bench")
        yard.registry.set_alias("bench", "production", "bench/1")
    return store, ds


class ModelyardPyfunc:  # the body of the MLflow PythonModel (defined in save_mlflow_model, pickled by value)
    pass


def save_mlflow_model(folder: Path, store: str, ds: Any) -> Path:
    """bench/1 as an MLflow pyfunc model directory (safetensors weights + config as artifacts)."""
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.models import infer_signature

    import modelyard as my
    from modelyard.serve.export import export_model

    predictor = my.load_model("bench/1", store=store)
    weights = folder / "weights.safetensors"
    export_model(predictor, "safetensors", weights)

    class Model(mlflow.pyfunc.PythonModel):
        def load_context(self, context):
            import json as _json

            from safetensors import safe_open

            import modelyard

            with safe_open(context.artifacts["weights"], framework="numpy") as f:
                state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
                config = _json.loads(f.metadata()["modelyard.config"])
            self.predictor = modelyard.Predictor.from_parts(config, state)

        def predict(self, context, model_input, params=None):
            return self.predictor.predict(model_input)

    frame = pd.DataFrame(ds.X[:5].astype("float64"), columns=ds.feature_names)
    out = folder / "mlflow-model"
    mlflow.pyfunc.save_model(str(out), python_model=Model(), artifacts={"weights": str(weights)},
                             signature=infer_signature(frame, predictor.predict(frame)))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server subprocess in its own process group, stopped with SIGINT then SIGKILL."""

    def __init__(self, cmd: list[str], url: str, ready: str, env: dict[str, str] | None = None):
        self.url, self.ready = url, ready
        # stderr to a file, never an unread pipe: a full pipe would block a worker that logs
        self.log = tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log,
                                     env={**os.environ, **(env or {})}, start_new_session=True)

    def __enter__(self) -> Self:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                if httpx.get(self.url + self.ready, timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in 120 s")
            time.sleep(0.3)

    def __exit__(self, *exc: object) -> None:
        for sig, wait in ((signal.SIGINT, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        self.log.close()
        text = Path(self.log.name).read_text(errors="replace")
        Path(self.log.name).unlink()
        if text.strip():
            print(f"--- stderr of {self.url} (last lines) ---\n{text[-1500:]}", file=sys.stderr)


def modelyard_server(store: str, port: int, workers: int = 2, poll: float = 1.0) -> Server:
    cmd = [sys.executable, "-m", "modelyard", "serve", "bench@production", "--port", str(port), "--workers",
           str(workers), "--threads", "1", "--poll", str(poll), "--store", store]
    return Server(cmd, f"http://127.0.0.1:{port}", "/health")


def mlflow_server(model_dir: Path, port: int, workers: int = 2) -> Server:
    cmd = [shutil.which("mlflow") or "mlflow", "models", "serve", "-m", str(model_dir), "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)]
    return Server(cmd, f"http://127.0.0.1:{port}", "/ping", env={"OMP_NUM_THREADS": "1"})


def fastapi_server(store: str, port: int, workers: int = 2) -> Server:
    cmd = [sys.executable, "-m", "uvicorn", "serve_fastapi:create", "--factory", "--app-dir", str(ROOT / "benchmarks"),
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning",
           "--no-access-log"]
    return Server(cmd, f"http://127.0.0.1:{port}", "/docs",
                  env={"MODELYARD_BENCH_STORE": store, "MODELYARD_BENCH_REF": "bench@production", "OMP_NUM_THREADS": "1"})


# --- load --------------------------------------------------------------------------------------------------
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, body: bytes, seconds: float, folder: Path, connections: int = 8) -> dict[str, float]:
    """wrk's requests/s, p50/p99 latency (ms) and failures for POSTing ``body`` to ``url``."""
    script = folder / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = [==[{body.decode()}]==]\n")
    out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--latency", "-s", str(script),
                          url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: float(v) * _UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)}
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return {"rps": rps, "p50_ms": lat["50"], "p99_ms": lat["99"], "requests": total, "failed": failed}


def timed_post(url: str, body: bytes, content_type: str, repeats: int) -> float:
    """Median seconds to send ``body``, receive the answer and parse it."""
    import httpx
    import orjson

    times = []
    with httpx.Client(timeout=120) as c:
        for i in range(repeats + 1):
            t = time.perf_counter()
            r = c.post(url, content=body, headers={"content-type": content_type})
            r.raise_for_status()
            orjson.loads(r.content)
            if i:  # the first one warms caches on both sides
                times.append(time.perf_counter() - t)
    return statistics.median(times)


def rows_body(ds: Any, n: int, key: str) -> bytes:
    import orjson

    rows = [dict(zip(ds.feature_names, map(float, ds.X[i % len(ds.X)]))) for i in range(n)]
    return orjson.dumps({key: rows})


# --- main ------------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", default="logistic_regression")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of each wrk run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows of the batch comparison (0: skip)")
    ap.add_argument("--memory-rows", default="1000000,4000000", help="Parquet sizes for modelyard's peak memory")
    ap.add_argument("--switches", type=int, default=20)
    ap.add_argument("--frameworks", action="store_true", help="also compare the thin ASGI app with FastAPI")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON too")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed as the load generator: apt-get install wrk")
    os.environ.setdefault("PYTHONPATH", str(ROOT / "src"))
    results: dict[str, Any] = {"uptime_before": subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()}
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        folder = Path(tmp)
        store, ds = make_store(folder, args.family)
        model_dir = save_mlflow_model(folder, store, ds)
        one = {"modelyard": rows_body(ds, 1, "rows"), "mlflow": rows_body(ds, 1, "dataframe_records")}
        big = {"modelyard": rows_body(ds, 10_000, "rows"), "mlflow": rows_body(ds, 10_000, "dataframe_records")}
        servers = {"modelyard": lambda p: modelyard_server(store, p), "mlflow": lambda p: mlflow_server(model_dir, p)}
        if args.frameworks:
            servers["fastapi"] = lambda p: fastapi_server(store, p)
            one["fastapi"], big["fastapi"] = one["modelyard"], big["modelyard"]
        single: dict[str, list[dict[str, float]]] = {k: [] for k in servers}
        request10k: dict[str, list[float]] = {k: [] for k in [*servers, "modelyard (Arrow body)"]}
        with contextlib.ExitStack() as stack:  # every server up at once; runs alternate, so load drift hits all alike
            running = {name: stack.enter_context(make(free_port())) for name, make in servers.items()}
            urls = {name: srv.url + ("/invocations" if name == "mlflow" else "/predict") for name, srv in running.items()}
            import httpx

            for name, url in urls.items():
                answer = httpx.post(url, content=one[name], headers={"content-type": "application/json"}).json()
                print(f"{name}: one row -> {answer}", file=sys.stderr)
                if "predictions" not in answer:
                    raise RuntimeError(f"{name} did not answer the row: {answer}")
                wrk(url, one[name], 2, folder)  # warm-up
            names = list(urls)
            for rep in range(args.repeats):
                for name in names[rep % len(names):] + names[: rep % len(names)]:  # each server leads one round
                    single[name].append(wrk(urls[name], one[name], args.duration, folder))
                for name, url in urls.items():
                    request10k[name].append(timed_post(url, big[name], "application/json", 3))
                request10k["modelyard (Arrow body)"].append(timed_post(urls["modelyard"], arrow_body(ds, 10_000),
                                                                       "application/vnd.apache.arrow.stream", 3))
        with modelyard_server(store, free_port(), poll=0.2) as server:
            results["switches"] = alias_switches(store, server.url, one["modelyard"], args.switches, folder)
        results["request_10k_s"] = {k: statistics.median(v) for k, v in request10k.items()}
        if args.frameworks:
            results["framework_cpu_us"] = framework_cpu(store, one["modelyard"])
        results["single_row"] = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in single.items()}
        results["single_row_runs"] = single
        if args.rows:
            from serve_batch import batch

            results["batch"] = batch(ds, store, model_dir, folder, args.rows,
                                     [int(x) for x in args.memory_rows.split(",") if x])
    results["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def framework_cpu(store: str, body: bytes, n: int = 2000) -> dict[str, float]:
    """CPU microseconds per single-row request inside the ASGI app (no HTTP): the thin app vs FastAPI.

    CPU time (``time.process_time``) rather than wall time, so that other load on a shared
    machine does not decide the comparison; both apps are called in this process, alternately.
    """
    import asyncio

    sys.path.insert(0, str(ROOT / "benchmarks"))
    os.environ.update({"MODELYARD_BENCH_STORE": store, "MODELYARD_BENCH_REF": "bench@production"})
    import serve_fastapi

    from modelyard.serve import ModelHolder
    from modelyard.server.security import loopback_hosts
    from modelyard.server.serving import ServingApp
    from modelyard.yard import Yard

    apps = {"thin ASGI (modelyard serve)": ServingApp(ModelHolder(Yard(store).registry, "bench@production"),
                                                      allowed_hosts=loopback_hosts()),
            "FastAPI + pydantic": serve_fastapi.create()}
    scope = {"type": "http", "method": "POST", "path": "/predict", "raw_path": b"/predict", "query_string": b"",
             "root_path": "", "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 8000),
             "client": ("127.0.0.1", 5555), "asgi": {"version": "3.0"},
             "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}

    async def calls(app: Any) -> float:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] != 200:
                raise RuntimeError(f"status {message['status']}")

        t = time.process_time()
        for _ in range(n):
            await app(dict(scope), receive, send)
        return (time.process_time() - t) / n * 1e6

    out: dict[str, list[float]] = {k: [] for k in apps}
    for _ in range(3):
        for name, app in apps.items():
            out[name].append(asyncio.run(calls(app)))
    return {k: statistics.median(v) for k, v in out.items()}


def arrow_body(ds: Any, n: int) -> bytes:
    import numpy as np
    import pyarrow as pa

    X = ds.X[np.arange(n) % len(ds.X)].astype(np.float64)
    table = pa.table({name: X[:, j] for j, name in enumerate(ds.feature_names)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def alias_switches(store: str, url: str, body: bytes, n: int, folder: Path) -> dict[str, Any]:
    """Move bench@production ``n`` times every 0.6 s while wrk posts single rows; count failed requests."""
    import threading

    import httpx

    from modelyard.yard import Yard

    seen: set[str] = set()
    out: dict[str, Any] = {}

    def load() -> None:
        out.update(wrk(url + "/predict", body, n * 0.6 + 3, folder))

    t = threading.Thread(target=load)
    t.start()
    time.sleep(1)
    with Yard(store) as yard:
        for i in range(n):
            yard.registry.set_alias("bench", "production", "bench/2" if i % 2 == 0 else "bench/1")
            time.sleep(0.6)
            seen.add(httpx.get(url + "/health").json()["version"]["ref"])
        yard.registry.set_alias("bench", "production", "bench/1")
    t.join()
    return {"switches": n, "requests": out["requests"], "failed": out["failed"], "versions_seen": sorted(seen)}


def report(r: dict[str, Any]) -> None:
    s = r["single_row"]
    my_, ml = s["modelyard"], s["mlflow"]
    print(f"\nmachine load before: {r['uptime_before']}\nmachine load after:  {r['uptime_after']}\n")
    print("| single-row requests, 8 keep-alive clients (wrk) | requests/s | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, v in s.items():
        print(f"| {name} | {v['rps']:.0f} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} |")
    print(f"\nthroughput ratio modelyard / MLflow: {my_['rps'] / ml['rps']:.1f}x (target >= {TARGETS['throughput']}x); "
          f"p50 {my_['p50_ms']:.2f} ms (target < 2), p99 {my_['p99_ms']:.2f} ms (target < 10)")
    if "fastapi" in s:
        print(f"thin ASGI app / FastAPI over HTTP: {my_['rps'] / s['fastapi']['rps']:.1f}x the requests/s")
    for name, us in r.get("framework_cpu_us", {}).items():
        print(f"CPU per single-row request inside the app, {name}: {us:.0f} us")
    q = r["request_10k_s"]
    print("\n| one 10,000-row request, end to end | seconds |\n| --- | ---: |")
    for name, v in q.items():
        print(f"| {name} | {v:.3f} |")
    print(f"\n10k-row request: modelyard {q['mlflow'] / q['modelyard']:.1f}x faster (target >= {TARGETS['big_request']}x)")
    sw = r["switches"]
    print(f"\nalias switches under load: {sw['switches']} moves, {sw['requests']} requests, {sw['failed']} failed; "
          f"versions seen answering: {', '.join(sw['versions_seen'])}")
    if "batch" in r:
        b = r["batch"]
        print(f"\n| batch predict, {b['rows']:,} rows | seconds | peak RSS MiB |\n| --- | ---: | ---: |")
        for key, label in (("modelyard_parquet", "modelyard predict (Parquet)"), ("modelyard_csv", "modelyard predict (CSV)"),
                           ("mlflow_csv", "mlflow models predict (CSV)")):
            print(f"| {label} | {b[key][0]:.1f} | {b[key][1]:.0f} |")
        print(f"\nbatch: modelyard (Parquet) {b['mlflow_csv'][0] / b['modelyard_parquet'][0]:.1f}x faster than MLflow, "
              f"{b['mlflow_csv'][0] / b['modelyard_csv'][0]:.1f}x on the same CSV (target >= {TARGETS['batch']}x)")
        for n, (sec, mib) in b["memory"].items():
            print(f"modelyard predict, {int(n):,} Parquet rows: {sec:.1f} s, peak RSS {mib:.0f} MiB")


if __name__ == "__main__":
    main()
