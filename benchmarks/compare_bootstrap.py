"""Paired bootstrap of every classification metric: modelyard's vectorized resamples against the loop people write.

There is no significance test in MLflow's or Optuna's model comparison, so the competitor is what a user of
those tools writes by hand: for each resample, index the predictions and call scikit-learn's metrics
(accuracy, macro precision/recall/F1, log loss, ROC-AUC) for both models. Both sides use the same resample
indices; the script first checks that they produce the same numbers, then times them in one process.

    python benchmarks/compare_bootstrap.py --rows 1000 10000 50000 --resamples 2000 --loop-resamples 100 --repeats 3

The loop is timed on ``--loop-resamples`` resamples (it is slow) and reported per resample; modelyard is timed
on the full ``--resamples``. The ratio compares time per resample.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def make(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Binary labels and two models' probabilities (one better than the other)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    proba = []
    for noise in (1.0, 1.5):
        logit = (2 * y - 1) * 1.2 + rng.normal(0, noise, n)
        p1 = 1 / (1 + np.exp(-logit))
        proba.append(np.column_stack([1 - p1, p1]))
    pred = np.stack([p.argmax(axis=1) for p in proba])
    return y, pred, proba


def sklearn_loop(y, pred, proba, idx):
    """The hand-written paired bootstrap: (m, B) arrays of each metric."""
    from sklearn.metrics import accuracy_score, log_loss, precision_recall_fscore_support, roc_auc_score

    out = {k: np.empty((len(pred), len(idx))) for k in ("accuracy", "precision", "recall", "f1", "log_loss", "roc_auc")}
    for r, rows in enumerate(idx):
        yt = y[rows]
        for i in range(len(pred)):
            yp = pred[i][rows]
            out["accuracy"][i, r] = accuracy_score(yt, yp)
            p, rc, f, _ = precision_recall_fscore_support(yt, yp, average="macro", zero_division=0)
            out["precision"][i, r], out["recall"][i, r], out["f1"][i, r] = p, rc, f
            out["log_loss"][i, r] = log_loss(yt, proba[i][rows], labels=[0, 1])
            out["roc_auc"][i, r] = roc_auc_score(yt, proba[i][rows][:, 1])
    return out


def modelyard_bootstrap(y, pred, proba, resamples, seed):
    from modelyard.compare.stats import bootstrap_classification

    return bootstrap_classification(y, pred, proba, 2, resamples, np.random.default_rng(seed))


def check_same(y, pred, proba) -> None:
    """Both implementations agree on the same resamples (modelyard's first block replays the generator)."""
    n, b = len(y), 20
    ours = modelyard_bootstrap(y, pred, proba, b, seed=11)
    idx = np.random.default_rng(11).integers(0, n, size=(b, n)) if b * n <= (1 << 18) else None
    if idx is None:  # more than one block: compare a small prefix of rows instead
        return check_same(y[:1000], pred[:, :1000], [p[:1000] for p in proba])
    theirs = sklearn_loop(y, pred, proba, idx)
    for k, v in theirs.items():
        np.testing.assert_allclose(ours[k], v, rtol=1e-9, atol=1e-12, err_msg=k)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1000, 10000, 50000])
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--loop-resamples", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import sklearn

    import modelyard

    print(f"modelyard {modelyard.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    print("| rows | scikit-learn loop ms/resample | modelyard ms/resample | ratio | modelyard s for "
          f"{args.resamples} resamples |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n in args.rows:
        y, pred, proba = make(n, seed=n)
        check_same(y, pred, proba)
        loop_t, ours_t = [], []
        for rep in range(args.repeats):
            idx = np.random.default_rng(rep).integers(0, n, size=(args.loop_resamples, n))
            t0 = time.perf_counter()
            sklearn_loop(y, pred, proba, idx)
            loop_t.append((time.perf_counter() - t0) / args.loop_resamples)
            t0 = time.perf_counter()
            modelyard_bootstrap(y, pred, proba, args.resamples, seed=rep)
            ours_t.append((time.perf_counter() - t0) / args.resamples)
        lm, om = statistics.median(loop_t), statistics.median(ours_t)
        print(f"| {n:,} | {lm * 1e3:.2f} | {om * 1e3:.3f} | {lm / om:.1f} | {om * args.resamples:.2f} |", flush=True)


if __name__ == "__main__":
    main()
