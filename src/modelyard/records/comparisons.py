"""Comparison records: paired tests, metric deltas, cost, diagnostics, parameter distances and the comparison."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..schema import Task

__all__ = [
    "VERDICTS", "ArrayDistance", "CompareEntry", "Comparison", "Cost", "Diagnostics", "Latency", "McNemarTest",
    "MetricDelta", "PairTest", "ParamDistance", "RowCheck", "RowSelection",
]

VERDICTS = ("A better", "no significant difference", "B better")


@dataclass(frozen=True)
class McNemarTest:
    """McNemar's test on the paired correctness of A and B over the same rows (counts and three p-values)."""

    both_right: int
    a_only: int  # rows A classified correctly and B did not
    b_only: int  # rows B classified correctly and A did not
    both_wrong: int
    p_exact: float  # two-sided exact binomial test of a_only vs b_only (the one verdicts use)
    p_midp: float  # mid-p variant: p_exact less the probability of the observed table
    statistic: float  # chi-square statistic with continuity correction, (|a_only - b_only| - 1)^2 / (a_only + b_only)
    p_chi2: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> McNemarTest:
        """Inverse of ``to_dict``."""
        return cls(**d)


@dataclass(frozen=True)
class MetricDelta:
    """One metric of A and B on the same rows, the difference B - A and its paired bootstrap interval."""

    metric: str
    a: float | None
    b: float | None
    delta: float | None  # b - a on all rows
    ci_low: float | None  # percentile interval of b - a over the bootstrap resamples, level 1 - alpha
    ci_high: float | None
    p_value: float | None  # two-sided bootstrap p-value of "no difference"
    higher_is_better: bool
    better: str | None  # "A", "B", or None when equal or not available
    significant: bool  # the interval excludes 0
    label: str | None = None  # the class, for per-class metrics

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MetricDelta:
        """Inverse of ``to_dict``."""
        return cls(**d)


@dataclass(frozen=True)
class PairTest:
    """A against B: the significance test behind the verdict and every metric side by side."""

    a: str  # label (the ref as given) of A
    b: str
    test: str  # "mcnemar_exact" or "bootstrap:<metric>"
    p_value: float
    p_adjusted: float  # Holm-adjusted over all pairs of the comparison (equal to p_value for one pair)
    verdict: str  # one of VERDICTS
    winner: str | None  # label of the significantly better version, or None
    metrics: tuple[MetricDelta, ...]
    per_class: tuple[MetricDelta, ...] = ()
    mcnemar: McNemarTest | None = None

    def delta(self, metric: str) -> MetricDelta:
        """The entry of ``metric`` (KeyError naming the available metrics if absent)."""
        for m in self.metrics:
            if m.metric == metric:
                return m
        raise KeyError(f"no metric {metric!r} in this pair; available: {', '.join(m.metric for m in self.metrics)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "a": self.a, "b": self.b, "test": self.test, "p_value": self.p_value, "p_adjusted": self.p_adjusted,
            "verdict": self.verdict, "winner": self.winner,
            "metrics": [m.to_dict() for m in self.metrics],
            "per_class": [m.to_dict() for m in self.per_class],
            "mcnemar": self.mcnemar.to_dict() if self.mcnemar is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PairTest:
        """Inverse of ``to_dict``."""
        return cls(
            a=d["a"], b=d["b"], test=d["test"], p_value=d["p_value"], p_adjusted=d["p_adjusted"],
            verdict=d["verdict"], winner=d.get("winner"),
            metrics=tuple(MetricDelta.from_dict(m) for m in d.get("metrics") or ()),
            per_class=tuple(MetricDelta.from_dict(m) for m in d.get("per_class") or ()),
            mcnemar=McNemarTest.from_dict(d["mcnemar"]) if d.get("mcnemar") else None,
        )


@dataclass(frozen=True)
class Latency:
    """Inference latency measured at comparison time, after warm-up (seconds)."""

    batch_size: int
    repeats: int  # timed calls of each kind
    batch_p50_s: float
    batch_p95_s: float
    row_p50_s: float  # one row per call (online serving)
    row_p95_s: float
    rows_per_s: float  # batch_size / batch_p50_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Latency:
        """Inverse of ``to_dict``."""
        return cls(**d)


@dataclass(frozen=True)
class Cost:
    """What a version costs: training time (from its record), latency (measured now), size and parameters."""

    train_time_s: float | None  # None without a registry record
    size_bytes: int | None  # artifact bytes on disk; None without a registry record
    state_bytes: int  # bytes of the learned arrays in memory
    n_parameters: int
    latency: Latency | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "train_time_s": self.train_time_s, "size_bytes": self.size_bytes, "state_bytes": self.state_bytes,
            "n_parameters": self.n_parameters, "latency": self.latency.to_dict() if self.latency else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Cost:
        """Inverse of ``to_dict``."""
        lat = d.get("latency")
        return cls(d.get("train_time_s"), d.get("size_bytes"), int(d["state_bytes"]), int(d["n_parameters"]),
                   Latency.from_dict(lat) if lat else None)


def _tuples(v: Any) -> Any:
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


@dataclass(frozen=True)
class Diagnostics:
    """Plot data of one version: confusion matrix, ROC and precision-recall points, or a sample of predictions."""

    confusion: tuple[tuple[int, ...], ...] | None = None  # rows: true class, columns: predicted class
    roc: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (false positive rates, true positive rates)
    pr: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (recalls, precisions)
    y_true: tuple[float, ...] | None = None  # regression: a seeded sample of rows (at most 2,000)
    y_pred: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        def lists(v: Any) -> Any:
            return [lists(x) for x in v] if isinstance(v, tuple) else v

        return {k: lists(getattr(self, k)) for k in ("confusion", "roc", "pr", "y_true", "y_pred")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Diagnostics:
        """Inverse of ``to_dict``."""
        return cls(**{k: _tuples(d.get(k)) for k in ("confusion", "roc", "pr", "y_true", "y_pred")})


@dataclass(frozen=True)
class CompareEntry:
    """One compared version: identity, metrics evaluated now on the comparison data, cost and rank."""

    label: str  # the ref as given, e.g. churn/3 or churn@production
    family: str
    version_id: str | None
    ref: str | None  # NAME/NUMBER, when it comes from a registry
    params: dict[str, Any]
    metrics: dict[str, Any]  # as train's metrics: scalars, and per_class for classification
    cost: Cost
    rank: int  # 1 = best by the comparison's ranking metric
    parent_id: str | None = None
    diagnostics: Diagnostics | None = None
    importance: dict[str, Any] | None = None  # {"method", "values": {feature: value}} (models/importance.py)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "label": self.label, "family": self.family, "version_id": self.version_id, "ref": self.ref,
            "params": self.params, "metrics": self.metrics, "cost": self.cost.to_dict(), "rank": self.rank,
            "parent_id": self.parent_id,
            "diagnostics": self.diagnostics.to_dict() if self.diagnostics else None,
            "importance": self.importance,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CompareEntry:
        """Inverse of ``to_dict``."""
        diag = d.get("diagnostics")
        return cls(
            label=d["label"], family=d["family"], version_id=d.get("version_id"), ref=d.get("ref"),
            params=dict(d.get("params") or {}), metrics=dict(d.get("metrics") or {}), cost=Cost.from_dict(d["cost"]),
            rank=int(d["rank"]), parent_id=d.get("parent_id"),
            diagnostics=Diagnostics.from_dict(diag) if diag else None,
            importance=d.get("importance"),
        )


@dataclass(frozen=True)
class ArrayDistance:
    """How far one learned array moved from A to B."""

    name: str
    shape: tuple[int, ...]
    l2: float  # ||b - a||
    relative_l2: float | None  # ||b - a|| / ||a||, None when a is all zeros
    cosine: float | None  # a.b / (||a|| ||b||), None when either is all zeros

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"name": self.name, "shape": list(self.shape), "l2": self.l2, "relative_l2": self.relative_l2,
                "cosine": self.cosine}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArrayDistance:
        """Inverse of ``to_dict``."""
        return cls(d["name"], tuple(d["shape"]), d["l2"], d.get("relative_l2"), d.get("cosine"))


@dataclass(frozen=True)
class ParamDistance:
    """Distance between the parameters of A and B (same family and shapes), overall and per array."""

    a: str
    b: str
    comparable: bool
    reason: str | None = None  # why not comparable
    l2: float | None = None  # over all floating-point weight arrays together (preprocessing statistics excluded)
    relative_l2: float | None = None
    cosine: float | None = None
    arrays: tuple[ArrayDistance, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"a": self.a, "b": self.b, "comparable": self.comparable, "reason": self.reason, "l2": self.l2,
                "relative_l2": self.relative_l2, "cosine": self.cosine, "arrays": [x.to_dict() for x in self.arrays]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParamDistance:
        """Inverse of ``to_dict``."""
        return cls(d["a"], d["b"], bool(d["comparable"]), d.get("reason"), d.get("l2"), d.get("relative_l2"),
                   d.get("cosine"), tuple(ArrayDistance.from_dict(x) for x in d.get("arrays") or ()))


@dataclass(frozen=True)
class RowCheck:
    """How the comparison data was checked against one version's training rows."""

    label: str
    how: str  # "split": same data, split re-derived; "rows": by row content; "sample": by a sample of them; "unchecked"
    trained: int | None  # rows of the data it trained or validated on (those found); None when unchecked
    note: str = ""  # why it could not be checked, or what a sample check cannot rule out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RowCheck:
        """Inverse of ``to_dict``."""
        return cls(d["label"], d["how"], d.get("trained"), d.get("note", ""))


@dataclass(frozen=True)
class RowSelection:
    """Which rows of the given data a comparison evaluated on, and why: those no compared version trained on."""

    given: int  # rows of the data as given
    used: int  # rows evaluated on
    training: int  # rows found to be training or validation rows of some version
    allowed: bool  # training rows kept on request (--allow-training-rows)
    checks: tuple[RowCheck, ...]
    note: str  # one sentence: "evaluated on the 114 rows held out from every version ..."

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"given": self.given, "used": self.used, "training": self.training, "allowed": self.allowed,
                "checks": [c.to_dict() for c in self.checks], "note": self.note}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RowSelection:
        """Inverse of ``to_dict``."""
        return cls(int(d["given"]), int(d["used"]), int(d["training"]), bool(d["allowed"]),
                   tuple(RowCheck.from_dict(c) for c in d.get("checks") or ()), d.get("note", ""))


@dataclass(frozen=True)
class Comparison:
    """Versions evaluated on the same rows: leaderboard, pairwise tests and verdicts, cost and weight distances.

    Two versions give one pair, A (first) against B (second). More give a leaderboard
    and one pair per other version, each against the best (A), Holm-corrected.
    """

    task: Task
    metric: str  # the ranking metric
    higher_is_better: bool
    alpha: float
    resamples: int
    seed: int
    correction: str  # "none" (two versions) or "holm"
    n_rows: int  # rows evaluated on (``rows`` says which of the data's rows and why)
    data_source: str
    data_fingerprint: str
    classes: tuple[Any, ...] | None
    entries: tuple[CompareEntry, ...]  # in the order given
    pairs: tuple[PairTest, ...]
    distances: tuple[ParamDistance, ...] = ()
    created_at: str = ""  # ISO-8601 UTC
    rows: RowSelection | None = None  # which rows were evaluated on; None in comparisons saved before it existed

    @property
    def leaderboard(self) -> tuple[CompareEntry, ...]:
        """Entries best first."""
        return tuple(sorted(self.entries, key=lambda e: e.rank))

    @property
    def best(self) -> CompareEntry:
        """The entry ranked first."""
        return self.leaderboard[0]

    def entry(self, label: str) -> CompareEntry:
        """The entry with ``label`` (KeyError naming the labels if absent)."""
        for e in self.entries:
            if e.label == label:
                return e
        raise KeyError(f"no version {label!r} in this comparison; it has {', '.join(e.label for e in self.entries)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (the shape of ``compare --json`` and the REST API)."""
        return {
            "task": self.task.value, "metric": self.metric, "higher_is_better": self.higher_is_better,
            "alpha": self.alpha, "resamples": self.resamples, "seed": self.seed, "correction": self.correction,
            "n_rows": self.n_rows, "data_source": self.data_source, "data_fingerprint": self.data_fingerprint,
            "classes": list(self.classes) if self.classes is not None else None,
            "best": self.best.label,
            "entries": [e.to_dict() for e in self.entries],
            "pairs": [p.to_dict() for p in self.pairs],
            "distances": [x.to_dict() for x in self.distances],
            "created_at": self.created_at,
            "rows": self.rows.to_dict() if self.rows is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Comparison:
        """Inverse of ``to_dict``."""
        classes = d.get("classes")
        return cls(
            task=Task(d["task"]), metric=d["metric"], higher_is_better=bool(d["higher_is_better"]),
            alpha=float(d["alpha"]), resamples=int(d["resamples"]), seed=int(d["seed"]),
            correction=d["correction"], n_rows=int(d["n_rows"]), data_source=d["data_source"],
            data_fingerprint=d["data_fingerprint"], classes=tuple(classes) if classes is not None else None,
            entries=tuple(CompareEntry.from_dict(e) for e in d["entries"]),
            pairs=tuple(PairTest.from_dict(p) for p in d["pairs"]),
            distances=tuple(ParamDistance.from_dict(x) for x in d.get("distances") or ()),
            created_at=d.get("created_at", ""),
            rows=RowSelection.from_dict(d["rows"]) if d.get("rows") else None,
        )
