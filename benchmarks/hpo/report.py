"""Summaries of benchmark results: median regret per problem, ranks, geo-mean ratios, timings."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

FLOOR = 1e-8  # BBOB's final precision: regrets below it count as solved
TASK_FLOOR = 1e-4  # tuning tasks: CV log-loss differences below this are noise, not progress


def regrets(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[float]]:
    """(problem, optimizer) -> simple regrets over seeds.

    Problems without a known optimum use the best value any optimizer found on that
    problem and seed, so their regret says how far each run stayed from the best known.
    """
    best_known: dict[tuple[str, int], float] = {}
    for r in rows:
        key = (r["problem"], r["seed"])
        best_known[key] = min(best_known.get(key, np.inf), min(r["values"]))
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        ref = r["f_opt"] if r["f_opt"] is not None else best_known[(r["problem"], r["seed"])]
        out[(r["problem"], r["optimizer"])].append(max(min(r["values"]) - ref, 0.0))
    return out


def summarize(rows: list[dict[str, Any]], optimizers: list[str]) -> dict[str, Any]:
    """Median regrets, mean ranks, geometric-mean regret ratio to random, time per suggestion."""
    reg = regrets(rows)
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    opts = [o for o in optimizers if any(k[1] == o for k in reg)]
    med = {p: {o: float(np.median(reg[(p, o)])) for o in opts if (p, o) in reg} for p in problems}
    floor = {r["problem"]: FLOOR if r["f_opt"] is not None else TASK_FLOOR for r in rows}
    problems = [p for p in problems if len(med[p]) == len(opts)]
    ranks = defaultdict(list)
    for p in problems:
        vals = np.array([max(med[p][o], floor[p]) for o in opts])
        for o, rk in zip(opts, _rankdata(vals)):
            ranks[o].append(rk)
    geo = {}
    for o in opts:
        if "random" in opts:
            ratios = [np.log(max(med[p][o], floor[p]) / max(med[p]["random"], floor[p])) for p in problems]
            geo[o] = float(np.exp(np.mean(ratios))) if ratios else float("nan")
    times: dict[str, dict[str, float]] = defaultdict(dict)
    for kind in ("continuous", "mixed"):
        for o in opts:
            ts = [
                np.mean(r["times"][-5:])
                for r in rows
                if r["optimizer"] == o and r["kind"] == kind and r["dim"] <= 10
            ]
            if ts:
                times[o][kind] = float(np.median(ts))
    return {
        "problems": problems,
        "optimizers": opts,
        "median": med,
        "floor": floor,
        "mean_rank": {o: float(np.mean(ranks[o])) for o in opts},
        "geo": geo,
        "times": times,
        "n_seeds": {p: len(reg[(p, opts[0])]) for p in problems},
    }


def _rankdata(v: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(v)


def markdown(s: dict[str, Any], budget: int) -> str:
    """The result table as markdown."""
    opts = s["optimizers"]
    lines = ["| problem | " + " | ".join(opts) + " |", "|---|" + "---:|" * len(opts)]
    for p in s["problems"]:
        row, fl = s["median"][p], s["floor"][p]
        best = min(max(row[o], fl) for o in opts)
        cells = []
        for o in opts:
            txt = f"{row[o]:.3g}" if row[o] >= fl else f"<{fl:g}"
            cells.append(f"**{txt}**" if max(row[o], fl) <= best else txt)
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    lines.append(
        "| mean rank (lower is better) | " + " | ".join(f"{s['mean_rank'][o]:.2f}" for o in opts) + " |"
    )
    if s["geo"]:
        lines.append("| geo-mean regret / random | " + " | ".join(f"{s['geo'][o]:.3g}" for o in opts) + " |")
    for kind in ("continuous", "mixed"):
        cells = [f"{1000 * s['times'][o][kind]:.1f}" if kind in s["times"].get(o, {}) else "-" for o in opts]
        lines.append(f"| ms per suggestion at n={budget}, {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(s: dict[str, Any]) -> list[str]:
    """Which of the issue's targets modelyard-gp meets."""
    out = []
    me = "modelyard-gp"
    if me not in s["optimizers"]:
        return out
    probs = s["problems"]

    def share(other: str) -> float:
        return float(
            np.mean(
                [
                    max(s["median"][p][me], s["floor"][p])
                    <= max(s["median"][p][other], s["floor"][p]) * (1 + 1e-9)
                    for p in probs
                ]
            )
        )

    if "optuna-gp" in s["optimizers"]:
        f = share("optuna-gp")
        out.append(
            f"median regret <= GPSampler's on {f:.0%} of problems (target >= 67%): {'met' if f >= 2 / 3 else 'NOT met'}"
        )
        g, h = s["geo"].get(me), s["geo"].get("optuna-gp")
        if g is not None and h is not None:
            out.append(
                f"geo-mean regret / random {g:.3g} vs GPSampler {h:.3g}: {'met' if g <= h else 'NOT met'}"
            )
    if "optuna-tpe" in s["optimizers"]:
        f = share("optuna-tpe")
        out.append(
            f"median regret <= TPE's on {f:.0%} of problems (target >= 80%): {'met' if f >= 0.8 else 'NOT met'}"
        )
    t = s["times"].get(me, {})
    if "continuous" in t:
        out.append(
            f"{1000 * t['continuous']:.0f} ms per suggestion, continuous d<=10 (target <= 100): "
            f"{'met' if t['continuous'] <= 0.1 else 'NOT met'}"
        )
    if "mixed" in t:
        out.append(
            f"{1000 * t['mixed']:.0f} ms per suggestion, mixed (target <= 200): "
            f"{'met' if t['mixed'] <= 0.2 else 'NOT met'}"
        )
    return out
