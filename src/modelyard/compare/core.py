"""compare(): evaluate versions on the same rows, test whether their differences are real, and weigh their cost.

Input is a sequence of ``(label, predictor, version_or_None)``: the registry supplies
predictors rebuilt from verified artifacts and their ``Version`` records
(``compare_refs``), while tests and notebooks may pass fitted predictors directly. Nothing
is taken from stored metrics except the training time.

Two versions give one pair: A (first) against B (second), deltas are B - A. More give a
leaderboard by the ranking metric and one pair per other version, each against the best
(as A), with Holm-adjusted p-values.
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.dataset import Dataset
from ..errors import DataError, ModelyardError, ParamError
from ..records.comparisons import (
    VERDICTS,
    CompareEntry,
    Comparison,
    Cost,
    MetricDelta,
    PairTest,
    ParamDistance,
)
from ..schema import Task
from ..train.metrics import HIGHER_IS_BETTER, KEY_METRIC, classification_metrics, regression_metrics
from . import stats
from .align import Aligned, align
from .cost import measure_latency, parameter_distance, state_bytes
from .curves import MAX_SAMPLE, classification_diagnostics, regression_diagnostics
from .holdout import select_rows

__all__ = ["MIN_RESAMPLES", "Candidate", "CompareOptions", "check_distinct", "compare", "compare_refs"]

Candidate = tuple[str, Any, Any]  # (label, Predictor, Version record or None)

MIN_RESAMPLES = 1000
_CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "log_loss", "roc_auc")
_REGRESSION_METRICS = ("rmse", "mae", "r2")
_TESTS = ("auto", "mcnemar", "bootstrap")


@dataclass(frozen=True)
class CompareOptions:
    """How to compare: significance level, bootstrap size and seed, ranking metric, test, latency timing."""

    alpha: float = 0.05
    resamples: int = 2000
    seed: int = 0
    metric: str | None = None  # ranking metric; None: f1 (classification) or rmse (regression)
    test: str = "auto"  # "mcnemar" (classification), "bootstrap" (of the ranking metric), or auto
    latency: bool = True
    batch_size: int = 1024
    latency_budget_s: float = 1.0  # timing budget per version
    allow_training_rows: bool = False  # keep rows a compared version trained on (said in the result), not leave them out

    def __post_init__(self) -> None:
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, numbers.Real) or not 0 < a < 1:
            raise ParamError(f"alpha must be a number in (0, 1), got {a!r}; e.g. --alpha 0.05")
        r = self.resamples
        if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < MIN_RESAMPLES:
            raise ParamError(f"resamples must be an int >= {MIN_RESAMPLES}, got {r!r}; e.g. --resamples 2000")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise ParamError(f"seed must be an int >= 0, got {self.seed!r}")
        if self.test not in _TESTS:
            raise ParamError(f"test must be one of {', '.join(_TESTS)}, got {self.test!r}")
        if self.metric is not None and self.metric not in HIGHER_IS_BETTER:
            raise ParamError(
                f"unknown ranking metric {self.metric!r}; choose one of {', '.join(sorted(HIGHER_IS_BETTER))}"
            )
        bs = self.batch_size
        if isinstance(bs, bool) or not isinstance(bs, numbers.Integral) or bs < 1:
            raise ParamError(f"batch_size must be an int >= 1, got {bs!r}")
        b = self.latency_budget_s
        if isinstance(b, bool) or not isinstance(b, numbers.Real) or not math.isfinite(b) or not b > 0:
            raise ParamError(f"latency_budget_s must be a finite number of seconds > 0, got {b!r}")


def _finite(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _options(options: CompareOptions | None, overrides: Mapping[str, Any]) -> CompareOptions:
    if options is not None and overrides:
        raise ParamError("pass either options=CompareOptions(...) or keyword options, not both")
    if options is not None:
        return options
    import dataclasses

    known = {f.name for f in dataclasses.fields(CompareOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ParamError(f"unknown compare option(s) {', '.join(unknown)}; valid ones: {', '.join(sorted(known))}")
    return CompareOptions(**overrides)


def compare_refs(
    registry: Any, refs: Sequence[str], dataset: Dataset, options: CompareOptions | None = None, **kwargs: Any
) -> Comparison:
    """Compare registry versions ``refs`` (``NAME/N``, ``NAME@ALIAS``, id prefix) on ``dataset``."""
    opts = _options(options, kwargs)
    refs = [str(r) for r in refs]
    _check_labels(refs)
    versions = [registry.get(ref) for ref in refs]
    check_distinct(refs, [v.id for v in versions])
    candidates = []
    inherited: dict[str, list[Any]] = {}
    for ref, version in zip(refs, versions, strict=True):
        candidates.append((ref, registry.load_model(version.id), version))
        inherited[ref] = _warm_start_splits(registry, version)
    return compare(candidates, dataset, opts, inherited_splits=inherited)


def _warm_start_splits(registry: Any, version: Any) -> list[Any]:
    """The split records of the versions whose weights ``version`` continued from (None for a deleted one)."""
    from ..errors import NotFoundError

    out: list[Any] = []
    seen = {version.id}
    link = version.links.get("warm_start")
    while link and link not in seen:
        seen.add(link)
        try:
            parent = registry.get(link)
        except NotFoundError:
            out.append(None)
            break
        out.append(parent.split)
        link = parent.links.get("warm_start")
    return out


def check_distinct(refs: Sequence[str], ids: Sequence[str]) -> None:
    """ParamError when two refs (e.g. ``churn/2`` and ``churn@production``) name the same version."""
    seen: dict[str, str] = {}
    for ref, vid in zip(refs, ids, strict=True):
        if vid in seen:
            raise ParamError(
                f"{seen[vid]} and {ref} name the same version (id {vid[:12]}), which would be compared with itself; "
                "pass each version once"
            )
        seen[vid] = ref


def _check_labels(labels: Sequence[str]) -> None:
    if len(labels) < 2:
        raise ParamError(f"a comparison needs at least two versions, got {len(labels)}; e.g. compare churn/1 churn/2")
    seen = [lbl for i, lbl in enumerate(labels) if lbl in labels[:i]]
    if seen:
        raise ParamError(f"{seen[0]!r} is given more than once; pass each version once")


def compare(
    candidates: Sequence[Candidate], dataset: Dataset, options: CompareOptions | None = None, *,
    inherited_splits: Mapping[str, Sequence[Any]] | None = None, **kwargs: Any
) -> Comparison:
    """Evaluate every ``(label, predictor, version_or_None)`` on the rows of ``dataset`` none of them trained on.

    A version's training and validation rows are found from its split record (see
    ``compare.holdout``); ``inherited_splits[label]`` adds those of the versions it was
    warm-started from. ``allow_training_rows`` keeps every row (the result says how many
    flatter the versions); otherwise no held-out row at all is a DataError.
    """
    opts = _options(options, kwargs)
    labels = [str(c[0]) for c in candidates]
    _check_labels(labels)
    predictors = [c[1] for c in candidates]
    versions = [c[2] for c in candidates]
    aligned = align(dataset, [(lbl, p.schema) for lbl, p in zip(labels, predictors, strict=True)])
    records = [None if v is None else [getattr(v, "split", None) or {}, *(inherited_splits or {}).get(lbl, ())]
               for lbl, v in zip(labels, versions, strict=True)]
    keep, selection = select_rows(dataset, aligned, labels, records, allow_training_rows=opts.allow_training_rows)
    if selection.used < len(dataset):
        aligned = Aligned(tuple(X[keep] for X in aligned.X), aligned.y[keep], aligned.classes, aligned.class_maps)
    task = predictors[0].schema.task
    metric = opts.metric or KEY_METRIC[task]
    allowed = _CLASSIFICATION_METRICS if task is Task.CLASSIFICATION else _REGRESSION_METRICS
    if metric not in allowed:
        raise ParamError(f"metric {metric!r} does not apply to {task.value}; choose one of {', '.join(allowed)}")
    test = opts.test if opts.test != "auto" else ("mcnemar" if task is Task.CLASSIFICATION else "bootstrap")
    if test == "mcnemar" and task is not Task.CLASSIFICATION:
        raise ParamError("McNemar's test needs class predictions; use test='bootstrap' for regression")

    preds, probas = _predict(predictors, aligned)
    rng = np.random.default_rng(opts.seed)
    k = len(aligned.classes or ())
    if task is Task.CLASSIFICATION:
        point = [classification_metrics(aligned.y, p, q, aligned.classes or ()) for p, q in zip(preds, probas)]
        boot = stats.bootstrap_classification(aligned.y, np.stack(preds), probas, k, opts.resamples, rng)
        diags = [classification_diagnostics(aligned.y, p, q, k) for p, q in zip(preds, probas)]
    else:
        point = [regression_metrics(aligned.y, p) for p in preds]
        boot = stats.bootstrap_regression(aligned.y, np.stack(preds), opts.resamples, rng)
        n = len(aligned.y)
        rows = np.sort(rng.choice(n, size=min(n, MAX_SAMPLE), replace=False))
        diags = [regression_diagnostics(aligned.y, p, rows) for p in preds]

    values = [_finite(pm.get(metric)) for pm in point]
    lacking = [lbl for lbl, v in zip(labels, values) if v is None]
    if lacking:
        raise ParamError(
            f"cannot rank by {metric!r}: it is not available for {', '.join(lacking)} (log_loss and roc_auc need "
            "class probabilities; roc_auc needs a binary target with both classes); rank by another metric"
        )
    higher = HIGHER_IS_BETTER[metric]
    order = sorted(range(len(labels)), key=lambda i: (-values[i] if higher else values[i], i))  # type: ignore[operator]
    rank = {i: r + 1 for r, i in enumerate(order)}

    latencies = measure_latency(predictors, aligned.X, batch_size=opts.batch_size,
                                budget_s=opts.latency_budget_s) if opts.latency else [None] * len(labels)
    entries = tuple(
        _entry(labels[i], predictors[i], versions[i], point[i], latencies[i], rank[i], diags[i])
        for i in range(len(labels))
    )

    index_pairs = [(0, 1)] if len(labels) == 2 else [(order[0], j) for j in order[1:]]
    raw = [_pair(labels, i, j, task, point, boot, preds, aligned, opts, metric, test) for i, j in index_pairs]
    p_raw = [pt.p_value for pt in raw]
    p_adj = stats.holm(p_raw) if len(raw) > 1 else np.asarray(p_raw)
    pairs = tuple(_decide(pt, float(pa), opts.alpha, metric) for pt, pa in zip(raw, p_adj, strict=True))

    tested = {frozenset(ij) for ij in index_pairs}
    distances: list[ParamDistance] = []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            d = parameter_distance(labels[i], predictors[i], labels[j], predictors[j])
            if d.comparable or frozenset((i, j)) in tested:
                distances.append(d)

    return Comparison(
        task=task, metric=metric, higher_is_better=higher, alpha=float(opts.alpha), resamples=int(opts.resamples),
        seed=int(opts.seed), correction="holm" if len(pairs) > 1 else "none", n_rows=selection.used,
        data_source=dataset.source, data_fingerprint=dataset.fingerprint, classes=aligned.classes,
        entries=entries, pairs=pairs, distances=tuple(distances),
        created_at=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", rows=selection,
    )


def _predict(predictors: Sequence[Any], aligned: Aligned) -> tuple[list[NDArray], list[NDArray | None]]:
    """Each version's predictions on its coded rows, classes mapped to the reference order."""
    preds: list[NDArray] = []
    probas: list[NDArray | None] = []
    for p, X, cmap in zip(predictors, aligned.X, aligned.class_maps, strict=True):
        try:
            if p.schema.task is Task.REGRESSION:
                preds.append(np.asarray(p.predict_codes(X), dtype=np.float64).ravel())
                probas.append(None)
                continue
            if p.has_proba:
                q = np.asarray(p.proba_codes(X), dtype=np.float64)
                ref = np.empty_like(q)
                ref[:, cmap] = q  # column c of the model is class cmap[c] of the reference
                preds.append(ref.argmax(axis=1))
                probas.append(ref)
            else:
                codes = np.asarray(p.predict_codes(X)).astype(np.int64).ravel()
                preds.append(cmap[codes])
                probas.append(None)
        except ModelyardError:
            raise
        except (ValueError, RuntimeError) as e:
            raise DataError(f"{p.family} could not predict on the comparison data ({e}); check the data") from e
        if len(preds[-1]) != len(aligned.y):
            raise DataError(f"{p.family} returned {len(preds[-1])} predictions for {len(aligned.y)} rows")
    return preds, probas


def _entry(label: str, predictor: Any, version: Any, metrics: dict[str, Any], latency: Any, rank: int,
           diag: Any) -> CompareEntry:
    recorded = dict(getattr(version, "metrics", None) or {})
    cost = Cost(
        train_time_s=_finite(recorded.get("train_time_s")),
        size_bytes=int(version.artifact_size) if getattr(version, "artifact_size", None) is not None else None,
        state_bytes=state_bytes(predictor),
        n_parameters=int(predictor.n_parameters()),
        latency=latency,
    )
    return CompareEntry(
        label=label,
        family=str(getattr(version, "family", None) or predictor.family),
        version_id=getattr(version, "id", None),
        ref=getattr(version, "ref", None),
        params=dict(getattr(version, "params", None) or predictor.get_params()),
        metrics=metrics,
        cost=cost,
        rank=rank,
        parent_id=getattr(version, "parent_id", None),
        diagnostics=diag,
        importance=predictor.importance() if hasattr(predictor, "importance") else None,
    )


def _delta(name: str, a: Any, b: Any, diffs: NDArray, alpha: float, label: str | None = None) -> MetricDelta:
    a, b = _finite(a), _finite(b)
    higher = HIGHER_IS_BETTER.get(name, True)
    if a is None or b is None:
        return MetricDelta(name, a, b, None, None, None, None, higher, None, False, label)
    low, high, p = stats.paired_interval(diffs, alpha)
    delta = b - a
    better = None if delta == 0 else ("B" if (delta > 0) == higher else "A")
    significant = low is not None and high is not None and (low > 0 or high < 0)
    return MetricDelta(name, a, b, delta, low, high, p, higher, better, bool(significant), label)


def _pair(labels: Sequence[str], i: int, j: int, task: Task, point: Sequence[dict[str, Any]],
          boot: Mapping[str, NDArray], preds: Sequence[NDArray], aligned: Aligned, opts: CompareOptions,
          metric: str, test: str) -> PairTest:
    """A = version i, B = version j: every metric's delta and the raw p-value of the chosen test."""
    names = _CLASSIFICATION_METRICS if task is Task.CLASSIFICATION else _REGRESSION_METRICS
    deltas = tuple(
        _delta(name, point[i].get(name), point[j].get(name), boot[name][j] - boot[name][i], opts.alpha)
        for name in names if name in boot and (name in point[i] or name in point[j])
    )
    per_class: list[MetricDelta] = []
    mcnemar = None
    if task is Task.CLASSIFICATION:
        for c, cls in enumerate(aligned.classes or ()):
            key = str(cls)
            for name in ("precision", "recall", "f1"):
                pa = point[i]["per_class"].get(key, {}).get(name)
                pb = point[j]["per_class"].get(key, {}).get(name)
                diffs = boot[f"per_class.{name}"][j, :, c] - boot[f"per_class.{name}"][i, :, c]
                per_class.append(_delta(name, pa, pb, diffs, opts.alpha, label=key))
        mcnemar = stats.mcnemar(preds[i] == aligned.y, preds[j] == aligned.y)
    if test == "mcnemar":
        assert mcnemar is not None
        p, name = mcnemar.p_exact, "mcnemar_exact"
    else:
        d = next(x for x in deltas if x.metric == metric)
        p, name = (d.p_value if d.p_value is not None else 1.0), f"bootstrap:{metric}"
    return PairTest(labels[i], labels[j], name, float(p), float(p), VERDICTS[1], None, deltas,
                    tuple(per_class), mcnemar)


def _decide(pt: PairTest, p_adjusted: float, alpha: float, metric: str) -> PairTest:
    """The verdict of one pair at ``alpha`` on its (adjusted) p-value; the winner is the side the test favours."""
    winner = None
    verdict = VERDICTS[1]
    if p_adjusted < alpha:
        if pt.test == "mcnemar_exact" and pt.mcnemar is not None:
            b_wins = pt.mcnemar.b_only > pt.mcnemar.a_only  # a significant split is never a tie
        else:
            b_wins = pt.delta(metric).better == "B"
        winner = pt.b if b_wins else pt.a
        verdict = VERDICTS[2] if b_wins else VERDICTS[0]
    return PairTest(pt.a, pt.b, pt.test, pt.p_value, float(p_adjusted), verdict, winner, pt.metrics,
                    pt.per_class, pt.mcnemar)
