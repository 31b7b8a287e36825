"""The model registry (V): register trained models as immutable versions, branch them, move aliases, roll back.

A version is the database row (``store/versions.py``) plus its weights, stored once per
distinct content as safetensors bytes in the artifact store (``store/artifacts.py``). The
weights are written before the row, so a crash in between leaves only an unreferenced blob
(``gc`` removes those), never a version without weights.

Version ids are sha256 over (artifact digest, hyperparameters, parent id, random salt): not
derived from the clock, unique even for identical registrations, shown as a 12-character
prefix. Refs name versions as ``NAME/NUMBER``, ``NAME@ALIAS`` or a unique id prefix (>= 4 hex);
``NAME@latest`` is a built-in alias for the highest number (reserved: it cannot be set or moved).

Lineage cannot form a cycle: a parent must exist before its child, ids never change, and a
forced delete re-parents children to their grandparent (an ancestor, so still acyclic).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import math
import os
import re
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import (
    ArtifactError,
    CorruptArtifactError,
    ModelError,
    ParamError,
    SchemaMismatchError,
    StoreError,
)
from ..records.versions import AliasMove, Deletion, Lineage, Version, VersionSummary
from ..store.artifacts import ArtifactStore, state_from_bytes, state_to_bytes
from ..store.db import Database
from ..store.gc_lock import WeightsCollected
from ..store.refs import LATEST
from ..store.version_tables import rebuild_digest
from ..store.versions import VersionStore, dumps

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..compare import CompareOptions
    from ..data.dataset import Dataset
    from ..models.predictor import Predictor
    from ..records.comparisons import Comparison
    from ..schema import Schema
    from ..train.result import TrainResult

__all__ = ["Registry", "check_alias", "check_model_name", "current_user", "default_model_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")
_FULL_ID = re.compile(r"^[0-9a-f]{64}$")
_WRITE_ATTEMPTS = 50  # a registration writes its weights again at most this often when gc keeps removing them


def current_user() -> str:
    """Who is acting: ``$MODELYARD_USER``, else the login name, else ``unknown``."""
    user = os.environ.get("MODELYARD_USER")
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no LOGNAME/USER
        return "unknown"


def check_model_name(name: str) -> str:
    """``name`` if it is a valid model name, else ParamError naming the rule."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ParamError(
            f"model name {name!r} is not allowed: use 1-200 letters, digits, '_', '-' or '.', starting with a letter "
            "or digit (e.g. churn or churn-mlp)"
        )
    return name


def check_alias(alias: str) -> str:
    """``alias`` if it is a valid alias, else ParamError naming the rule."""
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise ParamError(
            f"alias {alias!r} is not allowed: use 1-64 letters, digits, '_', '-' or '.', starting with a letter "
            "(e.g. production or staging)"
        )
    if alias == LATEST:
        raise ParamError(f"alias {LATEST!r} is reserved: NAME@{LATEST} always names the newest version; pick another")
    return alias


def default_model_name(source: str, family: str) -> str:
    """The name ``modelyard train`` registers under without ``--name``: data stem and family, e.g. ``iris-mlp``."""
    src = str(source)
    if src.startswith("sklearn:"):
        stem = src.split(":", 1)[1]
    elif src.startswith("<"):
        stem = "data"
    else:
        stem = os.path.splitext(os.path.basename(src.rstrip("/")))[0] or "data"
    fam = family.rsplit(":", 1)[-1].rsplit(".", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", f"{stem}-{fam}").strip("_.-") or "model"
    return name[:200] if name[0].isalnum() else ("m" + name)[:200]


class Registry:
    """Versions, lineage and aliases over one database and one artifact store."""

    def __init__(self, db: Database, artifacts: ArtifactStore, *, user: str | None = None):
        self.db = db
        self.artifacts = artifacts
        self.versions = VersionStore(db)
        self.user = user or current_user()

    def __repr__(self) -> str:
        return f"Registry({self.db.safe_url!r}, artifacts={self.artifacts.url!r})"

    # --- writing versions -------------------------------------------------------------
    def register(
        self,
        result: TrainResult,
        name: str,
        *,
        parent: str | None = None,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
        links: Mapping[str, Any] | None = None,
    ) -> Version:
        """Store ``result``'s weights and record it as the next version of ``name`` (optionally a child of ``parent``).

        ``links`` records where the version came from beyond its parent, e.g. ``{"study": "s1", "trial": 7}``.
        """
        check_model_name(name)
        self.db.require_writable()  # before any weights are written
        config = result.model.config()
        data = state_to_bytes(result.model.state())
        fields = {
            "name": name,
            "family": config.pop("family"),
            "params": config.pop("params"),
            "data_schema": config.pop("schema"),
            "model_config": config,
            "fit_config": _fields(result.config),
            "metrics": result.metrics,
            "history": [_fields(h) for h in result.history],
            "fingerprint": result.fingerprint,
            "seed": int(result.seed),
            "library_versions": result.library_versions,
            "source": result.source,
            "split": result.split,
            "artifact_size": len(data),
            **self._common(result.schema.task.value, result.metrics, tags, description, links),
        }
        # gc removes a blob only under its lock, after reading that no version names it, and the
        # version's transaction checks under the same lock that the blob is still there; when a gc
        # came in between, the bytes are written again and the transaction retried
        for _ in range(_WRITE_ATTEMPTS):
            fields["artifact"] = self.artifacts.put(data)
            try:
                return self._create(fields, parent=parent, retrained=True, blob_present=self.artifacts.stored)
            except WeightsCollected:
                continue
        raise StoreError(
            f"a gc removed the weights of this {name} registration {_WRITE_ATTEMPTS} times before it could be "
            "recorded; retry when the gc is done, or run gc with an age guard (--older-than 1h)"
        )

    def branch(
        self,
        ref: str,
        params: Mapping[str, Any] | None = None,
        *,
        retrain: Dataset | None = None,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
        **train_options: Any,
    ) -> Version:
        """A child of ``ref`` with ``params`` overriding its hyperparameters.

        Without ``retrain`` the child shares the parent's weights (no bytes are copied) and its
        metrics (``links["metrics_from"]`` names the parent); the new hyperparameters take effect
        when it is retrained. With ``retrain`` (a Dataset with the parent's columns) the model is
        warm-started from the parent's weights, trained with ``train_options`` (``epochs``,
        ``patience``, ``seed``, ... as for ``modelyard.train``; default: the parent's), evaluated
        and registered.
        """
        from ..models import get_family

        parent = self.get(ref)
        name = check_model_name(name) if name is not None else parent.name
        family = get_family(parent.family)
        merged = family.params.validate({**parent.params, **dict(params or {})}, parent.family)
        config = {**parent.predictor_config(), "params": merged}
        state = self._state(parent)
        try:
            init = _predictor().from_parts(config, state)
        except ModelError as e:
            changed = ", ".join(f"{k}={v}" for k, v in dict(params or {}).items())
            raise ParamError(
                f"the weights of {parent.ref} do not fit {changed}, which changes their shapes or layout; train a fresh "
                f"model instead: modelyard train DATA --model {parent.family} --set ..."
            ) from e
        if retrain is None:
            if train_options:
                raise ParamError(
                    f"training options {', '.join(sorted(train_options))} apply only when retraining; pass retrain=DATASET "
                    "(CLI: --retrain DATA)"
                )
            fields = {
                "name": name, "family": parent.family, "params": init.get_params(),
                "data_schema": parent.schema.to_dict(), "model_config": parent.model_config,
                "fit_config": parent.fit_config.to_dict(), "metrics": parent.metrics,
                "history": [h.to_dict() for h in parent.history], "fingerprint": parent.fingerprint,
                "seed": parent.seed, "library_versions": parent.library_versions, "source": parent.source,
                "split": parent.split, "artifact": parent.artifact, "artifact_size": parent.artifact_size,
                **self._common(parent.task, parent.metrics, tags, description,
                               {**parent.links, "metrics_from": parent.links.get("metrics_from", parent.id)}),
            }
            return self._create(fields, parent=parent.id, retrained=False)
        from ..train import train

        dataset = conform(retrain, parent.schema)
        options = {
            "epochs": parent.fit_config.epochs, "patience": parent.fit_config.patience,
            "max_time": parent.fit_config.max_time, "seed": parent.fit_config.seed, **train_options,
        }
        result = train(dataset, model=parent.family, init=init, **options)
        return self.register(result, name, parent=parent.id, tags=tags, description=description,
                             links={"warm_start": parent.id})

    def _common(self, task: str, metrics: Mapping[str, Any], tags: Mapping[str, Any] | None,
                description: str | None, links: Mapping[str, Any] | None) -> dict[str, Any]:
        from ..schema import Task
        from ..train.metrics import KEY_METRIC

        key = KEY_METRIC[Task(task)]
        value = metrics.get(key)
        return {
            "task": task,
            "key_metric": key,
            "key_value": float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None,
            "tags": _check_tags(tags),
            "description": None if description is None else str(description),
            "links": dict(links or {}),
            "creator": self.user,
        }

    def _create(self, fields: dict[str, Any], *, parent: str | None, retrained: bool,
                blob_present: Callable[[str], bool] | None = None) -> Version:
        parent_id = parent
        if parent is not None and not _FULL_ID.match(parent):  # a full id is checked inside the insert's transaction
            parent_id = self.versions.resolve(parent).id
        salt = secrets.token_hex(16)
        fields["id"] = hashlib.sha256(
            "\n".join([fields["artifact"], dumps(fields["params"]), parent_id or "", salt]).encode()
        ).hexdigest()
        return self.versions.create(fields, parent=parent_id, retrained=retrained, blob_present=blob_present)

    # --- reading ----------------------------------------------------------------------
    def get(self, ref: str) -> Version:
        """The full record of a version: ``NAME/NUMBER``, ``NAME@ALIAS`` or a unique id prefix."""
        return self.versions.get(ref)

    def resolve(self, ref: str) -> VersionSummary:
        """The summary of the version ``ref`` names."""
        return self.versions.resolve(ref)

    def list(self, name: str | None = None, *, limit: int | None = None, offset: int = 0) -> list[VersionSummary]:
        """Versions (of ``name``, or all), ordered by name and newest number first."""
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ParamError(f"limit must be an int >= 0, got {limit!r}")
        return self.versions.list(name, limit=limit, offset=offset)

    def count(self, name: str | None = None) -> int:
        """Number of versions (of ``name``, or in all)."""
        return self.versions.count(name)

    def names(self) -> list[str]:
        """Every model name, sorted."""
        return self.versions.names()

    def load_model(self, ref: str) -> Predictor:
        """The version's model, rebuilt from its verified weights (no code is deserialized)."""
        version = self.get(ref)
        return _predictor().from_parts(version.predictor_config(), self._state(version))

    def compare(self, refs: Sequence[str], dataset: Dataset, options: CompareOptions | None = None,
                **kwargs: Any) -> Comparison:
        """Rebuild versions ``refs`` from their artifacts and compare them on ``dataset`` (see ``modelyard.compare``)."""
        from ..compare import compare_refs

        return compare_refs(self, refs, dataset, options, **kwargs)

    def _state(self, version: Version) -> dict[str, Any]:
        """The version's weights, after checking everything else a rebuild reads against its stored digest."""
        label = f"{version.ref} (id {version.short_id})"
        actual = rebuild_digest(version)
        if actual != version.config_digest:
            found = "has no checksum" if version.config_digest is None else (
                f"hashes to {actual[:12]}, not {version.config_digest[:12]}")
            raise CorruptArtifactError(
                f"cannot load {label}: its stored configuration (schema, categories, class labels, encodings, "
                f"hyperparameters, weights digest) is corrupted: it {found}; restore the store's database from a "
                "backup or re-register the model"
            )
        try:
            return state_from_bytes(self.artifacts.get(version.artifact))
        except CorruptArtifactError as e:
            raise CorruptArtifactError(f"cannot load {label}: {e}") from e
        except ArtifactError as e:
            raise ArtifactError(f"cannot load {label}: {e}") from e

    # --- lineage ----------------------------------------------------------------------
    def lineage(self, ref: str) -> Lineage:
        """The version with all its ancestors and descendants and the parameter diff on each edge."""
        return self.versions.lineage(ref)

    def ancestors(self, ref: str) -> list[VersionSummary]:
        """Parent, grandparent, ..., root."""
        return self.versions.ancestors(ref)

    def descendants(self, ref: str) -> list[VersionSummary]:
        """Children, grandchildren, ... breadth first."""
        return self.versions.descendants(ref)

    # --- aliases ----------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, ref: str, *, reason: str | None = None) -> AliasMove:
        """Point ``name@alias`` at ``ref`` atomically and append the move to the alias history."""
        return self.versions.set_alias(name, check_alias(alias), ref, user=self.user, reason=reason)

    def unset_alias(self, name: str, alias: str, *, reason: str | None = None) -> AliasMove:
        """Remove ``name@alias`` (recorded in the history)."""
        return self.versions.unset_alias(name, check_alias(alias), user=self.user, reason=reason)

    def rollback(self, name: str, alias: str = "production", to: str | None = None, *,
                 reason: str | None = None) -> AliasMove:
        """Move ``name@alias`` to the parent of the version it holds, or to its ancestor ``to``."""
        return self.versions.rollback(name, check_alias(alias), to, user=self.user, reason=reason)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Every move of ``name``'s aliases (or one alias): when, who, from, to, why; oldest first."""
        return self.versions.alias_history(name, alias)

    def aliases(self, name: str) -> dict[str, str]:
        """``{alias: version id}`` of ``name``."""
        return self.versions.aliases(name)

    # --- deleting ---------------------------------------------------------------------
    def delete(self, ref: str, *, force: bool = False, reason: str | None = None) -> Deletion:
        """Delete a version. Refused while it has children or aliases unless ``force``.

        ``force`` re-parents its children to its own parent (the edge records the deleted id in
        ``via`` and the recomputed parameter diff) and removes its aliases (recorded in the alias
        history with action ``delete``). The weights stay until ``gc`` finds them unreferenced.
        """
        return self.versions.delete(ref, force=force, user=self.user, reason=reason)

    def gc(self, *, older_than: float = 3600.0, dry_run: bool = False) -> list[str]:
        """Remove artifacts no version references, if older than ``older_than`` seconds; returns their digests.

        Safe while others register, on a local folder and on object storage alike: gc deletes a
        blob only inside a write transaction that holds the store's gc lock and has re-read that
        no version references it, and a registration inserts its version only after checking,
        inside its own transaction under that lock, that its blob is still stored (writing the
        bytes again if not), so no committed version can name deleted bytes (``collect.py``).
        The age guard, 0 allowed, only spares young blobs, e.g. those of registrations by older
        modelyard releases, which do not check.
        """
        from .collect import collect_garbage

        return collect_garbage(self.db, self.versions, self.artifacts, older_than=older_than, dry_run=dry_run)


def conform(dataset: Dataset, schema: Schema) -> Dataset:
    """``dataset`` re-coded to ``schema`` (a parent version's): columns by name, categories and classes remapped."""
    import numpy as np

    from ..data.dataset import Dataset

    if dataset.y is None:
        raise SchemaMismatchError("the retraining data has no target; load it with target=COLUMN (CLI: --target)")
    if dataset.schema.task is not schema.task:
        raise SchemaMismatchError(
            f"the retraining data is a {dataset.schema.task.value} task but the model does {schema.task.value}; "
            "check --target (or pass --task)"
        )
    src = {c.name: (j, c) for j, c in enumerate(dataset.schema.columns)}
    missing = [c.name for c in schema.columns if c.name not in src]
    if missing:
        raise SchemaMismatchError(
            f"the retraining data lacks column(s) {', '.join(map(repr, missing))} that the model was trained on; "
            f"it has {', '.join(dataset.schema.feature_names)}"
        )
    X = np.empty((len(dataset), len(schema.columns)), dtype=np.float32)
    for j, col in enumerate(schema.columns):
        k, have = src[col.name]
        if have.kind != col.kind:
            raise SchemaMismatchError(
                f"column {col.name!r} is {have.kind} in the retraining data but was {col.kind} in training; "
                "fix the column's values"
            )
        if col.kind == "categorical":
            index = {c: i for i, c in enumerate(col.categories or ())}
            lut = np.array([index.get(c, -1) for c in have.categories or ()] + [-1], dtype=np.float32)
            gaps = np.isnan(dataset.X[:, k])  # a missing category stays missing (NaN)
            codes = np.where(gaps, -1, dataset.X[:, k]).astype(np.int64)
            X[:, j] = np.where(gaps, np.nan, lut[np.where(codes < 0, len(lut) - 1, codes)])
        else:
            X[:, j] = dataset.X[:, k]
    y = dataset.y
    if schema.classes is not None:
        target_index = {str(c): i for i, c in enumerate(schema.classes)}
        have_classes = [str(c) for c in dataset.schema.classes or ()]
        unknown = [c for c in have_classes if c not in target_index]
        if unknown:
            raise SchemaMismatchError(
                f"the retraining data has class(es) {', '.join(map(repr, unknown[:5]))} the model does not know "
                f"(it predicts {', '.join(map(str, schema.classes))}); train a fresh model for new classes"
            )
        y = np.array([target_index[c] for c in have_classes], dtype=np.int64)[dataset.y]
    return Dataset(X, y, schema, dataset.source, _fingerprint=dataset.fingerprint)  # identifies the data as loaded


def _check_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in dict(tags or {}).items():
        if not isinstance(k, str) or not k:
            raise ParamError(f"tag names must be non-empty strings, got {k!r}")
        out[k] = v if isinstance(v, str) else json.dumps(v)
    return out


def _fields(record: Any) -> dict[str, Any]:
    """A flat record's fields as a dict: what its ``to_dict`` gives, without ``dataclasses.asdict``'s deep copy
    (the JSON encoder reads nested values as they are)."""
    return dict(vars(record))  # a frozen dataclass's instance dict holds exactly its fields


def _predictor() -> type[Predictor]:
    from ..models.predictor import Predictor

    return Predictor

