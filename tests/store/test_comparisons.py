"""ComparisonStore on SQLite and PostgreSQL: exact round trips, id prefixes, newest-first pages, deletes, errors."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import insert, select, text

from modelyard.errors import AmbiguousRefError, NotFoundError
from modelyard.store.comparisons import ComparisonStore, comparisons_table
from modelyard.store.db import Database


@pytest.fixture(scope="module")
def comparison(trained_result):
    """A real comparison on iris of the trained model and one trained with another seed."""
    from modelyard.compare import compare
    from modelyard.data import load_dataset
    from modelyard.testing.results import sample_result

    candidates = [("iris/1", trained_result.model, None), ("iris/2", sample_result(seed=1).model, None)]
    return compare(candidates, load_dataset("sklearn:iris"), resamples=1000, latency=False)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 's.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(url):
    db = Database(url).open()
    yield ComparisonStore(db)
    db.dispose()


def _at(c, day: int):
    """``c`` as if computed on 2025-01-``day``."""
    return dataclasses.replace(c, created_at=f"2025-01-{day:02d}T12:00:00.250Z")


def test_saved_comparison_round_trips_exactly(store, comparison):
    cid = store.save(comparison)
    assert len(cid) == 64 and int(cid, 16) >= 0
    back = store.get(cid)
    assert back == comparison and back.to_dict() == comparison.to_dict()
    assert store.get(cid[:6].upper()) == comparison  # a prefix, any case
    assert store.resolve(cid[:8]) == cid


def test_each_save_gets_its_own_random_id(store, comparison):
    ids = {store.save(comparison) for _ in range(3)}
    assert len(ids) == 3 and store.count() == 3
    assert all(store.get(i) == comparison for i in ids)


def test_list_is_newest_first_in_pages_of_summaries(store, comparison):
    ids = {day: store.save(_at(comparison, day)) for day in (2, 9, 5)}
    page = store.list()
    assert [s.id for s in page] == [ids[9], ids[5], ids[2]]
    first = page[0]
    assert first.refs == ("iris/1", "iris/2") and first.metric == comparison.metric == "f1"
    assert first.best == comparison.best.label and first.n_rows == comparison.n_rows == 150
    assert first.data_source == comparison.data_source and first.data_fingerprint == comparison.data_fingerprint
    d = first.to_dict()
    assert dt.datetime.fromisoformat(d["created_at"]) == dt.datetime(2025, 1, 9, 12, 0, 0, 250000, dt.UTC)
    assert d["refs"] == ["iris/1", "iris/2"] and d["id"] == ids[9]
    assert [s.id for s in store.list(limit=1, offset=1)] == [ids[5]]
    assert store.list(limit=5, offset=3) == [] and store.count() == 3


def test_delete_by_id_or_prefix(store, comparison):
    keep, gone = store.save(comparison), store.save(comparison)
    assert store.delete(gone[:10]) == gone
    with pytest.raises(NotFoundError, match="no saved comparison has an id starting with"):
        store.get(gone)
    with pytest.raises(NotFoundError):
        store.delete(gone)
    assert [s.id for s in store.list()] == [keep]


@pytest.mark.parametrize("ref, message", [
    ("abc", "at least 4 of its first hex characters"),  # too short to be a prefix
    ("iris/1", "is not a comparison id"),
    ("", "is not a comparison id"),
    ("f" * 64, "no saved comparison has an id starting with"),
])
def test_unknown_ids_say_what_to_give(store, comparison, ref, message):
    store.save(comparison)
    with pytest.raises(NotFoundError, match=message) as e:
        store.get(ref)
    assert "modelyard compare" in str(e.value) and "modelyard comparisons list" in str(e.value)


def test_ambiguous_prefix_names_the_candidates(store, comparison):
    cid = store.save(comparison)
    twin = cid[:8] + ("0" if cid[8] != "0" else "1") + cid[9:]  # a second row sharing the first 8 characters
    row = store.db.read(lambda conn: conn.execute(select(comparisons_table).where(comparisons_table.c.id == cid))
                        .mappings().one())
    store.db.run(lambda conn: conn.execute(insert(comparisons_table).values({**row, "id": twin})))
    with pytest.raises(AmbiguousRefError, match="matches several comparisons") as e:
        store.get(cid[:8])
    assert cid[:12] in str(e.value) and twin[:12] in str(e.value) and "more characters" in str(e.value)
    assert store.get(cid[:9]) == comparison and store.get(twin) == comparison  # one more character settles it


def test_a_store_made_before_comparisons_gets_the_table_on_open(url, comparison):
    db = Database(url).open()
    db.run(lambda conn: conn.execute(text("DROP TABLE comparisons")))  # as a store of an older modelyard
    db.dispose()
    db = Database(url).open()
    try:
        store = ComparisonStore(db)
        assert store.count() == 0 and store.get(store.save(comparison)) == comparison
    finally:
        db.dispose()
