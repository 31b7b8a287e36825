"""Run the HPO benchmark side by side and print (optionally publish) the markdown table.

    python -m benchmarks.hpo.run --quick                 # minutes: 4 BBOB problems, 3 seeds
    python -m benchmarks.hpo.run --jobs 3 --write-docs   # full: 7 BBOB functions x d=2,5,10, 2 tuning tasks,
                                                         # and 6 held-out BBOB functions, 5 seeds each

Each (problem, optimizer, seed) run appends one JSON line to ``--results`` (so an interrupted
run resumes where it stopped). Every worker process is pinned to one BLAS/OpenMP thread, so
the time-per-suggestion column is single-core time, objective excluded.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse
import json
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from .drivers import OPTIMIZERS, run_one
from .problems import make_problem
from .report import markdown, summarize, targets

FULL_FUNCS = (1, 2, 7, 8, 10, 15, 20)
HELDOUT_FUNCS = (3, 6, 11, 12, 14, 17)
QUICK = ["bbob:1:5", "bbob:8:2", "bbob:10:5", "bbob:15:5"]
SECTION = "## Hyperparameter optimization"
NOTES = """\
Reading the tables: modelyard-gp's edge comes from ill-conditioned and higher-dimensional
problems (ellipsoids, discus, bent cigar, Rosenbrock in d = 5-10) and from the mixed tuning
tasks; it is weakest on functions with plateaus or strong asymmetry (f7 step ellipsoid, f6
attractive sector), where TPE or GPSampler do better, and Schwefel f20 in d = 10 splits seeds
between finding the basin and not.

Problems: BBOB f1 sphere, f2 separable ellipsoid, f7 step ellipsoid, f8 Rosenbrock, f10 rotated
ellipsoid, f15 Rastrigin, f20 Schwefel in d = 2, 5, 10 on [-5, 5]^d (cocoex; f_opt read from the
bbob logger's header); `hgb-breast_cancer`: HistGradientBoostingClassifier, 7 params (log floats,
log ints, a stepped int, a categorical); `mlp-digits`: MLPClassifier on 600 digits, 6 params
(ints, log floats, two categoricals). Optimizers: modelyard `RandomOptimizer`; Optuna
`TPESampler(multivariate=True)`; Optuna `GPSampler`; modelyard `GPOptimizer()` with defaults,
driven by a ten-line ask/tell loop over `suggest` (benchmarks/hpo/drivers.py).

Design choices measured with this harness during development (geometric mean over problems of
the median regret, 3 seeds, budget 60; lower is better; not rerun by the command above). Rounds
differ in their problem sets, so compare rows within a table only.

| round 1 (f1 d5, f8 d2, f10 d5, f15 d5, f2 d10, f20 d5) | geo-mean regret |
|---|---:|
| lengthscale prior as in Hvarfner et al.: log ell ~ N(sqrt 2 + log(d)/2, sqrt 3), no warping | 344 |
| log ell ~ N(log(d)/2, sqrt 3), no warping | 101 |
| log ell ~ N(log 0.5 + log(d)/2, sqrt 3), no warping | 18.4 |
| ... RBF instead of Matern-5/2 | 45.6 |
| ... log when positive over >= 2 decades, else Yeo-Johnson | 20.9 |
| ... Yeo-Johnson | 13.7 |
| Optuna GPSampler, same problems and seeds | 8.1 |

| round 2 (round 1 plus f7 d5, f21 d2; prior log 0.5, sqrt 3) | geo-mean regret |
|---|---:|
| no warping | 5.05 |
| Yeo-Johnson | 2.18 |
| log(y - min + 0.1 median) | 58 |
| `warp="select"`: none or Yeo-Johnson, whichever has the higher GP evidence | 3.80 |
| initial points 3 / 5 / 8 / default min(10, max(5, D + 1)) | 2.36 / 2.38 / 5.92 / 2.20 |

| round 3 (f1, f2, f20 d10; f1, f2, f7, f8, f10, f15, f20 d5; f2, f8 d2), Yeo-Johnson | geo-mean regret |
|---|---:|
| log ell ~ N(-1.6 + log(d)/2, sqrt 3) | 13.6 |
| log ell ~ N(-2.0 + log(d)/2, sqrt 3) | 7.27 |
| log ell ~ N(-2.5 + log(d)/2, sqrt 3) | 7.37 |
| ... -2.0, no warping | 26.2 |
| log ell ~ N(-2.0 + log(d)/2, 1) (the default) | 7.45 |
| log ell ~ N(-2.2 + log(d)/2, 1) | 6.45 |
| log ell ~ N(-2.5 + log(d)/2, 1) | 8.34 |
| ... -2.0, scale 1, `warp="select"` | 5.97 |

Scale 1 was kept over sqrt 3 for what it does in d = 10 (f1: 0.018 vs 1.45, f2: 1.5e3 vs 8.1e4);
the geo-means of the last rows are within seed noise of each other (f20 d10 alone swings from 3
to 3e3 between seeds).

Round 4, after the held-out table above missed two of its targets. The failure it shows is a
crawl: on f6 d2 (and on Branin in one run in five, `tests/tune/test_study.py`) log-EI walks along a
bound in steps of 0.5-1% of the range, because after standardization the best values differ by
~0.002 standard deviations and the GP is sure of each small gain. Candidates were tuned on a dev
set (the 13 functions of both tables in d = 2, 5, 10, instances 1-10, 10 seeds; the first
held-out set is therefore no longer held out) and then checked on a second held-out set chosen
before any run: f4, f9, f13, f16, f19, f22, d = 2, 5, 10, instances 11-15. Ratio: geometric mean
over problems of (median regret of the variant / median regret of the default); count: problems
where the variant's median is <= the default's. Not rerunnable from the tree: the variants were
temporary patches of `GPOptimizer.suggest` or `warp_outputs` (as described in the table), run
through the same `drivers.run_modelyard` loop and then removed.

| round 4 variant | dev ratio | dev count | held-out 2 ratio | held-out 2 count |
|---|---:|---:|---:|---:|
| epsilon-greedy, eps = 0.1: a random Sobol point of the GP's mean/sd Pareto front (De Ath et al. 2021) | 0.87 | 19/39 | 0.99 | 7/18 |
| epsilon-greedy, eps = 0.05 | 0.95 | 19/39 | - | - |
| Yeo-Johnson of (y - min) / sd instead of the standardized y (resolution at the bottom) | 0.90 | 21/39 | 0.88 | 8/18 |
| both of the above | 0.91 | 23/39 | - | - |
| rank (Gaussian copula) warp, held-out-1 only, 5 seeds | geo-mean / random 0.207 vs 0.122 | | - | - |

None was adopted: the counts are coin flips, and f20 d10 alone moves a dev ratio by up to 8%
(162 vs 7.5 between variants, seed luck). Epsilon-greedy halves f6 d2-d5 and wins 17 of 26
problems in d <= 5 on dev, but only 5 of 12 on held-out 2. The rank warp ends the f6 crawl
(d2: 0.81 vs 23.4) but loses the smooth functions' precision (f11 d2: 89 vs 3.3).
"""


def _job(opt: str, spec: str, seed: int, budget: int) -> dict:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        problem = make_problem(spec, seed)
        t0 = time.perf_counter()
        values, times = run_one(opt, problem, budget, seed)
    return {
        "optimizer": opt,
        "spec": spec,
        "problem": problem.name,
        "seed": seed,
        "budget": budget,
        "kind": problem.kind,
        "dim": problem.space.n_dims,
        "f_opt": problem.f_opt,
        "values": values,
        "times": times,
        "wall": time.perf_counter() - t0,
    }


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="4 BBOB problems, 3 seeds, no held-out set")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per problem (full: 5)")
    ap.add_argument("--budget", type=int, default=60)
    ap.add_argument("--problems", nargs="*", default=None, help="specs: bbob:FID:DIM, hgb, mlp")
    ap.add_argument("--optimizers", nargs="*", default=list(OPTIMIZERS))
    ap.add_argument("--no-heldout", action="store_true", help="skip the held-out BBOB functions")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (one thread each)")
    ap.add_argument("--results", default=None, help="JSON-lines file of runs (resumable)")
    ap.add_argument("--write-docs", action="store_true", help="replace the section in docs/benchmarks.md")
    return ap.parse_args(argv)


def _run_all(jobs: list[tuple[str, str, int]], args: argparse.Namespace, results: Path) -> list[dict]:
    """Run the jobs not yet in ``results``; return every cached and new row."""
    rows = []
    if results.exists():
        rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    done = {(r["optimizer"], r["spec"], r["seed"], r["budget"]) for r in rows}
    todo = [(o, s, k) for o, s, k in jobs if (o, s, k, args.budget) not in done]
    # slow samplers first so the pool stays busy at the end
    todo.sort(key=lambda j: (j[1] not in ("hgb", "mlp"), j[0] != "optuna-gp"))
    print(f"{len(todo)} runs to do, {len(rows)} cached in {results}", file=sys.stderr)
    with ProcessPoolExecutor(args.jobs) as pool, results.open("a") as fh:
        futs = {pool.submit(_job, o, s, k, args.budget): (o, s, k) for o, s, k in todo}
        for i, fut in enumerate(as_completed(futs), 1):
            r = fut.result()
            fh.write(json.dumps(r) + "\n")
            fh.flush()
            rows.append(r)
            print(
                f"[{i}/{len(todo)}] {r['optimizer']:>14} {r['problem']:<24} seed {r['seed']} "
                f"best {min(r['values']):.6g} wall {r['wall']:.1f}s",
                file=sys.stderr,
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.problems:
        specs = args.problems
    elif args.quick:
        specs = QUICK
    else:
        specs = [f"bbob:{f}:{d}" for d in (2, 5, 10) for f in FULL_FUNCS] + ["hgb", "mlp"]
    n_seeds = args.seeds if args.seeds else (3 if args.quick else 5)
    groups = {"main": [(s, k) for s in specs for k in range(n_seeds)]}
    if not (args.quick or args.problems or args.no_heldout):
        # functions and instances never looked at while tuning the defaults
        groups["heldout"] = [
            (f"bbob:{f}:{d}", k)
            for d in (2, 5, 10)
            for f in HELDOUT_FUNCS
            for k in range(n_seeds, 2 * n_seeds)
        ]
    jobs = [(o, s, k) for pairs in groups.values() for s, k in pairs for o in args.optimizers]
    results = Path(args.results or f"benchmarks/hpo/results/{'quick' if args.quick else 'full'}.jsonl")
    results.parent.mkdir(parents=True, exist_ok=True)
    rows = _run_all(jobs, args, results)
    tables = {}
    for name, pairs in groups.items():
        wanted = {(o, s, k) for s, k in pairs for o in args.optimizers}
        sel = [
            r for r in rows if (r["optimizer"], r["spec"], r["seed"]) in wanted and r["budget"] == args.budget
        ]
        summary = summarize(sel, args.optimizers)
        tables[name] = (markdown(summary, args.budget), targets(summary))
        print(f"\n{name}:\n{tables[name][0]}")
        print("\n".join("- " + m for m in tables[name][1]))
    if args.write_docs:
        _write_docs(tables, args, n_seeds)
    return 0


def _versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{p} {version(p)}" for p in ("modelyard", "optuna", "coco-experiment", "scikit-learn"))


def _write_docs(tables: dict[str, tuple[str, list[str]]], args: argparse.Namespace, n_seeds: int) -> None:
    path = Path("docs/benchmarks.md")
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    cmd = "python -m benchmarks.hpo.run" + (" --quick" if args.quick else "") + " --jobs 3 --write-docs"
    table, met = tables["main"]
    body = (
        f"{SECTION}\n\n"
        f"Median simple regret over {n_seeds} seeds (BBOB instance = seed + 1; tuning tasks: 3-fold CV log loss,\n"
        f"regret against the best value any optimizer found for that seed), budget {args.budget} evaluations,\n"
        "all optimizers in one process run with the same seeds. Lower is better; bold is best in the row.\n"
        "Time per suggestion: CPU time, mean of the last 5 suggestions, one thread, objective excluded.\n"
        f"Versions: {_versions()}; the 2-core machine was shared with other jobs (load average up to ~10),\n"
        "which CPU times do not count.\n\n"
        f"Rerun: `{cmd}` (needs `pip install optuna greenlet coco-experiment`; about 30 minutes on 2 idle cores).\n\n"
        "Caveat: the GP's defaults (lengthscale prior, warping, initial design) were tuned on BBOB problems\n"
        "that overlap this table (instances 1-3 of some of its functions, see the ablations below). The\n"
        "held-out table after it uses functions and instances never looked at while tuning.\n\n"
        f"{table}\n\nTargets for modelyard-gp:\n\n" + "\n".join("- " + m for m in met) + "\n"
    )
    if "heldout" in tables:
        htable, hmet = tables["heldout"]
        body += (
            f"\n### Held out: BBOB {', '.join(f'f{f}' for f in HELDOUT_FUNCS)} in d = 2, 5, 10, "
            f"instances {n_seeds + 1}-{2 * n_seeds}\n\n{htable}\n\n"
            + "\n".join("- " + m for m in hmet)
            + "\n"
        )
    body += "\n" + NOTES
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: body + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
