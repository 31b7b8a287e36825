"""Registry records: a version (summary and full), lineage edges and graphs, alias moves and deletions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..schema import Schema
from .times import from_iso, to_iso
from .training import EpochLog, FitConfig

__all__ = ["AliasMove", "Deletion", "Lineage", "LineageEdge", "ModelSummary", "Version", "VersionSummary"]


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
            "created_at": to_iso(self.created_at),
            "creator": self.creator,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VersionSummary:
        """Inverse of ``to_dict``."""
        return cls(
            id=d["id"], name=d["name"], number=int(d["number"]), family=d["family"], task=d["task"],
            key_metric=d.get("key_metric"), key_value=d.get("key_value"), parent_id=d.get("parent_id"),
            aliases=tuple(d.get("aliases") or ()), created_at=from_iso(d["created_at"]),
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
    # rows in train / validation / test; since the split record, also how they were drawn (data fingerprint,
    # seed, fractions, stratification) and a record of the training rows' content (data.split.split_record)
    split: dict[str, Any] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)  # study/trial ids, metrics_from, ...
    model_config: dict[str, Any] = field(default_factory=dict)  # Predictor.config() less params and schema
    aliases: tuple[str, ...] = ()  # aliases pointing here when the record was read
    config_digest: str | None = None  # sha256 of what a rebuild reads (predictor config and artifact), checked on load

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

    @property
    def split_recorded(self) -> bool:
        """Whether the version records how its rows were split (versions registered before it did not)."""
        return "seed" in self.split and "fingerprint" in self.split

    @property
    def importance(self) -> dict[str, Any] | None:
        """Feature importance recorded at registration: ``{"method", "values": {feature: value}}``, or None."""
        imp = self.model_config.get("importance")
        return dict(imp) if isinstance(imp, dict) else None

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
            "created_at": to_iso(self.created_at),
            "creator": self.creator,
            "tags": dict(self.tags),
            "description": self.description,
            "source": self.source,
            "split": dict(self.split),
            "links": dict(self.links),
            "model_config": dict(self.model_config),
            "importance": self.importance,  # derived from model_config (from_dict ignores it)
            "aliases": list(self.aliases),
            "config_digest": self.config_digest,
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
            created_at=from_iso(d["created_at"]), creator=d.get("creator", ""), tags=dict(d.get("tags") or {}),
            description=d.get("description"), source=d.get("source", "<memory>"), split=dict(d.get("split") or {}),
            links=dict(d.get("links") or {}), model_config=dict(d.get("model_config") or {}),
            aliases=tuple(d.get("aliases") or ()), config_digest=d.get("config_digest"),
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
            "at": to_iso(self.at),
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
            num(d.get("to")), from_iso(d["at"]), d.get("user", ""), d.get("reason"), d.get("action", "set"),
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


@dataclass(frozen=True)
class ModelSummary:
    """One registered model name: how many versions, the latest, and where its aliases point."""

    name: str
    n_versions: int
    latest: int | None  # highest live version number
    aliases: dict[str, int]  # alias -> version number
    created_at: float
    updated_at: float | None  # creation time of the newest version

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "name": self.name,
            "n_versions": self.n_versions,
            "latest": self.latest,
            "latest_ref": f"{self.name}/{self.latest}" if self.latest is not None else None,
            "aliases": dict(sorted(self.aliases.items())),
            "created_at": to_iso(self.created_at),
            "updated_at": to_iso(self.updated_at) if self.updated_at is not None else None,
        }
