"""Search spaces: typed distributions and their map to and from the unit cube.

The GP only ever sees points ``u`` of the unit cube ``[0, 1]^D``. Each distribution owns
a block of ``D``'s columns:

- ``Float``: one column, ``(x - low) / (high - low)`` (in log space when ``log=True``).
- ``Int``: one column; the range is padded by half a step on each side so that every
  allowed value owns an equal slice of ``[0, 1]``; decoding rounds to the step grid exactly.
- ``Categorical``: one column per choice (one-hot); decoding takes the argmax.

Shapes: ``u: (D,)``, a batch ``U: (n, D)``; ``D = space.n_dims`` (one-hot columns included).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.errors import SpaceError

__all__ = ["Categorical", "Distribution", "Float", "Int", "SearchSpace"]


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpaceError(f"`{name}` must be a finite number, got {value!r}; pass e.g. {name}=0.1.")
    return float(value)


@dataclass(frozen=True)
class Float:
    """A real value in ``[low, high]``, sampled uniformly or log-uniformly."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        low, high = _check_number("low", self.low), _check_number("high", self.high)
        if not low < high:
            raise SpaceError(
                f"Float range is empty: low={low!r} must be < high={high!r}; swap or widen them."
            )
        if self.log and low <= 0:
            raise SpaceError(
                f"Float with log=True needs low > 0, got low={low!r}; use a positive low or log=False."
            )
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def width(self) -> int:
        """Number of unit-cube columns."""
        return 1

    def _bounds(self) -> tuple[float, float]:
        return (math.log(self.low), math.log(self.high)) if self.log else (self.low, self.high)

    def encode(self, value: Any) -> np.ndarray:
        """Value -> unit-cube block."""
        a, b = self._bounds()
        v = math.log(value) if self.log else float(value)
        return np.array([(v - a) / (b - a)])

    def decode(self, u: np.ndarray) -> float:
        """Unit-cube block -> value (clipped to the range)."""
        a, b = self._bounds()
        v = a + float(np.clip(u[0], 0.0, 1.0)) * (b - a)
        return float(min(max(math.exp(v) if self.log else v, self.low), self.high))

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a valid value."""
        return (
            isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Int:
    """An integer in ``[low, high]`` on the grid ``low + k * step``, optionally log-uniform."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        for name in ("low", "high", "step"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                if isinstance(v, float) and v.is_integer():
                    object.__setattr__(self, name, int(v))
                    continue
                raise SpaceError(f"Int `{name}` must be an integer, got {v!r}; pass a whole number.")
            object.__setattr__(self, name, int(v))
        if self.step < 1:
            raise SpaceError(f"Int step must be >= 1, got {self.step}; use step=1 or larger.")
        if self.low > self.high:
            raise SpaceError(f"Int range is empty: low={self.low} must be <= high={self.high}; swap them.")
        if self.log and self.low < 1:
            raise SpaceError(
                f"Int with log=True needs low >= 1, got low={self.low}; raise low or use log=False."
            )
        if self.log and self.step != 1:
            raise SpaceError(f"Int with log=True needs step=1, got step={self.step}; drop step or log.")
        if (self.high - self.low) % self.step:
            raise SpaceError(
                f"Int high={self.high} is not on the grid low + k*step (low={self.low}, step={self.step}); "
                f"use high={self.low + (self.high - self.low) // self.step * self.step}."
            )

    @property
    def width(self) -> int:
        """Number of unit-cube columns."""
        return 1

    @property
    def n_values(self) -> int:
        """Number of allowed values."""
        return (self.high - self.low) // self.step + 1

    def _bounds(self) -> tuple[float, float]:
        half = 0.5 * self.step
        if self.log:
            return math.log(self.low - half), math.log(self.high + half)
        return self.low - half, self.high + half

    def encode(self, value: Any) -> np.ndarray:
        """Value -> unit-cube block (the centre of the value's slice)."""
        a, b = self._bounds()
        v = math.log(value) if self.log else float(value)
        return np.array([(v - a) / (b - a)])

    def decode(self, u: np.ndarray) -> int:
        """Unit-cube block -> the nearest allowed integer."""
        a, b = self._bounds()
        v = a + float(np.clip(u[0], 0.0, 1.0)) * (b - a)
        x = math.exp(v) if self.log else v
        k = round((x - self.low) / self.step)
        return int(self.low + min(max(k, 0), self.n_values - 1) * self.step)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a valid value."""
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            return False
        return self.low <= value <= self.high and (value - self.low) % self.step == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"type": "int", "low": self.low, "high": self.high, "log": self.log, "step": self.step}


@dataclass(frozen=True)
class Categorical:
    """One of a fixed tuple of choices (str, int, float, bool or None), one-hot encoded."""

    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        if isinstance(self.choices, (str, bytes)) or not isinstance(self.choices, Iterable):
            raise SpaceError(
                f"Categorical choices must be a list, got {self.choices!r}; pass e.g. ['a', 'b']."
            )
        choices = tuple(self.choices)
        if not choices:
            raise SpaceError(
                "Categorical choices are empty; pass at least one choice, e.g. ['relu', 'tanh']."
            )
        for c in choices:
            if c is not None and not isinstance(c, (str, int, float, bool)):
                raise SpaceError(f"Categorical choice {c!r} is not a str, number, bool or None; convert it.")
        if len(set(map(repr, choices))) != len(choices):
            raise SpaceError(f"Categorical choices {list(choices)!r} contain duplicates; list each once.")
        object.__setattr__(self, "choices", choices)

    @property
    def width(self) -> int:
        """Number of unit-cube columns."""
        return len(self.choices)

    def index(self, value: Any) -> int:
        """Position of ``value`` among the choices (type-exact, so 1 and True differ)."""
        for i, c in enumerate(self.choices):
            if type(c) is type(value) and c == value:
                return i
        for i, c in enumerate(self.choices):  # e.g. numpy scalars, or 1 for 1.0
            if c == value and not isinstance(c, bool) and not isinstance(value, bool):
                return i
        raise SpaceError(f"{value!r} is not one of the choices {list(self.choices)!r}; pick one of them.")

    def encode(self, value: Any) -> np.ndarray:
        """Value -> one-hot block."""
        out = np.zeros(len(self.choices))
        out[self.index(value)] = 1.0
        return out

    def decode(self, u: np.ndarray) -> Any:
        """Block -> the choice with the largest coordinate."""
        return self.choices[int(np.argmax(u))]

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of the choices."""
        try:
            self.index(value)
        except SpaceError:
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"type": "categorical", "choices": list(self.choices)}


Distribution = Float | Int | Categorical

_TYPES: dict[str, type] = {"float": Float, "int": Int, "categorical": Categorical}
_KEYS: dict[str, set[str]] = {
    "float": {"low", "high", "log"},
    "int": {"low", "high", "log", "step"},
    "categorical": {"choices"},
}


def _from_spec(name: str, spec: Any) -> Distribution:
    if isinstance(spec, (Float, Int, Categorical)):
        return spec
    if not isinstance(spec, Mapping):
        raise SpaceError(
            f"parameter {name!r} must be a mapping like {{'type': 'float', 'low': 0, 'high': 1}}, got {spec!r}."
        )
    kind = spec.get("type")
    if kind not in _TYPES:
        raise SpaceError(f"parameter {name!r} has unknown type {kind!r}; use one of {sorted(_TYPES)}.")
    extra = set(spec) - _KEYS[kind] - {"type"}
    if extra:
        raise SpaceError(
            f"parameter {name!r} has unknown keys {sorted(extra)} for type {kind!r}; "
            f"allowed keys are {sorted(_KEYS[kind])}."
        )
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    try:
        return _TYPES[kind](**kwargs)
    except TypeError as e:
        raise SpaceError(f"parameter {name!r} ({kind}) is missing a key: {e}; add it.") from e
    except SpaceError as e:
        raise SpaceError(f"parameter {name!r}: {e}") from e


class SearchSpace:
    """An ordered mapping of parameter names to distributions, with unit-cube maps."""

    def __init__(self, params: Mapping[str, Distribution | Mapping[str, Any]]) -> None:
        if not isinstance(params, Mapping) or not params:
            raise SpaceError(f"a search space needs at least one parameter, got {params!r}; add e.g. 'lr'.")
        dists: dict[str, Distribution] = {}
        for name, spec in params.items():
            if not isinstance(name, str) or not name:
                raise SpaceError(f"parameter names must be non-empty strings, got {name!r}; rename it.")
            dists[name] = _from_spec(name, spec)
        self.params: dict[str, Distribution] = dists
        self.names: list[str] = list(dists)
        offsets = np.cumsum([0] + [d.width for d in dists.values()])
        self.slices: dict[str, slice] = {
            n: slice(int(offsets[i]), int(offsets[i + 1])) for i, n in enumerate(self.names)
        }
        self.n_dims: int = int(offsets[-1])

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchSpace:
        """Build from ``{name: {"type": ..., ...}}`` (the form ``to_dict`` writes)."""
        return cls(d)

    @classmethod
    def from_file(cls, path: str | Path) -> SearchSpace:
        """Build from a YAML (.yaml/.yml) or JSON file holding the ``from_dict`` form."""
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise SpaceError(
                f"cannot read search space file {str(p)!r}: {e.strerror}; check the path."
            ) from e
        try:
            if p.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as e:
            raise SpaceError(
                f"search space file {str(p)!r} is not valid YAML/JSON ({e}); fix its syntax."
            ) from e
        if not isinstance(data, Mapping):
            raise SpaceError(
                f"search space file {str(p)!r} must hold a mapping of names; got {type(data).__name__}."
            )
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """JSON-safe form, inverse of ``from_dict``."""
        return {n: d.to_dict() for n, d in self.params.items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.params == other.params

    def __repr__(self) -> str:
        return f"SearchSpace({self.params!r})"

    def __len__(self) -> int:
        return len(self.params)

    def validate(self, params: Mapping[str, Any]) -> None:
        """Raise ``SpaceError`` unless ``params`` has exactly this space's names with valid values."""
        missing, extra = set(self.names) - set(params), set(params) - set(self.names)
        if missing or extra:
            raise SpaceError(
                f"params {dict(params)!r} do not match the space: missing {sorted(missing)}, "
                f"unknown {sorted(extra)}; pass exactly {self.names}."
            )
        for n, d in self.params.items():
            if not d.contains(params[n]):
                raise SpaceError(f"{n}={params[n]!r} is outside {d!r}; pick a value inside it.")

    def to_unit(self, params: Mapping[str, Any]) -> np.ndarray:
        """Params -> point of the unit cube, shape ``(n_dims,)``."""
        self.validate(params)
        return np.concatenate([d.encode(params[n]) for n, d in self.params.items()])

    def to_unit_many(self, params: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """A list of params -> ``(n, n_dims)``."""
        if not params:
            return np.zeros((0, self.n_dims))
        return np.stack([self.to_unit(p) for p in params])

    def from_unit(self, u: np.ndarray) -> dict[str, Any]:
        """Point of the unit cube -> params (ints on their grid, categoricals by argmax)."""
        u = np.asarray(u, dtype=float)
        if u.shape != (self.n_dims,):
            raise SpaceError(f"unit point has shape {u.shape}, expected ({self.n_dims},); pass one point.")
        return {n: d.decode(u[self.slices[n]]) for n, d in self.params.items()}

    def snap(self, u: np.ndarray) -> np.ndarray:
        """Canonical unit point of the params ``u`` decodes to, shape ``(n_dims,)``."""
        return self.to_unit(self.from_unit(u))

    def sample(self, rng: np.random.Generator, n: int = 1) -> list[dict[str, Any]]:
        """``n`` independent draws (uniform in the unit cube, uniform over choices)."""
        out = []
        for _ in range(n):
            p: dict[str, Any] = {}
            for name, d in self.params.items():
                if isinstance(d, Categorical):
                    p[name] = d.choices[int(rng.integers(len(d.choices)))]
                else:
                    p[name] = d.decode(rng.random(1))
            out.append(p)
        return out
