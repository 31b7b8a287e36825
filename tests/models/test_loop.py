"""The shared minibatch loop (the linear families with solver sgd/adam, the MLP): optimizers, weight decay,
schedules, early stopping, the default budget, time budget, callbacks."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from modelyard.errors import TrainingError
from modelyard.models import get_family
from modelyard.models.loop import StepHook
from modelyard.records.training import FitConfig
from modelyard.schema import Task


class Recorder(StepHook):
    """Keeps a copy of the parameters before training and after every optimizer step."""

    def __init__(self) -> None:
        self.params: list[np.ndarray] = []

    def _flat(self, module) -> np.ndarray:
        return torch.cat([p.detach().reshape(-1) for p in module.parameters()]).double().numpy().copy()

    def wrap(self, module):
        self.params.append(self._flat(module))
        return module

    def after_step(self, module, step):
        self.params.append(self._flat(module))


def regression_data(n=64, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    return X, X @ np.arange(1.0, d + 1) + 0.5


def full_batch_gradient(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gradient of mean((X w + b - y)^2) at theta = (w, b), in float64."""
    w, b = theta[:-1], theta[-1]
    r = X.astype(np.float64) @ w + b - y
    return np.concatenate([2 * X.T @ r / len(y), [2 * r.mean()]])


def fit_linear(params, epochs=5, hook=None, X=None, y=None):
    if X is None:
        X, y = regression_data()
    model = get_family("linear_regression")(
        task=Task.REGRESSION, **{"solver": "adam", "standardize": False, "batch_size": 1000, "weight_decay": 0.0, **params}
    )
    model.fit(X, y, config=FitConfig(epochs=epochs, seed=0), hook=hook)
    return model, X, y


def test_sgd_step_is_minus_lr_times_gradient():
    rec = Recorder()
    _, X, y = fit_linear({"solver": "sgd", "learning_rate": 0.05}, epochs=3, hook=rec)
    for before, after in zip(rec.params, rec.params[1:], strict=False):
        np.testing.assert_allclose(after - before, -0.05 * full_batch_gradient(before, X, y), rtol=1e-4, atol=1e-6)


def test_adam_first_step_has_the_learning_rate_per_coordinate():
    rec = Recorder()
    _, X, y = fit_linear({"solver": "adam", "learning_rate": 0.01}, epochs=1, hook=rec)
    step = rec.params[1] - rec.params[0]
    g = full_batch_gradient(rec.params[0], X, y)
    np.testing.assert_allclose(step, -0.01 * np.sign(g), rtol=1e-4)


def test_weight_decay_is_l2_in_the_sgd_step():
    rec = Recorder()
    _, X, y = fit_linear({"solver": "sgd", "learning_rate": 0.05, "weight_decay": 0.3}, epochs=2, hook=rec)
    for before, after in zip(rec.params, rec.params[1:], strict=False):
        expected = -0.05 * (full_batch_gradient(before, X, y) + 0.3 * before)  # torch decays the bias too
        np.testing.assert_allclose(after - before, expected, rtol=1e-4, atol=1e-6)


def test_weight_decay_shrinks_the_learned_weights():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    norms = []
    for wd in (0.0, 0.05):
        m = get_family("logistic_regression")(
            task=Task.CLASSIFICATION, n_classes=2, solver="adam", weight_decay=wd, learning_rate=0.1
        )
        m.fit(X, y, config=FitConfig(epochs=30, seed=0))
        norms.append(float(np.linalg.norm(m.state()["module.weight"])))
    assert norms[1] < 0.5 * norms[0]


@pytest.mark.parametrize("eta0, mu", [(0.1, 1.0), (0.05, 10.0)])
def test_inverse_time_schedule_is_applied_every_step(eta0, mu):
    rec = Recorder()
    model, X, y = fit_linear(
        {"solver": "sgd", "learning_rate": eta0, "lr_schedule": "inverse_time", "lr_decay": mu}, epochs=6, hook=rec
    )
    for t, (before, after) in enumerate(zip(rec.params, rec.params[1:], strict=False)):
        g = full_batch_gradient(before, X, y)
        eta_t = eta0 / (1 + eta0 * mu * t)  # the t-th update (t = 0, 1, ...) uses eta_t
        np.testing.assert_allclose(after - before, -eta_t * g, rtol=1e-4, atol=1e-6)
    # the history reports the learning rate at the end of each epoch (one step per epoch here)
    lrs = [h.extra["lr"] for h in model.history_]
    np.testing.assert_allclose(lrs, [eta0 / (1 + eta0 * mu * e) for e in range(1, 7)], rtol=1e-6)


def test_inverse_time_counts_minibatch_steps():
    X, y = regression_data(n=100)
    model, _, _ = fit_linear(
        {"solver": "sgd", "learning_rate": 0.1, "lr_schedule": "inverse_time", "lr_decay": 2.0, "batch_size": 10},
        epochs=3, X=X, y=y,
    )
    np.testing.assert_allclose([h.extra["lr"] for h in model.history_], [0.1 / (1 + 0.2 * 10 * e) for e in (1, 2, 3)])


def _flipped_validation(n=400, seed=0):
    """Training labels follow x0 > 0; validation labels are the opposite, so validation gets worse as training goes on."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    return X, y, X[:100], 1 - y[:100]


def _log_loss(model, X, y) -> float:
    p = model.predict_proba(X)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def test_early_stopping_restores_the_best_weights():
    X, y, Xv, yv = _flipped_validation()
    model = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=2, solver="adam", batch_size=32)
    model.fit(X, y, eval_set=(Xv, yv), config=FitConfig(epochs=50, patience=3, seed=0))
    hist = model.history_
    assert model.stop_reason_ == "early_stopping"
    assert model.best_epoch_ == 1 and len(hist) == 4  # never improved after epoch 1: stopped 3 epochs later
    assert hist[-1].val_loss > hist[0].val_loss
    assert _log_loss(model, Xv, yv) == pytest.approx(hist[0].val_loss, rel=1e-5)


def test_without_patience_the_best_validation_weights_are_still_kept():
    X, y, Xv, yv = _flipped_validation()
    model = get_family("mlp")(task=Task.CLASSIFICATION, n_classes=2, hidden_sizes=(8,), batch_size=32)
    model.fit(X, y, eval_set=(Xv, yv), config=FitConfig(epochs=4, seed=0))
    assert model.stop_reason_ == "epochs" and len(model.history_) == 4
    best = min(model.history_, key=lambda h: h.val_loss)
    assert model.best_epoch_ == best.epoch
    assert _log_loss(model, Xv, yv) == pytest.approx(best.val_loss, rel=1e-5)


def test_improving_run_keeps_the_last_weights():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=2, solver="adam", batch_size=64)
    model.fit(X[:300], y[:300], eval_set=(X[300:], y[300:]), config=FitConfig(epochs=5, patience=2, seed=0))
    assert model.best_epoch_ == 5 and model.stop_reason_ == "epochs"
    assert _log_loss(model, X[300:], y[300:]) == pytest.approx(model.history_[-1].val_loss, rel=1e-5)


def test_max_time_stops_cleanly_with_the_best_weights_so_far():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(20000, 20)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] > 0).astype(np.int64)
    Xv, yv = X[:2000], y[:2000]
    model = get_family("mlp")(task=Task.CLASSIFICATION, n_classes=2, hidden_sizes=(64,), batch_size=64)
    t0 = time.perf_counter()
    model.fit(X, y, eval_set=(Xv, yv), config=FitConfig(epochs=10_000, max_time=0.6, seed=0))
    elapsed = time.perf_counter() - t0
    assert model.stop_reason_ == "max_time"
    assert elapsed < 0.6 + 2.0  # stops within the step, not at the end of 10,000 epochs
    assert 1 <= len(model.history_) < 10_000
    best = min(model.history_, key=lambda h: h.val_loss)
    assert model.best_epoch_ == best.epoch
    assert _log_loss(model, Xv, yv) == pytest.approx(best.val_loss, rel=1e-5)


def test_a_callback_can_stop_training():
    X, y = regression_data()
    seen = []

    def stop_at_three(log):
        seen.append(log.epoch)
        return log.epoch == 3

    model = get_family("linear_regression")(task=Task.REGRESSION, solver="adam")
    model.fit(X, y, config=FitConfig(epochs=20, seed=0), callbacks=[stop_at_three])
    assert seen == [1, 2, 3] and model.stop_reason_ == "callback" and len(model.history_) == 3


def test_divergence_is_a_training_error():
    X, y = regression_data()
    model = get_family("linear_regression")(
        task=Task.REGRESSION, solver="sgd", learning_rate=10.0, standardize=False, batch_size=8
    )
    with pytest.raises(TrainingError, match="diverged.*lower learning_rate"):
        model.fit(X * 1e3, y * 1e3, config=FitConfig(epochs=50, seed=0))


def test_threads_setting_is_restored():
    before = torch.get_num_threads()
    fit_linear({}, epochs=1)
    model = get_family("linear_regression")(task=Task.REGRESSION)
    X, y = regression_data()
    model.fit(X, y, config=FitConfig(epochs=1, threads=2))
    assert torch.get_num_threads() == before


def test_fit_on_a_rebuilt_model_continues_from_its_weights():
    X, y = regression_data()
    a, _, _ = fit_linear({"solver": "sgd", "learning_rate": 0.05}, epochs=3)
    cls = type(a)
    b = cls.from_state(a.get_params(), a.state(), task=Task.REGRESSION)
    rec = Recorder()
    b.fit(X, y, config=FitConfig(epochs=1, seed=0), hook=rec)
    np.testing.assert_allclose(rec.params[0][:-1], a.state()["module.weight"].ravel())


# --- the default budget (no --epochs): optimizer steps, early stopping on, and a note when still improving ----------


def test_the_default_budget_counts_steps_not_epochs():
    from modelyard.models.loop import DEFAULT_STEPS, MAX_EPOCHS, MIN_EPOCHS, budget_epochs

    assert budget_epochs(None, 224, 256) == MAX_EPOCHS  # one step per epoch: many epochs
    assert budget_epochs(None, 1_000_000, 256) == MIN_EPOCHS  # thousands of steps per epoch: the floor
    assert budget_epochs(None, 20_000, 100) == DEFAULT_STEPS // 200
    assert budget_epochs(7, 224, 256) == 7  # an explicit --epochs caps


def _small_table(n=344, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = np.argmax(X[:, :3] + rng.normal(size=(n, 3)), axis=1)
    return X, y


def test_on_a_small_table_the_default_trains_until_validation_stops_improving():
    X, y = _small_table()
    Xt, yt, Xv, yv = X[:224], y[:224], X[224:], y[224:]
    model = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=3, solver="adam")
    model.fit(Xt, yt, eval_set=(Xv, yv), config=FitConfig(seed=0))
    short = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=3, solver="adam")
    short.fit(Xt, yt, eval_set=(Xv, yv), config=FitConfig(epochs=20, seed=0))  # the old default: 20 steps
    assert len(model.history_) > 100 and model.history_[-1].epoch < 500  # many steps, then stopped early
    assert model.stop_reason_ == "early_stopping" and model.notes_ == []
    assert _log_loss(model, Xv, yv) < _log_loss(short, Xv, yv) - 0.1
    assert short.stop_reason_ == "epochs" and short.best_epoch_ == 20
    assert short.notes_ and short.notes_[0].startswith("still improving at the end of its 20 epochs (validation loss")
    assert "allow more with --epochs 40" in short.notes_[0]


def test_patience_zero_turns_early_stopping_off():
    X, y, Xv, yv = _flipped_validation()
    model = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=2, solver="adam", batch_size=64)
    model.fit(X, y, eval_set=(Xv, yv), config=FitConfig(epochs=14, patience=0, seed=0))
    assert len(model.history_) == 14 and model.stop_reason_ == "epochs"
    default = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=2, solver="adam", batch_size=64)
    default.fit(X, y, eval_set=(Xv, yv), config=FitConfig(epochs=14, seed=0))
    assert default.stop_reason_ == "early_stopping" and len(default.history_) == default.best_epoch_ + 10
