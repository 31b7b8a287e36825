"""Helpers of the dashboard's list queries: a LIKE pattern for substring filters, finite floats for JSON."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["finite", "like_pattern"]


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with LIKE's wildcards escaped."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def finite(v: Any) -> float | None:
    """``v`` as a float, or None when it is missing or not finite."""
    return float(v) if v is not None and math.isfinite(float(v)) else None
