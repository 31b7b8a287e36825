"""Fixtures of the store tests: one trained result per session, fresh stores per test."""

from __future__ import annotations

import itertools

import pytest

from modelyard.testing.results import sample_result


@pytest.fixture(scope="session")
def trained_result():
    """A logistic regression trained for two epochs on iris (real weights, loadable)."""
    import torch

    torch.set_num_threads(1)
    return sample_result()


@pytest.fixture
def make_yard(tmp_path):
    """A factory of fresh Yards, each in its own folder under tmp_path (closed after the test)."""
    from modelyard.yard import Yard

    made = []
    counter = itertools.count()

    def make(**kwargs):
        yard = Yard(tmp_path / f"store{next(counter)}", **kwargs)
        made.append(yard)
        return yard

    yield make
    for y in made:
        y.close()
