"""Comparisons: run one on chosen versions and a dataset the server may read, fetch recent results, list datasets.

A comparison rebuilds the versions from their verified artifacts and evaluates them on the
same rows; it reads data but changes nothing in the store. Results are kept in this app's
memory (the most recent ``ServerConfig.max_comparisons``) so a comparison page has a URL.
Datasets are ``sklearn:NAME`` or files that resolve under the server's data roots.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from ..app import ApiError
from ..security import check_ref, resolve_dataset
from .common import ERRORS, ConfigDep, ErrorBody, YardDep, clean

__all__ = ["CompareBody", "ComparisonCache", "router"]

router = APIRouter(tags=["comparisons"])

_DATA_SUFFIXES = (".csv", ".parquet", ".npz")
_MAX_LISTED = 200


class ComparisonCache:
    """The most recent comparison results of one app, oldest evicted first (thread-safe)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        """Keep ``entry`` (which has an ``id``)."""
        with self._lock:
            self._items[entry["id"]] = entry
            self._items.move_to_end(entry["id"])
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def get(self, cid: str) -> dict[str, Any] | None:
        """The entry with id ``cid``, if still kept."""
        with self._lock:
            return self._items.get(cid)

    def recent(self) -> list[dict[str, Any]]:
        """Entries newest first."""
        with self._lock:
            return list(reversed(self._items.values()))


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


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin and origin.split("://", 1)[-1].lower() != (request.headers.get("host") or "").lower():
        raise ApiError(403, f"cross-site request from {origin!r} refused; use the dashboard served by this server")


def _compare(yard: Any, body: CompareBody, dataset: str) -> Any:
    """Run the comparison through the registry (rebuilds versions from verified artifacts)."""
    from ...compare import compare_refs
    from ...data import load_dataset

    ds = load_dataset(dataset, target=body.target)
    return compare_refs(
        yard.registry, list(body.refs), ds, metric=body.metric, alpha=body.alpha, resamples=body.resamples,
        seed=body.seed,
    )


@router.post("/comparisons", responses={**ERRORS, 403: {"model": ErrorBody}}, dependencies=[Depends(_same_origin)],
             summary="Compare versions on a dataset")
def create_comparison(body: CompareBody, request: Request, yard: YardDep, config: ConfigDep) -> dict[str, Any]:
    """Evaluate the versions on the same rows: leaderboard, paired tests, costs (the shape of ``compare --json``)."""
    refs = [check_ref(r) for r in body.refs]
    dataset = resolve_dataset(body.dataset, config.data_roots)
    started = time.perf_counter()
    result = _compare(yard, body.model_copy(update={"refs": refs}), dataset)
    key = json.dumps([refs, body.dataset, body.target, body.metric, body.alpha, body.resamples, body.seed, time.time()])
    entry = {
        "id": hashlib.sha256(key.encode()).hexdigest()[:16],
        "refs": refs,
        "dataset": body.dataset,
        "seconds": round(time.perf_counter() - started, 3),
        "comparison": clean(result),
    }
    request.app.state.comparisons.add(entry)
    return entry


@router.get("/comparisons", responses=ERRORS, summary="Recent comparisons")
def list_comparisons(request: Request) -> dict[str, Any]:
    """Comparisons run by this server since it started, newest first (without their full results)."""
    items = []
    for e in request.app.state.comparisons.recent():
        c = e["comparison"]
        items.append({"id": e["id"], "refs": e["refs"], "dataset": e["dataset"], "created_at": c.get("created_at"),
                      "metric": c.get("metric"), "best": c.get("best"), "n_rows": c.get("n_rows")})
    return {"items": items, "total": len(items)}


@router.get("/comparisons/{cid}", responses=ERRORS, summary="One comparison")
def get_comparison(cid: Annotated[str, Path(min_length=1, max_length=64)], request: Request) -> dict[str, Any]:
    """A comparison run by this server, while it is among the most recent."""
    from ...errors import NotFoundError

    entry = request.app.state.comparisons.get(cid)
    if entry is None:
        raise NotFoundError(f"no comparison {cid!r} on this server (results are kept in memory for the "
                            "most recent ones); run it again from the comparison page")
    return entry


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
