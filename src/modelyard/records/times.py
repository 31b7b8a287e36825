"""Timestamps in records: seconds since the epoch <-> ISO-8601 UTC strings with microseconds."""

from __future__ import annotations

__all__ = ["from_iso", "to_iso"]


def to_iso(t: float) -> str:
    """Seconds since the epoch as ISO-8601 UTC with microseconds, e.g. ``2025-01-31T12:00:00.123456Z``."""
    import datetime as _dt

    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(s: str | float) -> float:
    """Inverse of ``_iso`` (numbers pass through)."""
    import datetime as _dt

    if isinstance(s, (int, float)):
        return float(s)
    return _dt.datetime.fromisoformat(s).timestamp()  # 3.11+ reads the trailing Z
