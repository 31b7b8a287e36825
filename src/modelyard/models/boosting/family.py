"""The ``gradient_boosting`` family: XGBoost's histogram trees for classification and regression.

Notation: ``X: (n, d)`` float32, NaN for a missing value (each split learns where missing rows
go); categorical columns hold codes ``0..k-1`` and are split natively (XGBoost's partition
splits; ``max_cat_to_onehot`` or fewer categories: one-vs-rest), with ``k`` standing for a
category unseen in training (see ``models/encoding.py``). ``y: (n,)`` class indices or values.
Objectives: ``binary:logistic``, ``multi:softprob`` (one tree per class per round),
``reg:squarederror``.

The fitted state is one array, ``booster.ubj``: the bytes of XGBoost's own UBJSON model format
(``Booster.save_raw("ubj")``), stored as ``uint8`` in the content-addressed store and loaded back
with ``Booster.load_model`` (no pickle). Calling ``fit`` on a fitted model continues boosting from
its trees (``xgb_model=``): that is how a registry branch warm-starts.

Early stopping watches the validation loss for ``early_stopping_rounds`` rounds and keeps the
trees up to the best round. Under a distributed run (``train/boost_dist.py``) the same ``fit``
runs on every rank inside XGBoost's collective, which sums the gradient histograms of all ranks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray

from ...errors import ModelError, ParamError, TrainingError
from ...records.training import EpochLog, FitConfig
from ...schema import Task
from ..base import EvalSet, Param, ParamSpec, check_task
from .device import pick_device, threads
from .rounds import RoundLogger

__all__ = ["GradientBoosting"]

DEFAULT_CONFIG = FitConfig()
STATE_KEY = "booster.ubj"
MAX_LOGS = 500  # EpochLogs per fit at most: longer runs log every ceil(n_estimators / 500) rounds

PARAMS = (
    Param("n_estimators", int, 300, low=1, high=100_000, help="boosting rounds (at most; early stopping may stop sooner)"),
    Param("learning_rate", float, 0.1, low=1e-6, high=1.0, help="shrinkage of each tree's contribution (eta)"),
    Param("max_depth", int, 6, low=0, high=64, help="depth limit of a tree (0: none, needs max_leaves > 0)"),
    Param("max_leaves", int, 0, low=0, high=1_048_576, help="leaves per tree (0: no limit)"),
    Param("grow_policy", str, "depthwise", choices=("depthwise", "lossguide"),
          help="split the nodes closest to the root first, or the ones with the largest loss reduction"),
    Param("min_child_weight", float, 1.0, low=0.0, high=1e6, help="least hessian sum in a child"),
    Param("subsample", float, 1.0, low=0.01, high=1.0, help="fraction of rows sampled per tree"),
    Param("colsample_bytree", float, 1.0, low=0.01, high=1.0, help="fraction of features sampled per tree"),
    Param("reg_alpha", float, 0.0, low=0.0, high=1e6, help="L1 penalty on leaf weights"),
    Param("reg_lambda", float, 1.0, low=0.0, high=1e6, help="L2 penalty on leaf weights"),
    Param("gamma", float, 0.0, low=0.0, high=1e6, help="least loss reduction to make a split"),
    Param("max_bin", int, 256, low=2, high=65_535, help="histogram bins per feature"),
    Param("max_cat_to_onehot", int, 4, low=1, high=1_000_000,
          help="categorical columns with at most this many categories split one-vs-rest, others by partition"),
    Param("early_stopping_rounds", int, 50, low=1, high=100_000, nullable=True,
          help="stop when the validation loss has not improved for this many rounds (None: never)"),
    Param("n_jobs", int, -1, low=-1, high=1024, help="threads (-1: all cores; --threads overrides)"),
)


class GradientBoosting:
    """Gradient-boosted decision trees (XGBoost ``hist``), with native missing values and categoricals."""

    family: ClassVar[str] = "gradient_boosting"
    tasks: ClassVar[tuple[Task, ...]] = (Task.CLASSIFICATION, Task.REGRESSION)
    encoding: ClassVar[str] = "native"
    handles_missing: ClassVar[bool] = True
    progress_param: ClassVar[str] = "n_estimators"  # the history counts rounds up to this param, not epochs
    params: ClassVar[ParamSpec] = ParamSpec(PARAMS)

    def __init__(self, *, task: Task | str = Task.CLASSIFICATION, n_classes: int = 0, **params: Any):
        self.task = Task(task)
        check_task(self.family, self.task, self.tasks)
        self.n_classes = int(n_classes)
        self.hparams = self.params.validate(params, self.family)
        if self.hparams["max_depth"] == 0 and self.hparams["max_leaves"] == 0:
            raise ParamError(f"{self.family}: max_depth=0 (no depth limit) needs a leaf limit; set max_leaves > 0 "
                             "(e.g. max_leaves=63) or max_depth >= 1")
        self.booster_: Any = None
        self.categorical_: dict[int, int] = {}
        self.history_: list[EpochLog] = []
        self.best_epoch_: int | None = None
        self.stop_reason_: str | None = None

    # --- protocol --------------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The hyperparameters, defaults filled in."""
        return dict(self.hparams)

    def set_categorical(self, sizes: Mapping[int, int]) -> None:
        """The categorical columns and their numbers of training categories (from the Predictor's schema)."""
        self.categorical_ = {int(j): int(k) for j, k in sizes.items()}

    def _objective(self) -> dict[str, Any]:
        if self.task is Task.REGRESSION:
            return {"objective": "reg:squarederror", "eval_metric": ["rmse"]}
        if self.n_classes == 2:
            return {"objective": "binary:logistic", "eval_metric": ["error", "logloss"]}
        return {"objective": "multi:softprob", "num_class": self.n_classes, "eval_metric": ["merror", "mlogloss"]}

    def xgb_params(self, config: FitConfig = DEFAULT_CONFIG) -> dict[str, Any]:
        """The parameters handed to ``xgboost.train`` for this model and run configuration."""
        hp = self.hparams
        return {
            **self._objective(),
            "tree_method": "hist", "device": pick_device(config.device), "eta": hp["learning_rate"],
            "max_depth": hp["max_depth"], "max_leaves": hp["max_leaves"], "grow_policy": hp["grow_policy"],
            "min_child_weight": hp["min_child_weight"], "subsample": hp["subsample"],
            "colsample_bytree": hp["colsample_bytree"], "alpha": hp["reg_alpha"], "lambda": hp["reg_lambda"],
            "gamma": hp["gamma"], "max_bin": hp["max_bin"], "max_cat_to_onehot": hp["max_cat_to_onehot"],
            "nthread": threads(config.threads, hp["n_jobs"]), "seed": int(config.seed), "verbosity": 0,
        }

    def _feature_types(self, d: int) -> list[str] | None:
        if not self.categorical_:
            return None
        return ["c" if j in self.categorical_ else "q" for j in range(d)]

    def _check_y(self, y: NDArray) -> NDArray:
        if self.task is Task.REGRESSION:
            return np.asarray(y, dtype=np.float32)
        codes = np.asarray(y)
        if len(codes) and (codes.min() < 0 or codes.max() >= self.n_classes):
            raise ModelError(f"class indices must lie in [0, {self.n_classes}), got [{codes.min()}, {codes.max()}]; "
                             "encode the target as class indices")
        return codes.astype(np.float32)

    def fit(
        self,
        X: NDArray,
        y: NDArray,
        *,
        sample_weight: NDArray | None = None,
        eval_set: EvalSet | None = None,
        config: FitConfig = DEFAULT_CONFIG,
        callbacks: Sequence[Any] = (),
        hook: Callable[[Any], None] | None = None,
    ) -> Self:
        """Boost ``n_estimators`` rounds (fewer if the validation loss stops improving); continue if already fitted.

        ``hook(booster)`` runs after every round (a distributed rank's heartbeat). A hook with
        ``waiting()`` and ``working()`` context managers (a rank's watchdog) has XGBoost's run, whose
        collectives wait on the other ranks, marked as waiting, and the Python work between rounds
        (callbacks) as this rank's own. ``callbacks`` get the EpochLog of every logged round and may
        stop training by returning True.
        """
        import xgboost
        from xgboost import collective

        if self.task is Task.CLASSIFICATION and self.n_classes < 2:
            self.n_classes = max(2, int(np.max(y)) + 1 if len(y) else 2)
        X = np.ascontiguousarray(X, dtype=np.float32)
        params = self.xgb_params(config)
        if self.booster_ is not None and self.booster_.num_features() != X.shape[1]:
            raise ModelError(f"the model was trained on {self.booster_.num_features()} features, the data has "
                             f"{X.shape[1]}; retrain on data with the same columns")
        distributed = collective.is_distributed()
        types = self._feature_types(X.shape[1])
        weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float32)
        hp = self.hparams
        waiting = getattr(hook, "waiting", None)
        try:
            with waiting() if waiting is not None else nullcontext():  # a distributed sketch waits on every rank
                dtrain, evals, y_var = self._matrices(X, y, weight, eval_set, types, params["nthread"], distributed)
        except xgboost.core.XGBoostError as e:
            raise TrainingError(f"XGBoost refused the data ({_first_line(e)}); check the features") from e
        validating = len(evals) > 1
        metrics = params["eval_metric"]
        loss, accuracy = metrics[-1], (metrics[0] if len(metrics) > 1 else None)
        rounds = hp["n_estimators"]
        logger = RoundLogger(loss=loss, accuracy=accuracy, y_var=y_var, every=-(-rounds // MAX_LOGS),
                             max_time=config.max_time, callbacks=callbacks,
                             on_round=[self._peek] + ([hook] if hook is not None else []),
                             working=getattr(hook, "working", None))
        cbs = [logger.callback(rounds)]
        stopping = validating and hp["early_stopping_rounds"] is not None
        if stopping:
            cbs.append(xgboost.callback.EarlyStopping(rounds=hp["early_stopping_rounds"], metric_name=loss,
                                                      data_name="validation", min_delta=config.min_delta))
        previous = self.booster_
        start = 0 if previous is None else previous.num_boosted_rounds()
        try:
            with waiting() if waiting is not None else nullcontext():
                booster = xgboost.train(params, dtrain, num_boost_round=rounds, evals=evals, callbacks=cbs,
                                        verbose_eval=False, xgb_model=previous)
        except xgboost.core.XGBoostError as e:
            self.booster_ = previous
            raise TrainingError(f"XGBoost failed while boosting ({_first_line(e)})") from e
        except BaseException:
            self.booster_ = previous
            raise
        ran = booster.num_boosted_rounds() - start
        kept = ran
        best = booster.attr("best_iteration") if stopping else None
        if best is not None and start < int(best) + 1 < start + ran:  # keep the trees up to the best round
            booster = booster[: int(best) + 1]
            kept = int(best) + 1 - start
        for attr in ("best_iteration", "best_score"):
            booster.set_attr(**{attr: None})
        self.booster_ = _for_prediction(booster, params["nthread"])
        self.history_ = logger.history
        self.best_epoch_ = kept
        if logger.stopped_by is not None:
            self.stop_reason_ = logger.stopped_by
        elif ran < rounds:
            self.stop_reason_ = "early_stopping"
        else:
            self.stop_reason_ = "rounds"
        return self

    def _matrices(self, X: NDArray, y: NDArray, weight: NDArray | None, eval_set: EvalSet | None,
                  types: list[str] | None, nthread: int, distributed: bool) -> tuple[Any, list[Any], float | None]:
        """The training matrix (quantile cuts from its rows, of every rank's), the evals, and var(y_val)."""
        import xgboost

        dtrain = xgboost.QuantileDMatrix(X, self._check_y(y), weight=weight, max_bin=self.hparams["max_bin"],
                                         feature_types=types, enable_categorical=bool(types), nthread=nthread)
        evals = [(dtrain, "train")]
        y_var = None
        if eval_set is not None and (distributed or len(eval_set[0])):  # every rank builds one, even empty
            Xv, yv = eval_set
            dval = xgboost.QuantileDMatrix(np.ascontiguousarray(Xv, dtype=np.float32), self._check_y(yv), ref=dtrain,
                                           feature_types=types, enable_categorical=bool(types), nthread=nthread)
            evals.append((dval, "validation"))
            if self.task is Task.REGRESSION:
                y_var = _variance(np.asarray(yv, dtype=np.float64), distributed)
        return dtrain, evals, y_var

    def _peek(self, booster: Any) -> None:
        """Let callbacks that predict (a tuning objective's pruning) see the trees grown so far."""
        self.booster_ = booster

    def predict(self, X: NDArray) -> NDArray:
        """Class indices for classification, values for regression."""
        raw = self._raw(X)
        if self.task is Task.REGRESSION:
            return raw.astype(np.float64)
        if raw.ndim == 1:
            return (raw > 0.5).astype(np.int64)
        return raw.argmax(axis=1).astype(np.int64)

    def predict_proba(self, X: NDArray) -> NDArray:
        """Class probabilities ``(n, n_classes)``."""
        if self.task is not Task.CLASSIFICATION:
            raise ModelError("gradient_boosting is a regressor here; predict_proba applies to classifiers only, use predict")
        raw = self._raw(X).astype(np.float64)
        if raw.ndim == 1:
            return np.stack([1.0 - raw, raw], axis=1)
        return raw / raw.sum(axis=1, keepdims=True)

    def _raw(self, X: NDArray) -> NDArray:
        if self.booster_ is None:
            raise ModelError("gradient_boosting is not fitted; call fit first")
        X = np.ascontiguousarray(X, dtype=np.float32)
        if len(X) == 0:
            k = self.n_classes if self.task is Task.CLASSIFICATION and self.n_classes > 2 else 0
            return np.zeros((0, k) if k else (0,), dtype=np.float32)
        return np.asarray(self.booster_.inplace_predict(X, validate_features=False))

    def state(self) -> dict[str, NDArray]:
        """The booster as XGBoost's UBJSON bytes in one uint8 array."""
        if self.booster_ is None:
            raise ModelError("gradient_boosting is not fitted; call fit first")
        raw = self.booster_.save_raw(raw_format="ubj")
        return {STATE_KEY: np.frombuffer(bytes(raw), dtype=np.uint8).copy()}

    @classmethod
    def from_state(
        cls, params: Mapping[str, Any], state: Mapping[str, NDArray], *, task: Task | str, n_classes: int = 0
    ) -> Self:
        """Rebuild from ``state()``: XGBoost parses its own model format (no pickle, no code)."""
        import xgboost

        self = cls(task=task, n_classes=n_classes, **params)
        if STATE_KEY not in state:
            raise ModelError(f"the stored state has no {STATE_KEY!r} array (it has {', '.join(sorted(state))}); "
                             "it was not saved by gradient_boosting")
        booster = xgboost.Booster()
        try:
            booster.load_model(bytearray(np.asarray(state[STATE_KEY], dtype=np.uint8).tobytes()))
        except xgboost.core.XGBoostError as e:
            raise ModelError(f"the stored gradient_boosting model cannot be read ({_first_line(e)}); "
                             "it is damaged or from an incompatible XGBoost") from e
        self.booster_ = _for_prediction(booster, threads(None, self.hparams["n_jobs"]))
        if self.task is Task.CLASSIFICATION and self.n_classes < 2:
            self.n_classes = max(2, int(json.loads(booster.save_config())["learner"]["learner_model_param"]
                                        .get("num_class", "0")) or 2)
        return self

    # --- what the registry shows ------------------------------------------------------------------
    def feature_importance(self) -> NDArray[np.float64]:
        """Each input column's share of the total loss reduction (gain) over all splits; sums to 1 (or all 0)."""
        if self.booster_ is None:
            raise ModelError("gradient_boosting is not fitted; call fit first")
        d = self.booster_.num_features()
        out = np.zeros(d)
        for key, gain in self.booster_.get_score(importance_type="total_gain").items():
            out[int(key[1:]) if key.startswith("f") and key[1:].isdigit() else self.booster_.feature_names.index(key)] = gain
        total = out.sum()
        return out / total if total > 0 else out

    def n_parameters(self) -> int:
        """Numbers that define the trees: one split (feature, threshold) or leaf value per node."""
        if self.booster_ is None:
            raise ModelError("gradient_boosting is not fitted; call fit first")
        model = json.loads(bytes(self.booster_.save_raw(raw_format="json")))
        trees = model["learner"]["gradient_booster"]["model"]["trees"]
        return int(sum(int(t["tree_param"]["num_nodes"]) for t in trees))


def _for_prediction(booster: Any, nthread: int) -> Any:
    """The booster set to predict on host arrays with ``nthread`` threads."""
    booster.set_param({"device": "cpu", "nthread": int(nthread)})
    return booster


def _variance(y: NDArray, distributed: bool) -> float:
    """Variance of the validation targets (of every rank's, in a distributed run)."""
    sums = np.array([len(y), float(y.sum()), float((y * y).sum())])
    if distributed:
        from xgboost import collective

        sums = np.asarray(collective.allreduce(sums, collective.Op.SUM))
    n = sums[0]
    if n <= 0:
        return 0.0
    return float(max(sums[2] / n - (sums[1] / n) ** 2, 0.0))


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = lines[0] if lines else type(e).__name__
    return text[:300]
