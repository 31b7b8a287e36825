"""Frozen records shared by every layer: schemas, training configuration and results.

Records are plain data: they hold no connections and no live rows, and each has
``to_dict``/``from_dict`` giving JSON-safe values, so the CLI's ``--json``, the REST API
and the store all speak the same shapes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = [
    "Column",
    "EpochLog",
    "FitConfig",
    "Schema",
    "Task",
]


class Task(str, Enum):
    """What the target is: class labels or real values."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"


@dataclass(frozen=True)
class Column:
    """One feature column: its name, kind, original dtype and, if categorical, its categories."""

    name: str
    kind: str  # "numeric" or "categorical"
    dtype: str
    categories: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "categories": list(self.categories) if self.categories is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Column:
        """Inverse of ``to_dict``."""
        cats = d.get("categories")
        return cls(d["name"], d["kind"], d["dtype"], tuple(cats) if cats is not None else None)


@dataclass(frozen=True)
class Schema:
    """What a dataset looks like: feature columns, target, task and class labels."""

    columns: tuple[Column, ...]
    target: str | None
    task: Task
    classes: tuple[Any, ...] | None = None

    @property
    def feature_names(self) -> list[str]:
        """Names of the feature columns, in order."""
        return [c.name for c in self.columns]

    @property
    def categorical(self) -> list[int]:
        """Indices of the categorical feature columns."""
        return [i for i, c in enumerate(self.columns) if c.kind == "categorical"]

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        return len(self.classes) if self.classes is not None else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "columns": [c.to_dict() for c in self.columns],
            "target": self.target,
            "task": self.task.value,
            "classes": list(self.classes) if self.classes is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schema:
        """Inverse of ``to_dict``."""
        classes = d.get("classes")
        return cls(
            columns=tuple(Column.from_dict(c) for c in d["columns"]),
            target=d.get("target"),
            task=Task(d["task"]),
            classes=tuple(classes) if classes is not None else None,
        )


@dataclass(frozen=True)
class FitConfig:
    """How long and how carefully to train: the training configuration, apart from hyperparameters."""

    epochs: int = 20
    patience: int | None = None  # epochs without validation improvement before stopping
    max_time: float | None = None  # wall-clock budget in seconds
    seed: int = 0
    min_delta: float = 0.0  # smallest improvement of the validation loss that counts
    device: str | None = None  # "cpu", "cuda", ...; None picks automatically
    threads: int | None = None  # torch intra-op threads; None keeps torch's default

    def __post_init__(self) -> None:
        import numbers

        from .errors import ParamError

        def whole(v: Any) -> bool:
            return isinstance(v, numbers.Integral) and not isinstance(v, bool)

        if not whole(self.epochs) or self.epochs < 1:
            raise ParamError(f"epochs must be an int >= 1, got {self.epochs!r}; pass e.g. --epochs 20")
        if self.patience is not None and (not whole(self.patience) or self.patience < 1):
            raise ParamError(f"patience must be an int >= 1, got {self.patience!r}; pass e.g. --patience 5")
        if self.max_time is not None and (
            not isinstance(self.max_time, numbers.Real) or isinstance(self.max_time, bool) or not self.max_time > 0
        ):
            raise ParamError(f"max_time must be a number of seconds > 0, got {self.max_time!r}; pass e.g. --max-time 90s")
        if not whole(self.seed) or self.seed < 0:
            raise ParamError(f"seed must be an int >= 0, got {self.seed!r}; pass e.g. --seed 0")
        for name in ("epochs", "patience", "seed"):  # numpy integers become ints, so to_dict stays JSON-safe
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FitConfig:
        """Inverse of ``to_dict`` (unknown keys are ignored, so old records still load)."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class EpochLog:
    """What one epoch of training measured."""

    epoch: int
    train_loss: float
    val_loss: float | None = None
    val_metric: float | None = None  # accuracy for classification, R² for regression
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EpochLog:
        """Inverse of ``to_dict``."""
        return cls(**d)


# --- registry records (store/, registry.py) -------------------------------------------

__all__ += ["AliasMove", "Deletion", "Lineage", "LineageEdge", "Version", "VersionSummary"]


def _iso(t: float) -> str:
    """Seconds since the epoch as ISO-8601 UTC with microseconds, e.g. ``2025-01-31T12:00:00.123456Z``."""
    import datetime as _dt

    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_iso(s: str | float) -> float:
    """Inverse of ``_iso`` (numbers pass through)."""
    import datetime as _dt

    if isinstance(s, (int, float)):
        return float(s)
    return _dt.datetime.fromisoformat(s).timestamp()  # 3.11+ reads the trailing Z


@dataclass(frozen=True)
class VersionSummary:
    """One registered version as listings show it: identity, family, key metric, aliases, parent, creation."""

    id: str  # 64 hex chars: sha256 of artifact digest, params, parent id and a random salt
    name: str
    number: int  # per-name, assigned by the database: 1, 2, 3, ... (never reused)
    family: str
    task: str  # "classification" or "regression"
    key_metric: str | None  # f1 for classification, rmse for regression
    key_value: float | None
    parent_id: str | None
    aliases: tuple[str, ...]
    created_at: float  # seconds since the epoch (UTC)
    creator: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``NAME/NUMBER``."""
        return f"{self.name}/{self.number}"

    @property
    def short_id(self) -> str:
        """The first 12 characters of the id, as listings show it."""
        return self.id[:12]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (the shape of ``models list --json`` and the REST API)."""
        return {
            "ref": self.ref,
            "id": self.id,
            "name": self.name,
            "number": self.number,
            "family": self.family,
            "task": self.task,
            "key_metric": self.key_metric,
            "key_value": self.key_value,
            "parent_id": self.parent_id,
            "aliases": list(self.aliases),
            "created_at": _iso(self.created_at),
            "creator": self.creator,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VersionSummary:
        """Inverse of ``to_dict``."""
        return cls(
            id=d["id"], name=d["name"], number=int(d["number"]), family=d["family"], task=d["task"],
            key_metric=d.get("key_metric"), key_value=d.get("key_value"), parent_id=d.get("parent_id"),
            aliases=tuple(d.get("aliases") or ()), created_at=_from_iso(d["created_at"]),
            creator=d.get("creator", ""), tags=dict(d.get("tags") or {}),
        )


@dataclass(frozen=True)
class Version:
    """An immutable registered model version: everything needed to reproduce, audit and load it."""

    id: str
    name: str
    number: int
    family: str
    params: dict[str, Any]  # hyperparameters, defaults filled in
    fit_config: FitConfig  # epochs, patience, seed, ... (training configuration)
    metrics: dict[str, Any]  # held-out metrics of these weights
    history: tuple[EpochLog, ...]  # one entry per training epoch
    schema: Schema  # the dataset's columns, target, task and classes
    fingerprint: str  # sha256 of the training data as loaded
    seed: int
    library_versions: dict[str, str]
    parent_id: str | None
    artifact: str  # sha256 hex of the safetensors weights
    artifact_size: int  # bytes
    created_at: float
    creator: str
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    source: str = "<memory>"  # where the training data came from
    split: dict[str, int] = field(default_factory=dict)  # rows in train / validation / test
    links: dict[str, Any] = field(default_factory=dict)  # study/trial ids, metrics_from, ...
    model_config: dict[str, Any] = field(default_factory=dict)  # Predictor.config() less params and schema
    aliases: tuple[str, ...] = ()  # aliases pointing here when the record was read

    @property
    def ref(self) -> str:
        """``NAME/NUMBER``."""
        return f"{self.name}/{self.number}"

    @property
    def short_id(self) -> str:
        """The first 12 characters of the id."""
        return self.id[:12]

    @property
    def task(self) -> str:
        """``classification`` or ``regression``."""
        return self.schema.task.value

    def predictor_config(self) -> dict[str, Any]:
        """The config ``Predictor.from_parts`` needs: format, family, params and schema."""
        return {**self.model_config, "family": self.family, "params": self.params, "schema": self.schema.to_dict()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (the shape of ``models show --json`` and the REST API)."""
        return {
            "ref": self.ref,
            "id": self.id,
            "name": self.name,
            "number": self.number,
            "family": self.family,
            "task": self.task,
            "params": self.params,
            "fit_config": self.fit_config.to_dict(),
            "metrics": self.metrics,
            "history": [h.to_dict() for h in self.history],
            "schema": self.schema.to_dict(),
            "fingerprint": self.fingerprint,
            "seed": self.seed,
            "library_versions": dict(self.library_versions),
            "parent_id": self.parent_id,
            "artifact": self.artifact,
            "artifact_size": self.artifact_size,
            "created_at": _iso(self.created_at),
            "creator": self.creator,
            "tags": dict(self.tags),
            "description": self.description,
            "source": self.source,
            "split": dict(self.split),
            "links": dict(self.links),
            "model_config": dict(self.model_config),
            "aliases": list(self.aliases),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Version:
        """Inverse of ``to_dict``."""
        return cls(
            id=d["id"], name=d["name"], number=int(d["number"]), family=d["family"], params=dict(d["params"]),
            fit_config=FitConfig.from_dict(d.get("fit_config") or {}), metrics=dict(d.get("metrics") or {}),
            history=tuple(EpochLog.from_dict(h) for h in d.get("history") or ()),
            schema=Schema.from_dict(d["schema"]), fingerprint=d.get("fingerprint", ""), seed=int(d.get("seed", 0)),
            library_versions=dict(d.get("library_versions") or {}), parent_id=d.get("parent_id"),
            artifact=d["artifact"], artifact_size=int(d.get("artifact_size", 0)),
            created_at=_from_iso(d["created_at"]), creator=d.get("creator", ""), tags=dict(d.get("tags") or {}),
            description=d.get("description"), source=d.get("source", "<memory>"), split=dict(d.get("split") or {}),
            links=dict(d.get("links") or {}), model_config=dict(d.get("model_config") or {}),
            aliases=tuple(d.get("aliases") or ()),
        )


@dataclass(frozen=True)
class LineageEdge:
    """A parent link: what changed from parent to child and whether the weights were retrained."""

    child_id: str
    parent_id: str
    diff: dict[str, tuple[Any, Any]]  # param -> (value in parent, value in child); absent keys are None
    retrained: bool  # False: the child reuses the parent's weights (a branch with new params only)
    via: tuple[str, ...] = ()  # ids of deleted versions this edge bridges (force delete re-parents)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "child_id": self.child_id,
            "parent_id": self.parent_id,
            "diff": {k: [a, b] for k, (a, b) in self.diff.items()},
            "retrained": self.retrained,
            "via": list(self.via),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LineageEdge:
        """Inverse of ``to_dict``."""
        return cls(
            d["child_id"], d["parent_id"], {k: (v[0], v[1]) for k, v in (d.get("diff") or {}).items()},
            bool(d.get("retrained")), tuple(d.get("via") or ()),
        )


@dataclass(frozen=True)
class Lineage:
    """A version with all its ancestors (nearest first, up to the root) and all its descendants, and the edges."""

    version: VersionSummary
    ancestors: tuple[VersionSummary, ...]  # parent, grandparent, ..., root
    descendants: tuple[VersionSummary, ...]  # breadth-first: children, grandchildren, ...
    edges: tuple[LineageEdge, ...]  # every parent link among these versions

    @property
    def root(self) -> VersionSummary:
        """The oldest ancestor (the version itself when it has no parent)."""
        return self.ancestors[-1] if self.ancestors else self.version

    def edge_to(self, child_id: str) -> LineageEdge | None:
        """The edge from ``child_id`` to its parent, if it is in this lineage."""
        return next((e for e in self.edges if e.child_id == child_id), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (the shape of ``models lineage --json``)."""
        return {
            "version": self.version.to_dict(),
            "ancestors": [v.to_dict() for v in self.ancestors],
            "descendants": [v.to_dict() for v in self.descendants],
            "edges": [e.to_dict() for e in self.edges],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Lineage:
        """Inverse of ``to_dict``."""
        return cls(
            VersionSummary.from_dict(d["version"]),
            tuple(VersionSummary.from_dict(v) for v in d["ancestors"]),
            tuple(VersionSummary.from_dict(v) for v in d["descendants"]),
            tuple(LineageEdge.from_dict(e) for e in d["edges"]),
        )


@dataclass(frozen=True)
class AliasMove:
    """One entry of an alias's history: who moved it when, from which version to which, and why."""

    seq: int  # position in the store's alias history (increasing)
    name: str
    alias: str
    from_id: str | None  # None when the alias was first set
    to_id: str | None  # None when the alias was removed
    from_number: int | None
    to_number: int | None
    at: float  # seconds since the epoch (UTC)
    user: str
    reason: str | None
    action: str  # "set", "rollback", "unset" or "delete" (dropped by a forced delete)

    @property
    def from_ref(self) -> str | None:
        """``NAME/NUMBER`` the alias left, if any."""
        return None if self.from_number is None else f"{self.name}/{self.from_number}"

    @property
    def to_ref(self) -> str | None:
        """``NAME/NUMBER`` the alias now holds, if any."""
        return None if self.to_number is None else f"{self.name}/{self.to_number}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (the shape of ``models history --json``)."""
        return {
            "seq": self.seq,
            "name": self.name,
            "alias": self.alias,
            "from": self.from_ref,
            "to": self.to_ref,
            "from_id": self.from_id,
            "to_id": self.to_id,
            "at": _iso(self.at),
            "user": self.user,
            "reason": self.reason,
            "action": self.action,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AliasMove:
        """Inverse of ``to_dict``."""

        def num(ref: str | None) -> int | None:
            return None if ref is None else int(ref.rsplit("/", 1)[1])

        return cls(
            int(d["seq"]), d["name"], d["alias"], d.get("from_id"), d.get("to_id"), num(d.get("from")),
            num(d.get("to")), _from_iso(d["at"]), d.get("user", ""), d.get("reason"), d.get("action", "set"),
        )


@dataclass(frozen=True)
class Deletion:
    """What deleting a version did: the children re-parented to its parent and the aliases dropped."""

    version: VersionSummary
    reparented: tuple[str, ...]  # ids of former children, now children of the deleted version's parent
    dropped: tuple[AliasMove, ...]  # alias removals recorded in the history

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (the shape of ``models delete --json``)."""
        return {
            "deleted": self.version.to_dict(),
            "reparented": list(self.reparented),
            "dropped_aliases": [m.to_dict() for m in self.dropped],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Deletion:
        """Inverse of ``to_dict``."""
        return cls(
            VersionSummary.from_dict(d["deleted"]), tuple(d.get("reparented") or ()),
            tuple(AliasMove.from_dict(m) for m in d.get("dropped_aliases") or ()),
        )


# --- tuning records (tune/, study.py) -------------------------------------------------

__all__ += ["StudyInfo", "Trial", "TrialState"]


class TrialState(str, Enum):
    """Where a trial is in its life: running, or finished as complete, pruned or failed."""

    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """Whether the trial has ended (any state but running)."""
        return self is not TrialState.RUNNING


@dataclass(frozen=True)
class Trial:
    """One evaluation of a study: its params, state, value, intermediate values and why it ended so.

    ``value`` is the objective's return for a complete trial and the last reported value for a
    pruned one; ``reason`` says why a trial was pruned or failed. Times are seconds since the
    epoch on the store's clock.
    """

    study: str
    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    reason: str | None = None
    worker: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish (None while running)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def last_step(self) -> int | None:
        """The latest step with a reported intermediate value."""
        return max(self.intermediate) if self.intermediate else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (intermediate steps become string keys, as JSON requires)."""
        return {
            "study": self.study,
            "number": self.number,
            "state": self.state.value,
            "params": dict(self.params),
            "value": self.value,
            "intermediate": {str(k): v for k, v in sorted(self.intermediate.items())},
            "reason": self.reason,
            "worker": self.worker,
            "started_at": _iso(self.started_at) if self.started_at is not None else None,
            "finished_at": _iso(self.finished_at) if self.finished_at is not None else None,
            "heartbeat_at": _iso(self.heartbeat_at) if self.heartbeat_at is not None else None,
            "duration": self.duration,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trial:
        """Inverse of ``to_dict``."""
        return cls(
            study=d["study"],
            number=int(d["number"]),
            state=TrialState(d["state"]),
            params=dict(d["params"]),
            value=d.get("value"),
            intermediate={int(k): float(v) if v is not None else float("nan")
                          for k, v in (d.get("intermediate") or {}).items()},
            reason=d.get("reason"),
            worker=d.get("worker"),
            started_at=_from_iso(d["started_at"]) if d.get("started_at") is not None else None,
            finished_at=_from_iso(d["finished_at"]) if d.get("finished_at") is not None else None,
            heartbeat_at=_from_iso(d["heartbeat_at"]) if d.get("heartbeat_at") is not None else None,
        )


@dataclass(frozen=True)
class StudyInfo:
    """A study's definition (space, direction, optimizer, pruner, seed, user attributes) and tallies."""

    name: str
    direction: str  # "minimize" or "maximize"
    space: dict[str, Any]  # SearchSpace.to_dict()
    optimizer: str
    pruner: str
    seed: int
    created_at: float
    attrs: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # trials per state value
    best_value: float | None = None
    best_number: int | None = None

    @property
    def n_trials(self) -> int:
        """Trials in the study, in every state."""
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "name": self.name,
            "direction": self.direction,
            "space": self.space,
            "optimizer": self.optimizer,
            "pruner": self.pruner,
            "seed": self.seed,
            "created_at": _iso(self.created_at),
            "attrs": dict(self.attrs),
            "counts": {s.value: int(self.counts.get(s.value, 0)) for s in TrialState},
            "n_trials": self.n_trials,
            "best_value": self.best_value,
            "best_number": self.best_number,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyInfo:
        """Inverse of ``to_dict``."""
        return cls(
            name=d["name"], direction=d["direction"], space=dict(d["space"]), optimizer=d["optimizer"],
            pruner=d["pruner"], seed=int(d["seed"]), created_at=_from_iso(d["created_at"]),
            attrs=dict(d.get("attrs") or {}), counts={k: int(v) for k, v in (d.get("counts") or {}).items() if v},
            best_value=d.get("best_value"), best_number=d.get("best_number"),
        )


# --- comparison records (compare.py, stats.py) ----------------------------------------

__all__ += [
    "VERDICTS", "ArrayDistance", "CompareEntry", "Comparison", "Cost", "Diagnostics", "Latency", "McNemarTest",
    "MetricDelta", "PairTest", "ParamDistance",
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "label": self.label, "family": self.family, "version_id": self.version_id, "ref": self.ref,
            "params": self.params, "metrics": self.metrics, "cost": self.cost.to_dict(), "rank": self.rank,
            "parent_id": self.parent_id,
            "diagnostics": self.diagnostics.to_dict() if self.diagnostics else None,
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
    n_rows: int
    data_source: str
    data_fingerprint: str
    classes: tuple[Any, ...] | None
    entries: tuple[CompareEntry, ...]  # in the order given
    pairs: tuple[PairTest, ...]
    distances: tuple[ParamDistance, ...] = ()
    created_at: str = ""  # ISO-8601 UTC

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
        )
