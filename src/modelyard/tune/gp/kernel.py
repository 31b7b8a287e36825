"""Stationary ARD kernels on the unit cube: Matérn-5/2 and RBF, with analytic gradients.

Notation and shapes:
    X1: (n, d), X2: (m, d)      inputs
    ell: (d,)                   lengthscales (one per input column: ARD)
    s2: float                   signal variance
    D: (n, m, d)                scaled squared differences ((x1 - x2) / ell)^2
    r2: (n, m)                  sum_j D_j, r = sqrt(r2)
    K: (n, m)                   k(x1, x2) = s2 * rho(r)

Both kernels share one identity that keeps the gradients free of divisions by ``r``:
    dk/dlog(ell_j) = G * D_j          and        dk/dx1_j = -G * (x1_j - x2_j) / ell_j^2
with ``G = s2 * (5/3) * (1 + sqrt(5) r) * exp(-sqrt(5) r)`` for Matérn-5/2 and ``G = K`` for RBF.
"""

from __future__ import annotations

import numpy as np

__all__ = ["KERNELS", "kernel", "kernel_and_g", "sq_dist"]

KERNELS = ("matern52", "rbf")
_SQRT5 = np.sqrt(5.0)


def sq_dist(X1: np.ndarray, X2: np.ndarray, ell: np.ndarray) -> np.ndarray:
    """Scaled squared distances ``r2: (n, m)``."""
    A, B = X1 / ell, X2 / ell
    r2 = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    return np.maximum(r2, 0.0)


def kernel_and_g(
    name: str, X1: np.ndarray, X2: np.ndarray, ell: np.ndarray, s2: float
) -> tuple[np.ndarray, np.ndarray]:
    """Kernel matrix ``K: (n, m)`` and gradient factor ``G: (n, m)`` (see module docstring)."""
    r2 = sq_dist(X1, X2, ell)
    if name == "matern52":
        r = np.sqrt(r2)
        e = np.exp(-_SQRT5 * r)
        K = s2 * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r2) * e
        G = s2 * (5.0 / 3.0) * (1.0 + _SQRT5 * r) * e
        return K, G
    if name == "rbf":
        K = s2 * np.exp(-0.5 * r2)
        return K, K
    raise ValueError(f"kernel must be one of {KERNELS}, got {name!r}; pick one of them.")


def kernel(name: str, X1: np.ndarray, X2: np.ndarray, ell: np.ndarray, s2: float) -> np.ndarray:
    """Kernel matrix ``K: (n, m)``."""
    return kernel_and_g(name, X1, X2, ell, s2)[0]
