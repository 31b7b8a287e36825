"""Registered models and versions: lists, one version, lineage, aliases, alias history, and the guarded changes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from ...store import version_queries as queries
from ..security import check_name, check_ref
from .common import (
    ERRORS,
    MUTATION_ERRORS,
    Limit,
    Offset,
    Page,
    YardDep,
    clean,
    database,
    page,
    require_mutation,
)

__all__ = ["router"]

router = APIRouter(tags=["models"])

ModelName = Annotated[str, Path(min_length=1, max_length=200, description="model name")]
AliasName = Annotated[str, Path(min_length=1, max_length=64, description="alias, e.g. production")]
Ref = Annotated[str, Path(min_length=1, max_length=256, description="NAME/NUMBER, NAME@ALIAS or an id prefix")]
VERSION_SORTS = "-created, created, -number, number, -key_value, key_value"


def _versions(yard: Any) -> Any:
    """The registry's version store (reads and the alias/rollback/delete transactions)."""
    return yard.registry.versions


def _user(request: Request) -> str:
    """Who made a change through the dashboard, as the alias history records it."""
    from ...registry import current_user

    client = request.client.host if request.client else "unknown address"
    return f"{current_user()} (ui from {client})"


@router.get("/models", response_model=Page, responses=ERRORS, summary="List registered models")
def list_models(
    yard: YardDep,
    name: Annotated[str | None, Query(max_length=200, description="keep names containing this")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page:
    """Model names alphabetically, each with its number of versions, latest version and aliases."""
    items, total = queries.list_models(database(yard), name=name, limit=limit, offset=offset)
    return page(items, total, limit, offset)


@router.get("/models/{name}", responses=ERRORS, summary="One registered model")
def get_model(name: ModelName, yard: YardDep) -> dict[str, Any]:
    """The model's version count, latest version and aliases."""
    from ...errors import NotFoundError

    check_name(name, "model name")
    items, _ = queries.list_models(database(yard), exact=name, limit=1, offset=0)
    if not items:
        raise NotFoundError(f"no model named {name!r}; list them with: modelyard models list")
    return clean(items[0])


def _version_list(yard: Any, name: str | None, family: str | None, alias: str | None, sort: str,
                  limit: int, offset: int) -> Page:
    items, total = queries.list_versions(database(yard), name=name, family=family, alias=alias, sort=sort,
                                         limit=limit, offset=offset)
    return page(items, total, limit, offset)


Family = Annotated[str | None, Query(max_length=300, description="keep versions of this family")]
HasAlias = Annotated[str | None, Query(max_length=64, description="keep versions holding this alias")]
Sort = Annotated[str, Query(description=VERSION_SORTS)]


@router.get("/models/{name}/versions", response_model=Page, responses=ERRORS, summary="List a model's versions")
def model_versions(
    name: ModelName, yard: YardDep, family: Family = None, alias: HasAlias = None, sort: Sort = "-number",
    limit: Limit = 50, offset: Offset = 0,
) -> Page:
    """Version summaries of one model (the shape of ``modelyard models list NAME --json``)."""
    return _version_list(yard, check_name(name, "model name"), family, alias, sort, limit, offset)


@router.get("/versions", response_model=Page, responses=ERRORS, summary="List versions of every model")
def versions(
    yard: YardDep,
    name: Annotated[str | None, Query(max_length=200, description="keep versions of this model")] = None,
    family: Family = None, alias: HasAlias = None, sort: Sort = "-created", limit: Limit = 50, offset: Offset = 0,
) -> Page:
    """Version summaries across models, newest first by default."""
    return _version_list(yard, name, family, alias, sort, limit, offset)


@router.get("/models/{name}/aliases", responses=ERRORS, summary="Where a model's aliases point")
def aliases(name: ModelName, yard: YardDep) -> dict[str, Any]:
    """``{"name", "aliases": {alias: version summary}}``."""
    store = _versions(yard)
    targets = store.aliases(check_name(name, "model name"))
    summaries = {}
    for alias, vid in sorted(targets.items()):
        summaries[alias] = store.resolve(vid)
    return clean({"name": name, "aliases": summaries})


@router.get("/models/{name}/history", response_model=Page, responses=ERRORS, summary="Alias history")
def history(
    name: ModelName, yard: YardDep,
    alias: Annotated[str | None, Query(max_length=64, description="only this alias")] = None,
    limit: Limit = 50, offset: Offset = 0,
) -> Page:
    """Every recorded alias move (who, when, why, from, to), newest first."""
    items, total = queries.alias_history(database(yard), check_name(name, "model name"), alias=alias, limit=limit,
                                         offset=offset)
    return page(items, total, limit, offset)


@router.get("/versions/{ref:path}/lineage", responses=ERRORS, summary="Lineage of a version")
def lineage(
    ref: Ref, yard: YardDep,
    max_nodes: Annotated[int, Query(ge=2, le=5000, description="cap on versions returned")] = 400,
) -> dict[str, Any]:
    """Ancestors up to the root, descendants breadth-first and the edges with their param diffs (bounded)."""
    lin = _versions(yard).lineage(check_ref(ref))
    out = clean(lin)
    anc, des = out["ancestors"], out["descendants"]
    room = max_nodes - 1
    keep_anc = anc[: max(room // 2, room - len(des))]
    keep_des = des[: room - len(keep_anc)]
    ids = {out["version"]["id"], *(v["id"] for v in keep_anc), *(v["id"] for v in keep_des)}
    out["ancestors"], out["descendants"] = keep_anc, keep_des
    out["edges"] = [e for e in out["edges"] if e["child_id"] in ids and e["parent_id"] in ids]
    out["truncated"] = {"ancestors": len(anc) - len(keep_anc), "descendants": len(des) - len(keep_des)}
    return out


@router.get("/versions/{ref:path}", responses=ERRORS, summary="One version")
def get_version(ref: Ref, yard: YardDep) -> dict[str, Any]:
    """The full immutable record (the shape of ``modelyard models show REF --json``)."""
    return clean(_versions(yard).get(check_ref(ref)))


class AliasBody(BaseModel):
    """Point an alias at a version."""

    ref: str = Field(min_length=1, max_length=256, description="version to point at: NAME/NUMBER, NAME@ALIAS or id")
    reason: str | None = Field(default=None, max_length=2000, description="why, recorded in the history")


class RollbackBody(BaseModel):
    """Move an alias back along the lineage."""

    to: str | None = Field(default=None, max_length=256, description="an ancestor to return to (default: parent)")
    reason: str | None = Field(default=None, max_length=2000)


Guard = Depends(require_mutation)


@router.put("/models/{name}/aliases/{alias}", responses=MUTATION_ERRORS, dependencies=[Guard],
            summary="Move an alias")
def set_alias(name: ModelName, alias: AliasName, body: AliasBody, request: Request, yard: YardDep) -> dict[str, Any]:
    """Point ``NAME@ALIAS`` at a version of NAME; the move is recorded. Needs the token off loopback."""
    from ...registry import check_alias

    move = _versions(yard).set_alias(check_name(name, "model name"), check_alias(alias), check_ref(body.ref),
                                     user=_user(request), reason=body.reason)
    return clean(move)


@router.delete("/models/{name}/aliases/{alias}", responses=MUTATION_ERRORS, dependencies=[Guard],
               summary="Remove an alias")
def unset_alias(
    name: ModelName, alias: AliasName, request: Request, yard: YardDep,
    reason: Annotated[str | None, Query(max_length=2000)] = None,
) -> dict[str, Any]:
    """Remove ``NAME@ALIAS``; the removal is recorded in the history."""
    move = _versions(yard).unset_alias(check_name(name, "model name"), check_name(alias, "alias"),
                                       user=_user(request), reason=reason)
    return clean(move)


@router.post("/models/{name}/aliases/{alias}/rollback", responses=MUTATION_ERRORS, dependencies=[Guard],
             summary="Roll an alias back")
def rollback(
    name: ModelName, alias: AliasName, request: Request, yard: YardDep, body: RollbackBody | None = None,
) -> dict[str, Any]:
    """Move the alias to the parent of the version it holds, or to the named ancestor."""
    body = body or RollbackBody()
    to = check_ref(body.to) if body.to else None
    move = _versions(yard).rollback(check_name(name, "model name"), check_name(alias, "alias"), to,
                                    user=_user(request), reason=body.reason)
    return clean(move)


@router.delete("/versions/{ref:path}", responses=MUTATION_ERRORS, dependencies=[Guard], summary="Delete a version")
def delete_version(
    ref: Ref, request: Request, yard: YardDep,
    force: Annotated[bool, Query(description="re-parent children and drop aliases")] = False,
    reason: Annotated[str | None, Query(max_length=2000)] = None,
) -> dict[str, Any]:
    """Delete a version; with children or aliases only with ``force`` (the shape of ``models delete --json``)."""
    deletion = _versions(yard).delete(check_ref(ref), force=force, user=_user(request), reason=reason)
    return clean(deletion)
