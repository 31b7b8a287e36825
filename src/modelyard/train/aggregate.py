"""The ⊕ of data-parallel training: one small protocol and its implementations.

A round of data-parallel training is ``apply(model, local(model, D_1) ⊕ ... ⊕ local(model, D_N))``.
``combine`` (⊕) is associative and commutative (exactly in exact arithmetic, to rounding in
floating point), and every summary carries its shard's size, so uneven shards weigh what
they should. Notation: ``n_r`` rows in shard ``r``, ``n = Σ n_r``; ``θ`` the parameters;
``g_i`` the gradient of row ``i``'s loss.

| aggregate           | summary S of one shard               | ⊕                       | apply                    |
| ------------------- | ------------------------------------ | ----------------------- | ------------------------ |
| ``GradientSum``     | (n_r, Σ_{i∈r} g_i)                    | add                     | grad := Σ g_i / n        |
| ``ParameterAverage``| (n_r, n_r·θ_r)                        | add                     | θ := Σ n_r θ_r / n       |
| ``TreeUnion``       | the trees grown on shard r            | concatenate the trees   | forest of all trees      |
| ``Moments``         | (n_r, mean_r, M2_r) per column        | Chan et al. pairwise    | standardization (μ, σ)   |
| ``LossGradientSum`` | (W_r, Σ w ℓ, Σ w ∇ℓ) at θ             | add                     | f(θ), ∇f(θ) with penalty |
| ``GramSum``         | (W_r, Σ w x̃, Σ w x̃x̃ᵀ, Σ w x̃ỹ, ...)  | add                     | the normal equations' β  |

The last two are the exact solvers of the linear families (``models/solvers``): a full-batch
loss, gradient, Hessian-vector product or Gram matrix is a sum over rows, so their ⊕ is exact,
and N ranks take the very steps one process takes. The distributed runtime executes the sums
with ``all_reduce`` (gradients through DDP, the exact solvers' sums through ``Comm.all_sum``),
which computes the same fold; these classes define the math and are what the tests check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from ..errors import ParamError

__all__ = [
    "Aggregate",
    "GradientSum",
    "GramSum",
    "LossGradientSum",
    "MomentStats",
    "Moments",
    "ParameterAverage",
    "Shard",
    "TreeUnion",
    "Weighted",
    "fold",
    "tree_counts",
]

S = TypeVar("S")


class Shard(NamedTuple):
    """One rank's rows: features ``X: (n_r, d)``, target ``y: (n_r,)``, and where they sit in the global order."""

    X: NDArray
    y: NDArray | None
    start: int = 0  # position of the first row in the global row order
    total: int | None = None  # rows across all shards (None: this shard is everything)
    weight: NDArray | None = None  # sample weights of the rows (None: all 1)

    def __len__(self) -> int:
        return len(self.X)


class Aggregate(Protocol[S]):
    """One data-parallel round: summarize a shard, combine summaries (⊕), apply the total to the model."""

    def local(self, model: Any, shard: Shard) -> S:
        """The summary of one shard (gradients, parameters, trees or moments), weighted by its size."""
        ...

    def combine(self, a: S, b: S) -> S:
        """⊕: associative and commutative."""
        ...

    def apply(self, model: Any, total: S) -> Any:
        """The model updated with the combined summary of all shards."""
        ...


def fold(agg: Aggregate[S], parts: Iterable[S]) -> S:
    """``parts[0] ⊕ parts[1] ⊕ ...`` (left to right)."""
    it = iter(parts)
    try:
        total = next(it)
    except StopIteration:
        raise ValueError("fold needs at least one summary") from None
    for p in it:
        total = agg.combine(total, p)
    return total


@dataclass(frozen=True)
class Weighted:
    """A weighted sum: ``weight = Σ w_r`` and ``arrays[k] = Σ w_r · v_r[k]`` (the summary of the additive ⊕)."""

    weight: float
    arrays: dict[str, NDArray]

    def mean(self) -> dict[str, NDArray]:
        """``Σ w_r v_r / Σ w_r`` per array."""
        if self.weight <= 0:
            raise ValueError("cannot take the mean of a summary with total weight 0")
        return {k: v / self.weight for k, v in self.arrays.items()}


def _add(a: Weighted, b: Weighted) -> Weighted:
    if a.arrays.keys() != b.arrays.keys():
        raise ValueError(f"cannot combine summaries of different parameters: {sorted(a.arrays)} vs {sorted(b.arrays)}")
    return Weighted(a.weight + b.weight, {k: a.arrays[k] + b.arrays[k] for k in a.arrays})


class GradientSum:
    """Synchronous SGD: the summed per-row gradients of each shard; ⊕ adds; apply sets the mean gradient.

    ``loss_fn(output, target)`` is a mean over rows, as every family's loss is.
    """

    def __init__(self, loss_fn: Callable[[Any, Any], Any]):
        self.loss_fn = loss_fn

    def local(self, model: Any, shard: Shard) -> Weighted:
        """(n_r, Σ_{i∈r} g_i) of a torch module on the shard's rows."""
        import torch

        model.zero_grad(set_to_none=True)
        X = torch.as_tensor(shard.X)
        y = torch.as_tensor(shard.y)
        if len(shard):
            (self.loss_fn(model(X), y) * len(shard)).backward()
        grads = {
            name: (p.grad.detach().double().numpy().copy() if p.grad is not None else np.zeros(tuple(p.shape)))
            for name, p in model.named_parameters()
        }
        model.zero_grad(set_to_none=True)
        return Weighted(float(len(shard)), grads)

    def combine(self, a: Weighted, b: Weighted) -> Weighted:
        """Add counts and gradient sums."""
        return _add(a, b)

    def apply(self, model: Any, total: Weighted) -> Any:
        """Write the mean gradient ``Σ g_i / n`` into ``.grad`` (an optimizer step follows)."""
        import torch

        mean = total.mean()
        for name, p in model.named_parameters():
            p.grad = torch.as_tensor(mean[name], dtype=p.dtype).reshape(p.shape).clone()
        return model


class ParameterAverage:
    """Local SGD: each rank trains alone, and every k steps parameters become their shard-size-weighted mean."""

    def local(self, model: Any, shard: Shard) -> Weighted:
        """(n_r, n_r · θ_r)."""
        w = float(len(shard))
        return Weighted(w, {name: w * p.detach().double().numpy() for name, p in model.named_parameters()})

    def combine(self, a: Weighted, b: Weighted) -> Weighted:
        """Add weights and weighted parameters."""
        return _add(a, b)

    def apply(self, model: Any, total: Weighted) -> Any:
        """Load ``θ = Σ n_r θ_r / n`` into the module."""
        import torch

        mean = total.mean()
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.as_tensor(mean[name], dtype=p.dtype).reshape(p.shape))
        return model


def tree_counts(n_estimators: int, sizes: list[int]) -> list[int]:
    """Trees per shard, proportional to shard size, summing to ``n_estimators``, at least one each."""
    k = len(sizes)
    if n_estimators < k:
        raise ParamError(
            f"n_estimators={n_estimators} is fewer than the {k} ranks, and each rank grows at least one tree; "
            f"use n_estimators >= {k} or fewer nodes"
        )
    total = sum(sizes)
    if total <= 0:
        raise ValueError("tree_counts needs at least one row")
    bounds = np.concatenate([[0], np.cumsum(sizes)]) * (n_estimators - k) / total
    extra = np.diff(np.round(bounds).astype(int))  # cumulative rounding: sums exactly to n_estimators - k
    return [int(e) + 1 for e in extra]


class TreeUnion:
    """Random forests: each shard grows a share of the trees proportional to its size; ⊕ is the union of trees."""

    def __init__(self, sizes: list[int], rank: int, seed: int = 0):
        self.sizes = list(sizes)
        self.rank = rank
        self.seed = seed

    def local(self, model: Any, shard: Shard) -> dict[str, NDArray]:
        """Grow this rank's trees (seed + rank) on the shard and return them as state arrays."""
        from ..records.training import FitConfig

        counts = tree_counts(model.hparams["n_estimators"], self.sizes)
        sub = type(model)(task=model.task, n_classes=model.n_classes, **{**model.hparams, "n_estimators": counts[self.rank]})
        sub.fit(shard.X, shard.y, config=FitConfig(seed=self.seed + self.rank))
        return {k: v for k, v in sub.state().items() if k.startswith(("tree.", "forest."))}

    def combine(self, a: Mapping[str, NDArray], b: Mapping[str, NDArray]) -> dict[str, NDArray]:
        """All trees of ``a`` followed by all trees of ``b``."""
        from ..models.forest import forest_union

        return forest_union([a, b])

    def apply(self, model: Any, total: Mapping[str, NDArray]) -> Any:
        """The forest of every tree."""
        return type(model).from_state(model.get_params(), total, task=model.task, n_classes=model.n_classes)


@dataclass(frozen=True)
class MomentStats:
    """Per-column count, mean and sum of squared deviations ``M2`` (variance = M2 / count)."""

    count: float
    mean: NDArray[np.float64]
    m2: NDArray[np.float64]

    def std(self) -> NDArray[np.float64]:
        """Population standard deviation per column."""
        if self.count <= 0:
            return np.ones_like(self.mean)
        return np.sqrt(np.maximum(self.m2 / self.count, 0.0))


class Moments:
    """Standardization statistics: ⊕ merges (count, mean, M2) exactly as one pass over the union would."""

    def local(self, model: Any, shard: Shard) -> MomentStats:
        """Moments of the shard's columns (``shard.X``), in float64."""
        return self.of(shard.X)

    @staticmethod
    def of(X: NDArray, chunk: int = 16384) -> MomentStats:
        """(count, mean, M2) of ``X: (n, d)``, accumulated in float64 over row chunks."""
        n, d = X.shape
        if n == 0:
            return MomentStats(0.0, np.zeros(d), np.zeros(d))
        mean = X.mean(axis=0, dtype=np.float64)
        m2 = np.zeros(d)
        for i in range(0, n, chunk):
            diff = X[i : i + chunk].astype(np.float64) - mean
            m2 += np.einsum("ij,ij->j", diff, diff)
        return MomentStats(float(n), mean, m2)

    def combine(self, a: MomentStats, b: MomentStats) -> MomentStats:
        """Chan, Golub & LeVeque's pairwise merge, written symmetrically so that a ⊕ b == b ⊕ a exactly."""
        n = a.count + b.count
        if n == 0:
            return MomentStats(0.0, np.zeros_like(a.mean), np.zeros_like(a.m2))
        delta = b.mean - a.mean
        mean = (a.count * a.mean + b.count * b.mean) / n
        m2 = a.m2 + b.m2 + delta * delta * (a.count * b.count / n)
        return MomentStats(n, mean, m2)

    def apply(self, model: Any, total: MomentStats) -> Any:
        """Set a torch family's feature standardization (mean_, scale_) from the combined moments."""
        std = total.std()
        model.mean_ = total.mean.astype(np.float32)
        model.scale_ = np.where(std > 1e-12, std, 1.0).astype(np.float32)
        return model


class LossGradientSum:
    """The exact solvers' round: at coefficients ``θ``, each shard's weighted loss and gradient sums; ⊕ adds them.

    ``loss`` is ``"squared"``, ``"logistic"`` or ``"multinomial"`` with ``k`` outputs; ``mean``/``scale``
    the standardization and ``lam`` the L2 strength (``models/solvers/objective.py`` has the notation).
    ``local`` is exactly what each rank computes before its all-reduce.
    """

    def __init__(self, loss: str, k: int, mean: NDArray, scale: NDArray, lam: float):
        self.loss, self.k, self.mean, self.scale, self.lam = loss, int(k), mean, scale, float(lam)

    def _objective(self, shard: Shard) -> Any:
        from ..models.solvers.design import design
        from ..models.solvers.losses import LOSSES
        from ..models.solvers.objective import LinearObjective

        weight = 1.0 if shard.weight is None else float(np.sum(shard.weight))
        return LinearObjective(design(shard.X), shard.y, shard.weight, LOSSES[self.loss](), self.k, self.mean,
                               self.scale, self.lam, total_weight=weight)

    def local(self, model: NDArray, shard: Shard) -> Weighted:
        """(W_r, {"loss": Σ w ℓ, "grad": Σ w ∇ℓ}) of the shard at ``θ`` (``model`` is θ)."""
        obj = self._objective(shard)
        sums = obj.local(np.asarray(model, dtype=np.float64))
        weight = float(len(shard) if shard.weight is None else np.sum(shard.weight))
        return Weighted(weight, {"loss": sums[:1], "grad": sums[1:]})

    def combine(self, a: Weighted, b: Weighted) -> Weighted:
        """Add weights, loss sums and gradient sums."""
        return _add(a, b)

    def apply(self, model: NDArray, total: Weighted) -> tuple[float, NDArray]:
        """``(f(θ), ∇f(θ))``: the means plus the penalty ``(λ/2)‖B‖²`` (the intercepts are not penalized)."""
        theta = np.asarray(model, dtype=np.float64)
        pen = theta.copy()
        pen[theta.size - self.k :] = 0.0
        f = float(total.arrays["loss"][0]) / total.weight + 0.5 * self.lam * float(pen @ pen)
        return f, total.arrays["grad"] / total.weight + self.lam * pen


class GramSum:
    """Linear regression in closed form: each shard's weighted Gram sums around a common ``shift``; ⊕ adds them."""

    def __init__(self, shift: NDArray, mean: NDArray, scale: NDArray, lam: float):
        self.shift, self.mean, self.scale, self.lam = shift, mean, scale, float(lam)

    def local(self, model: Any, shard: Shard) -> Weighted:
        """(W_r, {"sums": S_r}) with ``S_r`` the packed sums of ``models/solvers/gram.py`` (``shard.y`` standardized)."""
        from ..models.solvers.gram import gram_sums

        sums = gram_sums(shard.X, np.asarray(shard.y, dtype=np.float64), shard.weight, self.shift)
        return Weighted(float(sums[0]), {"sums": sums})

    def combine(self, a: Weighted, b: Weighted) -> Weighted:
        """Add the sums."""
        return _add(a, b)

    def apply(self, model: Any, total: Weighted) -> Any:
        """The solution of the penalized normal equations (a ``GramSolution``: coefficients, intercept, loss)."""
        from ..models.solvers.gram import solve_gram

        d = len(np.asarray(self.mean))
        return solve_gram(total.arrays["sums"], d, self.lam, self.mean, self.scale, self.shift)
