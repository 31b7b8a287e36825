"""Gaussian-process Bayesian optimization on the unit cube (numpy/scipy only).

Shapes everywhere: ``X: (n, d)`` inputs in ``[0, 1]^d``, ``y: (n,)`` standardized targets,
``K: (n, n)`` kernel matrices. kernel.py (Matérn-5/2, RBF), regressor.py (MAP fit,
posterior, output warping), acquisition.py (log-EI, UCB), optimize.py (acquisition maximization).
"""

from .acquisition import log_ei, ucb
from .kernel import KERNELS, kernel
from .optimize import Layout, maximize, sobol_points
from .regressor import GaussianProcess, Hypers, warp_outputs

__all__ = [
    "KERNELS",
    "GaussianProcess",
    "Hypers",
    "Layout",
    "kernel",
    "log_ei",
    "maximize",
    "sobol_points",
    "ucb",
    "warp_outputs",
]
