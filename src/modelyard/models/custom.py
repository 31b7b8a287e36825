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
from ..records import EpochLog, FitConfig, Task
from .base import EvalSet, Param, ParamSpec
from .loop import LOOP_PARAMS
from .torch_base import TorchModel

__all__ = ["load_custom", "is_custom_path"]

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
            f"cannot import module {mod_name!r} for custom model {path!r} ({type(e).__name__}: {e}); "
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
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and (inspect.isclass(obj) and issubclass(obj, torch.nn.Module) or inspect.isfunction(obj)):
        return _torch_family(path, obj)
    raise ModelError(
        f"custom model {path!r} is neither a class implementing fit/predict/get_params/state/from_state, "
        "nor a scikit-learn estimator, nor a torch.nn.Module factory; implement one of those"
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
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise ParamError(
                f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} for {family}; it accepts: "
                + (", ".join(self.params) or "none")
            )
        out = self.defaults()
        for k, v in given.items():
            p = self.params[k]
            if p.type is _AnyType or p.default is None:
                out[k] = _parse_literal(v)
            else:
                out[k] = p.coerce(v)
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
    return type(
        cls.__name__,
        (cls,),
        {"family": path, "params": spec, "tasks": getattr(cls, "tasks", tuple(Task)),
         "encoding": getattr(cls, "encoding", "onehot")},
    )


class _SklearnAdapter:
    """A scikit-learn estimator behind the Model protocol; its fitted array attributes are its state."""

    estimator_cls: ClassVar[type]
    family: ClassVar[str]
    params: ClassVar[ParamSpec]
    tasks: ClassVar[tuple[Task, ...]] = tuple(Task)
    encoding: ClassVar[str] = "onehot"

    def __init__(self, *, task: Task | str = Task.CLASSIFICATION, n_classes: int = 0, **params: Any):
        self.task = Task(task)
        self.n_classes = n_classes
        self.hparams = self.params.validate(params, self.family)
        self.est_ = self.estimator_cls(**self.hparams)
        self.history_: list[EpochLog] = []

    def get_params(self) -> dict[str, Any]:
        return dict(self.hparams)

    def fit(self, X: NDArray, y: NDArray, *, eval_set: EvalSet | None = None, config: FitConfig = FitConfig(),
            callbacks: Sequence[Any] = ()) -> Self:
        if "random_state" in self.est_.get_params():
            self.est_.set_params(random_state=config.seed)
        try:
            self.est_.fit(X, y)
        except Exception as e:
            raise ModelError(f"custom estimator {self.family} failed in fit: {type(e).__name__}: {e}") from e
        return self

    def predict(self, X: NDArray) -> NDArray:
        return np.asarray(self.est_.predict(X))

    def predict_proba(self, X: NDArray) -> NDArray:
        if not hasattr(self.est_, "predict_proba"):
            raise ModelError(f"custom estimator {self.family} has no predict_proba")
        return np.asarray(self.est_.predict_proba(X))

    def state(self) -> dict[str, NDArray]:
        out: dict[str, NDArray] = {}
        for k, v in vars(self.est_).items():
            if not k.endswith("_") or k.startswith("_"):
                continue
            if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
                out["array." + k] = np.ascontiguousarray(v)
            elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                out["scalar." + k] = np.asarray(v)
            else:
                raise ModelError(
                    f"custom estimator {self.family} has fitted attribute {k!r} of type {type(v).__name__}, which "
                    "cannot be saved without pickle; give the class state() and from_state() methods"
                )
        return out

    @classmethod
    def from_state(cls, params: Mapping[str, Any], state: Mapping[str, NDArray], *, task: Task | str,
                   n_classes: int = 0) -> Self:
        self = cls(task=task, n_classes=n_classes, **params)
        for k, v in state.items():
            kind, _, name = k.partition(".")
            setattr(self.est_, name, np.asarray(v) if kind == "array" else np.asarray(v).item())
        return self


def _sklearn_family(path: str, est_cls: type) -> type:
    spec = _FreeParamSpec(_signature_params(est_cls.__init__, skip=1))
    return type(est_cls.__name__ + "Adapter", (_SklearnAdapter,), {"estimator_cls": est_cls, "family": path, "params": spec})


def _torch_family(path: str, factory: Any) -> type:
    extra = [p for p in _signature_params(factory, skip=2) if p.name not in {q.name for q in LOOP_PARAMS}]

    def build(self: TorchModel, n_in: int, n_out: int) -> Any:
        kwargs = {p.name: self.hparams[p.name] for p in extra}
        module = factory(n_in, n_out, **kwargs)
        import torch

        if not isinstance(module, torch.nn.Module):
            raise ModelError(f"custom factory {path!r} returned {type(module).__name__}, not a torch.nn.Module")
        return module

    return type("TorchFactoryModel", (TorchModel,), {"family": path, "params": _FreeParamSpec((*LOOP_PARAMS, *extra)), "build": build})
