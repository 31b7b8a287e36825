"""ONNX export of gradient_boosting: graph build time and size, then onnxruntime vs XGBoost scoring, side by side.

Run (the note in docs/benchmarks.md, section "ONNX export", comes from this command)::

    python benchmarks/onnx_boosting.py --rounds 300 --rows 50000 --repeats 5

A multiclass table (4 classes, 5 numbers, categorical columns of ``--levels`` categories, 10% of the
cells missing) trains ``gradient_boosting`` with ``--rounds`` rounds and partition splits
(``max_cat_to_onehot=1``), once with the categorical columns and once without. Each model is
exported (``onnx_model``), then ``--rows`` new rows are scored by onnxruntime (``intra_op_num_threads=1``)
and by the Predictor (XGBoost, ``n_jobs=1``), alternating, ``--repeats`` times; medians, the ratio and
the largest probability difference are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import pandas as pd


def table(rng: np.random.Generator, n: int, levels: tuple[int, ...]) -> pd.DataFrame:
    """Numbers and categories with 10% holes, a 4-class target from a noisy score of both."""
    f = pd.DataFrame({f"n{i}": rng.normal(0, 1 + i, n) for i in range(5)})
    score = f.sum(axis=1).to_numpy() + rng.normal(0, 0.3, n)
    for i, k in enumerate(levels):
        codes = rng.integers(0, k, n)
        score = score + np.random.default_rng(k + i).normal(0, 1.5, k)[codes]
        f[f"c{i}"] = np.array([f"v{c}" for c in codes], dtype=object)
    for c in f.columns:
        f.loc[rng.random(n) < 0.1, c] = None if c.startswith("c") else np.nan
    f["y"] = np.array(list("abcd"), dtype=object)[np.digitize(score, np.quantile(score, [0.25, 0.5, 0.75]))]
    return f


def run(levels: tuple[int, ...], args: argparse.Namespace) -> None:
    import onnxruntime as ort

    import modelyard as my
    from modelyard.serve.export import onnx_feed, onnx_model

    rng = np.random.default_rng(0)
    params = {"n_estimators": args.rounds, "max_cat_to_onehot": 1, "early_stopping_rounds": None, "n_jobs": 1}
    predictor = my.train(my.load_dataset(table(rng, 20_000, levels), target="y"), model="gradient_boosting",
                         params=params, threads=1).model
    t = time.perf_counter()
    graph = onnx_model(predictor).SerializeToString()
    build = time.perf_counter() - t
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    rows = table(rng, args.rows, levels).drop(columns="y")
    feed, X = onnx_feed(predictor, rows), predictor.coded(rows, unknown="ignore")
    times: dict[str, list[float]] = {"onnxruntime": [], "xgboost": []}
    for _ in range(args.repeats):
        for name, fn in (("onnxruntime", lambda: session.run(None, feed)), ("xgboost", lambda: predictor.proba_codes(X))):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    ort_s, xgb_s = (statistics.median(times[k]) for k in ("onnxruntime", "xgboost"))
    diff = float(np.abs(session.run(None, feed)[1] - predictor.proba_codes(X)).max())
    trees = predictor.model.booster_.num_boosted_rounds() * 4
    print(f"categorical levels {levels or 'none'}: {trees} trees, graph {len(graph) / 1e6:.1f} MB built in {build:.2f} s; "
          f"{args.rows} rows: onnxruntime {ort_s:.3f} s, xgboost {xgb_s:.3f} s (ratio {ort_s / xgb_s:.2f}x), "
          f"largest probability difference {diff:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--levels", type=int, nargs="*", default=[4, 30])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for levels in (tuple(args.levels), ()):
        run(levels, args)


if __name__ == "__main__":
    main()
