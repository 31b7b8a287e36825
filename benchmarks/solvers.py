"""Exact solvers of the linear families: modelyard end to end vs scikit-learn (and glum, statsmodels) on the same rows.

Run (the tables in docs/benchmarks.md, section "Exact solvers", come from this command)::

    python benchmarks/solvers.py --repeats 5 --threads 2

Side by side in one process, interleaved per repeat, threads equal on both sides (torch and
BLAS limited to ``--threads``), medians over ``--repeats``:

* ``modelyard.train`` end to end on a freshly built ``Dataset`` (so the content fingerprint is
  computed too): the seeded 65/15/20 split, encoding, standardization, the exact solver, the
  validation pass, test predictions and every metric;
* scikit-learn as a user would write it: ``StandardScaler`` + ``LogisticRegression()`` (lbfgs) or
  ``Ridge`` / ``LinearRegression``, fitted on the same training rows (float64, as loaded), then
  test predictions (``predict_proba`` / ``predict``);
* at the same penalty (``C=1`` and ``alpha=1``, modelyard's defaults and scikit-learn's), so the
  training log-loss and the test R² must agree (log-loss within 1e-4, R² to 4 decimals).

Also: one pass over the data (a loss-and-gradient evaluation; a Gram pass) against the memory
bandwidth of a large ``numpy`` sum; 2 ranks vs 1 on ``--dist-rows`` rows (``train(..., nodes=2)``
vs one process, wall time of the whole call and the coefficient difference); glum and
statsmodels on the smallest shape where they are installed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

D = 50


def make(n: int, k: int, seed: int = 0, regression: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Features on different scales and offsets (float64, as a user's table loads) and a linear-model target."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D))
    X *= rng.uniform(0.2, 20.0, size=D)
    X += rng.uniform(-100.0, 100.0, size=D)
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    W = rng.normal(size=(D, max(k, 1))) / np.sqrt(D) * 2.0
    if regression:
        return X, Z @ W[:, 0] * 10.0 + 3.0 + rng.normal(size=n) * 5.0
    S = Z @ W
    if k == 2:
        return X, (rng.random(n) < 1 / (1 + np.exp(-S[:, 0]))).astype(np.int64)
    return X, np.argmax(S + rng.gumbel(size=S.shape), axis=1)


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    out, times = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)
    return float(-np.mean(np.log(p)))


def r2(pred: np.ndarray, y: np.ndarray) -> float:
    return float(1 - np.sum((pred - y) ** 2) / np.sum((y - y.mean()) ** 2))


class Case:
    """One shape: the data loaded once (modelyard's Dataset and the user's float64 arrays) and its split."""

    def __init__(self, n: int, k: int, regression: bool):
        import modelyard as my
        from modelyard.data.split import split_rows

        self.X, self.y = make(n, k, regression=regression)
        self.ds = my.from_arrays(self.X, self.y)
        self.tr, _, self.te = split_rows(self.ds, seed=0)
        self.n, self.k, self.regression = n, k, regression

    def ours(self, model: str, params: dict[str, Any], threads: int, **kw: Any) -> Any:
        import modelyard as my
        from modelyard.data.dataset import Dataset

        fresh = Dataset(self.ds.X, self.ds.y, self.ds.schema, self.ds.source)  # fingerprint computed again
        return my.train(fresh, model=model, params=params, threads=threads, seed=0, **kw)


def run_logistic(case: Case, threads: int, repeats: int) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    Xtr, ytr, Xte = case.X[case.tr], case.y[case.tr], case.X[case.te]

    def sk() -> Any:
        with threadpool_limits(threads):
            m = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(Xtr, ytr)
            m.predict_proba(Xte)
            return m

    ours_t, sk_t, res, ref = [], [], None, None
    for _ in range(repeats):  # interleaved
        t, res = median_time(lambda: case.ours("logistic_regression", {"C": 1.0}, threads), 1)
        ours_t.append(t)
        t, ref = median_time(sk, 1)
        sk_t.append(t)
    fresh = __import__("modelyard.data.dataset", fromlist=["Dataset"]).Dataset(case.ds.X, case.ds.y, case.ds.schema)
    t_hash = _timed(lambda: fresh.fingerprint)
    ours_loss = log_loss(res.model.proba_codes(case.ds.X[case.tr]), ytr)
    with threadpool_limits(threads):
        sk_loss = log_loss(ref.predict_proba(Xtr), ytr)
    return {"ours": statistics.median(ours_t), "sk": statistics.median(sk_t), "ours_loss": ours_loss, "sk_loss": sk_loss,
            "iters": res.extra["solver"]["iterations"], "sk_iters": int(np.max(ref[-1].n_iter_)),
            "fit": res.metrics["train_time_s"], "hash": t_hash}


def run_linear(case: Case, threads: int, repeats: int) -> dict[str, Any]:
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    Xtr, ytr, Xte, yte = case.X[case.tr], case.y[case.tr], case.X[case.te], case.y[case.te]
    out: dict[str, Any] = {}
    for name, alpha, est in (("Ridge", 1.0, lambda: make_pipeline(StandardScaler(), Ridge(alpha=1.0))),
                             ("LinearRegression", 0.0, LinearRegression)):
        def sk(est: Callable[[], Any] = est) -> Any:
            with threadpool_limits(threads):
                m = est().fit(Xtr, ytr)
                return m.predict(Xte)

        ours_t, sk_t, res, pred = [], [], None, None
        for _ in range(repeats):
            t, res = median_time(lambda alpha=alpha: case.ours("linear_regression", {"alpha": alpha}, threads), 1)
            ours_t.append(t)
            t, pred = median_time(sk, 1)
            sk_t.append(t)
        out[name] = {"ours": statistics.median(ours_t), "sk": statistics.median(sk_t), "ours_r2": res.metrics["r2"],
                     "sk_r2": r2(pred, yte), "fit": res.metrics["train_time_s"]}
    return out


def bandwidth(threads: int) -> float:
    """GB/s of a large numpy sum (1 GiB of float64), best of 5."""
    a = np.ones(1 << 27)
    a.sum()
    best = min(_timed(a.sum) for _ in range(5))
    return a.nbytes / best / 1e9


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_pass(case: Case, k: int, threads: int) -> dict[str, float]:
    """One loss-and-gradient evaluation over the training rows' float64 design (GB/s), and one Gram pass."""
    from threadpoolctl import threadpool_limits

    from modelyard.models.solvers.design import design
    from modelyard.models.solvers.gram import gram_sums
    from modelyard.models.solvers.losses import LOSSES
    from modelyard.models.solvers.objective import LinearObjective
    from modelyard.models.solvers.workers import Workers

    X = case.ds.X[case.tr]
    # as a fit runs them: each of `threads` workers passes over its block of rows with single-threaded BLAS
    with threadpool_limits(1, user_api="blas"), Workers(threads) as workers:
        des = design(X, workers=workers)
        t_design = min(_timed(lambda: design(X, workers=workers)) for _ in range(3))
        m = des.moments
        y = case.y[case.tr]
        loss = LOSSES["logistic" if k == 2 else "multinomial"]()
        obj = LinearObjective(des, y.astype(np.float64) if k == 2 else y, None, loss, 1 if k == 2 else k, m.mean, m.std,
                              1e-5, workers=workers)
        theta = np.zeros(obj.size)
        obj.value_grad(theta)
        t_eval = statistics.median(_timed(lambda: obj.value_grad(theta)) for _ in range(15))
        yr = np.asarray(y, dtype=np.float64)
        t_gram = statistics.median(_timed(lambda: gram_sums(X, yr, None, m.mean, workers=workers)) for _ in range(5))
    return {"eval_s": t_eval, "eval_gbs": des.nbytes / t_eval / 1e9, "gram_s": t_gram, "gram_gbs": X.nbytes / t_gram / 1e9,
            "design_s": t_design, "design_gbs": (X.nbytes + des.nbytes) / t_design / 1e9}


def run_dist(rows: int, threads: int) -> dict[str, Any]:
    import modelyard as my

    X, y = make(rows, 2, seed=1)
    ds = my.from_arrays(X, y)
    del X
    params = {"C": 1.0, "tol": 1e-8, "ftol": 0.0}
    t0 = time.perf_counter()
    one = my.train(ds, model="logistic_regression", params=params, threads=threads, seed=0)
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    two = my.train(ds, model="logistic_regression", params=params, nodes=2, seed=0)
    t_two = time.perf_counter() - t0
    a, b = (r.model.state()["module.weight"].astype(np.float64) for r in (one, two))
    return {"one": t_one, "two": t_two, "one_fit": one.metrics["train_time_s"], "two_fit": two.metrics["train_time_s"],
            "diff": float(np.max(np.abs(a - b)) / np.max(np.abs(a))), "iters": (one.extra["solver"]["iterations"],
                                                                               two.extra["solver"]["iterations"])}


def run_others(threads: int, n: int, repeats: int) -> list[tuple[str, str, float, float]]:
    """(task, library, median fit+predict seconds, quality) on the same training rows; quality = train log-loss / test R²."""
    return [row for regression in (False, True) for row in _others(Case(n, 2, regression), threads, repeats)]


def _others(case: Case, threads: int, repeats: int) -> list[tuple[str, str, float, float]]:
    from threadpoolctl import threadpool_limits

    regression = case.regression
    Xtr, ytr, Xte, yte = case.X[case.tr], case.y[case.tr], case.X[case.te], case.y[case.te]
    mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0)
    task = "linear (alpha=1)" if regression else "logistic (C=1)"
    model = "linear_regression" if regression else "logistic_regression"
    params = {"alpha": 1.0} if regression else {"C": 1.0}
    t, res = median_time(lambda: case.ours(model, params, threads), repeats)
    q = res.metrics["r2"] if regression else log_loss(res.model.proba_codes(case.ds.X[case.tr]), ytr)
    rows = [(task, "modelyard", t, q)]

    def quality(pred_train: Any, pred_test: Any) -> float:
        if regression:
            return r2(pred_test, yte)
        return log_loss(np.column_stack([1 - pred_train, pred_train]), ytr)

    try:
        from glum import GeneralizedLinearRegressor

        # glum minimizes (1/2N)·deviance + (alpha/2)·‖w‖²: alpha = λ for logistic (deviance = 2·log-loss),
        # λ/2 for squared error (deviance = Σ r², ours is the mean r²); λ = 1/(C·N) or 2·alpha/N
        lam = 2.0 / len(ytr) if regression else 1.0 / len(ytr)

        def glum_fit() -> Any:
            with threadpool_limits(threads):
                g = GeneralizedLinearRegressor(family="normal" if regression else "binomial",
                                               alpha=lam / 2 if regression else lam, l1_ratio=0.0, scale_predictors=False)
                g.fit((Xtr - mu) / sd, ytr)
                return g, g.predict((Xte - mu) / sd)

        t, (g, pred) = median_time(glum_fit, repeats)
        rows.append((task, "glum", t, quality(None if regression else g.predict((Xtr - mu) / sd), pred)))
    except ImportError:
        rows.append((task, "glum (not installed)", float("nan"), float("nan")))
    try:
        import statsmodels.api as sm

        def sm_fit() -> Any:
            with threadpool_limits(threads):
                A = sm.add_constant((Xtr - mu) / sd)
                B = sm.add_constant((Xte - mu) / sd)
                if regression:  # statsmodels has no closed-form ridge: OLS
                    f = sm.OLS(ytr, A).fit()
                else:  # no L2 in Logit.fit: the unpenalized MLE (C=1 on 130k rows is nearly the same)
                    f = sm.Logit(ytr, A).fit(disp=0, method="newton")
                return f, f.predict(B), A

        t, (f, pred, A) = median_time(sm_fit, repeats)
        lib = "statsmodels (" + ("OLS" if regression else "Logit, unpenalized") + ")"
        rows.append((task, lib, t, quality(None if regression else f.predict(A), pred)))
    except ImportError:
        rows.append((task, "statsmodels (not installed)", float("nan"), float("nan")))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--small", type=int, default=200_000)
    p.add_argument("--large", type=int, default=2_000_000)
    p.add_argument("--dist-rows", type=int, default=4_000_000)
    p.add_argument("--only", nargs="+", default=["logistic", "linear", "pass", "dist", "others"])
    a = p.parse_args()

    import modelyard as my

    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    warm = my.from_arrays(*make(3000, 2))
    my.train(warm, model="logistic_regression", threads=a.threads)  # imports and first-call costs, both sides
    print(f"# load: {os.getloadavg()} on {os.cpu_count()} cores; threads {a.threads}; repeats {a.repeats}")
    if "logistic" in a.only:
        print("\n| logistic regression (C=1) | modelyard.train (s) | sklearn fit+predict (s) | ratio | train log-loss ours | "
              "sklearn | difference | iterations ours / sklearn | ours: fit only (s) | ours: data fingerprint (s) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for n, k in ((a.small, 2), (a.large, 2), (a.small, 10)):
            case = Case(n, k, regression=False)
            r = run_logistic(case, a.threads, a.repeats)
            print(f"| {n:,} x {D}, {k} classes | {r['ours']:.3f} | {r['sk']:.3f} | {r['ours'] / r['sk']:.2f}x | "
                  f"{r['ours_loss']:.6f} | {r['sk_loss']:.6f} | {r['ours_loss'] - r['sk_loss']:+.1e} | "
                  f"{r['iters']} / {r['sk_iters']} | {r['fit']:.3f} | {r['hash']:.3f} |", flush=True)
            del case
    if "linear" in a.only:
        print("\n| linear regression | scikit-learn | modelyard.train (s) | sklearn fit+predict (s) | ratio | test R² ours "
              "| sklearn | ours: fit only (s) |")
        print("|---|---|---|---|---|---|---|---|")
        for n in (a.small, a.large):
            case = Case(n, 0, regression=True)
            for name, r in run_linear(case, a.threads, a.repeats).items():
                print(f"| {n:,} x {D} | {name} | {r['ours']:.3f} | {r['sk']:.3f} | {r['ours'] / r['sk']:.2f}x | "
                      f"{r['ours_r2']:.4f} | {r['sk_r2']:.4f} | {r['fit']:.3f} |", flush=True)
            del case
    if "pass" in a.only:
        bw = bandwidth(a.threads)
        print(f"\nmemory bandwidth (numpy sum of 1 GiB float64): {bw:.1f} GB/s")
        print("\n| one pass over the training rows | seconds | GB/s | fraction of bandwidth |")
        print("|---|---|---|---|")
        for k in (2, 10):
            case = Case(a.small, k, regression=False)
            r = run_pass(case, k, a.threads)
            what = "binary" if k == 2 else f"{k} classes"
            print(f"| loss + gradient, {what}, {len(case.tr):,} x {D} float64 | {r['eval_s'] * 1e3:.2f} ms | "
                  f"{r['eval_gbs']:.1f} | {r['eval_gbs'] / bw:.2f} |")
            if k == 2:
                print(f"| Gram sums (linear regression), {len(case.tr):,} x {D} float32 | {r['gram_s'] * 1e3:.2f} ms | "
                      f"{r['gram_gbs']:.1f} | {r['gram_gbs'] / bw:.2f} |")
                print(f"| design copy + moments (once per fit), read f32 + write f64 | {r['design_s'] * 1e3:.2f} ms | "
                      f"{r['design_gbs']:.1f} | {r['design_gbs'] / bw:.2f} |", flush=True)
    if "dist" in a.only:
        r = run_dist(a.dist_rows, a.threads)
        print(f"\n| logistic regression, {a.dist_rows:,} x {D} | wall time of train() (s) | fit (s) | L-BFGS iterations |")
        print("|---|---|---|---|")
        print(f"| 1 process, {a.threads} threads | {r['one']:.2f} | {r['one_fit']:.2f} | {r['iters'][0]} |")
        print(f"| 2 ranks (gloo), 1 thread each | {r['two']:.2f} | {r['two_fit']:.2f} | {r['iters'][1]} |")
        print(f"\nlargest coefficient difference, 2 ranks vs 1 (relative): {r['diff']:.1e}", flush=True)
    if "others" in a.only:
        print(f"\n| {a.small:,} x {D}, same training rows | library | fit + predict (s) | train log-loss / test R² |")
        print("|---|---|---|---|")
        for task, lib, t, q in run_others(a.threads, a.small, a.repeats):
            print(f"| {task} | {lib} | {t:.3f} | {q:.6f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
