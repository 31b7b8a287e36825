"""The penalized objective of a linear model and its derivatives, each one pass over the design.

Notation (see ``design.py`` for ``D``, ``s``, ``mu``, ``sigma``): ``K`` outputs; coefficients on
standardized features ``B: (d, K)`` and intercepts ``b: (K,)``, packed as ``θ = [B.ravel(), b]``
of size ``p = d·K + K``; sample weights ``w_i`` (1 when absent) with total ``W = Σ_i w_i`` over
every rank's rows; L2 strength ``λ``::

    f(θ) = (1/W) Σ_i w_i ℓ(y_i, x̃_iᵀB + b) + (λ/2) ‖B‖²          (the intercept is not penalized)

On the design, ``x̃_iᵀB + b = d_iᵀV + c`` with ``V = B / sigma`` and ``c = b − mᵀV``
(``m = mu − s``); the gradient maps back as ``∂/∂B = (Dᵀ R − m (Σ R)ᵀ) / sigma``.

``local*`` methods return plain sums over this process's rows (the summary of one shard);
``value_grad``, ``hessp`` and ``hessian`` add them over ranks with ``collective.all_sum`` (the
⊕ of ``train/aggregate.py``: a plain sum), then divide by ``W`` and add the penalty, so every
rank holds the same numbers and takes the same step.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from .design import Design
from .losses import Loss
from .workers import Workers

__all__ = ["LOCAL", "Collective", "LinearObjective"]


class Collective(Protocol):
    """How ranks agree: element-wise sums and one stop decision (identities in a single process)."""

    def all_sum(self, values: NDArray) -> NDArray:
        """Element-wise sum of a float64 vector over every rank."""
        ...

    def decide(self, stop: bool) -> bool:
        """Rank 0's ``stop``, on every rank."""
        ...


def _add_parts(parts: list[tuple[float, NDArray, NDArray]], d: int, k: int) -> tuple[float, NDArray, NDArray]:
    """The blocks' sums added in block order (``gD: (K, d)`` here)."""
    total, gD, rs = 0.0, np.zeros((k, d)), np.zeros(k)
    for t, g, r in parts:
        total += t
        gD += g
        rs += r
    return total, gD, rs


class _Local:
    def all_sum(self, values: NDArray) -> NDArray:
        return np.asarray(values, dtype=np.float64)

    def decide(self, stop: bool) -> bool:
        return bool(stop)


LOCAL: Collective = _Local()


class LinearObjective:
    """``f``, ``∇f``, Hessian-vector products and the Hessian of a penalized linear model on a design."""

    def __init__(
        self,
        design: Design,
        y: NDArray,
        weight: NDArray | None,
        loss: Loss,
        k: int,
        mean: NDArray,
        scale: NDArray,
        lam: float,
        collective: Collective = LOCAL,
        total_weight: float | None = None,
        workers: Workers | None = None,
    ):
        self.design = design
        self.y = y
        self.weight = None if weight is None else np.asarray(weight, dtype=np.float64)
        self.loss = loss
        self.k = int(k)
        self.d = design.d
        self.m = np.asarray(mean, dtype=np.float64) - design.shift
        self.inv = 1.0 / np.asarray(scale, dtype=np.float64)
        self.lam = float(lam)
        self.collective = collective
        self.workers = workers or Workers(1)
        if total_weight is None:
            mine = float(design.n if self.weight is None else self.weight.sum())
            total_weight = float(collective.all_sum(np.array([mine]))[0])
        self.total_weight = total_weight
        self.evaluations = 0
        self._last: tuple[bytes, float, float, NDArray] | None = None  # θ bytes, f, mean loss, gradient

    @property
    def size(self) -> int:
        """Number of parameters ``p = d·K + K``."""
        return self.d * self.k + self.k

    def split(self, theta: NDArray) -> tuple[NDArray, NDArray]:
        """``(B: (d, K), b: (K,))`` views of ``θ``."""
        return theta[: self.d * self.k].reshape(self.d, self.k), theta[self.d * self.k :]

    def _on_design(self, theta: NDArray) -> tuple[NDArray, NDArray]:
        B, b = self.split(np.asarray(theta, dtype=np.float64))
        V = B * self.inv[:, None]
        return V, b - self.m @ V

    def _back(self, gD: NDArray, rs: NDArray) -> NDArray:
        """``[(gD − m rsᵀ) / sigma, rs]`` packed: sums on the design mapped to standardized coordinates."""
        gB = (gD - np.outer(self.m, rs)) * self.inv[:, None]
        return np.concatenate([gB.ravel(), rs])

    def _rows(self, sl: slice, scratch: NDArray | None) -> tuple[NDArray, NDArray, NDArray | None]:
        return self.design.block(sl, scratch), self.y[sl], None if self.weight is None else self.weight[sl]

    # --- one shard's sums ----------------------------------------------------------------------------
    def _forward(self, Dc: NDArray, VT: NDArray, c: NDArray) -> NDArray:
        """``Z = (Dc V + c)ᵀ: (K, c)``; one output is a matrix-vector product."""
        Z = (Dc @ VT[0])[None, :] if self.k == 1 else VT @ Dc.T
        Z += c[:, None]
        return Z

    def local(self, theta: NDArray) -> NDArray:
        """``[Σ w ℓ, Σ w ∂ℓ/∂θ]`` over this process's rows (size ``1 + p``), at ``θ``."""
        V, c = self._on_design(theta)
        VT = np.ascontiguousarray(V.T)

        def block(group: list[slice]) -> tuple[float, NDArray, NDArray]:
            gDT = np.zeros((self.k, self.d))
            rs = np.zeros(self.k)
            total = 0.0
            scratch = self.design.scratch()
            for sl in group:
                Dc, yc, wc = self._rows(sl, scratch)
                part, R = self.loss.value_grad(self._forward(Dc, VT, c), yc, wc)
                total += part
                if self.k == 1:
                    gDT[0] += R[0] @ Dc
                else:
                    gDT += R @ Dc
                rs += R.sum(axis=1)
            return total, gDT, rs

        total, gDT, rs = _add_parts(self.workers.map(block, self.design.chunks), self.d, self.k)
        return np.concatenate([[total], self._back(gDT.T, rs)])

    def local_hessp(self, theta: NDArray, vec: NDArray) -> NDArray:
        """``Σ w (∂²ℓ/∂θ²) v`` over this process's rows, at ``θ`` in direction ``v``."""
        V, c = self._on_design(theta)
        U, u = self._on_design(vec)
        both = np.ascontiguousarray(np.concatenate([V, U], axis=1).T)  # (2K, d)
        cu = np.concatenate([c, u])
        k = self.k

        def block(group: list[slice]) -> tuple[float, NDArray, NDArray]:
            gDT = np.zeros((k, self.d))
            rs = np.zeros(k)
            scratch = self.design.scratch()
            for sl in group:
                Dc, yc, wc = self._rows(sl, scratch)
                ZZ = both @ Dc.T
                ZZ += cu[:, None]
                H = self.loss.hess_apply(ZZ[:k], ZZ[k:], yc, wc)
                gDT += H @ Dc
                rs += H.sum(axis=1)
            return 0.0, gDT, rs

        _, gDT, rs = _add_parts(self.workers.map(block, self.design.chunks), self.d, k)
        return self._back(gDT.T, rs)

    def local_hessian(self, theta: NDArray) -> NDArray:
        """``Σ w ∂²ℓ/∂θ²: (p, p)`` over this process's rows (one-output losses), at ``θ``."""
        if self.k != 1:
            raise ValueError("the explicit Hessian is for one-output losses; use hessp for multinomial")
        V, c = self._on_design(theta)
        VT = np.ascontiguousarray(V.T)
        d = self.d

        def block(group: list[slice]) -> tuple[NDArray, NDArray, float]:
            A = np.zeros((d, d))  # Σ h d dᵀ
            hd = np.zeros(d)  # Σ h d
            hs = 0.0  # Σ h
            scratch = self.design.scratch()
            for sl in group:
                Dc, yc, wc = self._rows(sl, scratch)
                h = self.loss.curvature(self._forward(Dc, VT, c), yc, wc)[0][:, None]
                Dh = Dc * h
                A += Dc.T @ Dh
                hd += Dh.sum(axis=0)
                hs += float(h.sum())
            return A, hd, hs

        parts = self.workers.map(block, self.design.chunks)
        A = np.sum([p[0] for p in parts], axis=0)
        hd = np.sum([p[1] for p in parts], axis=0)
        hs = float(sum(p[2] for p in parts))
        # x̃ = (d − m) / sigma: Σ h x̃ x̃ᵀ = S (A − m hdᵀ − hd mᵀ + hs m mᵀ) S with S = diag(1/sigma)
        m, inv = self.m, self.inv
        Hbb = (A - np.outer(m, hd) - np.outer(hd, m) + hs * np.outer(m, m)) * np.outer(inv, inv)
        Hbc = (hd - hs * m) * inv
        H = np.empty((d + 1, d + 1))
        H[:d, :d] = Hbb
        H[:d, d] = H[d, :d] = Hbc
        H[d, d] = hs
        return H

    # --- the objective over every rank --------------------------------------------------------------
    def _penalty_vector(self, theta: NDArray) -> NDArray:
        out = np.array(theta, dtype=np.float64)
        out[self.d * self.k :] = 0.0
        return out

    def value_grad(self, theta: NDArray) -> tuple[float, NDArray]:
        """``(f(θ), ∇f(θ))`` summed over every rank's rows."""
        theta = np.asarray(theta, dtype=np.float64)
        self.evaluations += 1
        total = self.collective.all_sum(self.local(theta))
        pen = self._penalty_vector(theta)
        mean_loss = float(total[0]) / self.total_weight
        f = mean_loss + 0.5 * self.lam * float(pen @ pen)
        g = total[1:] / self.total_weight + self.lam * pen
        self._last = (theta.tobytes(), f, mean_loss, g)
        return f, g.copy()

    def _cached(self, theta: NDArray) -> tuple[bytes, float, float, NDArray]:
        theta = np.asarray(theta, dtype=np.float64)
        if self._last is None or self._last[0] != theta.tobytes():
            self.value_grad(theta)
        assert self._last is not None
        return self._last

    def mean_loss(self, theta: NDArray) -> float:
        """``(1/W) Σ w ℓ`` at ``θ`` (the data loss, without the penalty; cached from the last evaluation)."""
        return self._cached(theta)[2]

    def gradient(self, theta: NDArray) -> NDArray:
        """``∇f(θ)`` (cached from the last evaluation)."""
        return self._cached(theta)[3]

    def hessp(self, theta: NDArray, vec: NDArray) -> NDArray:
        """``∇²f(θ) v`` summed over every rank's rows."""
        vec = np.asarray(vec, dtype=np.float64)
        total = self.collective.all_sum(self.local_hessp(theta, vec))
        return total / self.total_weight + self.lam * self._penalty_vector(vec)

    def hessian(self, theta: NDArray) -> NDArray:
        """``∇²f(θ): (p, p)`` summed over every rank's rows (one-output losses)."""
        local = self.local_hessian(theta)
        H = self.collective.all_sum(local.ravel()).reshape(local.shape) / self.total_weight
        idx = np.arange(self.d)
        H[idx, idx] += self.lam
        return H
