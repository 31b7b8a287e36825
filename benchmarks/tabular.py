"""Gradient boosting on tabular data: modelyard against XGBoost called directly and against Optuna's TPE.

Three parts, each run side by side in one process run (the tables in docs/benchmarks.md, section
"Gradient boosting on tabular data", come from these commands)::

    python benchmarks/tabular.py overhead --rows 500000 --features 50 --rounds 100 --threads 2 --repeats 3
    python benchmarks/tabular.py tuning --datasets penguins cars breast_cancer diabetes --trials 40 --folds 5 \
        --seeds 0 1 2
    python benchmarks/tabular.py distributed --rows 2000000 --features 20 --rounds 100

* overhead: ``modelyard.train(ds, model="gradient_boosting")`` (a seeded stratified 65/15/20 split, the fit
  with early stopping on the validation rows, test predictions and every metric) against the same work done
  with ``xgboost.XGBClassifier`` by hand: the same rows, settings, threads and early stopping. Calls are
  interleaved (ABBA) and the medians compared; the accuracy of both is printed.
* tuning: per dataset and seed, ``modelyard tune``'s machinery (the study with the GP optimizer and median
  pruner, the trial objective scoring by ``--cv`` folds) against Optuna's TPE sampler tuning XGBoost called
  directly over the same search space (``tune/defaults.py``) with the same folds, inner validation rows, trial
  budget and threads. Both sides' default-parameter scores are printed first: they must agree, which checks
  that the two objectives are the same function. Medians over seeds.
* distributed: ``modelyard train big.parquet --nodes 2`` against ``--nodes 1`` on a synthetic Parquet file,
  wall time of the whole command and test accuracy (each rank reads only its row groups).

The dataset list is ``DATASETS`` below: a name and a loader returning a DataFrame, its target column and the
metric to tune; add one there. Datasets with missing values are built directly when the installed data layer
still refuses NaN (``load_dataset`` is tried first).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# --- datasets ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A real dataset: how to load it, its target, and the metric a tuner minimizes or maximizes."""

    load: Callable[[], Any]  # -> pandas.DataFrame
    target: str
    metric: str  # log_loss, f1, rmse, ...
    note: str


def _penguins() -> Any:
    from palmerpenguins import load_penguins  # pip install palmerpenguins (ships penguins.csv)

    return load_penguins()


def _cars() -> Any:
    from vega_datasets import data  # pip install vega_datasets (cars.json is bundled)

    df = data.cars().drop(columns=["Name"])
    df["Year"] = df["Year"].dt.year
    return df.dropna(subset=["Miles_per_Gallon"]).reset_index(drop=True)  # the target must be known


def _sklearn(name: str, target: str) -> Callable[[], Any]:
    def load() -> Any:
        import sklearn.datasets as d

        bunch = getattr(d, f"load_{name}")(as_frame=True)
        return bunch.frame.rename(columns={"target": target})

    return load


DATASETS: dict[str, Table] = {
    "penguins": Table(_penguins, "species", "log_loss", "344 rows, 3 classes; island and sex categorical; NaN in 5 columns"),
    "cars": Table(_cars, "Miles_per_Gallon", "rmse", "398 rows, regression; Origin categorical; NaN in Horsepower"),
    "breast_cancer": Table(_sklearn("breast_cancer", "diagnosis"), "diagnosis", "log_loss", "569 rows, 30 numeric"),
    "diabetes": Table(_sklearn("diabetes", "progression"), "progression", "rmse", "442 rows, 10 numeric, regression"),
}


def to_dataset(frame: Any, target: str) -> Any:
    """The frame as a modelyard Dataset; NaN kept (built directly if the installed data layer refuses it)."""
    import modelyard as my
    from modelyard.errors import DataError

    try:
        return my.load_dataset(frame, target=target)
    except DataError:
        pass
    import pandas as pd

    from modelyard.data.dataset import Dataset

    filled = frame.copy()
    for c in frame.columns:
        if c == target:
            continue
        if frame[c].dtype.kind in "biuf":
            filled[c] = frame[c].fillna(0.0)
        else:
            filled[c] = frame[c].astype(object).where(frame[c].notna(), frame[c].dropna().iloc[0])
    schema = my.load_dataset(filled, target=target).schema  # kinds, categories, task, classes
    X = np.empty((len(frame), len(schema.columns)), dtype=np.float32)
    for j, col in enumerate(schema.columns):
        values = frame[col.name]
        if col.kind == "categorical":
            lookup = {c: i for i, c in enumerate(col.categories or ())}
            X[:, j] = [np.nan if pd.isna(v) else lookup.get(str(v), -1) for v in values.astype(object)]
        else:
            X[:, j] = values.to_numpy(dtype=np.float64)
    base = my.load_dataset(filled, target=target)
    return Dataset(X, base.y, schema, base.source)


# --- XGBoost called directly: the competitor's objective -------------------------------------------------------


def direct_params(params: dict[str, Any], task: str, n_classes: int, threads: int, seed: int) -> dict[str, Any]:
    """What a practitioner passes to xgboost.train for these hyperparameters (hist, the same objective)."""
    if task == "regression":
        obj = {"objective": "reg:squarederror", "eval_metric": "rmse"}
    elif n_classes == 2:
        obj = {"objective": "binary:logistic", "eval_metric": "logloss"}
    else:
        obj = {"objective": "multi:softprob", "num_class": n_classes, "eval_metric": "mlogloss"}
    return {**obj, "tree_method": "hist", "eta": params["learning_rate"], "max_depth": params["max_depth"],
            "min_child_weight": params["min_child_weight"], "subsample": params["subsample"],
            "colsample_bytree": params["colsample_bytree"], "alpha": params["reg_alpha"],
            "lambda": params["reg_lambda"], "max_bin": 256, "max_cat_to_onehot": 4, "nthread": threads,
            "seed": seed, "verbosity": 0}


def direct_cv(ds: Any, params: dict[str, Any], folds: list[np.ndarray], inner: list[tuple[np.ndarray, np.ndarray]],
              metric: str, threads: int, seed: int) -> float:
    """Mean held-out ``metric`` over the folds, training XGBoost by hand with early stopping on the inner rows."""
    import xgboost as xgb

    from modelyard.train.metrics import score

    task = ds.schema.task.value
    cat = ds.schema.categorical
    types = ["c" if j in cat else "q" for j in range(ds.X.shape[1])] if cat else None
    X = ds.X.copy()
    for j in cat:  # an unseen category: one code past the known ones, as modelyard's encoder does
        X[X[:, j] < 0, j] = len(ds.schema.columns[j].categories or ())
    p = direct_params(params, task, ds.schema.n_classes, threads, seed)
    scores = []
    for held, (fit, val) in zip(folds, inner, strict=True):
        dfit = xgb.QuantileDMatrix(X[fit], ds.y[fit], feature_types=types, enable_categorical=bool(types), nthread=threads)
        dval = xgb.QuantileDMatrix(X[val], ds.y[val], ref=dfit, feature_types=types, enable_categorical=bool(types),
                                   nthread=threads)
        booster = xgb.train(p, dfit, num_boost_round=params["n_estimators"], evals=[(dval, "validation")],
                            early_stopping_rounds=params["early_stopping_rounds"], verbose_eval=False)
        out = booster.inplace_predict(X[held], iteration_range=(0, booster.best_iteration + 1))
        if task == "regression":
            m = score(ds.schema, ds.y[held], np.asarray(out, dtype=np.float64), None)
        else:
            proba = np.stack([1 - out, out], axis=1) if out.ndim == 1 else np.asarray(out, dtype=np.float64)
            m = score(ds.schema, ds.y[held], proba.argmax(axis=1), proba)
        scores.append(m[metric])
    return float(np.mean(scores))


def fold_plan(ds: Any, k: int, seed: int, val_size: float = 0.15) -> tuple[list[np.ndarray], list[tuple]]:
    """The held-out rows of each fold and (fit rows, validation rows) of its training part: modelyard's plan."""
    from modelyard.data.split import split_indices
    from modelyard.schema import Task
    from modelyard.train.cv import fold_indices

    strat = ds.schema.task is Task.CLASSIFICATION
    folds = fold_indices(ds.y, len(ds), k, seed=seed, stratify=strat)
    inner = []
    for held in folds:
        rest = np.setdiff1d(np.arange(len(ds)), held, assume_unique=True)
        fit, val = split_indices(ds.y[rest], len(rest), (val_size,), seed=seed, stratify=strat)
        inner.append((rest[fit], rest[val]))
    return folds, inner


def optuna_search(space: Any, objective: Callable[[dict[str, Any]], float], direction: str, trials: int,
                  seed: int) -> float:
    """Optuna's TPE over ``space`` (modelyard's SearchSpace, translated), best value after ``trials``."""
    import optuna

    from modelyard.tune.space import Categorical, Float, Int

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def suggest(trial: Any) -> float:
        params = {}
        for name, d in space.params.items():
            if isinstance(d, Float):
                params[name] = trial.suggest_float(name, d.low, d.high, log=d.log)
            elif isinstance(d, Int):
                params[name] = trial.suggest_int(name, d.low, d.high, log=d.log)
            elif isinstance(d, Categorical):
                params[name] = trial.suggest_categorical(name, list(d.choices))
        return objective(params)

    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(suggest, n_trials=trials)
    return float(study.best_value)


def run_tuning(args: argparse.Namespace) -> list[dict[str, Any]]:
    from modelyard.models.boosting import GradientBoosting
    from modelyard.tune import Study
    from modelyard.tune.defaults import default_space
    from modelyard.tune.objective import TrainingObjective

    rows = []
    defaults = GradientBoosting.params.defaults()
    for name in args.datasets:
        table = DATASETS[name]
        ds = to_dataset(table.load(), table.target)
        space = default_space("gradient_boosting")
        per_seed = []
        for seed in args.seeds:
            objective = TrainingObjective(ds, "gradient_boosting", space, metric=table.metric, seed=seed,
                                          threads=args.threads, cv=args.folds)
            folds, inner = fold_plan(ds, args.folds, seed)

            def direct(params: dict[str, Any], seed: int = seed, folds: Any = folds, inner: Any = inner,
                       ds: Any = ds, metric: str = table.metric) -> float:
                return direct_cv(ds, {**defaults, **params}, folds, inner, metric, args.threads, seed)

            d_ours = objective({})
            d_direct = direct({})
            t0 = time.perf_counter()
            study = Study(space, direction=objective.direction, optimizer=args.optimizer, pruner=args.pruner, seed=seed)
            study.optimize(objective, n_trials=args.trials)
            t_ours = time.perf_counter() - t0
            t1 = time.perf_counter()
            best_tpe = optuna_search(space, direct, objective.direction, args.trials, seed)
            t_tpe = time.perf_counter() - t1
            info = study.info
            per_seed.append({"seed": seed, "default_modelyard": d_ours, "default_direct": d_direct,
                             "modelyard": float(study.best_value), "tpe": best_tpe, "seconds_modelyard": t_ours,
                             "seconds_tpe": t_tpe, "complete": info.counts.get("complete", 0),
                             "pruned": info.counts.get("pruned", 0)})
            print(json.dumps({"dataset": name, **per_seed[-1]}), flush=True)
        maximize = objective.direction == "maximize"
        med = {k: statistics.median(r[k] for r in per_seed) for k in per_seed[0] if k != "seed"}
        better_or_equal = med["modelyard"] >= med["tpe"] if maximize else med["modelyard"] <= med["tpe"]
        wins = sum((r["modelyard"] >= r["tpe"]) if maximize else (r["modelyard"] <= r["tpe"]) for r in per_seed)
        rows.append({"dataset": name, "metric": table.metric, "direction": objective.direction, **med,
                     "at_least_tpe": better_or_equal, "seed_wins": f"{wins}/{len(per_seed)}", "note": table.note})
    print("\n| dataset | metric | default (modelyard) | default (XGBoost direct) | modelyard GP | Optuna TPE | "
          "modelyard >= TPE | seeds won | s modelyard | s TPE | trials complete/pruned |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['dataset']} | {r['metric']} ({'higher' if r['direction'] == 'maximize' else 'lower'} better) | "
              f"{r['default_modelyard']:.4f} | {r['default_direct']:.4f} | {r['modelyard']:.4f} | {r['tpe']:.4f} | "
              f"{'yes' if r['at_least_tpe'] else 'no'} | {r['seed_wins']} | {r['seconds_modelyard']:.0f} | "
              f"{r['seconds_tpe']:.0f} | {r['complete']:.0f}/{r['pruned']:.0f} |")
    met = sum(r["at_least_tpe"] for r in rows)
    print(f"\nmodelyard at least equal to TPE (medians over seeds {args.seeds}) on {met} of {len(rows)} datasets")
    return rows


# --- overhead: modelyard.train vs XGBClassifier by hand --------------------------------------------------------


def make_data(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels from a noisy model with interactions (trees have something to find)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=d) / np.sqrt(d)
    logits = 2 * (X @ w) + 1.5 * np.sin(2 * X[:, 0]) * X[:, 1] + (X[:, 2] > 0.5) * X[:, 3]
    y = (rng.random(n) < 1 / (1 + np.exp(-logits))).astype(np.int64)
    return X, y


def run_overhead(args: argparse.Namespace) -> None:
    import xgboost as xgb

    import modelyard as my
    from modelyard.data.split import split_rows

    X, y = make_data(args.rows, args.features)
    ds = my.from_arrays(X, y)
    params = {"n_estimators": args.rounds, "learning_rate": 0.1, "max_depth": 6, "early_stopping_rounds": 50}

    cpu: dict[str, list[float]] = {"ours": [], "reference": []}

    def ours() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        r = my.train(ds, model="gradient_boosting", params=params, threads=args.threads, seed=0)
        cpu["ours"].append(time.process_time() - c0)
        return time.perf_counter() - t0, r.metrics["accuracy"]

    def reference() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        train, val, test = split_rows(ds, val_size=0.15, test_size=0.2, seed=0)  # the same rows
        clf = xgb.XGBClassifier(n_estimators=args.rounds, learning_rate=0.1, max_depth=6, tree_method="hist",
                                n_jobs=args.threads, random_state=0, early_stopping_rounds=50,
                                eval_metric=["error", "logloss"])
        Xtr, ytr = X[train], y[train]  # the same objects in eval_set: XGBoost reuses the training matrix
        clf.fit(Xtr, ytr, eval_set=[(Xtr, ytr), (X[val], y[val])], verbose=False)
        acc = float((clf.predict_proba(X[test]).argmax(axis=1) == y[test]).mean())
        cpu["reference"].append(time.process_time() - c0)
        return time.perf_counter() - t0, acc

    ours()  # warm-up: imports, thread pools
    reference()
    cpu["ours"].clear()
    cpu["reference"].clear()
    t_ours, t_ref, a_ours, a_ref = [], [], [], []
    for r in range(args.repeats):
        order = (ours, reference) if r % 2 == 0 else (reference, ours)  # ABBA
        for fn in order:
            t, a = fn()
            (t_ours if fn is ours else t_ref).append(t)
            (a_ours if fn is ours else a_ref).append(a)
    mo, mr = statistics.median(t_ours), statistics.median(t_ref)
    print(f"\n{args.rows:,} rows x {args.features} features, {args.rounds} rounds (early stopping 50), "
          f"{args.threads} thread(s), {args.repeats} repeats (ABBA); load before: {os.getloadavg()}")
    co, cr = statistics.median(cpu["ours"]), statistics.median(cpu["reference"])
    print("| side | wall (s), median | all (s) | CPU (s), median | test accuracy |")
    print("| --- | ---: | --- | ---: | ---: |")
    print(f"| modelyard.train | {mo:.2f} | {', '.join(f'{t:.2f}' for t in t_ours)} | {co:.2f} | {a_ours[0]:.4f} |")
    print(f"| XGBClassifier by hand | {mr:.2f} | {', '.join(f'{t:.2f}' for t in t_ref)} | {cr:.2f} | {a_ref[0]:.4f} |")
    print(f"wall ratio {mo / mr:.3f}x (target <= 1.05x: {'met' if mo / mr <= 1.05 else 'MISSED'}); "
          f"CPU ratio {co / cr:.3f}x")
    if args.cli:
        run_cli_overhead(args, X, y)


def run_cli_overhead(args: argparse.Namespace, X: np.ndarray, y: np.ndarray) -> None:
    """``modelyard train data.npz --model gradient_boosting`` against a script loading the .npz and calling XGBoost."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        np.savez(path, X=X, y=y)
        script = Path(tmp) / "ref.py"
        script.write_text(
            "import sys, numpy as np, xgboost as xgb\n"
            "from modelyard.data.split import split_indices\n"
            "d = np.load(sys.argv[1]); X, y = d['X'], d['y']\n"
            "train, val, test = split_indices(y, len(y), (0.15, 0.2), seed=0, stratify=True)\n"
            f"clf = xgb.XGBClassifier(n_estimators={args.rounds}, learning_rate=0.1, max_depth=6, tree_method='hist', "
            f"n_jobs={args.threads}, random_state=0, early_stopping_rounds=50, eval_metric=['error', 'logloss'])\n"
            "Xtr, ytr = X[train], y[train]\n"
            "clf.fit(Xtr, ytr, eval_set=[(Xtr, ytr), (X[val], y[val])], verbose=False)\n"
            "print((clf.predict_proba(X[test]).argmax(axis=1) == y[test]).mean())\n")
        cmd_ours = [sys.executable, "-m", "modelyard", "train", str(path), "--model", "gradient_boosting", "--set",
                    f"n_estimators={args.rounds}", "--threads", str(args.threads), "--json", "--no-register"]
        cmd_ref = [sys.executable, str(script), str(path)]
        times: dict[str, list[float]] = {"modelyard train": [], "script calling XGBoost": []}
        for r in range(args.repeats):
            for label, cmd in ((("modelyard train", cmd_ours), ("script calling XGBoost", cmd_ref)) if r % 2 == 0 else
                               (("script calling XGBoost", cmd_ref), ("modelyard train", cmd_ours))):
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                times[label].append(time.perf_counter() - t0)
        a, b = (statistics.median(v) for v in times.values())
        print(f"\nwhole command on an .npz file (process start, imports, loading): modelyard train {a:.2f} s, "
              f"script {b:.2f} s, ratio {a / b:.3f}x")


# --- distributed: --nodes 2 vs --nodes 1 on a Parquet file ------------------------------------------------------


def run_distributed(args: argparse.Namespace) -> None:
    import pandas as pd

    X, y = make_data(args.rows, args.features, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.parquet"
        frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
        frame["y"] = y
        frame.to_parquet(path, row_group_size=100_000)
        del frame
        base = [sys.executable, "-m", "modelyard", "train", str(path), "--target", "y", "--model", "gradient_boosting",
                "--set", f"n_estimators={args.rounds}", "--json", "--no-register"]
        print(f"\n{args.rows:,} rows x {args.features} features, {args.rounds} rounds; load before: {os.getloadavg()}")
        print("| run | wall (s) | train time (s) | test accuracy | threads per process |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for label, extra in (("1 process", []), ("2 ranks (--nodes 2)", ["--nodes", "2"])):
            t0 = time.perf_counter()
            out = subprocess.run(base + extra, check=True, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            doc = json.loads(out.stdout)
            threads = doc.get("extra", {}).get("distributed", {}).get("threads_per_process", os.cpu_count())
            print(f"| {label} | {wall:.1f} | {doc['metrics']['train_time_s']:.1f} | {doc['metrics']['accuracy']:.4f} | "
                  f"{threads} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="part", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--rows", type=int, default=500_000)
    o.add_argument("--features", type=int, default=50)
    o.add_argument("--rounds", type=int, default=100)
    o.add_argument("--threads", type=int, default=2)
    o.add_argument("--repeats", type=int, default=3)
    o.add_argument("--cli", action="store_true", help="also time the whole command on an .npz file")
    t = sub.add_parser("tuning")
    t.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    t.add_argument("--trials", type=int, default=40)
    t.add_argument("--folds", type=int, default=5)
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--optimizer", default="gp")
    t.add_argument("--pruner", default="none", help="modelyard tune --cv's default is none")
    d = sub.add_parser("distributed")
    d.add_argument("--rows", type=int, default=2_000_000)
    d.add_argument("--features", type=int, default=20)
    d.add_argument("--rounds", type=int, default=100)
    args = p.parse_args()
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True, check=False).stdout.strip()}",
          flush=True)
    {"overhead": run_overhead, "tuning": run_tuning, "distributed": run_distributed}[args.part](args)
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True, check=False).stdout.strip()}",
          flush=True)


if __name__ == "__main__":
    main()
