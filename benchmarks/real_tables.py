"""Real tables: the default command of every modelyard family against scikit-learn's defaults, same held-out rows.

Run (the table in docs/benchmarks.md, section "Real tables", comes from this command)::

    python benchmarks/real_tables.py --seeds 0 1 2 --threads 1

For each table shipped in ``modelyard.testing.datasets`` and each seed, in one process:

* modelyard: ``modelyard.train(ds, model=FAMILY, seed=SEED)`` for every family in
  ``modelyard.models.FAMILIES`` that does the table's task (so a family added later is
  measured too), as the default command runs it: default hyperparameters and epochs,
  ``impute="median"`` only where the family cannot take missing values and the table has
  some (the family's ``handles_missing``). It splits 65/15/20 (train/validation/test,
  stratified for classification) and scores the test rows.
* scikit-learn, fitted on the same training rows and scored on the same test rows with the
  same metric code (``modelyard.train.metrics.score``): ``HistGradientBoosting`` at its
  defaults (text columns as pandas categories, ``categorical_features="from_dtype"``), and a
  pipeline of median (numeric) / most-frequent (text) imputation, scaling and one-hot encoding
  into ``LogisticRegression(max_iter=1000)`` or ``Ridge()``.

The metric is macro F1 for classification and R² for regression (higher is better), median
over seeds; ``ratio`` is the best modelyard family over the best scikit-learn model (the
target is >= 0.99). Threads: torch and scikit-learn's OpenMP/BLAS pools are limited to
``--threads`` (a random forest's ``n_jobs`` too), so every model uses the same cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import numpy as np


def _limit_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def sklearn_models(task: str, frame: Any, threads: int) -> dict[str, Any]:
    """The two scikit-learn defaults for this task, as unfitted estimators that take the raw frame."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    text = [c for c in frame.columns if frame[c].dtype.kind not in "biuf"]
    numeric = [c for c in frame.columns if c not in text]
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), text),
    ])
    classification = task == "classification"
    hgb = HistGradientBoostingClassifier(random_state=0) if classification else HistGradientBoostingRegressor(random_state=0)
    linear = LogisticRegression(max_iter=1000) if classification else Ridge()
    return {"sklearn HistGradientBoosting": hgb, "sklearn linear pipeline": make_pipeline(prep, linear)}


def as_categories(frame: Any) -> Any:
    """Text columns as pandas categories (what HistGradientBoosting's from_dtype reads)."""
    out = frame.copy()
    for c in out.columns:
        if out[c].dtype.kind not in "biuf":
            out[c] = out[c].astype("category")
    return out


def run_table(name: str, seeds: list[int], threads: int) -> dict[str, Any]:
    """Every family and both scikit-learn models on one table: {model: [metric per seed]}, seconds, metric name."""
    import modelyard as my
    from modelyard.data.split import split_rows
    from modelyard.models import FAMILIES
    from modelyard.testing.datasets import real_table
    from modelyard.train.metrics import score

    table = real_table(name)
    ds = table.load()
    key = "f1" if ds.task.value == "classification" else "r2"
    raw = table.frame()
    raw = raw[raw[table.target].notna()].drop(columns=[table.target, *table.drop_columns]).reset_index(drop=True)
    assert len(raw) == len(ds), "the raw rows line up with the dataset's rows"
    gaps = bool(np.isnan(ds.X).any())
    scores: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    for seed in seeds:
        for family, cls in FAMILIES.items():
            if ds.task not in cls.tasks:
                continue
            impute = "median" if gaps and not getattr(cls, "handles_missing", False) else None
            params = {"n_jobs": threads} if "n_jobs" in cls.params.params else {}
            label = family + (" (--impute median)" if impute else "")
            t0 = time.perf_counter()
            result = my.train(ds, model=family, params=params, seed=seed, impute=impute, threads=threads)
            seconds.setdefault(label, []).append(time.perf_counter() - t0)
            scores.setdefault(label, []).append(float(result.metrics[key]))
        train_rows, _, test_rows = split_rows(ds, seed=seed)
        for label, est in sklearn_models(ds.task.value, raw, threads).items():
            frame = as_categories(raw) if "HistGradient" in label else raw
            y_fit = ds.y[train_rows]
            t0 = time.perf_counter()
            est.fit(frame.iloc[train_rows], y_fit)
            pred = est.predict(frame.iloc[test_rows])
            proba = est.predict_proba(frame.iloc[test_rows]) if hasattr(est, "predict_proba") else None
            if proba is not None and proba.shape[1] != ds.schema.n_classes:
                full = np.zeros((len(proba), ds.schema.n_classes))
                full[:, est.classes_] = proba
                proba = full
            seconds.setdefault(label, []).append(time.perf_counter() - t0)
            metrics = score(ds.schema, ds.y[test_rows], np.asarray(pred), proba)
            scores.setdefault(label, []).append(float(metrics[key]))
    return {"name": name, "rows": len(ds), "task": ds.task.value, "metric": key, "scores": scores, "seconds": seconds,
            "dropped": ds.dropped.sentence() if ds.dropped else "", "gaps": gaps}


def report(results: list[dict[str, Any]], seeds: list[int]) -> str:
    """Markdown: one section per table (every model), then a summary of best vs best."""
    lines = []
    summary = ["| table | rows | task (metric) | best modelyard | best scikit-learn | ratio |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        med = {m: statistics.median(v) for m, v in r["scores"].items()}
        secs = {m: statistics.median(v) for m, v in r["seconds"].items()}
        lines.append(f"\n**{r['name']}** ({r['rows']} rows, {r['task']}, {r['metric']}, median of {len(seeds)} seeds"
                     + (f"; {r['dropped']}" if r["dropped"] else "") + ")\n")
        lines.append(f"| model | {r['metric']} | per seed | fit seconds |")
        lines.append("| --- | --- | --- | --- |")
        for m in sorted(med, key=lambda k: -med[k]):
            per = ", ".join(f"{v:.4f}" for v in r["scores"][m])
            lines.append(f"| {m} | {med[m]:.4f} | {per} | {secs[m]:.2f} |")
        mine = {m: v for m, v in med.items() if not m.startswith("sklearn")}
        theirs = {m: v for m, v in med.items() if m.startswith("sklearn")}
        bm, bt = max(mine, key=mine.get), max(theirs, key=theirs.get)
        ratio = mine[bm] / theirs[bt] if theirs[bt] > 0 else float("nan")
        summary.append(f"| {r['name']} | {r['rows']} | {r['task']} ({r['metric']}) | {bm} {mine[bm]:.4f} | "
                       f"{bt.removeprefix('sklearn ')} {theirs[bt]:.4f} | {ratio:.3f} |")
    return "\n".join(summary) + "\n" + "\n".join(lines)


def main() -> None:
    """Parse arguments, run every table, print the markdown tables."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tables", nargs="+", default=None, help="default: every shipped table")
    args = p.parse_args()
    _limit_threads(args.threads)
    import torch

    from modelyard.models.loop import preload_torch
    from modelyard.testing.datasets import REAL_TABLES

    torch.set_num_threads(args.threads)
    preload_torch()
    results = []
    for name in args.tables or list(REAL_TABLES):
        t0 = time.perf_counter()
        results.append(run_table(name, args.seeds, args.threads))
        print(f"# {name}: {time.perf_counter() - t0:.1f}s", flush=True)
    print(report(results, args.seeds))


if __name__ == "__main__":
    main()
