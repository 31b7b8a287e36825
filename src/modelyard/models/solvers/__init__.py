"""Exact solvers of the linear families: the design, the losses, the objective and its drivers, the closed form.

``design.py`` (the float64 rows and their moments), ``losses.py`` (per-row losses),
``objective.py`` (the penalized objective and its derivatives, summed over ranks),
``iterative.py`` (L-BFGS and Newton), ``gram.py`` (linear regression's normal equations).
"""

from __future__ import annotations

__all__ = ["preload"]


def preload() -> None:
    """Import what an exact fit imports on first use (torch for the model, scipy's solvers), so timings exclude it."""
    import scipy.linalg
    import scipy.optimize  # noqa: F401
    import threadpoolctl  # noqa: F401
    import torch.nn  # noqa: F401
