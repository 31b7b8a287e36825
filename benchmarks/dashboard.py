"""Dashboard data requests with 10,000 trials and 10,000 versions in the store, next to Optuna's storage read.

Seeds a fresh SQLite store through the stores' own tables (bulk inserts: one study of N trials
with intermediate values; M versions in chains of 100 with aliases and alias history), then
times every page's data request through the full HTTP stack (FastAPI TestClient, in process)
and reports p50/p95 per endpoint. Side by side, it times what optuna-dashboard does for a
study page: ``storage.get_all_trials`` on an Optuna RDB (SQLite) study of the same trials.

    python benchmarks/dashboard.py [--trials 10000] [--versions 10000] [--repeats 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

STEPS = 10
SPACE = {"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
         "layers": {"type": "int", "low": 1, "high": 4},
         "act": {"type": "categorical", "choices": ["relu", "tanh"]}}


def seed(folder: Path, n_trials: int, n_versions: int):
    import numpy as np

    import modelyard.store.trials as st
    import modelyard.store.versions as sv
    from modelyard.yard import Yard

    yard = Yard(folder / "store")
    db = yard.db
    rng = np.random.default_rng(0)
    now = time.time()
    states = rng.choice(["complete", "pruned", "failed"], size=n_trials, p=[0.6, 0.3, 0.1])
    params = [{"lr": float(10 ** rng.uniform(-4, 0)), "layers": int(rng.integers(1, 5)),
               "act": str(rng.choice(["relu", "tanh"]))} for _ in range(n_trials)]
    with db.transaction() as conn:
        sid = conn.execute(st.studies_table.insert().values(
            name="big", direction="minimize", space=json.dumps(SPACE), optimizer="gp", pruner="median", seed=0,
            attrs="{}", created_at=now, next_number=n_trials).returning(st.studies_table.c.id)).scalar_one()
        rows = [{"study_id": sid, "number": i, "state": str(states[i]), "params": json.dumps(params[i]),
                 "value": None if states[i] == "failed" else float(rng.random()), "reason": None, "worker": "w",
                 "counted": True, "started_at": now + i, "finished_at": now + i + 1, "heartbeat_at": now + i}
                for i in range(n_trials)]
        conn.execute(st.trials_table.insert(), rows)
        from sqlalchemy import select

        ids = dict(conn.execute(select(st.trials_table.c.number, st.trials_table.c.id)
                                .where(st.trials_table.c.study_id == sid)).all())
        values = [{"trial_id": ids[i], "step": s, "value": float(1 / (s + 1) + rng.random() * 0.2)}
                  for i in range(n_trials) for s in range(STEPS if states[i] != "pruned" else 3)]
        conn.execute(st.trial_values_table.insert(), values)

        chain = 100
        n_models = max(1, n_versions // chain)
        conn.execute(sv.model_names.insert(), [{"name": f"m{m:03d}", "next_number": chain + 1, "created_at": now}
                                               for m in range(n_models)])
        vrows, lrows, arows, hrows = [], [], [], []
        schema = json.dumps({"columns": [], "target": "y", "task": "classification", "classes": [0, 1]})
        for m in range(n_models):
            prev = None
            for k in range(1, chain + 1):
                vid = f"{m:08x}{k:056x}"
                vrows.append({
                    "id": vid, "name": f"m{m:03d}", "number": k, "family": "mlp", "task": "classification",
                    "key_metric": "f1", "key_value": float(rng.random()), "params": json.dumps({"lr": k / 1000}),
                    "model_config": "{}", "fit_config": "{}", "metrics": json.dumps({"f1": 0.5}),
                    "history": json.dumps([{"epoch": e, "train_loss": 1 / (e + 1), "val_loss": 1.1 / (e + 1),
                                            "val_metric": 0.5, "seconds": 0.1, "extra": {}} for e in range(20)]),
                    "data_schema": schema, "fingerprint": "0" * 64, "seed": 0, "library_versions": "{}",
                    "artifact": "a" * 64, "artifact_size": 1000, "created_at": now + k, "creator": "bench",
                    "tags": "{}", "description": None, "source": "sklearn:iris", "split": "{}", "links": "{}",
                })
                lrows.append({"child_id": vid, "parent_id": prev,
                              "diff": json.dumps({"lr": [(k - 1) / 1000, k / 1000]}) if prev else "{}",
                              "retrained": True, "via": "[]"})
                prev = vid
            arows.append({"name": f"m{m:03d}", "alias": "production", "version_id": prev, "updated_at": now})
            hrows += [{"name": f"m{m:03d}", "alias": "production", "from_id": None, "to_id": prev, "from_number": None,
                       "to_number": chain, "at": now + j, "user": "bench", "reason": "release", "action": "set"}
                      for j in range(10)]
        # the payload is one JSON document in its own table
        from modelyard.store.version_tables import PAYLOAD_FIELDS

        conn.execute(sv.model_versions.insert(), [{k: v for k, v in r.items() if k not in PAYLOAD_FIELDS}
                                                  for r in vrows])
        conn.execute(sv.model_version_data.insert(), [
            {"id": r["id"], "payload": json.dumps({k: json.loads(r[k]) for k in PAYLOAD_FIELDS})} for r in vrows])
        conn.execute(sv.model_lineage.insert(), lrows)
        conn.execute(sv.model_aliases.insert(), arows)
        conn.execute(sv.alias_history.insert(), hrows)
    return yard, states, params


def seed_optuna(folder: Path, states, params, rng_seed: int = 0):
    import numpy as np
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rng = np.random.default_rng(rng_seed)
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'optuna.db'}")
    study = optuna.create_study(storage=storage, study_name="big")
    dists = {"lr": FloatDistribution(1e-4, 1.0, log=True), "layers": IntDistribution(1, 4),
             "act": CategoricalDistribution(["relu", "tanh"])}
    kinds = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}
    trials = []
    for s, p in zip(states, params):
        steps = STEPS if s != "pruned" else 3
        trials.append(create_trial(
            state=kinds[str(s)], value=None if s != "complete" else float(rng.random()), params=p, distributions=dists,
            intermediate_values={k: float(1 / (k + 1)) for k in range(steps)}))
    study.add_trials(trials)
    return storage, study._study_id


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--versions", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--no-optuna", action="store_true")
    args = ap.parse_args()

    from fastapi.testclient import TestClient

    from modelyard.server.app import create_app

    folder = Path(tempfile.mkdtemp(prefix="my-dash-"))
    t0 = time.perf_counter()
    yard, states, params = seed(folder, args.trials, args.versions)
    print(f"seeded {args.trials} trials and {args.versions} versions in {time.perf_counter() - t0:.1f}s ({folder})")
    mid = "m050/50" if args.versions >= 5100 else "m000/50"
    endpoints = {
        "studies list": "/api/studies",
        "study": "/api/studies/big",
        "history": "/api/studies/big/history",
        "parallel coords": "/api/studies/big/parallel",
        "curves": "/api/studies/big/curves",
        "trials page 1": "/api/studies/big/trials?limit=50",
        "trials last page, by value": f"/api/studies/big/trials?limit=50&sort=-value&offset={args.trials - 50}",
        "trials pruned only": "/api/studies/big/trials?state=pruned&limit=50&offset=500",
        "models list": "/api/models",
        "all versions, newest": "/api/versions?limit=50",
        "versions of a model": "/api/models/m050/versions" if args.versions >= 5100 else "/api/models/m000/versions",
        "versions with alias": "/api/versions?alias=production&limit=50",
        "version": f"/api/versions/{mid}",
        "lineage (chain of 100)": f"/api/versions/{mid}/lineage",
        "aliases": "/api/models/m000/aliases",
        "alias history": "/api/models/m000/history",
    }
    results = {}
    with TestClient(create_app(yard, data_roots=[folder]), base_url="http://127.0.0.1") as c:
        for label, url in endpoints.items():
            r = c.get(url)
            assert r.status_code == 200, (url, r.text[:300])
            size = len(r.content)
            ms = timed(lambda u=url: c.get(u), args.repeats)
            results[label] = (statistics.median(ms), pct(ms, 0.95), size)
    print(f"\n| page data request ({args.trials:,} trials, {args.versions:,} versions) | p50 ms | p95 ms | bytes |"
          " < 200 ms |")
    print("| --- | ---: | ---: | ---: | :---: |")
    for label, (p50, p95, size) in results.items():
        print(f"| {label} | {p50:.1f} | {p95:.1f} | {size:,} | {'yes' if p95 < 200 else 'NO'} |")
    if not args.no_optuna:
        t0 = time.perf_counter()
        storage, study_id = seed_optuna(folder, states, params)
        print(f"\nseeded Optuna RDB with {args.trials} trials in {time.perf_counter() - t0:.1f}s")
        reps = max(3, args.repeats // 6)
        ms = timed(lambda: storage.get_all_trials(study_id, deepcopy=False), reps)
        opt = statistics.median(ms)
        ours = results["history"][0] + results["parallel coords"][0] + results["curves"][0] + \
            results["trials page 1"][0] + results["study"][0]
        print("\n| study page data | median ms | repeats |\n| --- | ---: | ---: |")
        print(f"| Optuna RDB `get_all_trials` (what optuna-dashboard loads per study) | {opt:.0f} | {reps} |")
        print(f"| modelyard: study + history + parallel + curves + trials page, over HTTP | {ours:.0f} | "
              f"{args.repeats} |")
        print(f"\nratio Optuna / modelyard: {opt / ours:.1f}x")
    yard.close()


if __name__ == "__main__":
    main()
