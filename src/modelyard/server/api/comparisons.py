"""Comparisons: run one on chosen versions and a dataset the server may read, read saved results, list datasets.

A comparison rebuilds the versions from their verified artifacts and evaluates them on the
same rows. Every result is saved in the store (``Yard.comparisons``), so a comparison page's
URL survives a restart and comparisons saved by ``modelyard compare --save`` show here too;
saving is a change, so it takes the same guard as the other changes (token off loopback, not
on a read-only server). Datasets are ``sklearn:NAME`` or files under the server's data roots.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from ..security import check_ref, resolve_dataset
from .common import (
    ERRORS,
    MUTATION_ERRORS,
    ConfigDep,
    Limit,
    Offset,
    Page,
    YardDep,
    clean,
    page,
    require_mutation,
)

__all__ = ["CompareBody", "router"]

router = APIRouter(tags=["comparisons"])

_DATA_SUFFIXES = (".csv", ".parquet", ".npz")
_MAX_LISTED = 200


class CompareBody(BaseModel):
    """Which versions to compare on which data."""

    refs: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        min_length=2, max_length=10, description="two to ten version refs: NAME/NUMBER, NAME@ALIAS or id prefixes")
    dataset: str = Field(min_length=1, max_length=1000,
                         description="sklearn:NAME or a .csv/.parquet/.npz path under the server's data folders")
    target: str | None = Field(default=None, max_length=200, description="target column (CSV/Parquet)")
    metric: str | None = Field(default=None, max_length=64, description="ranking metric (default: the task's)")
    alpha: float = Field(default=0.05, gt=0, lt=1, description="significance level")
    resamples: int = Field(default=2000, ge=1000, le=20000, description="paired bootstrap resamples")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    allow_training_rows: bool = Field(
        default=False, description="evaluate on every row, even rows a compared version trained on (by default "
        "those are left out, and a dataset with no row held out from every version is refused)")


def _compare(yard: Any, body: CompareBody, dataset: str) -> Any:
    """Run the comparison through the registry (rebuilds versions from verified artifacts)."""
    from ...compare import compare_refs
    from ...data import load_dataset

    ds = load_dataset(dataset, target=body.target)
    return compare_refs(
        yard.registry, list(body.refs), ds, metric=body.metric, alpha=body.alpha, resamples=body.resamples,
        seed=body.seed, allow_training_rows=body.allow_training_rows,
    )


def _entry(cid: str, comparison: Any) -> dict[str, Any]:
    """The API's form of a saved comparison: its id, the labels compared and the whole record."""
    return {"id": cid, "refs": [e.label for e in comparison.entries], "comparison": clean(comparison)}


@router.post("/comparisons", responses=MUTATION_ERRORS, dependencies=[Depends(require_mutation)],
             summary="Compare versions on a dataset and save the result")
def create_comparison(body: CompareBody, yard: YardDep, config: ConfigDep) -> dict[str, Any]:
    """Evaluate the versions on the same rows and save the result: ``{"id", "refs", "comparison"}``.

    ``comparison`` has the shape of ``compare --json`` (leaderboard, paired tests, costs); its ``rows`` says
    which rows were evaluated on: those none of the versions trained on, unless ``allow_training_rows``.
    """
    refs = [check_ref(r) for r in body.refs]
    dataset = resolve_dataset(body.dataset, config.data_roots)
    result = _compare(yard, body.model_copy(update={"refs": refs}), dataset)
    return _entry(yard.comparisons.save(result), result)


@router.get("/comparisons", response_model=Page, responses=ERRORS, summary="Saved comparisons")
def list_comparisons(yard: YardDep, limit: Limit = 50, offset: Offset = 0) -> Page:
    """Summaries of the saved comparisons (id, time, refs, metric, best, rows, data), newest first."""
    store = yard.comparisons
    return page(store.list(limit=limit, offset=offset), store.count(), limit, offset)


@router.get("/comparisons/{cid}", responses=ERRORS, summary="One saved comparison")
def get_comparison(
    cid: Annotated[str, Path(min_length=1, max_length=64, description="the id or a unique prefix (>= 4 hex)")],
    yard: YardDep,
) -> dict[str, Any]:
    """A saved comparison by id or unique id prefix, in the shape ``POST /api/comparisons`` returned."""
    store = yard.comparisons
    full = store.resolve(cid)
    return _entry(full, store.get(full))


@router.get("/datasets", responses=ERRORS, summary="Datasets a comparison may use")
def datasets(config: ConfigDep, yard: YardDep) -> dict[str, Any]:
    """Bundled ``sklearn:`` sets, data files under the data folders, and registered versions' sources there."""
    from ...data.load import SKLEARN_DATASETS

    found: list[dict[str, Any]] = [{"dataset": f"sklearn:{n}", "kind": "bundled"} for n in SKLEARN_DATASETS]
    seen: set[str] = set()
    for root in config.data_roots:
        for path in _scan(root):
            rel = str(path.relative_to(root))
            if rel not in seen:
                seen.add(rel)
                found.append({"dataset": rel, "kind": "file", "bytes": path.stat().st_size})
    return {"roots": [str(r) for r in config.data_roots], "items": found[: len(SKLEARN_DATASETS) + _MAX_LISTED]}


def _scan(root: FsPath, depth: int = 3) -> list[FsPath]:
    """Data files under ``root`` (hidden folders skipped), at most ``_MAX_LISTED``, breadth first."""
    out: list[FsPath] = []
    level = [root]
    for _ in range(depth + 1):
        nxt: list[FsPath] = []
        for folder in level:
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                continue
            for p in entries:
                if p.name.startswith("."):
                    continue
                if p.is_dir() and not p.is_symlink():
                    nxt.append(p)
                elif p.suffix.lower() in _DATA_SUFFIXES and p.is_file() and p.resolve().is_relative_to(root):
                    out.append(p)
                    if len(out) >= _MAX_LISTED:
                        return out
        level = nxt
    return out
