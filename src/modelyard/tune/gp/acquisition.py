"""Acquisition functions for minimization: log expected improvement and UCB (as lower bound).

Notation and shapes:
    mean, var: (m,)      GP posterior at m query points; sigma = sqrt(var)
    dmean, dvar: (m, d)  their gradients wrt the query points
    best: float          incumbent (lowest observed standardized value)
    z: (m,)              (best - mean) / sigma; improvement is EI = sigma * h(z)
    h(z) = phi(z) + z * Phi(z),  dh/dz = Phi(z)

``log_h`` follows Ament et al. 2023 ("Unexpected improvements to expected improvement"):
for z <= -1 it uses ``-z^2/2 - log(2 pi)/2 + log1mexp(log(erfcx(-z/sqrt2) |z|) + log(pi/2)/2)``,
which stays finite and monotone far below the incumbent (z = -40 and beyond), where the
naive ``log(phi + z Phi)`` is ``log(0) = -inf``. Both functions return values to MAXIMIZE.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

__all__ = ["log_ei", "log_h", "ucb"]

_C1 = 0.5 * math.log(2 * math.pi)
_C2 = 0.5 * math.log(math.pi / 2)
_INV_SQRT_EPS = 1.0 / math.sqrt(np.finfo(float).eps)


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """log(1 - exp(x)) for x < 0, accurate near 0 and far below it."""
    x = np.minimum(x, -1e-300)
    return np.where(x > -math.log(2.0), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def log_h(z: np.ndarray) -> np.ndarray:
    """log(phi(z) + z Phi(z)), stable for all z."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    up = z > -1.0
    zu = z[up]
    out[up] = np.log(special.ndtr(zu) * zu + np.exp(-0.5 * zu * zu - _C1))
    zl = z[~up]
    far = zl < -_INV_SQRT_EPS
    mid = np.where(far, -2.0, zl)  # placeholder keeps erfcx away from overflow where unused
    val = -0.5 * mid * mid - _C1 + _log1mexp(np.log(special.erfcx(-mid / math.sqrt(2.0)) * np.abs(mid)) + _C2)
    out[~up] = np.where(far, -0.5 * zl * zl - _C1 - 2.0 * np.log(np.abs(zl)), val)
    return out


def _dlog_h(z: np.ndarray, lh: np.ndarray) -> np.ndarray:
    """d log h / dz = Phi(z) / h(z), computed in log space."""
    return np.exp(special.log_ndtr(z) - lh)


def log_ei(
    mean: np.ndarray,
    var: np.ndarray,
    best: float,
    dmean: np.ndarray | None = None,
    dvar: np.ndarray | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """log EI for minimization; with ``dmean, dvar`` also its gradient ``(m, d)``."""
    sigma = np.sqrt(var)
    z = (best - mean) / sigma
    lh = log_h(z)
    val = np.log(sigma) + lh
    if dmean is None or dvar is None:
        return val
    dsigma = dvar / (2.0 * sigma[:, None])
    dz = -(dmean + z[:, None] * dsigma) / sigma[:, None]
    grad = dsigma / sigma[:, None] + _dlog_h(z, lh)[:, None] * dz
    return val, grad


def ucb(
    mean: np.ndarray,
    var: np.ndarray,
    beta: float = 2.0,
    dmean: np.ndarray | None = None,
    dvar: np.ndarray | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Negated lower confidence bound ``-(mean - sqrt(beta) sigma)``; with gradients if given."""
    sigma = np.sqrt(var)
    rb = math.sqrt(beta)
    val = -mean + rb * sigma
    if dmean is None or dvar is None:
        return val
    return val, -dmean + rb * dvar / (2.0 * sigma[:, None])
