"""Default search spaces of the built-in families, and the map from a space's params to a family's.

A space names family hyperparameters directly (``learning_rate``, ``max_depth``, ...), with
one convenience for the MLP: ``hidden_width`` and ``hidden_layers`` together stand for
``hidden_sizes = (hidden_width,) * hidden_layers``, a shape a GP can search (a list of
sizes is not a point of a cube). ``check_space`` refuses names a family does not have and
ranges or choices outside what it accepts, before any trial runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ParamError, SpaceError
from .space import Categorical, Float, Int, SearchSpace

__all__ = ["DEFAULT_SPACES", "DERIVED", "check_space", "default_space", "to_family_params"]

DEFAULT_SPACES: dict[str, dict[str, Any]] = {
    "mlp": {
        "learning_rate": Float(1e-4, 3e-2, log=True),
        "hidden_width": Int(16, 512, log=True),
        "hidden_layers": Int(1, 3),
        "dropout": Float(0.0, 0.5),
        "weight_decay": Float(1e-7, 1e-2, log=True),
        "batch_size": Categorical([32, 64, 128, 256]),
    },
    # the linear families train by exact solvers: only the L2 strength matters (scikit-learn's scale, as its CV grids)
    "logistic_regression": {
        "C": Float(1e-4, 1e4, log=True),
    },
    "linear_regression": {
        "alpha": Float(1e-3, 1e4, log=True),
    },
    "random_forest": {
        "n_estimators": Int(50, 400, log=True),
        "max_depth": Int(2, 32, log=True),
        "min_samples_leaf": Int(1, 20, log=True),
        "max_features": Categorical(["sqrt", "log2", "all"]),
    },
    "gradient_boosting": {  # early stopping (50 rounds on the validation rows) trims n_estimators per trial
        "n_estimators": Int(50, 1000, log=True),
        "learning_rate": Float(0.01, 0.3, log=True),
        "max_depth": Int(2, 10),
        "min_child_weight": Float(0.1, 20.0, log=True),
        "subsample": Float(0.5, 1.0),
        "colsample_bytree": Float(0.3, 1.0),
        "reg_alpha": Float(1e-8, 10.0, log=True),
        "reg_lambda": Float(1e-8, 10.0, log=True),
    },
}

# space params that stand for a family param: name -> (family param, the names that build it)
DERIVED: dict[str, tuple[str, tuple[str, ...]]] = {
    "hidden_width": ("hidden_sizes", ("hidden_width", "hidden_layers")),
    "hidden_layers": ("hidden_sizes", ("hidden_width", "hidden_layers")),
}


def default_space(family: str) -> SearchSpace:
    """The default search space of a built-in family; SpaceError (naming --space) for others."""
    if family not in DEFAULT_SPACES:
        raise SpaceError(
            f"{family!r} has no default search space (built-in families: {', '.join(DEFAULT_SPACES)}); "
            "pass one with --space space.yaml"
        )
    return SearchSpace(DEFAULT_SPACES[family])


def to_family_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's params as family hyperparameters (``hidden_width``/``hidden_layers`` -> ``hidden_sizes``)."""
    out = {k: v for k, v in params.items() if k not in DERIVED}
    if "hidden_width" in params or "hidden_layers" in params:
        width = int(params.get("hidden_width", 64))
        layers = int(params.get("hidden_layers", 1))
        out["hidden_sizes"] = (width,) * layers
    return out


def _corners(space: SearchSpace) -> list[dict[str, Any]]:
    """Params at each parameter's extremes (the others at their low end): enough to check ranges."""
    base = {n: (d.choices[0] if isinstance(d, Categorical) else d.low) for n, d in space.params.items()}
    points = [base]
    for n, d in space.params.items():
        values = list(d.choices[1:]) if isinstance(d, Categorical) else [d.high]
        points += [{**base, n: v} for v in values]
    return points


def check_space(family: str, space: SearchSpace, spec: Any) -> None:
    """Refuse a space whose names or ranges the family does not accept (``spec``: the family's ParamSpec)."""
    known = set(spec.params)
    names = set(space.names)
    unknown = sorted(n for n in names if n not in known and n not in DERIVED)
    if unknown:
        raise SpaceError(
            f"search space parameter(s) {', '.join(map(repr, unknown))} are not hyperparameters of {family}; "
            f"use some of: {', '.join(sorted(known))}"
            + (" (or hidden_width and hidden_layers)" if "hidden_sizes" in known else "")
        )
    derived = sorted(n for n in names if n in DERIVED)
    for n in derived:
        target = DERIVED[n][0]
        if target not in known:
            raise SpaceError(
                f"{n!r} stands for {target}, which {family} does not have; remove it from the space"
            )
        if target in names:
            raise SpaceError(f"the space has both {target!r} and {n!r}; keep one of them")
    for point in _corners(space):
        try:
            spec.validate(to_family_params(point), family)
        except ParamError as e:
            raise SpaceError(
                f"the search space reaches values {family} refuses: {e}; narrow that range"
            ) from e
