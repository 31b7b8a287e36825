"""Comparison (C): rebuild versions, evaluate them on the same rows, test the differences, weigh the cost.

``compare`` works on fitted predictors, ``compare_refs`` on registry refs (``Registry.compare``
calls it); both return a frozen ``Comparison`` record. ``write_report`` renders one as a
standalone HTML page.
"""

from .align import align
from .core import MIN_RESAMPLES, CompareOptions, compare, compare_refs
from .cost import measure_latency, parameter_distance
from .report import render_html, write_report

__all__ = [
    "MIN_RESAMPLES",
    "CompareOptions",
    "align",
    "compare",
    "compare_refs",
    "measure_latency",
    "parameter_distance",
    "render_html",
    "write_report",
]
