"""Training records: the fit configuration (apart from hyperparameters) and one epoch's log."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EpochLog", "FitConfig"]


@dataclass(frozen=True)
class FitConfig:
    """How long and how carefully to train: the training configuration, apart from hyperparameters."""

    epochs: int | None = None  # None: the family's own budget (a step budget for minibatch loops, convergence for exact solvers)
    patience: int | None = None  # epochs without validation improvement before stopping; None: the default (10), 0: off
    max_time: float | None = None  # wall-clock budget in seconds
    seed: int = 0
    min_delta: float = 0.0  # smallest improvement of the validation loss that counts
    device: str | None = None  # "cpu", "cuda", ...; None picks automatically
    threads: int | None = None  # torch intra-op threads; None keeps torch's default

    def __post_init__(self) -> None:
        import numbers

        from ..errors import ParamError

        def whole(v: Any) -> bool:
            return isinstance(v, numbers.Integral) and not isinstance(v, bool)

        if self.epochs is not None and (not whole(self.epochs) or self.epochs < 1):
            raise ParamError(f"epochs must be an int >= 1, got {self.epochs!r}; pass e.g. --epochs 20")
        if self.patience is not None and (not whole(self.patience) or self.patience < 0):
            raise ParamError(f"patience must be an int >= 0 (0 turns early stopping off), got {self.patience!r}; "
                             "pass e.g. --patience 5")
        if self.max_time is not None and (
            not isinstance(self.max_time, numbers.Real) or isinstance(self.max_time, bool) or not self.max_time > 0
        ):
            raise ParamError(f"max_time must be a number of seconds > 0, got {self.max_time!r}; pass e.g. --max-time 90s")
        if not whole(self.seed) or self.seed < 0:
            raise ParamError(f"seed must be an int >= 0, got {self.seed!r}; pass e.g. --seed 0")
        for name in ("epochs", "patience", "seed"):  # numpy integers become ints, so to_dict stays JSON-safe
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FitConfig:
        """Inverse of ``to_dict`` (unknown keys are ignored, so old records still load)."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class EpochLog:
    """What one epoch of training measured."""

    epoch: int
    train_loss: float
    val_loss: float | None = None
    val_metric: float | None = None  # accuracy for classification, R² for regression
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EpochLog:
        """Inverse of ``to_dict``."""
        return cls(**d)
