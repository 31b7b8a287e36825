"""The contract every store backend passes: artifact stores (local, fsspec, S3) and registries (SQLite, PostgreSQL).

Run it in a test suite (one pytest case per check), giving a factory of fresh, empty stores::

    from modelyard.testing.stores import registry_checks

    @pytest.mark.parametrize("name, check", registry_checks(lambda: Yard(tmp_folder()).registry))
    def test_registry_contract(name, check):
        check()

``artifact_store_checks(make_store)`` does the same for an ``ArtifactStore``. Registry checks
use real weights (a logistic regression trained once on iris, two epochs) and cheap variants of
them (``variant``: the same model with shifted weights, so each has its own artifact).

What is checked: numbers come from the database per name, starting at 1, never reused;
versions record everything and read back equal; ids are unique 64-hex strings even for identical
registrations while identical weights are stored once; refs resolve as NAME/NUMBER, NAME@ALIAS
(NAME@latest built in) and id prefixes, and unknown or ambiguous refs raise NotFoundError /
AmbiguousRefError naming what exists; ``load_model`` predicts exactly like the registered model; a flipped byte or a missing file
fails with an error naming the version and the artifact; a branch shares its parent's weights
(no bytes written) and records the param diff, a retrained branch records ``retrained``;
ancestors/descendants come in order; aliases move atomically with a complete history; rollback
obeys rollback(v) = parent(v), refuses roots and non-ancestors; delete is refused with children
or aliases and, forced, re-parents children and drops aliases on the record; ``gc`` removes only
unreferenced artifacts, and a gc between a registration's blob and its row cannot lose the weights.

The results these checks register, and the worker of the multi-process tests, are in
``modelyard.testing.results``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from ..errors import (
    AmbiguousRefError,
    ArtifactError,
    CorruptArtifactError,
    LineageError,
    NotFoundError,
    ParamError,
)
from .results import overwrite_artifact, sample_result, variant

__all__ = ["artifact_store_checks", "registry_checks"]

Check = tuple[str, Callable[[], None]]



# --- artifact store checks ------------------------------------------------------------------
def artifact_store_checks(make_store: Callable[[], Any]) -> list[Check]:
    """(name, check) pairs for an artifact store; ``make_store()`` returns a fresh, empty store."""
    return [(fn.__name__.removeprefix("_art_"), partial(fn, make_store)) for fn in _ARTIFACT_CHECKS]


def _art_round_trip(make: Callable[[], Any]) -> None:
    store = make()
    for data in (b"", b"x", bytes(range(256)) * 40):
        d = store.put(data)
        assert len(d) == 64 and store.exists(d) and store.size(d) == len(data)
        assert store.get(d) == data


def _art_idempotent_and_deduplicated(make: Callable[[], Any]) -> None:
    store = make()
    a = store.put(b"same bytes")
    b = store.put(b"same bytes")
    c = store.put(b"other bytes")
    assert a == b != c
    assert sorted(d for d, _ in store.digests()) == sorted({a, c})


def _art_flipped_byte_is_detected(make: Callable[[], Any]) -> None:
    store = make()
    data = b"weights" * 100
    d = store.put(data)
    overwrite_artifact(store, d, data[:10] + bytes([data[10] ^ 1]) + data[11:])
    try:
        store.get(d)
    except CorruptArtifactError as e:
        assert d in str(e) and "corrupted" in str(e)
    else:  # pragma: no cover - the check failing
        raise AssertionError("a flipped byte was not detected")


def _art_missing_is_an_artifact_error(make: Callable[[], Any]) -> None:
    store = make()
    d = store.put(b"to be removed")
    assert store.delete(d) and not store.exists(d) and not store.delete(d)
    for call in (store.get, store.size):
        try:
            call(d)
        except ArtifactError as e:
            assert d in str(e) and "missing" in str(e)
        else:  # pragma: no cover
            raise AssertionError(f"{call.__name__} of a missing artifact did not raise")


def _art_bad_digest_is_refused(make: Callable[[], Any]) -> None:
    store = make()
    for bad in ("abc", "G" * 64, "../../etc/passwd", "A" * 64):
        try:
            store.get(bad)
        except ArtifactError as e:
            assert "sha256" in str(e)
        else:  # pragma: no cover
            raise AssertionError(f"digest {bad!r} was accepted")


_ARTIFACT_CHECKS = (
    _art_round_trip, _art_idempotent_and_deduplicated, _art_flipped_byte_is_detected,
    _art_missing_is_an_artifact_error, _art_bad_digest_is_refused,
)


# --- registry checks ------------------------------------------------------------------------
def registry_checks(make_registry: Callable[[], Any], result: Any = None) -> list[Check]:
    """(name, check) pairs for a registry; ``make_registry()`` returns a fresh, empty Registry.

    ``result`` is the TrainResult registered by the checks (default: ``sample_result()``, made on first use).
    """
    cache: dict[str, Any] = {} if result is None else {"result": result}

    def get_result() -> Any:
        if "result" not in cache:
            cache["result"] = sample_result()
        return cache["result"]

    return [(fn.__name__.removeprefix("_reg_"), partial(fn, make_registry, get_result)) for fn in _REGISTRY_CHECKS]


def _raises(exc: type[BaseException], fn: Callable[[], Any], *needles: str) -> str:
    try:
        fn()
    except exc as e:
        msg = str(e)
        for n in needles:
            assert n in msg, f"{n!r} not in error message {msg!r}"
        return msg
    raise AssertionError(f"expected {exc.__name__}")


def _reg_numbers_per_name_from_one(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    reg, r = make(), res()
    refs = [reg.register(r, "a").ref for _ in range(3)] + [reg.register(r, "b").ref for _ in range(2)]
    assert refs == ["a/1", "a/2", "a/3", "b/1", "b/2"]
    assert reg.count() == 5 and reg.count("a") == 3 and reg.names() == ["a", "b"]
    assert [v.ref for v in reg.list("a")] == ["a/3", "a/2", "a/1"]
    assert [v.ref for v in reg.list()] == ["a/3", "a/2", "a/1", "b/2", "b/1"]
    assert [v.ref for v in reg.list(limit=2, offset=1)] == ["a/2", "a/1"]


def _reg_version_records_everything(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    reg, r = make(), res()
    v = reg.register(r, "m", tags={"team": "growth", "n": 3}, description="first", links={"study": "s", "trial": 2})
    got = reg.get("m/1")
    assert got == v
    assert v.family == r.family and v.params == json.loads(json.dumps(r.params))
    assert v.schema == r.schema and v.fingerprint == r.fingerprint and v.seed == r.seed
    assert v.fit_config == r.config and v.split == r.split and v.source == r.source
    assert v.library_versions == r.library_versions and len(v.history) == len(r.history)
    assert v.metrics["f1"] == r.metrics["f1"] and v.tags == {"team": "growth", "n": "3"}
    assert v.description == "first" and v.links == {"study": "s", "trial": 2}
    assert v.creator == reg.user and v.parent_id is None and v.aliases == ()
    s = reg.list("m")[0]
    assert (s.id, s.ref, s.key_metric, s.key_value) == (v.id, "m/1", "f1", r.metrics["f1"])


def _reg_ids_unique_weights_stored_once(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    reg, r = make(), res()
    a, b = reg.register(r, "m"), reg.register(r, "m")
    assert a.id != b.id and len(a.id) == 64 and all(c in "0123456789abcdef" for c in a.id)
    assert a.artifact == b.artifact and len(list(reg.artifacts.digests())) == 1
    c = reg.register(variant(r, 1), "m")
    assert c.artifact != a.artifact and len(list(reg.artifacts.digests())) == 2


def _reg_refs_resolve(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    reg, r = make(), res()
    v = reg.register(r, "churn")
    reg.register(r, "churn")
    reg.set_alias("churn", "production", "churn/1")
    for ref in ("churn/1", "churn@production", v.id, v.id[:12], v.id[:8].upper(), f" {v.id[:10]} "):
        assert reg.resolve(ref).id == v.id, ref
    assert reg.get("churn@latest").ref == reg.resolve("churn@latest").ref == "churn/2"
    reg.delete("churn/2")
    assert reg.get("churn@latest").ref == "churn/1"  # the built-in alias follows the highest number
    _raises(ParamError, lambda: reg.set_alias("churn", "latest", "churn/1"), "reserved")


def _reg_unknown_refs(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    reg, r = make(), res()
    reg.register(r, "churn")
    _raises(NotFoundError, lambda: reg.get("churn/7"), "churn", "1 to 1")
    _raises(NotFoundError, lambda: reg.get("nope/1"), "nope", "churn")
    _raises(NotFoundError, lambda: reg.get("churn@prod"), "prod", "no aliases")
    _raises(NotFoundError, lambda: reg.get("churn"), "model name", "churn/NUMBER")
    _raises(NotFoundError, lambda: reg.get("churn/x"), "version number")
    _raises(NotFoundError, lambda: reg.get("0000000000"), "0000000000")
    _raises(NotFoundError, lambda: reg.get("abc"), "at least 4")
    _raises(NotFoundError, lambda: reg.list("nope"), "nope")
    _raises(NotFoundError, lambda: reg.alias_history("nope"), "nope")


def _reg_ambiguous_prefix(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    reg, r = make(), res()
    base = reg.register(r, "m")
    fields = _fields_of(reg.get(base.id))
    for tail in ("1", "2"):
        reg.versions.create({**fields, "id": "abcd" + tail * 60}, parent=None, retrained=False)
    msg = _raises(AmbiguousRefError, lambda: reg.get("abcd"), "m/2", "m/3", "more characters")
    assert "abcd111111" in msg
    assert reg.resolve("abcd1").ref == "m/2" and reg.resolve("abcd2").ref == "m/3"


def _reg_load_model_predicts_identically(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    reg, r = make(), res()
    v = reg.register(r, "m")
    X = np.random.default_rng(0).normal(size=(20, len(r.schema.columns))).astype(np.float32)
    loaded = reg.load_model(v.ref)
    assert np.array_equal(loaded.predict(X), r.model.predict(X))
    if r.model.has_proba:
        assert np.array_equal(loaded.predict_proba(X), r.model.predict_proba(X))


def _reg_corrupt_or_missing_artifact_names_version(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    reg, r = make(), res()
    v = reg.register(r, "m")
    data = reg.artifacts.get(v.artifact)
    overwrite_artifact(reg.artifacts, v.artifact, bytes([data[0] ^ 0x20]) + data[1:])
    _raises(CorruptArtifactError, lambda: reg.load_model("m/1"), "m/1", v.short_id, v.artifact)
    reg.artifacts.delete(v.artifact)
    _raises(ArtifactError, lambda: reg.load_model("m/1"), "m/1", v.artifact, "missing")


def _reg_branch_shares_weights(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    reg, r = make(), res()
    parent = reg.register(r, "m")
    key, value = _changeable_param(r)
    before = sorted(reg.artifacts.digests())
    child = reg.branch("m/1", {key: value}, tags={"why": "try"})
    assert child.ref == "m/2" and child.parent_id == parent.id and child.artifact == parent.artifact
    assert sorted(reg.artifacts.digests()) == before  # no bytes written
    assert child.params[key] == value and child.metrics == parent.metrics
    assert child.links["metrics_from"] == parent.id and child.tags == {"why": "try"}
    edge = reg.lineage("m/2").edge_to(child.id)
    assert edge is not None and edge.diff == {key: (parent.params[key], value)} and edge.retrained is False
    _raises(ParamError, lambda: reg.branch("m/1", {"no_such_param": 1}), "no_such_param")
    _raises(ParamError, lambda: reg.branch("m/1", {key: value}, epochs=3), "retrain")
    other = reg.branch("m/1", {key: value}, name="other")
    assert other.ref == "other/1" and other.parent_id == parent.id


def _reg_branch_retrain_warm_starts(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    from ..data import load_dataset

    reg, r = make(), res()
    parent = reg.register(r, "m")
    key, value = _changeable_param(r)
    child = reg.branch("m/1", {key: value}, retrain=load_dataset("sklearn:iris"), epochs=1)
    assert child.parent_id == parent.id and child.artifact != parent.artifact and len(child.history) == 1
    assert child.links == {"warm_start": parent.id} and child.params[key] == value
    edge = reg.lineage(child.ref).edge_to(child.id)
    assert edge is not None and edge.retrained is True and key in edge.diff


def _reg_lineage_walks(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    reg, r = make(), res()
    root = reg.register(r, "m")
    chain = [root]
    for i in range(4):
        chain.append(reg.register(variant(r, i + 1), "m", parent=chain[-1].ref))
    side = reg.register(variant(r, 9), "m", parent=chain[1].id)
    lin = reg.lineage(chain[2].ref)
    assert [a.id for a in lin.ancestors] == [chain[1].id, root.id] and lin.root.id == root.id
    assert [d.id for d in lin.descendants] == [chain[3].id, chain[4].id]
    assert {(e.child_id, e.parent_id) for e in lin.edges} == {
        (chain[2].id, chain[1].id), (chain[1].id, root.id), (chain[3].id, chain[2].id), (chain[4].id, chain[3].id)}
    assert [d.ref for d in reg.descendants("m/2")] == ["m/3", "m/6", "m/4", "m/5"]
    assert [a.ref for a in reg.ancestors(side.ref)] == ["m/2", "m/1"]
    assert reg.ancestors("m/1") == [] and reg.descendants("m/5") == []
    _raises(NotFoundError, lambda: reg.register(r, "m", parent="m/99"), "no version 99")


def _reg_aliases_and_history(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    reg, r = make(), res()
    v1, v2 = reg.register(r, "m"), reg.register(r, "m")
    reg.register(r, "other")
    m1 = reg.set_alias("m", "production", "m/1", reason="first")
    m2 = reg.set_alias("m", "production", v2.id[:8], reason="better")
    reg.set_alias("m", "staging", "m/1")
    assert reg.resolve("m@production").id == v2.id and reg.aliases("m") == {"production": v2.id, "staging": v1.id}
    assert reg.get("m/2").aliases == ("production",) and reg.list("m")[1].aliases == ("staging",)
    m3 = reg.unset_alias("m", "staging", reason="unused")
    _raises(NotFoundError, lambda: reg.resolve("m@staging"), "staging")
    hist = reg.alias_history("m")
    assert [(h.alias, h.action, h.from_ref, h.to_ref, h.reason) for h in hist] == [
        ("production", "set", None, "m/1", "first"), ("production", "set", "m/1", "m/2", "better"),
        ("staging", "set", None, "m/1", None), ("staging", "unset", "m/1", None, "unused")]
    assert [h.seq for h in hist] == sorted(h.seq for h in hist) and hist[0] == m1 and hist[1] == m2 and hist[3] == m3
    assert all(h.user == reg.user and h.at > 0 for h in hist)
    assert [h.to_ref for h in reg.alias_history("m", "production")] == ["m/1", "m/2"]
    _raises(LineageError, lambda: reg.set_alias("m", "production", "other/1"), "other")
    _raises(ParamError, lambda: reg.set_alias("m", "bad alias!", "m/1"), "alias")
    _raises(NotFoundError, lambda: reg.unset_alias("m", "staging"), "staging")


def _reg_rollback_law(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    reg, r = make(), res()
    v = [reg.register(r, "m")]
    for i in range(3):
        v.append(reg.register(variant(r, i + 1), "m", parent=v[-1].id))
    sib = reg.register(r, "m", parent=v[0].id)
    reg.set_alias("m", "production", "m/4")
    move = reg.rollback("m", reason="regression in Q3")
    assert (move.from_id, move.to_id, move.action, move.reason) == (v[3].id, v[2].id, "rollback", "regression in Q3")
    assert reg.resolve("m@production").id == v[2].id
    reg.rollback("m", "production", to="m/1")
    assert reg.resolve("m@production").id == v[0].id
    _raises(LineageError, lambda: reg.rollback("m"), "root", "m/1")
    reg.set_alias("m", "production", "m/3")
    _raises(LineageError, lambda: reg.rollback("m", to=sib.ref), "not an ancestor", "m/2, m/1")
    _raises(LineageError, lambda: reg.rollback("m", to="m/3"), "not an ancestor")
    _raises(NotFoundError, lambda: reg.rollback("m", "staging"), "staging")
    assert reg.resolve("m@production").id == v[2].id  # refused rollbacks moved nothing


def _reg_delete_rules(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    reg, r = make(), res()
    a = reg.register(r, "m")
    key, value = _changeable_param(r)
    b = reg.branch("m/1", {key: value})
    c = reg.register(variant(r, 1), "m", parent=b.id)
    reg.set_alias("m", "production", "m/2")
    _raises(LineageError, lambda: reg.delete("m/2"), "1 child", "m/3", "m@production", "--force")
    _raises(LineageError, lambda: reg.delete("m/1"), "m/2")
    d = reg.delete("m/2", force=True, reason="bad branch")
    assert d.version.id == b.id and d.reparented == (c.id,)
    assert [(m.alias, m.action, m.to_id, m.reason) for m in d.dropped] == [("production", "delete", None, "bad branch")]
    _raises(NotFoundError, lambda: reg.get("m/2"), "deleted")
    assert reg.get("m/3").parent_id == a.id
    edge = reg.lineage("m/3").edge_to(c.id)
    assert edge is not None and edge.via == (b.id,) and edge.retrained is True and edge.diff == {}
    assert reg.aliases("m") == {} and reg.alias_history("m")[-1].action == "delete"
    assert reg.register(r, "m").ref == "m/4"  # numbers are never reused
    reg.delete("m/4")
    reg.delete("m/1", force=True)
    assert reg.get("m/3").parent_id is None and reg.lineage("m/3").edges == ()
    assert [v.ref for v in reg.list("m")] == ["m/3"]


def _reg_gc_keeps_referenced(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    reg, r = make(), res()
    keep = reg.register(r, "m")
    gone = reg.register(variant(r, 1), "m")
    stray = reg.artifacts.put(b"written by a crashed registration")
    reg.delete(gone.ref)
    assert reg.gc(older_than=3600) == []  # young blobs may belong to registrations in flight
    assert sorted(reg.gc(older_than=0, dry_run=True)) == sorted([gone.artifact, stray])
    assert sorted(reg.gc(older_than=0)) == sorted([gone.artifact, stray])
    assert [d for d, _ in reg.artifacts.digests()] == [keep.artifact]
    reg.load_model("m/1")


def _reg_gc_racing_a_registration_loses_nothing(make: Callable[[], Any], res: Callable[[], Any]) -> None:
    """A gc that removes the blob after a registration wrote or re-used it, before its row: the bytes come back."""
    reg, r = make(), res()
    reg.delete(reg.register(r, "m").ref)  # the identical weights of a deleted version: stored, unreferenced
    put = reg.artifacts.put
    removed: list[list[str]] = []

    def put_then_collect(data: bytes) -> str:
        digest = put(data)
        removed.append(reg.gc(older_than=0) if not removed else [])
        return digest

    reg.artifacts.put = put_then_collect
    try:
        v = reg.register(r, "m")
    finally:
        reg.artifacts.put = put
    assert removed == [[v.artifact], []]  # removed once, so written again before the version was recorded
    reg.load_model(v.ref)
    assert reg.gc(older_than=0) == []


_REGISTRY_CHECKS = (
    _reg_numbers_per_name_from_one, _reg_version_records_everything, _reg_ids_unique_weights_stored_once,
    _reg_refs_resolve, _reg_unknown_refs, _reg_ambiguous_prefix, _reg_load_model_predicts_identically,
    _reg_corrupt_or_missing_artifact_names_version, _reg_branch_shares_weights, _reg_branch_retrain_warm_starts,
    _reg_lineage_walks, _reg_aliases_and_history, _reg_rollback_law, _reg_delete_rules, _reg_gc_keeps_referenced,
    _reg_gc_racing_a_registration_loses_nothing,
)


def _changeable_param(result: Any) -> tuple[str, Any]:
    """A hyperparameter that can change without changing the weights' shapes, and a new value for it."""
    params = result.model.get_params()
    for key, new in (("learning_rate", 0.0123), ("min_samples_leaf", 2), ("weight_decay", 0.001)):
        if key in params and params[key] != new:
            return key, new
    raise AssertionError(f"no known changeable hyperparameter in {sorted(params)}")


def _fields_of(v: Any) -> dict[str, Any]:
    return {
        "name": v.name, "family": v.family, "task": v.task, "key_metric": None, "key_value": None, "params": v.params,
        "model_config": v.model_config, "fit_config": v.fit_config.to_dict(), "metrics": v.metrics,
        "history": [h.to_dict() for h in v.history], "data_schema": v.schema.to_dict(), "fingerprint": v.fingerprint,
        "seed": v.seed, "library_versions": v.library_versions, "artifact": v.artifact, "artifact_size": v.artifact_size,
        "creator": v.creator, "tags": v.tags, "description": v.description, "source": v.source, "split": v.split,
        "links": v.links,
    }
