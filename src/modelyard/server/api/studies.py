"""Studies and trials: lists with filters and pages, one trial, and the aggregates the study page plots."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from ...store import study_queries as queries
from ..security import check_name
from .common import ERRORS, Limit, Offset, Page, YardDep, clean, database, page

__all__ = ["router"]

router = APIRouter(tags=["studies"])

StudyName = Annotated[str, Path(min_length=1, max_length=200, description="study name")]


def _name(name: str) -> str:
    return check_name(name, "study name")


@router.get("/studies", response_model=Page, responses=ERRORS, summary="List studies")
def list_studies(
    yard: YardDep,
    name: Annotated[str | None, Query(max_length=200, description="keep studies whose name contains this")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page:
    """Studies newest first, each with its trial counts per state and best trial (``StudyInfo``)."""
    found = queries.list_studies(database(yard), name=name, limit=limit, offset=offset)
    return page(found.items, found.total, limit, offset)


@router.get("/studies/{name}", responses=ERRORS, summary="One study")
def get_study(name: StudyName, yard: YardDep) -> dict[str, Any]:
    """The study's definition (space, direction, optimizer, pruner) with its tallies; same shape as the CLI's."""
    return clean(queries.get_study(database(yard), _name(name)))


@router.get("/studies/{name}/trials", response_model=Page, responses=ERRORS, summary="List a study's trials")
def list_trials(
    name: StudyName,
    yard: YardDep,
    state: Annotated[list[str] | None, Query(description="keep these states (repeatable): running, complete, "
                                                       "pruned, failed")] = None,
    sort: Annotated[str, Query(description="number, value or duration; prefix - for descending")] = "number",
    since: Annotated[int | None, Query(ge=-1, le=2**31, description="only trials numbered above this "
                                                                   "(for polling)")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page:
    """Trials with params, value, state, intermediate values and times; stable order, trial number breaks ties."""
    items, total = queries.list_trials(database(yard), _name(name), states=state, sort=sort, limit=limit,
                                       offset=offset, since=since)
    return page(items, total, limit, offset)


@router.get("/studies/{name}/trials/{number}", responses=ERRORS, summary="One trial")
def get_trial(
    name: StudyName,
    number: Annotated[int, Path(ge=0, le=2**31, description="trial number")],
    yard: YardDep,
) -> dict[str, Any]:
    """One trial with all its intermediate values."""
    from ...errors import NotFoundError

    items, _ = queries.list_trials(database(yard), _name(name), limit=1, offset=0, since=number - 1)
    if not items or items[0].number != number:
        raise NotFoundError(f"study {name!r} has no trial {number}; see `modelyard studies show {name}`")
    return clean(items[0])


@router.get("/studies/{name}/history", responses=ERRORS, summary="Optimization history")
def history(
    name: StudyName,
    yard: YardDep,
    max_points: Annotated[int, Query(ge=10, le=20000, description="thin the dots past this many")] = 2000,
) -> dict[str, Any]:
    """Value of each finished trial (thinned to bucket extremes past ``max_points``) and the exact best-so-far line."""
    return clean(queries.history(database(yard), _name(name), max_points=max_points))


@router.get("/studies/{name}/parallel", responses=ERRORS, summary="Parallel-coordinates data")
def parallel(
    name: StudyName,
    yard: YardDep,
    max_rows: Annotated[int, Query(ge=10, le=5000, description="sample past this many trials")] = 1000,
) -> dict[str, Any]:
    """Params and value of completed trials with the space's axes; past ``max_rows``: the best half and a sample."""
    return clean(queries.parallel(database(yard), _name(name), max_rows=max_rows))


@router.get("/studies/{name}/curves", responses=ERRORS, summary="Intermediate-value curves")
def curves(
    name: StudyName,
    yard: YardDep,
    max_curves: Annotated[int, Query(ge=4, le=1000, description="at most this many trials")] = 120,
) -> dict[str, Any]:
    """Intermediate values of running, pruned and completed trials (the latest of each, bounded)."""
    return clean(queries.curves(database(yard), _name(name), max_curves=max_curves))
