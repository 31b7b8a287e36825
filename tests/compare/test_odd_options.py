"""Comparison options refuse NaN and infinity with one sentence, as the CLI's parsing does."""

from __future__ import annotations

import math

import pytest

from modelyard.compare import CompareOptions
from modelyard.errors import ParamError


@pytest.mark.parametrize("field, value, needle", [
    ("alpha", math.nan, "alpha must be a number in \\(0, 1\\)"),
    ("alpha", math.inf, "alpha must be a number in \\(0, 1\\)"),
    ("latency_budget_s", math.nan, "latency_budget_s must be a finite number of seconds > 0"),
    ("latency_budget_s", math.inf, "latency_budget_s must be a finite number of seconds > 0"),
    ("latency_budget_s", True, "latency_budget_s must be a finite number of seconds > 0"),
])
def test_compare_options_refuse_odd_numbers(field, value, needle):
    with pytest.raises(ParamError, match=needle):
        CompareOptions(**{field: value})
