"""Study storage: modelyard's trial store vs Optuna's RDB storage, both on one SQLite file.

Two scenarios, each run for both libraries in this one process run (workers are subprocesses
of it), random search on both sides so the optimizer's own cost is not measured:

1. sequential: one process runs ``--trials`` trials of a trivial objective; reported: the
   store's overhead per trial (ask + tell + bookkeeping), median over ``--repeats``.
2. shared: ``--workers`` processes share one study on one SQLite file until it holds
   ``--trials`` trials (Optuna: each process runs its share, as Optuna has no study-wide
   budget); reported: wall time, trials finished, duplicate trial numbers, and processes that
   died with an error (e.g. "database is locked").

    python benchmarks/study_storage.py --trials 200 --workers 4 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SLEEP_S = 0.005  # the shared scenario's objective: long enough that workers overlap


def objective_value(x: float, y: float) -> float:
    """The trivial objective both libraries evaluate."""
    return (x - 1.0) ** 2 + (y + 2.0) ** 2


def run_modelyard(url: str, n_trials: int, name: str, sleep: float) -> None:
    """Run (or join) a modelyard study until it holds ``n_trials`` trials."""
    from modelyard import tune

    space = tune.SearchSpace({"x": tune.Float(-5.0, 5.0), "y": tune.Float(-5.0, 5.0)})
    study = tune.Study(space, optimizer="random", pruner="none", seed=0, storage=url, name=name)

    def f(p):
        if sleep:
            time.sleep(sleep)
        return objective_value(p["x"], p["y"])

    if n_trials:
        study.optimize(f, n_trials=n_trials)


def run_optuna(url: str, n_trials: int, name: str, sleep: float) -> None:
    """Run ``n_trials`` trials of an Optuna study (created or loaded)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=url, study_name=name, load_if_exists=True,
                                sampler=optuna.samplers.RandomSampler(seed=None))

    def f(trial):
        x, y = trial.suggest_float("x", -5.0, 5.0), trial.suggest_float("y", -5.0, 5.0)
        if sleep:
            time.sleep(sleep)
        return objective_value(x, y)

    if n_trials:
        study.optimize(f, n_trials=n_trials)


def count(lib: str, url: str, name: str) -> tuple[int, int]:
    """(finished trials, duplicate trial numbers) of a study."""
    if lib == "modelyard":
        from modelyard import tune
        from modelyard.records.trials import TrialState

        trials = tune.Study.load(name, url).trials
        numbers = [t.number for t in trials]
        return sum(t.state is not TrialState.RUNNING for t in trials), len(numbers) - len(set(numbers))
    import optuna

    trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    return sum(t.state.is_finished() for t in trials), len(numbers) - len(set(numbers))


def sequential(lib: str, n_trials: int, folder: Path, rep: int) -> float:
    """Milliseconds per trial of one process running ``n_trials`` trials."""
    url = f"sqlite:///{folder / f'seq-{lib}-{rep}.db'}"
    fn = run_modelyard if lib == "modelyard" else run_optuna
    fn(url, 1, "warmup", 0.0)  # schema creation and imports are not per-trial cost
    t0 = time.perf_counter()
    fn(url, n_trials, "seq", 0.0)
    return (time.perf_counter() - t0) / n_trials * 1000


def shared(lib: str, n_trials: int, workers: int, folder: Path, rep: int) -> dict[str, float]:
    """Wall time, finished trials, duplicates and failed processes of ``workers`` processes sharing a study."""
    url = f"sqlite:///{folder / f'shared-{lib}-{rep}.db'}"
    # the study exists before the workers start (as `optuna create-study` would make it), so the race
    # measured is the one of running trials, not of creating the schema
    (run_modelyard if lib == "modelyard" else run_optuna)(url, 0, "shared", 0.0)
    share = n_trials if lib == "modelyard" else n_trials // workers
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", lib, url, str(share)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(workers)]
    errs = [p.communicate()[1] for p in procs]
    wall = time.perf_counter() - t0
    failed = sum(p.returncode != 0 for p in procs)
    finished, dups = count(lib, url, "shared")
    first_error = next((_error_line(e) for p, e in zip(procs, errs) if p.returncode and e.strip()), "")
    return {"wall_s": wall, "finished": finished, "duplicates": dups, "failed_procs": failed, "error": first_error}


def _error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if "Error" in ln and ":" in ln]
    return lines[-1] if lines else stderr.strip().splitlines()[-1]


def main() -> None:
    """Run both scenarios for both libraries and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--worker", nargs=3, metavar=("LIB", "URL", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        lib, url, n = args.worker
        (run_modelyard if lib == "modelyard" else run_optuna)(url, int(n), "shared", SLEEP_S)
        return
    import optuna

    import modelyard

    print(f"modelyard {modelyard.__version__}, optuna {optuna.__version__}; SQLite; random search; "
          f"{args.trials} trials; {args.repeats} repeats (medians)")
    libs = ("optuna", "modelyard")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seq = {lib: [] for lib in libs}
        sh = {lib: [] for lib in libs}
        for rep in range(args.repeats):
            for lib in libs:
                seq[lib].append(sequential(lib, args.trials, folder, rep))
                sh[lib].append(shared(lib, args.trials, args.workers, folder, rep))
    print("\n1. sequential, one process: store overhead per trial (ms, median)")
    print("| library | ms per trial |")
    print("| --- | ---: |")
    for lib in libs:
        print(f"| {lib} | {statistics.median(seq[lib]):.1f} |")
    print(f"ratio optuna / modelyard: {statistics.median(seq['optuna']) / statistics.median(seq['modelyard']):.2f}")
    print(f"\n2. shared: {args.workers} processes, one SQLite study, {args.trials} trials in all, "
          f"objective sleeps {SLEEP_S * 1000:.0f} ms (medians; failures summed over repeats)")
    print("| library | wall s | trials finished | duplicate numbers | processes failed |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for lib in libs:
        rows = sh[lib]
        print(f"| {lib} | {statistics.median(r['wall_s'] for r in rows):.1f} | "
              f"{statistics.median(r['finished'] for r in rows):.0f} | {sum(r['duplicates'] for r in rows)} | "
              f"{sum(r['failed_procs'] for r in rows)} of {args.workers * args.repeats} |")
        for r in rows:
            if r["error"]:
                print(f"  {lib} error: {r['error'][:160]}")
                break
    w = {lib: statistics.median(r["wall_s"] for r in sh[lib]) for lib in libs}
    print(f"ratio optuna / modelyard wall time: {w['optuna'] / w['modelyard']:.2f}")


if __name__ == "__main__":
    main()
