"""gc never removes weights an acknowledged version references, even when it races a registration.

The deterministic tests put a gc exactly where the race used to lose weights (after a
registration wrote or re-used its blob, before its row); the race tests run real processes that
register, delete and re-register identical weights while another collects with no age guard.
"""

from __future__ import annotations

import math

import pytest

import modelyard as my
from modelyard.errors import ParamError
from modelyard.store.artifacts import state_to_bytes
from modelyard.testing.gc_race import run_race
from modelyard.testing.results import sample_result, save_result
from modelyard.yard import Yard


@pytest.fixture(scope="module")
def packed_result():
    """A logistic regression: its weights are a few hundred bytes, kept in a pack file."""
    import torch

    torch.set_num_threads(1)
    return sample_result()


@pytest.fixture(scope="module")
def loose_result():
    """An MLP whose weights pass 1 MiB, so they get a file of their own."""
    import torch

    torch.set_num_threads(1)
    return my.train(my.load_dataset("sklearn:iris"), model="mlp", params={"hidden_sizes": (512, 512)}, epochs=1)


def _sizes(result):
    return len(state_to_bytes(result.model.state()))


def test_the_fixtures_cover_both_blob_paths(packed_result, loose_result):
    assert _sizes(packed_result) < 1 << 20 <= _sizes(loose_result)


@pytest.mark.parametrize("kind", ["packed", "loose"])
@pytest.mark.parametrize("reuse", [False, True], ids=["new-blob", "reused-blob"])
def test_a_gc_between_the_blob_and_the_row_cannot_lose_the_weights(tmp_path, request, kind, reuse):
    result = request.getfixturevalue(f"{kind}_result")
    with Yard(tmp_path / "store") as yard:
        reg = yard.registry
        if reuse:  # the identical weights of a deleted version: the blob is there, unreferenced
            reg.delete(reg.register(result, "m").ref)
        put = reg.artifacts.put
        collected: list[list[str]] = []

        def put_then_collect(data):
            digest = put(data)
            collected.append(reg.gc(older_than=0) if not collected else [])  # after the blob, before the row
            return digest

        reg.artifacts.put = put_then_collect
        v = reg.register(result, "m")
        reg.artifacts.put = put
        assert collected[0] == [v.artifact]  # the gc did remove the blob ...
        assert collected[1:] == [[]]  # ... so the registration wrote it again before recording the version
        reg.load_model(v.ref)
        assert reg.gc(older_than=0) == []  # and a referenced blob is never removed
        with Yard(tmp_path / "store") as other:  # what another process sees
            other.registry.load_model(v.ref)


def test_gc_keeps_referenced_blobs_and_removes_the_rest(tmp_path, packed_result, loose_result):
    with Yard(tmp_path / "store") as yard:
        reg = yard.registry
        keep = reg.register(packed_result, "keep")
        gone = reg.register(loose_result, "gone")
        reg.delete(gone.ref)
        stray = reg.artifacts.put(b"bytes of a registration that crashed before its row")
        assert sorted(reg.gc(older_than=0, dry_run=True)) == sorted([gone.artifact, stray])
        assert sorted(reg.gc(older_than=0)) == sorted([gone.artifact, stray])
        assert not reg.artifacts.stored(gone.artifact) and not reg.artifacts.stored(stray)
        reg.load_model(keep.ref)


@pytest.mark.parametrize("older_than", [math.nan, math.inf, -1.0, "1h", True])
def test_gc_refuses_an_age_guard_that_is_not_a_finite_number_of_seconds(tmp_path, older_than):
    with Yard(tmp_path / "store") as yard, pytest.raises(ParamError, match="older_than must be a finite number"):
        yard.registry.gc(older_than=older_than)


@pytest.mark.slow
@pytest.mark.parametrize("kind, rounds", [("packed", 150), ("loose", 100)])
def test_processes_re_registering_identical_weights_while_gc_loops_lose_nothing(tmp_path, request, kind, rounds):
    result = request.getfixturevalue(f"{kind}_result")
    save_result(result, tmp_path / "result.json")
    race = run_race(tmp_path / "store", tmp_path / "result.json", workers=2, rounds=rounds)
    assert race.rounds == 2 * rounds and race.acknowledged == 2 * rounds + 2
    assert race.collections > 0
    assert race.lost == 0, race.errors


@pytest.mark.slow
@pytest.mark.postgres
def test_the_race_on_postgres_loses_nothing_either(tmp_path, packed_result, postgres_url):
    save_result(packed_result, tmp_path / "result.json")
    race = run_race(postgres_url, tmp_path / "result.json", workers=2, rounds=100, artifacts=tmp_path / "artifacts")
    assert race.acknowledged == 202 and race.collections > 0
    assert race.lost == 0, race.errors
