"""User-supplied models: ``pkg.module:Name`` naming a Model-protocol class, a scikit-learn-compatible
estimator, or a ``torch.nn.Module`` factory ``(n_features, n_outputs, **params) -> Module``."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError, ParamError
from ..records.training import EpochLog, FitConfig
from ..schema import Task
from .base import EvalSet, Param, ParamSpec, check_task
from .loop import LOOP_PARAMS
from .torch_base import TorchModel
from .weights import CLASS_WEIGHT

__all__ = ["is_custom_path", "load_custom"]

_DEFAULT_CONFIG = FitConfig()
_PROTOCOL = ("fit", "predict", "get_params", "state", "from_state")


def is_custom_path(name: str) -> bool:
    """Whether ``name`` looks like ``pkg.module:Name``."""
    return ":" in name and not name.startswith("sklearn:")


def _import(path: str) -> Any:
    mod_name, _, attr = path.partition(":")
    if not mod_name or not attr:
        raise ModelError(f"custom model {path!r} must look like package.module:ClassName")
    try:
        module = importlib.import_module(mod_name)
    except Exception as e:  # the user's module may fail in any way while importing
        raise ModelError(
            f"cannot import module {mod_name!r} for custom model {path!r} ({type(e).__name__}: {' '.join(str(e).split())}); "
            "check that it is on PYTHONPATH and imports cleanly"
        ) from e
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError as e:
        raise ModelError(f"module {mod_name!r} has no attribute {attr!r}; check the name after the colon") from e
    return obj


def load_custom(path: str) -> type:
    """The family class for a custom model path, adapting estimators and module factories to the protocol."""
    obj = _import(path)
    if inspect.isclass(obj) and all(callable(getattr(obj, m, None)) for m in _PROTOCOL):
        return _protocol_family(path, obj)
    if inspect.isclass(obj) and all(callable(getattr(obj, m, None)) for m in ("fit", "predict", "get_params")):
        return _sklearn_family(path, obj)
    import torch

    if inspect.isclass(obj) and issubclass(obj, torch.nn.Module) or inspect.isfunction(obj):
        return _torch_family(path, obj)
    if inspect.isclass(obj):
        missing = [m for m in _PROTOCOL if not callable(getattr(obj, m, None))]
        what = f"class {obj.__name__} lacks {', '.join(missing)}"
    else:
        what = f"it is a {type(obj).__name__}, not a class or function"
    raise ModelError(
        f"custom model {path!r} cannot be used: {what}; give it fit/predict/get_params/state/from_state "
        "(the Model protocol), make it a scikit-learn estimator (fit/predict/get_params), "
        "or make it a torch.nn.Module factory taking (n_features, n_outputs, **params)"
    )


def _signature_params(obj: Any, skip: int = 0) -> list[Param]:
    sig = inspect.signature(obj)
    out = []
    for i, (name, p) in enumerate(sig.parameters.items()):
        if i < skip or name in ("self", "task", "n_classes") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        t = type(default) if isinstance(default, (bool, int, float, str)) else _AnyType
        out.append(Param(name, t, default, nullable=True))
    return out


class _AnyType:
    """Marker for parameters whose type the signature does not tell; values pass unchecked."""


class _FreeParamSpec(ParamSpec):
    """A spec from a signature: unknown names refused, values of known type coerced, others passed as given."""

    def validate(self, given: Mapping[str, Any] | None, family: str) -> dict[str, Any]:
        """The full parameter dict: defaults overridden by ``given``; values of known type are checked."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise ParamError(
                f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} for {family}; valid ones are "
                + (", ".join(p.describe() for p in self.params.values()) or "none (it takes no parameters)")
            )
        out = self.defaults()
        for k, v in given.items():
            p = self.params[k]
            if p.type is _AnyType or p.default is None:
                out[k] = _parse_literal(v)
                continue
            try:
                out[k] = p.coerce(v)
            except ParamError as e:
                raise ParamError(f"{family}: {e}") from e.__cause__
        return out


def _parse_literal(v: Any) -> Any:
    if not isinstance(v, str):
        return v
    import json

    try:
        return json.loads(v)
    except ValueError:
        return v


def _protocol_family(path: str, cls: type) -> type:
    spec = getattr(cls, "params", None)
    if not isinstance(spec, ParamSpec):
        spec = _FreeParamSpec(_signature_params(cls.__init__, skip=1))
    tasks = tuple(getattr(cls, "tasks", tuple(Task)))

    def __init__(self: Any, *, task: Task | str = Task.CLASSIFICATION, n_classes: int = 0, **params: Any) -> None:
        # refuse bad params and unsupported tasks with modelyard's errors before the user's code runs
        check_task(path, Task(task), tasks)
        cls.__init__(self, task=Task(task), n_classes=n_classes, **spec.validate(params, path))

    return type(
        cls.__name__,
        (cls,),
        {"__init__": __init__, "family": path, "params": spec, "tasks": tasks,
         "encoding": getattr(cls, "encoding", "onehot"), "__module__": cls.__module__},
    )


class _SklearnAdapter:
    """A scikit-learn estimator behind the Model protocol; its fitted attributes (``name_``) are its state.

    State keys say how to restore each attribute: ``array.coef_`` (numeric array),
    ``scalar.intercept_`` (0-d), ``str.solver_`` (UTF-8 bytes) and ``none.n_iter_`` (empty).
    """

    estimator_cls: ClassVar[type]
    family: ClassVar[str]
    params: ClassVar[ParamSpec]
    tasks: ClassVar[tuple[Task, ...]] = tuple(Task)
    encoding: ClassVar[str] = "onehot"

    def __init__(self, *, task: Task | str = Task.CLASSIFICATION, n_classes: int = 0, **params: Any):
        self.task = Task(task)
        check_task(self.family, self.task, self.tasks)
        self.n_classes = n_classes
        self.hparams = self.params.validate(params, self.family)
        try:
            self.est_ = self.estimator_cls(**self.hparams)
        except Exception as e:
            raise ModelError(
                f"custom estimator {self.family} refused params {self.hparams} "
                f"({type(e).__name__}: {' '.join(str(e).split())}); fix the --set values"
            ) from e
        self.history_: list[EpochLog] = []

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters, defaults filled in."""
        return dict(self.hparams)

    def fit(self, X: NDArray, y: NDArray, *, eval_set: EvalSet | None = None, config: FitConfig = _DEFAULT_CONFIG,
            callbacks: Sequence[Any] = ()) -> Self:
        """Fit the estimator on all rows, seeding its ``random_state`` when it has one."""
        if "random_state" in self.est_.get_params():
            self.est_.set_params(random_state=config.seed)
        try:
            self.est_.fit(X, y)
        except Exception as e:
            raise ModelError(f"custom estimator {self.family} failed in fit ({type(e).__name__}: {' '.join(str(e).split())}); "
                "fix its --set values or the data") from e
        return self

    def predict(self, X: NDArray) -> NDArray:
        """Class indices for classification, values for regression."""
        self._check_fitted()
        out = np.asarray(self.est_.predict(X))
        return out.astype(np.int64) if self.task is Task.CLASSIFICATION else out.astype(np.float64)

    def _fitted_attributes(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self.est_).items() if k.endswith("_") and not k.startswith("_")}

    def _check_fitted(self) -> None:
        if not self._fitted_attributes():
            raise ModelError(f"custom estimator {self.family} is not fitted; call fit first")

    def state(self) -> dict[str, NDArray]:
        """The fitted attributes as named arrays (never pickled)."""
        self._check_fitted()
        out: dict[str, NDArray] = {}
        for k, v in self._fitted_attributes().items():
            if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
                out["array." + k] = np.ascontiguousarray(v)
            elif isinstance(v, (bool, int, float, np.integer, np.floating, np.bool_)):
                out["scalar." + k] = np.asarray(v)
            elif isinstance(v, str):
                out["str." + k] = np.frombuffer(v.encode(), dtype=np.uint8).copy()
            elif v is None:
                out["none." + k] = np.zeros(0, dtype=np.uint8)
            else:
                raise ModelError(
                    f"custom estimator {self.family} has fitted attribute {k!r} of type {type(v).__name__}, which "
                    "cannot be saved without pickle; wrap it in a class with state() and from_state() methods"
                )
        return out

    @classmethod
    def from_state(cls, params: Mapping[str, Any], state: Mapping[str, NDArray], *, task: Task | str,
                   n_classes: int = 0) -> Self:
        """Rebuild the fitted estimator from ``get_params()`` and ``state()``."""
        self = cls(task=task, n_classes=n_classes, **params)
        for k, v in state.items():
            kind, _, name = k.partition(".")
            if kind == "array":
                value: Any = np.array(v)
            elif kind == "scalar":
                value = np.asarray(v).item()
            elif kind == "str":
                value = np.asarray(v, dtype=np.uint8).tobytes().decode()
            elif kind == "none":
                value = None
            else:
                raise ModelError(f"unknown state entry {k!r} for custom estimator {cls.family}; was it saved by modelyard?")
            setattr(self.est_, name, value)
        return self


class _SklearnProba:
    """``predict_proba`` for adapted estimators that have one (a LinearSVC has none, so its adapter has none)."""

    est_: Any
    n_classes: int

    def predict_proba(self, X: NDArray) -> NDArray:
        """Class probabilities, one column per class index."""
        self._check_fitted()  # type: ignore[attr-defined]
        p = np.asarray(self.est_.predict_proba(X), dtype=np.float64)
        classes = np.asarray(getattr(self.est_, "classes_", np.arange(p.shape[1])), dtype=np.int64)
        k = max(int(self.n_classes), int(classes.max()) + 1 if len(classes) else 0, p.shape[1])
        if p.shape[1] == k and np.array_equal(classes, np.arange(k)):
            return p
        out = np.zeros((len(p), k))
        out[:, classes] = p
        return out


def _sklearn_tasks(est_cls: type) -> tuple[Task, ...]:
    """The tasks a scikit-learn estimator class does, from its estimator type (both when it does not say)."""
    from sklearn.base import is_classifier, is_regressor

    try:
        est = est_cls()
    except Exception:  # noqa: BLE001  (an estimator without defaults for every argument: it does not say)
        return tuple(Task)
    if is_classifier(est):
        return (Task.CLASSIFICATION,)
    if is_regressor(est):
        return (Task.REGRESSION,)
    return tuple(Task)


def _sklearn_family(path: str, est_cls: type) -> type:
    spec = _FreeParamSpec(_signature_params(est_cls.__init__, skip=1))
    tasks = _sklearn_tasks(est_cls)
    proba = Task.CLASSIFICATION in tasks and callable(getattr(est_cls, "predict_proba", None))
    bases = (_SklearnProba, _SklearnAdapter) if proba else (_SklearnAdapter,)
    return type(
        est_cls.__name__ + "Adapter", bases,
        {"estimator_cls": est_cls, "family": path, "params": spec, "tasks": tasks},
    )


def _torch_family(path: str, factory: Any) -> type:
    try:
        inspect.signature(factory).bind(1, 1)
    except TypeError:
        raise ModelError(
            f"custom model {path!r} cannot be called as a torch.nn.Module factory: its signature "
            f"{inspect.signature(factory)} does not take (n_features, n_outputs, **params); give it that signature"
        ) from None
    extra = [p for p in _signature_params(factory, skip=2) if p.name not in {q.name for q in LOOP_PARAMS}]
    weight = [] if any(p.name == CLASS_WEIGHT.name for p in extra) else [CLASS_WEIGHT]  # through the shared loop

    def build(self: TorchModel, n_in: int, n_out: int) -> Any:
        import torch

        kwargs = {p.name: self.hparams[p.name] for p in extra}
        try:
            module = factory(n_in, n_out, **kwargs)
        except Exception as e:
            raise ModelError(
                f"custom factory {path!r} failed when called with ({n_in}, {n_out}, **{kwargs}) "
                f"({type(e).__name__}: {' '.join(str(e).split())}); fix the factory or the --set values"
            ) from e
        if not isinstance(module, torch.nn.Module):
            raise ModelError(
                f"custom factory {path!r} returned a {type(module).__name__}, not a torch.nn.Module; return a module"
            )
        if not any(p.requires_grad for p in module.parameters()):
            raise ModelError(f"the module built by {path!r} has no trainable parameters; give it at least one layer")
        return module

    return type(
        "TorchFactoryModel", (TorchModel,),
        {"family": path, "params": _FreeParamSpec((*LOOP_PARAMS, *extra, *weight)), "build": build},
    )
