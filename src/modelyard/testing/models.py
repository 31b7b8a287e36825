"""The contract every model family passes: built-in families, and custom models before you rely on them.

Run it in a test suite (one pytest case per check)::

    from modelyard.testing.models import model_checks

    @pytest.mark.parametrize("name, check", model_checks("mypkg.models:MyModel"))
    def test_contract(name, check):
        check()

or all at once with ``check_model("mlp")``. The checks use the protocol directly
(``fit``/``predict``/``predict_proba``/``get_params``/``state``/``from_state``) on small
seeded data: ``X: (n, d)`` float32, ``y: (n,)`` class indices ``0..k-1`` or float values.

What is checked, per task the family supports (binary and 3-class classification, regression):
fit returns the model and predictions have the right shape, dtype and range; probabilities
are ``(n, k)``, non-negative, rows sum to 1 and agree with ``predict``; the model learns an
easy signal; the same seed gives bit-identical predictions; ``state()`` holds only named
numeric arrays and round-trips through safetensors bytes (and the params through JSON) to
identical predictions; an unfitted model refuses ``state()``; unknown, ill-typed and
out-of-range hyperparameters are refused with a ParamError naming the valid ones; an
unsupported task is refused with a ModelError. A family that declares ``handles_missing``
fits and predicts on rows with NaN (and round-trips through its state on them); a family
whose ``fit`` takes ``sample_weight`` gives the same model with all-ones weights as without,
and weighting a class up never predicts it less often.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError, ParamError
from ..records.jsonsafe import jsonable
from ..records.training import FitConfig
from ..schema import Task

__all__ = ["CHECKS", "Case", "check_model", "make_data", "model_checks"]


@dataclass(frozen=True)
class Case:
    """One task setting to check a family on: the task and its number of classes (0 for regression)."""

    task: Task
    n_classes: int

    @property
    def label(self) -> str:
        """``binary``, ``multiclass`` or ``regression``."""
        if self.task is Task.REGRESSION:
            return "regression"
        return "binary" if self.n_classes == 2 else "multiclass"


CASES = (Case(Task.CLASSIFICATION, 2), Case(Task.CLASSIFICATION, 3), Case(Task.REGRESSION, 0))


def make_data(case: Case, *, n: int = 240, d: int = 6, seed: int = 0) -> tuple[NDArray[np.float32], NDArray]:
    """An easy, seeded problem: class = argmax of random linear scores, or a linear target plus small noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    if case.task is Task.REGRESSION:
        w = rng.normal(size=d)
        return X, (X @ w + 0.1 * rng.normal(size=n) + 3.0).astype(np.float64)
    W = rng.normal(size=(d, case.n_classes))
    y = np.argmax(X @ W, axis=1).astype(np.int64)
    y[: case.n_classes] = np.arange(case.n_classes)  # every class present
    return X, y


def _family(family: str | type) -> type:
    if isinstance(family, str):
        from ..models import get_family

        return get_family(family)
    return family


def _name(cls: type) -> str:
    return getattr(cls, "family", cls.__name__)


def _new(cls: type, case: Case, params: Mapping[str, Any]) -> Any:
    return cls(task=case.task, n_classes=case.n_classes, **dict(params))


def _fit(cls: type, case: Case, params: Mapping[str, Any], config: FitConfig, seed: int = 0) -> tuple[Any, NDArray]:
    X, y = make_data(case, seed=seed)
    model = _new(cls, case, params)
    out = model.fit(X, y, config=config)
    assert out is model, f"{_name(cls)}.fit must return self, returned {type(out).__name__}"
    return model, X


def _has_proba(model: Any, case: Case) -> bool:
    return case.task is Task.CLASSIFICATION and callable(getattr(model, "predict_proba", None))


# --- the checks --------------------------------------------------------------------------------


def check_fit_predict(cls: type, case: Case, params: Mapping[str, Any], config: FitConfig) -> None:
    """fit returns self; predict gives one finite value (or valid class index) per row, also for one row."""
    model, X = _fit(cls, case, params, config)
    pred = np.asarray(model.predict(X))
    assert pred.shape == (len(X),), f"predict returned shape {pred.shape}, expected ({len(X)},)"
    one = np.asarray(model.predict(X[:1]))
    assert one.shape == (1,), f"predict on one row returned shape {one.shape}, expected (1,)"
    if case.task is Task.CLASSIFICATION:
        assert pred.dtype.kind in "iu", f"classification predict must return class indices, got dtype {pred.dtype}"
        assert pred.min() >= 0 and pred.max() < case.n_classes, (
            f"class indices must lie in [0, {case.n_classes}), got [{pred.min()}, {pred.max()}]"
        )
    else:
        assert pred.dtype.kind == "f", f"regression predict must return floats, got dtype {pred.dtype}"
        assert np.isfinite(pred).all(), "regression predictions must be finite"


def check_predict_proba(cls: type, case: Case, params: Mapping[str, Any], config: FitConfig) -> None:
    """predict_proba is (n, k), non-negative, rows sum to 1, and its argmax agrees with predict."""
    model, X = _fit(cls, case, params, config)
    if not _has_proba(model, case):
        return
    p = np.asarray(model.predict_proba(X), dtype=np.float64)
    assert p.shape == (len(X), case.n_classes), f"predict_proba returned {p.shape}, expected ({len(X)}, {case.n_classes})"
    assert np.isfinite(p).all() and (p >= 0).all(), "probabilities must be finite and >= 0"
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6, err_msg="probability rows must sum to 1")
    top2 = np.sort(p, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-6  # ties may go either way
    pred = np.asarray(model.predict(X))
    disagree = int((p.argmax(axis=1)[clear] != pred[clear]).sum())
    assert disagree == 0, f"predict disagrees with argmax(predict_proba) on {disagree} rows"


def check_learns(cls: type, case: Case, params: Mapping[str, Any], config: FitConfig) -> None:
    """On an easy problem the fitted model beats the trivial one on its training rows."""
    model, X = _fit(cls, case, params, config)
    _, y = make_data(case)
    pred = np.asarray(model.predict(X))
    if case.task is Task.CLASSIFICATION:
        acc = float((pred == y).mean())
        base = float(np.bincount(y).max() / len(y))
        assert acc >= base + 0.15, f"training accuracy {acc:.3f} barely beats the majority class ({base:.3f})"
    else:
        r2 = 1 - float(((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())
        assert r2 >= 0.5, f"training R² is {r2:.3f} on a linear target; expected >= 0.5"


def check_determinism(cls: type, case: Case, params: Mapping[str, Any], config: FitConfig) -> None:
    """Two fits with the same seed and data give bit-identical predictions (and probabilities)."""
    a, X = _fit(cls, case, params, config)
    b, _ = _fit(cls, case, params, config)
    assert np.array_equal(np.asarray(a.predict(X)), np.asarray(b.predict(X))), "same seed gave different predictions"
    if _has_proba(a, case):
        assert np.array_equal(np.asarray(a.predict_proba(X)), np.asarray(b.predict_proba(X))), (
            "same seed gave different probabilities"
        )


def check_state_round_trip(cls: type, case: Case, params: Mapping[str, Any], config: FitConfig) -> None:
    """state() is named numeric arrays; through safetensors bytes and JSON params it rebuilds identical predictions."""
    from safetensors.numpy import load, save

    model, X = _fit(cls, case, params, config)
    state = model.state()
    assert isinstance(state, dict) and state, "state() must return a non-empty dict of arrays"
    for k, v in state.items():
        assert isinstance(k, str), f"state key {k!r} is not a string"
        assert isinstance(v, np.ndarray), f"state[{k!r}] is a {type(v).__name__}, not a numpy array"
        assert v.dtype.kind in "biuf", f"state[{k!r}] has dtype {v.dtype}; only numeric arrays can be stored"
    blob = save({k: np.ascontiguousarray(v) for k, v in state.items()})
    loaded = load(blob)
    stored_params = json.loads(json.dumps(jsonable(model.get_params())))
    again = type(model).from_state(stored_params, loaded, task=case.task, n_classes=case.n_classes)
    assert np.array_equal(np.asarray(model.predict(X)), np.asarray(again.predict(X))), (
        "the model rebuilt from state() predicts differently"
    )
    if _has_proba(model, case):
        assert np.array_equal(np.asarray(model.predict_proba(X)), np.asarray(again.predict_proba(X))), (
            "the model rebuilt from state() gives different probabilities"
        )
    restate = again.state()
    assert set(restate) == set(state), "the rebuilt model's state has different keys"
    for k in state:
        assert np.array_equal(restate[k], state[k]), f"the rebuilt model's state[{k!r}] differs"


def check_missing_values(cls: type, case: Case, params: Mapping[str, Any], config: FitConfig) -> None:
    """A family declaring ``handles_missing`` fits and predicts on NaN; its rebuilt state predicts the same."""
    if not getattr(cls, "handles_missing", False):
        return
    X, y = make_data(case)
    X = X.copy()
    X[np.random.default_rng(1).random(X.shape) < 0.15] = np.nan
    model = _new(cls, case, params).fit(X, y, config=config)
    pred = np.asarray(model.predict(X))
    assert pred.shape == (len(X),), f"predict on rows with NaN returned shape {pred.shape}"
    if case.task is Task.REGRESSION:
        assert np.isfinite(pred).all(), "predictions on rows with NaN must be finite"
    again = type(model).from_state(json.loads(json.dumps(jsonable(model.get_params()))), model.state(),
                                   task=case.task, n_classes=case.n_classes)
    assert np.array_equal(pred, np.asarray(again.predict(X))), "the rebuilt model predicts differently on NaN rows"


def _takes_weights(cls: type) -> bool:
    import inspect

    return "sample_weight" in inspect.signature(cls.fit).parameters


def check_sample_weight(cls: type, case: Case, params: Mapping[str, Any], config: FitConfig) -> None:
    """All-ones weights give the model no weights give; weighting class 1 up never predicts it less often."""
    if not _takes_weights(cls):
        return
    X, y = make_data(case)
    plain = np.asarray(_new(cls, case, params).fit(X, y, config=config).predict(X))
    ones = np.asarray(_new(cls, case, params).fit(X, y, sample_weight=np.ones(len(y)), config=config).predict(X))
    if case.task is Task.REGRESSION:
        np.testing.assert_allclose(ones, plain, rtol=1e-3, atol=1e-3, err_msg="all-ones sample_weight changed the model")
        return
    assert float((ones == plain).mean()) >= 0.98, "all-ones sample_weight changed the predictions"
    w = np.where(y == 1, 20.0, 1.0)
    up = np.asarray(_new(cls, case, params).fit(X, y, sample_weight=w, config=config).predict(X))
    assert int((up == 1).sum()) >= int((plain == 1).sum()), (
        f"weighting class 1 by 20 predicted it on {(up == 1).sum()} rows, fewer than the {(plain == 1).sum()} unweighted"
    )


def check_unfitted_state(cls: type, case: Case, params: Mapping[str, Any], config: FitConfig) -> None:
    """An unfitted model refuses state() with a ModelError instead of returning nothing."""
    model = _new(cls, case, params)
    try:
        model.state()
    except ModelError:
        return
    raise AssertionError("state() of an unfitted model must raise ModelError")


def _bad_values(p: Any) -> list[Any]:
    """Values that ``p`` must refuse: wrong type, out of range, not a choice."""
    bad: list[Any] = []
    if p.type in (int, float):
        bad.append("not-a-number")
    if p.type is int:
        bad.append(1.5)
    if p.type is bool:
        bad.append("maybe")
    if p.type == "ints":
        bad += ["a,b", ""]
    if p.type is str:
        bad.append(12345)
    if p.choices is not None:
        bad.append("no-such-choice")
    if p.low is not None and np.isfinite(p.low):
        bad.append(p.low - 1 if p.type in (int, "ints") else p.low - max(abs(p.low), 1.0))
    if p.high is not None and np.isfinite(p.high):
        bad.append(p.high + 1 if p.type in (int, "ints") else p.high + max(abs(p.high), 1.0))
    if p.default is not None and not p.nullable:
        bad.append(None)
    return bad


def _checked(cls: type) -> list[Any]:
    """The declared params whose values the spec checks (signature-derived params of unknown type are free)."""
    return [p for p in cls.params if p.type in (int, float, bool, str, "ints") and p.default is not None]


def check_bad_params(cls: type, case: Case, params: Mapping[str, Any], config: FitConfig) -> None:
    """Unknown names, wrong types and out-of-range values raise ParamError naming the param (and the valid ones)."""
    name = _name(cls)
    valid = [p.name for p in cls.params]
    for build in (lambda kw: cls.params.validate(kw, name), lambda kw: _new(cls, case, {**params, **kw})):
        try:
            build({"no_such_param": 1})
        except ParamError as e:
            missing = [v for v in valid if v not in str(e)]
            assert "no_such_param" in str(e) and not missing, f"the unknown-param message must list {missing}: {e}"
        else:
            raise AssertionError("an unknown hyperparameter was accepted")
        for p in _checked(cls):
            for value in _bad_values(p):
                try:
                    build({p.name: value})
                except ParamError as e:
                    assert p.name in str(e), f"the message for {p.name}={value!r} does not name the param: {e}"
                else:
                    raise AssertionError(f"{name} accepted {p.name}={value!r}")


def check_params_from_strings(cls: type, case: Case, params: Mapping[str, Any], config: FitConfig) -> None:
    """Every declared default, written as a command-line string, validates back to the default."""
    name = _name(cls)
    for p in _checked(cls):
        got = cls.params.validate({p.name: p.example()}, name)[p.name]
        assert got == p.default, f"{p.name}={p.example()!r} validated to {got!r}, expected the default {p.default!r}"


def check_refuses_task(cls: type, case: Case, params: Mapping[str, Any], config: FitConfig) -> None:
    """Building the family for a task it does not support raises ModelError."""
    try:
        _new(cls, case, params)
    except ModelError:
        return
    raise AssertionError(f"{_name(cls)} does not declare {case.task.value} but accepted it")


CHECKS: dict[str, Callable[..., None]] = {
    "fit_predict": check_fit_predict,
    "predict_proba": check_predict_proba,
    "learns": check_learns,
    "determinism": check_determinism,
    "state_round_trip": check_state_round_trip,
    "unfitted_state": check_unfitted_state,
    "missing_values": check_missing_values,
    "sample_weight": check_sample_weight,
}
_ONCE: dict[str, Callable[..., None]] = {
    "bad_params": check_bad_params,
    "params_from_strings": check_params_from_strings,
}


def model_checks(
    family: str | type,
    *,
    params: Mapping[str, Any] | None = None,
    config: FitConfig | None = None,
) -> list[tuple[str, Callable[[], None]]]:
    """``(name, check)`` pairs for every check on every task setting the family supports (for pytest parametrize)."""
    cls = _family(family)
    params = dict(params or {})
    config = config or FitConfig(epochs=20, seed=0)
    tasks = tuple(getattr(cls, "tasks", tuple(Task)))
    out: list[tuple[str, Callable[[], None]]] = []
    supported = [c for c in CASES if c.task in tasks]
    for case in supported:
        for check_name, fn in CHECKS.items():
            out.append((f"{check_name}[{case.label}]", partial(fn, cls, case, params, config)))
    for check_name, fn in _ONCE.items():
        out.append((check_name, partial(fn, cls, supported[0], params, config)))
    for task in Task:
        if task not in tasks:
            case = next(c for c in CASES if c.task is task)
            out.append((f"refuses_task[{case.label}]", partial(check_refuses_task, cls, case, params, config)))
    return out


def check_model(family: str | type, **kwargs: Any) -> None:
    """Run every contract check; raises AssertionError naming the first failed check."""
    for name, check in model_checks(family, **kwargs):
        try:
            check()
        except AssertionError as e:
            raise AssertionError(f"{_name(_family(family))} fails contract check {name}: {e}") from e

