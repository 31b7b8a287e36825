"""The Model protocol every family implements, and declared hyperparameters with their checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ..errors import ParamError
from ..records.training import EpochLog, FitConfig
from ..schema import Task

__all__ = ["Callback", "EvalSet", "Model", "Param", "ParamSpec"]

EvalSet = tuple[NDArray, NDArray]


class Callback(Protocol):
    """Called after each epoch; returning True stops training (used by pruners and budgets)."""

    def __call__(self, log: EpochLog) -> bool | None: ...


@runtime_checkable
class Model(Protocol):
    """A model family's estimator: fit on encoded float32 features, predict, and save as named arrays.

    ``y`` holds class indices ``0..n_classes-1`` for classification and floats for regression.
    Constructors take ``task`` and ``n_classes`` (keywords) and the hyperparameters.

    Optional declarations a family class may make (read with ``getattr``; not protocol members):

    - ``handles_missing: ClassVar[bool] = True``: ``fit`` and ``predict`` take NaN in ``X``
      (a missing numeric value, or a missing category in a categorical column; code ``-1`` is a
      category never seen in training). Default False: ``train`` refuses NaN for the family
      unless ``impute`` is given, and ``Predictor`` imputes before the model sees the rows.
    - ``sample_weight``: a family that supports weights accepts ``fit(..., sample_weight=w)``
      with ``w: (n,)`` float32 >= 0 (``None``: every row weighs 1) and minimizes the weighted
      mean loss. It may also accept ``eval_sample_weight`` (weights of the ``eval_set`` rows) so
      its validation loss, and early stopping on it, use the same weighting. ``train`` passes
      these when the ``class_weight`` hyperparameter is set (see ``models/weights.py``); a
      classification family supports class weights by declaring ``weights.CLASS_WEIGHT`` among
      its params and accepting ``sample_weight``.
    """

    def fit(
        self,
        X: NDArray,
        y: NDArray,
        *,
        sample_weight: NDArray | None = None,
        eval_set: EvalSet | None = None,
        config: FitConfig = ...,
        callbacks: Sequence[Callback] = (),
    ) -> Self: ...

    def predict(self, X: NDArray) -> NDArray: ...

    def get_params(self) -> dict[str, Any]: ...

    def state(self) -> dict[str, NDArray]: ...

    @classmethod
    def from_state(
        cls, params: Mapping[str, Any], state: Mapping[str, NDArray], *, task: Task, n_classes: int
    ) -> Self: ...


@dataclass(frozen=True)
class Param:
    """One declared hyperparameter: type, default, range or choices, and a one-line help."""

    name: str
    type: type | str  # float, int, bool, str, or "ints" (a tuple of ints such as hidden sizes)
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    help: str = ""
    nullable: bool = False

    def describe(self) -> str:
        """``name (type, range) = default``, for error messages and --help."""
        tname = self.type if isinstance(self.type, str) else self.type.__name__
        rng = ""
        if self.choices is not None:
            rng = " in {" + ", ".join(map(str, self.choices)) + "}"
        elif self.low is not None or self.high is not None:
            rng = f" in [{self.low if self.low is not None else '-inf'}, {self.high if self.high is not None else 'inf'}]"
        return f"{self.name} ({tname}{rng}) = {self.example()}"

    def example(self) -> str:
        """The default as it would be written on the command line (``64,32``, ``0.01``, ``None``)."""
        d = self.default
        if isinstance(d, (tuple, list)):
            return ",".join(map(str, d))
        return str(d)

    def rule(self) -> str:
        """What a valid value is, in words: ``a float between 0.0 and 0.95``."""
        kind = {
            "ints": "a list of ints like 128,64", bool: "true or false", int: "an int", float: "a float", str: "a string",
        }.get(self.type, getattr(self.type, "__name__", str(self.type)))  # type: ignore[call-overload]
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        each = " each" if self.type == "ints" else ""
        if self.low is not None and self.high is not None:
            kind += f"{each} between {self.low:g} and {self.high:g}"
        elif self.low is not None:
            kind += f"{each} >= {self.low:g}"
        elif self.high is not None:
            kind += f"{each} <= {self.high:g}"
        if self.nullable:
            kind += " (or None)"
        return kind

    def _refuse(self, value: Any) -> ParamError:
        return ParamError(f"{self.name} must be {self.rule()}, got {value!r}; use e.g. {self.name}={self.example()}")

    def coerce(self, value: Any) -> Any:
        """The value converted to this parameter's type (strings from the CLI included), or ParamError."""
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            if self.nullable or self.default is None:
                return None
            raise self._refuse(value)
        try:
            v = self._convert(value)
        except (TypeError, ValueError, OverflowError) as e:
            raise self._refuse(value) from e
        self._check_range(v, value)
        return v

    def _convert(self, value: Any) -> Any:
        t = self.type
        if t == "ints":
            if isinstance(value, str):
                parts = [p for p in value.replace(" ", "").strip("()[]").split(",") if p]
                value = [int(p) for p in parts]
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                value = [int(value)]
            vals = tuple(int(v) for v in value)
            if any(isinstance(v, bool) for v in value) or any(float(a) != b for a, b in zip(value, vals)):
                raise ValueError("not ints")
            return vals
        if t is bool:
            if isinstance(value, str):
                low = value.lower()
                if low in ("true", "1", "yes", "on"):
                    return True
                if low in ("false", "0", "no", "off"):
                    return False
                raise ValueError(value)
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            raise TypeError(value)
        if t is int:
            if isinstance(value, bool):
                raise TypeError(value)
            f = float(value)
            if f != int(f):
                raise ValueError(value)
            return int(f)
        if t is float:
            if isinstance(value, bool):
                raise TypeError(value)
            f = float(value)
            if not np.isfinite(f):
                raise ValueError(value)
            return f
        if t is str:
            if not isinstance(value, str):
                raise TypeError(value)
            return value
        raise TypeError(f"unknown param type {t!r}")

    def _check_range(self, v: Any, given: Any) -> None:
        if self.choices is not None and v not in self.choices:
            raise self._refuse(given)
        vals = v if isinstance(v, tuple) else (v,)
        if self.type == "ints" and len(vals) == 0:
            raise self._refuse(given)
        for x in vals:
            numeric = isinstance(x, (int, float)) and not isinstance(x, bool)
            if numeric and ((self.low is not None and x < self.low) or (self.high is not None and x > self.high)):
                raise self._refuse(given)


class ParamSpec:
    """A family's declared hyperparameters; ``validate`` fills defaults and refuses unknown or bad values."""

    def __init__(self, params: Iterable[Param], *, renamed: Mapping[str, str] | None = None):
        self.params: dict[str, Param] = {p.name: p for p in params}
        self.renamed = dict(renamed or {})  # old name -> current name, so versions saved with the old one still load

    def __iter__(self):
        return iter(self.params.values())

    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default."""
        return {name: p.default for name, p in self.params.items()}

    def validate(self, given: Mapping[str, Any] | None, family: str) -> dict[str, Any]:
        """The full parameter dict: defaults overridden by ``given``, each value type- and range-checked."""
        given = dict(given or {})
        for old, new in self.renamed.items():
            if old in given:
                value = given.pop(old)
                given.setdefault(new, value)
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise ParamError(
                f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} for {family}; valid ones are "
                + "; ".join(p.describe() for p in self.params.values())
            )
        out = self.defaults()
        for k, v in given.items():
            try:
                out[k] = self.params[k].coerce(v)
            except ParamError as e:
                raise ParamError(f"{family}: {e}") from e.__cause__
        return out


class HasParamSpec(Protocol):
    """A class that declares its hyperparameters."""

    params: ClassVar[ParamSpec]


def check_task(family: str, task: Task, supported: tuple[Task, ...]) -> None:
    """Refuse a family on a task it does not support, naming the families that do."""
    from ..errors import ModelError

    if task not in supported:
        hint = "linear_regression, mlp or random_forest" if task is Task.REGRESSION else "logistic_regression, mlp or random_forest"
        raise ModelError(f"{family} does not do {task.value}; the target looks like {task.value}, so use {hint} (or --task)")


CallbackList = Sequence[Callable[[EpochLog], bool | None]]
