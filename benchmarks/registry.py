"""Model registry: modelyard vs MLflow's model registry, both on one SQLite file, side by side in one process.

Run (the table in docs/benchmarks.md, section "Registry", comes from this command)::

    python benchmarks/registry.py --versions 1000 --depth 500 --repeats 3 --big 10000 --deep 1000

Per repeat, each library gets a fresh SQLite store (order alternates between repeats) and does:

1. register ``--versions`` versions of one model (modelyard also once more with ``durable=True``). The first ``--depth`` form a parent chain
   (modelyard: ``register(..., parent=previous)``; MLflow has no lineage, so each version gets
   a ``parent`` tag naming the previous version, the way a user would have to record it).
   modelyard stores each version's own weights (a logistic regression on iris, shifted per
   version so every version writes a new safetensors artifact, sha256 and all) plus params,
   metrics, schema and history; MLflow's ``create_model_version`` stores only a source URI
   and the tag (no weights, no metrics) -- it does strictly less work per version. A second
   MLflow row gives it the same information the way an MLflow user would: a run with the
   params and metrics, the weights file logged as an artifact, then the model version.
2. list them all, median of 20 calls (modelyard ``Registry.list(name)``; MLflow
   ``search_model_versions`` with pagination until every version is read).
3. fetch by alias, ``--lookups`` times (modelyard ``Registry.get("m@production")``, the full
   record; MLflow ``get_model_version_by_alias``); median of the calls.
4. walk the ``--depth``-deep lineage from its tip to the root (modelyard ``Registry.lineage``:
   one recursive query each way, plus descendants; MLflow: ``get_model_version`` then follow
   the ``parent`` tag, one call per step).

Then modelyard alone: ``Registry.list()`` over a ``--big``-version registry (target < 100 ms)
and ``Registry.lineage`` of a ``--deep``-deep chain (target < 20 ms), each the median of
``--lookups`` calls, and the end-to-end wall time of the ``modelyard models list`` command
(a fresh Python process, so it includes interpreter start-up and imports).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_RATIO = 10.0


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_TRACKING_URI", "sqlite:///:memory:")
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _timed(fn: Any) -> tuple[float, Any]:
    """Seconds ``fn()`` takes, and its result, with the heap that exists before the call frozen.

    Both libraries run in one process, so the heap holds MLflow's and modelyard's imports and the
    prepared results; a full garbage collection during a timed loop would rescan all of it (about
    a quarter of a second with MLflow imported) and charge it to whichever library happened to
    trigger it. ``gc.freeze()`` keeps that pre-existing heap out of collections, for both sides
    alike; collections of the objects each library creates while timed still count.
    """
    gc.collect()
    gc.freeze()
    try:
        t = time.perf_counter()
        out = fn()
        return time.perf_counter() - t, out
    finally:
        gc.unfreeze()


def _median_call(fn: Any, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# --- modelyard ----------------------------------------------------------------------------------


def run_modelyard_durable(folder: Path, results: list[Any], depth: int) -> float:
    """Seconds to register the versions with ``durable=True`` (fsync of weights and of every SQLite commit)."""
    from modelyard.yard import Yard

    with Yard(folder, durable=True) as yard:
        reg = yard.registry
        reg.count()

        def register_all() -> None:
            prev = None
            for i, r in enumerate(results):
                prev = reg.register(r, "m", parent=prev.id if prev is not None and i < depth else None)

        return _timed(register_all)[0]


def run_modelyard(folder: Path, results: list[Any], depth: int, lookups: int) -> dict[str, float]:
    """Seconds for each operation on a fresh modelyard store in ``folder``."""
    from modelyard.yard import Yard

    with Yard(folder) as yard:
        reg = yard.registry
        reg.count()  # open the store (create tables) outside the timed region, as MLflow's client does below

        def register_all() -> list[Any]:
            out: list[Any] = []
            for i, r in enumerate(results):
                parent = out[-1].id if 0 < i < depth else None
                out.append(reg.register(r, "m", parent=parent))
            return out

        t_register, versions = _timed(register_all)
        assert len(reg.list("m")) == len(results)
        t_list = _median_call(lambda: reg.list("m"), 20)
        reg.set_alias("m", "production", versions[len(versions) // 2].ref)
        t_alias = _median_call(lambda: reg.get("m@production"), lookups)
        tip = versions[depth - 1].ref
        lin = reg.lineage(tip)
        assert len(lin.ancestors) == depth - 1
        t_lineage = _median_call(lambda: reg.lineage(tip), max(5, lookups // 10))
    return {"register": t_register, "list": t_list, "alias": t_alias, "lineage": t_lineage}


# --- MLflow -------------------------------------------------------------------------------------


def run_mlflow(folder: Path, n: int, depth: int, lookups: int) -> dict[str, float]:
    """Seconds for each operation on a fresh MLflow registry (SQLite) in ``folder``."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("m")  # creates the schema, outside the timed region
    source = (folder / "model").as_uri()

    def register_all() -> list[Any]:
        out: list[Any] = []
        for i in range(n):
            tags = {"parent": out[-1].version} if 0 < i < depth else None
            out.append(client.create_model_version("m", source=source, tags=tags))
        return out

    t_register, versions = _timed(register_all)

    def list_all() -> list[Any]:
        got: list[Any] = []
        token = None
        while True:
            page = client.search_model_versions("name='m'", max_results=1000, page_token=token)
            got.extend(page)
            token = page.token
            if not token:
                return got

    assert len(list_all()) == n
    t_list = _median_call(list_all, 20)
    client.set_registered_model_alias("m", "production", versions[n // 2].version)
    t_alias = _median_call(lambda: client.get_model_version_by_alias("m", "production"), lookups)

    def walk() -> int:
        steps = 0
        v = client.get_model_version("m", versions[depth - 1].version)
        while "parent" in v.tags:
            v = client.get_model_version("m", v.tags["parent"])
            steps += 1
        return steps

    assert walk() == depth - 1
    t_lineage = _median_call(walk, 3)
    return {"register": t_register, "list": t_list, "alias": t_alias, "lineage": t_lineage}


def run_mlflow_full(folder: Path, results: list[Any], depth: int) -> float:
    """Seconds to give MLflow what a modelyard registration records: per version a run with the params and
    numeric metrics, the weights file logged as an artifact, and a model version pointing at it."""
    from mlflow import MlflowClient

    from modelyard.store.artifacts import state_to_bytes

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("bench", artifact_location=(folder / "artifacts").as_uri())
    client.create_registered_model("m")
    weights = []  # written before timing (an advantage to MLflow): modelyard's time includes serializing them
    for i, r in enumerate(results):
        path = folder / f"w{i}" / "model.safetensors"
        path.parent.mkdir()
        path.write_bytes(state_to_bytes(r.model.state()))
        weights.append(path)
    return _timed(lambda: _mlflow_full_loop(client, experiment, results, weights, depth))[0]


def _mlflow_full_loop(client: Any, experiment: str, results: list[Any], weights: list[Path], depth: int) -> None:
    from mlflow.entities import Metric, Param

    prev = None
    for i, (r, path) in enumerate(zip(results, weights)):
        run = client.create_run(experiment)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in r.metrics.items() if isinstance(v, (int, float))],
            params=[Param(k, str(v)) for k, v in r.params.items()],
        )
        client.log_artifact(run_id, str(path), "model")
        client.set_terminated(run_id)
        tags = {"parent": prev.version} if prev is not None and i < depth else None
        prev = client.create_model_version("m", source=f"{run.info.artifact_uri}/model", run_id=run_id, tags=tags)


# --- modelyard at scale ---------------------------------------------------------------------------


def run_scale(folder: Path, base: Any, big: int, deep: int, lookups: int) -> dict[str, float]:
    """``list`` over ``big`` versions and ``lineage`` of a ``deep`` chain (seconds), and the CLI's wall time."""
    from modelyard.testing.results import variant
    from modelyard.yard import Yard

    with Yard(folder) as yard:
        reg = yard.registry
        prev = None
        for i in range(big):
            # 100 models; the first ``deep`` versions of model "deep" form one chain
            name = "deep" if i < deep else f"m{i % 99}"
            v = reg.register(variant(base, i), name, parent=prev if name == "deep" else None)
            if name == "deep":
                prev = v.id
        assert reg.count() == big
        tip = f"deep/{deep}"
        assert len(reg.lineage(tip).ancestors) == deep - 1
        out = {
            "list_big": _median_call(lambda: reg.list(), lookups),
            "lineage_deep": _median_call(lambda: reg.lineage(tip), lookups),
            "ancestors_deep": _median_call(lambda: reg.ancestors(tip), lookups),
        }
    cli = [sys.executable, "-m", "modelyard.cli.main", "models", "list", "--store", str(folder)]
    out["cli_list_table"] = statistics.median(_timed(lambda: subprocess.run(cli, check=True, capture_output=True))[0]
                                              for _ in range(5))
    out["cli_list_json"] = statistics.median(
        _timed(lambda: subprocess.run([*cli, "--json"], check=True, capture_output=True))[0] for _ in range(5))
    return out


# --- driver ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--versions", type=int, default=1000)
    p.add_argument("--depth", type=int, default=500)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--lookups", type=int, default=200)
    p.add_argument("--big", type=int, default=10_000)
    p.add_argument("--deep", type=int, default=1000)
    p.add_argument("--json-out", default=None, help="also write the raw numbers here")
    a = p.parse_args(argv)
    if not 1 < a.depth <= a.versions:
        p.error("--depth must be in 2..--versions")

    _quiet_mlflow()
    import mlflow
    import numpy as np

    import modelyard
    from modelyard.testing.results import sample_result, variant

    base = sample_result()
    results = [variant(base, i) for i in range(a.versions)]  # built before timing: each has its own weights
    rows: dict[str, list[dict[str, float]]] = {"modelyard": [], "mlflow": []}
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as tmp:
        for r in range(a.repeats):
            order = ("modelyard", "mlflow") if r % 2 == 0 else ("mlflow", "modelyard")
            for lib in order:
                folder = Path(tmp) / f"{lib}{r}"
                folder.mkdir()
                if lib == "modelyard":
                    rows[lib].append(run_modelyard(folder, results, a.depth, a.lookups))
                    durable = Path(tmp) / f"durable{r}"
                    durable.mkdir()
                    rows[lib][-1]["register_durable"] = run_modelyard_durable(durable, results, a.depth)
                else:
                    rows[lib].append(run_mlflow(folder, a.versions, a.depth, a.lookups))
                    full = Path(tmp) / f"mlflow-full{r}"
                    full.mkdir()
                    rows[lib][-1]["register_full"] = run_mlflow_full(full, results, a.depth)
                print(f"repeat {r + 1}/{a.repeats} {lib}: "
                      + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in rows[lib][-1].items()), file=sys.stderr)
        scale = run_scale(Path(tmp) / "scale", base, a.big, a.deep, a.lookups) if a.big else {}

    med = {lib: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for lib, rs in rows.items()}
    labels = {
        "register": f"register {a.versions} versions (total)",
        "list": f"list {a.versions} versions",
        "alias": "fetch by alias (per call)",
        "lineage": f"walk a {a.depth}-deep lineage",
    }
    print(f"modelyard {modelyard.__version__}, MLflow {mlflow.__version__}, numpy {np.__version__}; "
          f"medians of {a.repeats} repeats, SQLite on both sides\n")
    print("| operation | MLflow ms | modelyard ms | MLflow / modelyard | >= 10x |")
    print("| --- | ---: | ---: | ---: | :---: |")
    for k, label in labels.items():
        ratio = med["mlflow"][k] / med["modelyard"][k]
        print(f"| {label} | {med['mlflow'][k] * 1000:.1f} | {med['modelyard'][k] * 1000:.2f} | {ratio:.1f} | "
              f"{'yes' if ratio >= TARGET_RATIO else 'NO'} |")
    full = med["mlflow"]["register_full"]
    print(f"| register {a.versions} versions, MLflow with the same information (run, params, metrics, weights "
          f"artifact, version) | {full * 1000:.1f} | {med['modelyard']['register'] * 1000:.2f} | "
          f"{full / med['modelyard']['register']:.1f} | {'yes' if full / med['modelyard']['register'] >= 10 else 'NO'} |")
    durable = med["modelyard"]["register_durable"]
    print(f"| register {a.versions} versions, modelyard `durable=True` (fsync weights and each commit) | "
          f"{med['mlflow']['register'] * 1000:.1f} | {durable * 1000:.2f} | {med['mlflow']['register'] / durable:.1f} "
          "| - |")
    if scale:
        print("\n| modelyard alone | ms | target | met |\n| --- | ---: | ---: | :---: |")
        print(f"| `Registry.list()` of {a.big:,} versions | {scale['list_big'] * 1000:.1f} | < 100 | "
              f"{'yes' if scale['list_big'] < 0.1 else 'NO'} |")
        print(f"| `Registry.lineage` of a {a.deep:,}-deep chain | {scale['lineage_deep'] * 1000:.1f} | < 20 | "
              f"{'yes' if scale['lineage_deep'] < 0.02 else 'NO'} |")
        print(f"| `Registry.ancestors` of a {a.deep:,}-deep chain | {scale['ancestors_deep'] * 1000:.1f} | - | - |")
        print(f"| `modelyard models list` (new process, table of the latest 50) | {scale['cli_list_table'] * 1000:.0f}"
              " | - | - |")
        print(f"| `modelyard models list --json` (new process, all {a.big:,}) | {scale['cli_list_json'] * 1000:.0f}"
              " | - | - |")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({"runs": rows, "medians": med, "scale": scale}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
