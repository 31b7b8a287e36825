"""Class weights: the ``class_weight`` hyperparameter of classification families, as per-row sample weights.

A spec is ``"balanced"`` or ``"LABEL=W,LABEL=W,..."`` (original class labels; unlisted classes
weigh 1). ``balanced`` gives class c the weight ``n / (k * n_c)`` over the training rows
(scikit-learn's rule), so every class carries the same total weight. The per-row weights
``w: (n,)`` are then scaled to mean 1 over the rows they are for, so a weighted loss
``mean(w_i * loss_i)`` is exactly the weighted mean ``sum(w_i loss_i) / sum(w_i)`` over
those rows, keeps the unweighted loss's scale (and so its learning rate), and its minibatch
estimate is unbiased. ``train`` turns the spec into ``sample_weight`` for ``Model.fit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ParamError
from ..schema import Schema, Task
from .base import Param

__all__ = [
    "CLASS_WEIGHT", "check_class_weight", "class_weights", "merge_class_weight", "parse_class_weight", "sample_weights",
]

CLASS_WEIGHT = Param(
    "class_weight", str, None, nullable=True,
    help="balanced, or LABEL=W,... per class (classification; unlisted classes weigh 1)",
)


def _label(v: Any) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v.item() if isinstance(v, np.generic) else v)


def parse_class_weight(spec: str, classes: Sequence[Any]) -> str | dict[int, float]:
    """``"balanced"``, or ``{class index: weight}`` from ``"LABEL=W,..."``; ParamError naming the fix otherwise."""
    text = str(spec).strip()
    if text.lower() == "balanced":
        return "balanced"
    labels = {_label(c): i for i, c in enumerate(classes)}
    known = ", ".join(labels)
    out: dict[int, float] = {}
    for item in [p for p in text.split(",") if p.strip()]:
        label, sep, value = item.rpartition("=")
        label = label.strip()
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not sep or not label or not np.isfinite(weight) or weight <= 0:
            raise ParamError(
                f"class weight {item.strip()!r} must be LABEL=W with a weight > 0; use --class-weight balanced or "
                f"e.g. --class-weight {next(iter(labels))}=2"
            )
        if label not in labels:
            raise ParamError(f"--class-weight names class {label!r}, which the target does not have; its classes are: {known}")
        out[labels[label]] = weight
    if not out:
        raise ParamError(f"--class-weight {text!r} names no class; use balanced or LABEL=W,... with classes {known}")
    return out


def check_class_weight(spec: str | None, schema: Schema, family: str) -> None:
    """Refuse a class-weight spec that does not fit the data: regression, unknown class, bad weight."""
    if spec is None:
        return
    if schema.task is not Task.CLASSIFICATION or not schema.classes:
        raise ParamError(f"class_weight applies to classification, but this target is {schema.task.value}; "
                         "drop --class-weight")
    parse_class_weight(spec, schema.classes)


def class_weights(spec: str, y: NDArray[np.integer], classes: Sequence[Any]) -> NDArray[np.float64]:
    """Weight of each class index ``(k,)`` under ``spec`` for the rows ``y``."""
    k = len(classes)
    parsed = parse_class_weight(spec, classes)
    if parsed == "balanced":
        counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=k).astype(np.float64)
        present = counts > 0
        w = np.ones(k)
        w[present] = len(y) / (int(present.sum()) * counts[present])
        return w
    w = np.ones(k)
    for i, weight in parsed.items():  # type: ignore[union-attr]
        w[i] = weight
    return w


def sample_weights(
    spec: str | None, y: NDArray[np.integer], classes: Sequence[Any] | None, per_class: NDArray | None = None
) -> NDArray[np.float32] | None:
    """Per-row weights ``(n,)`` scaled to mean 1 (``None`` without a spec); ``per_class`` reuses training's weights."""
    if spec is None or classes is None or len(y) == 0:
        return None
    w = (per_class if per_class is not None else class_weights(spec, y, classes))[np.asarray(y, dtype=np.int64)]
    return (w / w.mean()).astype(np.float32)


def merge_class_weight(params: dict[str, Any], spec: str | None, family: str, cls: type) -> dict[str, Any]:
    """``params`` with ``class_weight=spec`` (the CLI's ``--class-weight``), refusing families without class weights."""
    if spec is None:
        return params
    if CLASS_WEIGHT.name not in getattr(getattr(cls, "params", None), "params", {}):
        raise ParamError(
            f"{family} takes no class weights, so --class-weight does not apply; use a classification family such as "
            "logistic_regression, mlp or random_forest"
        )
    given = params.get(CLASS_WEIGHT.name)
    if given is not None and str(given) != spec:
        raise ParamError(f"class_weight is given twice ({given!r} by --set, {spec!r} by --class-weight); give it once")
    return {**params, CLASS_WEIGHT.name: spec}
