"""JSON-safe values: NumPy scalars as Python numbers, tuples as lists, recursively (records' to_dict shapes)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["jsonable"]


def jsonable(v: Any) -> Any:
    """``v`` with every NumPy scalar turned into a Python number and every tuple into a list, recursively."""
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (tuple, list)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v
