"""Acquisition maximization over a mixed unit cube: Sobol sweep, L-BFGS-B, exact discrete search.

Notation and shapes:
    D                      columns of the unit cube (one-hot columns included)
    X: (m, D)              candidate points;  acq(X) -> (m,), acq(X, grad=True) -> ((m,), (m, D))
    layout.continuous      columns optimized by gradient (floats, and ints with many values, "relaxed")
    layout.ints            (column, grid) pairs: grid (g,) holds the unit value of every allowed integer
    layout.groups          one index array per categorical: its one-hot columns

Steps: (1) score Sobol points and perturbations of the best observed points; (2) from the
top few, run one joint L-BFGS-B over the continuous columns with the discrete ones fixed;
(3) snap relaxed ints to their grid, then coordinate search over the discrete columns: every
value of a small int, grid neighbours of a relaxed int, every one-hot of a categorical;
(4) repeat (2)-(3) while the discrete part changes. Every returned point is exactly valid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from scipy.stats import qmc

__all__ = ["Layout", "maximize", "snap", "sobol_points"]

AcqFn = Callable[..., "np.ndarray | tuple[np.ndarray, np.ndarray]"]
_SMALL_INT = 16  # ints with at most this many values are searched exhaustively, never relaxed


@dataclass(frozen=True)
class Layout:
    """Which unit-cube columns are continuous, integer (with their grid) or one-hot groups."""

    n_dims: int
    floats: tuple[int, ...] = ()
    ints: tuple[tuple[int, np.ndarray], ...] = ()
    groups: tuple[np.ndarray, ...] = field(default_factory=tuple)

    @property
    def relaxed(self) -> tuple[int, ...]:
        """Int columns with many values, optimized as continuous then snapped."""
        return tuple(c for c, g in self.ints if g.size > _SMALL_INT)

    @property
    def continuous(self) -> np.ndarray:
        """Columns L-BFGS-B moves."""
        return np.array(sorted(self.floats + self.relaxed), dtype=int)


def snap(X: np.ndarray, layout: Layout) -> np.ndarray:
    """Ints to their nearest grid value, one-hot groups to the argmax; shape kept ``(m, D)``."""
    X = np.clip(np.array(X, dtype=float, copy=True), 0.0, 1.0)
    for c, grid in layout.ints:
        idx = np.abs(X[:, c : c + 1] - grid[None, :]).argmin(1)
        X[:, c] = grid[idx]
    for cols in layout.groups:
        k = X[:, cols].argmax(1)
        X[:, cols] = 0.0
        X[np.arange(len(X)), cols[k]] = 1.0
    return X


def sobol_points(layout: Layout, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` scrambled Sobol points mapped to valid unit points ``(n, D)``."""
    n_raw = len(layout.floats) + len(layout.ints) + len(layout.groups)
    seed = int(rng.integers(2**63 - 1))
    m = max(int(np.ceil(np.log2(max(n, 2)))), 1)
    raw = qmc.Sobol(n_raw, scramble=True, seed=seed).random_base2(m)[:n]
    X = np.zeros((n, layout.n_dims))
    j = 0
    for c in layout.floats:
        X[:, c] = raw[:, j]
        j += 1
    for c, grid in layout.ints:
        X[:, c] = grid[np.minimum((raw[:, j] * grid.size).astype(int), grid.size - 1)]
        j += 1
    for cols in layout.groups:
        k = np.minimum((raw[:, j] * cols.size).astype(int), cols.size - 1)
        X[np.arange(n), cols[k]] = 1.0
        j += 1
    return X


def _perturb(seeds: np.ndarray, layout: Layout, n: int, rng: np.random.Generator) -> np.ndarray:
    """Local candidates around good points: Gaussian steps, occasional categorical flips."""
    if seeds.size == 0 or n <= 0:
        return np.zeros((0, layout.n_dims))
    X = seeds[rng.integers(len(seeds), size=n)].copy()
    scale = rng.choice([0.01, 0.05, 0.15], size=(n, 1))
    num = np.array(sorted(layout.floats + tuple(c for c, _ in layout.ints)), dtype=int)
    if num.size:
        mask = rng.random((n, num.size)) < max(0.5, 1.0 / num.size)
        X[:, num] += mask * scale * rng.normal(size=(n, num.size))
    for cols in layout.groups:
        flip = rng.random(n) < 0.15
        k = rng.integers(cols.size, size=n)
        X[np.ix_(flip, cols)] = 0.0
        X[np.flatnonzero(flip), cols[k[flip]]] = 1.0
    return snap(X, layout)


def _lbfgs(acq: AcqFn, X0: np.ndarray, cols: np.ndarray, maxiter: int) -> np.ndarray:
    """One joint L-BFGS-B run over ``cols`` of every start (their sum is separable)."""
    k = len(X0)

    def f(v: np.ndarray) -> tuple[float, np.ndarray]:
        X = X0.copy()
        X[:, cols] = v.reshape(k, cols.size)
        val, grad = acq(X, grad=True)
        if not np.all(np.isfinite(val)):
            return 1e30, np.zeros_like(v)
        return float(-val.sum()), -grad[:, cols].ravel()

    res = optimize.minimize(
        f,
        X0[:, cols].ravel(),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, 1.0)] * (k * cols.size),
        options={"maxiter": maxiter},
    )
    X = X0.copy()
    X[:, cols] = np.clip(res.x.reshape(k, cols.size), 0.0, 1.0)
    return X


def _moves(x: np.ndarray, layout: Layout) -> np.ndarray:
    """All single discrete moves from ``x``: small ints to every value, relaxed ints +-1, +-2
    grid steps, categoricals to every other choice. Shape ``(n_moves, D)``."""
    out = []
    for c, grid in layout.ints:
        i = int(np.abs(grid - x[c]).argmin())
        idx = range(grid.size) if grid.size <= _SMALL_INT else (i - 2, i - 1, i + 1, i + 2)
        for j in idx:
            if 0 <= j < grid.size and j != i:
                y = x.copy()
                y[c] = grid[j]
                out.append(y)
    for cols in layout.groups:
        cur = int(x[cols].argmax())
        for j in range(cols.size):
            if j != cur:
                y = x.copy()
                y[cols] = 0.0
                y[cols[j]] = 1.0
                out.append(y)
    return np.array(out).reshape(-1, layout.n_dims)


def _discrete_search(acq: AcqFn, X: np.ndarray, vals: np.ndarray, layout: Layout, max_iter: int = 8):
    """Greedy best-improvement coordinate search over the discrete columns, per start."""
    X, vals = X.copy(), vals.copy()
    for s in range(len(X)):
        for _ in range(max_iter):
            moves = _moves(X[s], layout)
            if not len(moves):
                break
            mv = acq(moves)
            b = int(np.argmax(mv))
            if not mv[b] > vals[s] + 1e-12:
                break
            X[s], vals[s] = moves[b], mv[b]
    return X, vals


def maximize(
    acq: AcqFn,
    layout: Layout,
    rng: np.random.Generator,
    seeds: np.ndarray | None = None,
    n_sobol: int = 1024,
    n_starts: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """Valid points ``(k, D)`` ranked by acquisition (best first) and their values ``(k,)``."""
    seeds = np.zeros((0, layout.n_dims)) if seeds is None else np.atleast_2d(seeds)
    cand = np.vstack([sobol_points(layout, n_sobol, rng), _perturb(seeds, layout, n_sobol // 4, rng), seeds])
    cv = acq(cand)
    cv = np.where(np.isfinite(cv), cv, -np.inf)
    order = np.argsort(-cv, kind="stable")
    _, first = np.unique(cand[order].round(12), axis=0, return_index=True)
    top = order[np.sort(first)][:n_starts]
    X, vals = cand[top], cv[top]
    cols = layout.continuous
    for _ in range(3):
        before = X.copy()
        if cols.size:
            Xc = snap(_lbfgs(acq, X, cols, maxiter=60), layout)
            vc = acq(Xc)
            better = vc > vals
            X[better], vals[better] = Xc[better], vc[better]
        if len(layout.ints) or len(layout.groups):
            X, vals = _discrete_search(acq, X, vals, layout)
        if not cols.size or np.array_equal(
            snap(before, layout)[:, _discrete_cols(layout)], X[:, _discrete_cols(layout)]
        ):
            break
    allX = np.vstack([X, cand[order[:64]]])
    allv = np.concatenate([vals, cv[order[:64]]])
    rank = np.argsort(-allv, kind="stable")
    return allX[rank], allv[rank]


def _discrete_cols(layout: Layout) -> np.ndarray:
    cols = [c for c, _ in layout.ints] + [int(c) for g in layout.groups for c in g]
    return np.array(sorted(cols), dtype=int)
