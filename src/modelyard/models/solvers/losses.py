"""Per-row losses of the linear families on a chunk of linear predictions, in float64.

Notation: ``Z: (K, c)`` predictions of a chunk of ``c`` rows, one row per output (``K = 1`` for
regression and binary classification, the number of classes for multinomial; outputs first, so
that the per-row reductions over the K outputs run over contiguous rows), ``y: (c,)`` targets
(values, 0/1, or class indices), ``w: (c,)`` sample weights or None (all ones). ``value_grad``
returns the weighted loss sum ``Σ w_i ℓ(y_i, z_i)`` and ``R = w ∘ ∂ℓ/∂Z: (K, c)``;
``hess_apply`` returns ``w ∘ (∂²ℓ/∂Z²) V`` for directions ``V: (K, c)``; ``curvature`` is the
weighted second derivative ``(1, c)`` of a one-output loss.

| loss         | ℓ(y, z)                     | ∂ℓ/∂z             | ∂²ℓ/∂z²              |
| ------------ | --------------------------- | ----------------- | -------------------- |
| squared      | (z − y)²                    | 2 (z − y)         | 2                    |
| logistic     | log(1 + eᶻ) − y z           | σ(z) − y          | σ(z)(1 − σ(z))       |
| multinomial  | log Σ_k e^{z_k} − z_y        | p − onehot(y)     | diag(p) − p pᵀ       |

``squared`` matches the minibatch loop's ``mse_loss`` (no ½), ``logistic`` and ``multinomial``
its ``binary_cross_entropy_with_logits`` and ``cross_entropy``, so the exact solvers minimize the
very objective the loop descends.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["LOSSES", "Logistic", "Loss", "Multinomial", "Squared"]


class Loss:
    """A per-row loss of ``K`` linear outputs."""

    name = ""

    def value_grad(self, Z: NDArray, y: NDArray, w: NDArray | None) -> tuple[float, NDArray]:
        """``(Σ w ℓ, w ∘ ∂ℓ/∂Z)`` on a chunk; ``Z`` may be overwritten."""
        raise NotImplementedError

    def curvature(self, Z: NDArray, y: NDArray, w: NDArray | None) -> NDArray:
        """``(1, c)`` weighted second derivative ``w ∘ ∂²ℓ/∂z²`` (one-output losses only)."""
        raise NotImplementedError

    def hess_apply(self, Z: NDArray, V: NDArray, y: NDArray, w: NDArray | None) -> NDArray:
        """``w ∘ (∂²ℓ/∂Z²) V`` row by row."""
        return self.curvature(Z, y, w) * V


class Squared(Loss):
    """Squared error ``(z − y)²``."""

    name = "squared"

    def value_grad(self, Z: NDArray, y: NDArray, w: NDArray | None) -> tuple[float, NDArray]:
        """Loss sum and ``2 w (z − y)``."""
        r = Z[0]
        r -= y
        if w is None:
            loss = float(r @ r)
            r *= 2.0
        else:
            wr = w * r
            loss = float(wr @ r)
            np.multiply(wr, 2.0, out=r)
        return loss, Z

    def curvature(self, Z: NDArray, y: NDArray, w: NDArray | None) -> NDArray:
        """``2 w``."""
        return np.full((1, Z.shape[1]), 2.0) if w is None else (2.0 * w)[None, :]


class Logistic(Loss):
    """Binary cross-entropy on one logit, ``y`` in {0, 1}, computed without overflow."""

    name = "logistic"

    def value_grad(self, Z: NDArray, y: NDArray, w: NDArray | None) -> tuple[float, NDArray]:
        """Loss sum and ``w (σ(z) − y)``."""
        z = Z[0]
        # with t = e^z (z clipped to ±500 against overflow): ℓ = log(1 + t) − y z and σ(z) = 1 − 1/(1 + t), both
        # to within 1e-16 absolute per row; past the clip log(1 + e^z) = z exactly in float64, restored below
        t = np.clip(z, -500.0, 500.0)
        np.exp(t, out=t)
        t += 1.0
        loss_rows = np.log(t)
        if z.max(initial=0.0) > 500.0:
            loss_rows += np.maximum(z - 500.0, 0.0)
        if w is None:
            loss = float(loss_rows.sum() - y @ z)
        else:
            loss = float(w @ loss_rows - (w * y) @ z)
        np.reciprocal(t, out=t)
        np.subtract(1.0, t, out=z)
        z -= y
        if w is not None:
            z *= w
        return loss, Z

    def curvature(self, Z: NDArray, y: NDArray, w: NDArray | None) -> NDArray:
        """``w σ(z) (1 − σ(z))``."""
        e = np.exp(-np.abs(Z[0]))
        h = e / ((1.0 + e) * (1.0 + e))  # σ(1 − σ), symmetric in z
        if w is not None:
            h *= w
        return h[None, :]


class Multinomial(Loss):
    """Softmax cross-entropy over ``K`` logits, ``y`` the class index."""

    name = "multinomial"

    def _softmax(self, Z: NDArray) -> tuple[NDArray, NDArray]:
        top = Z.max(axis=0)
        Z -= top
        np.exp(Z, out=Z)
        s = Z.sum(axis=0)
        Z /= s
        return Z, np.log(s) + top  # probabilities (in Z's memory), log-sum-exp

    def value_grad(self, Z: NDArray, y: NDArray, w: NDArray | None) -> tuple[float, NDArray]:
        """Loss sum and ``w (p − onehot(y))``."""
        rows = np.arange(Z.shape[1])
        zy = Z[y, rows]
        P, lse = self._softmax(Z)
        per_row = lse - zy
        loss = float(per_row.sum() if w is None else w @ per_row)
        P[y, rows] -= 1.0
        if w is not None:
            P *= w
        return loss, P

    def hess_apply(self, Z: NDArray, V: NDArray, y: NDArray, w: NDArray | None) -> NDArray:
        """``w (p ∘ v − p (pᵀ v))`` per row."""
        P, _ = self._softmax(Z)
        out = P * V
        out -= P * out.sum(axis=0)
        if w is not None:
            out *= w
        return out


LOSSES: dict[str, type[Loss]] = {"squared": Squared, "logistic": Logistic, "multinomial": Multinomial}
