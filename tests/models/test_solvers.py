"""The exact solvers of the linear families: the objective's derivatives, scikit-learn's coefficients at the same
penalty, warm starts, budgets, sample weights, the choice of solver, and the input they refuse."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression as SkLinear
from sklearn.linear_model import LogisticRegression as SkLogistic
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from modelyard.errors import DataError, ModelError, ParamError, TrainingError
from modelyard.models import get_family, glm
from modelyard.models.solvers.design import design
from modelyard.models.solvers.losses import LOSSES
from modelyard.models.solvers.objective import LinearObjective
from modelyard.records.training import FitConfig
from modelyard.schema import Task

TIGHT = {"tol": 1e-10, "ftol": 0.0, "max_iter": 5000}


def features(n=1500, d=5, seed=0):
    """Columns on very different scales and offsets: standardization and the design's shift matter."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.geomspace(0.1, 30, d) + np.linspace(-5, 2000, d)
    return X.astype(np.float32)


def standardized(X):
    return StandardScaler().fit_transform(X.astype(np.float64))


def labels(X, k, seed=0):
    rng = np.random.default_rng(seed)
    scores = standardized(X) @ rng.normal(size=(X.shape[1], k))
    return np.argmax(scores + rng.gumbel(size=scores.shape), axis=1)


def coefficients(model, X=None):
    """(coef: (K, d), intercept: (K,)) on standardized features, in float64 from the stored float32 state.

    With ``X``, the intercept is moved to the standardization of ``X``'s float64 mean (the stored
    ``scaling.mean`` is float32, so a column with a large mean and a small spread shifts the intercept).
    """
    st = model.state()
    coef, intercept = st["module.weight"].astype(np.float64), st["module.bias"].astype(np.float64)
    if X is not None:
        shift = (X.astype(np.float64).mean(axis=0) - st["scaling.mean"].astype(np.float64)) / st["scaling.scale"]
        intercept = intercept + coef @ shift
    return coef, intercept


def rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


# --- the objective ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss, k", [("squared", 1), ("logistic", 1), ("multinomial", 3)])
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_and_hessian_match_finite_differences(loss, k, weighted):
    from scipy.optimize import check_grad

    rng = np.random.default_rng(1)
    X = features(300, 4)
    y = {"squared": rng.normal(size=300), "logistic": (rng.uniform(size=300) < 0.3) * 1.0,
         "multinomial": rng.integers(0, 3, size=300)}[loss]
    w = rng.uniform(0.2, 2.0, size=300) if weighted else None
    des = design(X, chunk_bytes=4096)  # several chunks
    obj = LinearObjective(des, y, w, LOSSES[loss](), k, des.moments.mean, des.moments.std, lam=0.2)
    theta = rng.normal(size=obj.size) * 0.5
    assert check_grad(lambda t: obj.value_grad(t)[0], lambda t: obj.value_grad(t)[1], theta) < 1e-5
    v = rng.normal(size=obj.size)
    eps = 1e-6
    fd = (obj.value_grad(theta + eps * v)[1] - obj.value_grad(theta - eps * v)[1]) / (2 * eps)
    np.testing.assert_allclose(obj.hessp(theta, v), fd, rtol=1e-5, atol=1e-6)
    if k == 1:
        np.testing.assert_allclose(obj.hessian(theta) @ v, obj.hessp(theta, v), rtol=1e-10, atol=1e-12)
    # the objective itself: the weighted mean loss on standardized features plus (λ/2)‖B‖², intercept unpenalized
    Xs = standardized(X)
    B, b = theta[: 4 * k].reshape(4, k), theta[4 * k :]
    Z = Xs @ B + b
    if loss == "squared":
        per_row = (Z[:, 0] - y) ** 2
    elif loss == "logistic":
        per_row = np.logaddexp(0, Z[:, 0]) - y * Z[:, 0]
    else:
        per_row = np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(300), y]
    ww = np.ones(300) if w is None else w
    assert obj.value_grad(theta)[0] == pytest.approx(ww @ per_row / ww.sum() + 0.1 * (B**2).sum(), rel=1e-12)


# --- scikit-learn at the same penalty -----------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("solver", ["lbfgs", "newton"])
def test_logistic_coefficients_match_scikit_learn_at_the_same_C(k, solver):
    X = features()
    y = labels(X, k)
    ref = SkLogistic(C=0.3, tol=1e-12, max_iter=20_000).fit(standardized(X), y)
    model = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=k, solver=solver, C=0.3, **TIGHT)
    model.fit(X, y)
    coef, intercept = coefficients(model, X)
    assert model.stop_reason_ == "converged"
    assert rel(coef, ref.coef_) < 1e-4 and rel(intercept, ref.intercept_) < 1e-4
    # weight_decay is the same strength spelled on the mean loss: λ = 1 / (C · n)
    same = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=k, solver=solver,
                                             weight_decay=1 / (0.3 * len(X)), **TIGHT).fit(X, y)
    assert rel(coefficients(same)[0], coef) < 1e-6


@pytest.mark.parametrize("solver", ["exact", "lbfgs", "newton"])
def test_linear_coefficients_match_ridge_and_ols(solver):
    X = features()
    rng = np.random.default_rng(3)
    y = standardized(X) @ rng.normal(size=X.shape[1]) * 40 + 7 + rng.normal(size=len(X))
    for alpha, ref in ((25.0, Ridge(alpha=25.0)), (0.0, SkLinear())):
        ref.fit(standardized(X), y)
        model = get_family("linear_regression")(task=Task.REGRESSION, solver=solver, alpha=alpha, **TIGHT).fit(X, y)
        coef, intercept = coefficients(model, X)
        # the model works on a standardized target: coefficients in y's units are coef * y_scale
        assert rel(coef[0] * model.y_scale_, ref.coef_) < 1e-4
        assert intercept[0] * model.y_scale_ + model.y_mean_ == pytest.approx(ref.intercept_, rel=1e-4)
        np.testing.assert_allclose(model.predict(X), ref.predict(standardized(X)), rtol=1e-4)


def test_sample_weights_match_scikit_learn_and_integer_weights_equal_repeated_rows():
    X = features(800, 4)
    y = labels(X, 2, seed=5)
    w = np.random.default_rng(5).integers(1, 4, size=len(X)).astype(np.float64)
    ref = SkLogistic(C=2.0, tol=1e-12, max_iter=20_000).fit(standardized(X), y, sample_weight=w)
    model = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=2, C=2.0, **TIGHT)
    model.fit(X, y, sample_weight=w)
    assert rel(coefficients(model)[0], ref.coef_) < 1e-4
    # a weight of 3 is the row three times (same standardization: it is fitted on the unweighted rows)
    reps = np.repeat(np.arange(len(X)), w.astype(int))
    rows = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=2, weight_decay=0.01, **TIGHT)
    rows.fit(X, y, sample_weight=w)
    rep = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=2, weight_decay=0.01, **TIGHT)
    rep.mean_, rep.scale_ = rows.mean_, rows.scale_
    rep.module_ = rep.build(X.shape[1], 1)
    with __import__("torch").no_grad():
        rep.module_.weight.zero_()
        rep.module_.bias.zero_()
    rep.fit(X[reps], y[reps])
    assert rel(coefficients(rep)[0], coefficients(rows)[0]) < 1e-5
    yr = X.astype(np.float64) @ np.arange(1.0, 5.0)
    lin = get_family("linear_regression")(task=Task.REGRESSION, alpha=3.0).fit(X, yr, sample_weight=w)
    ridge = Ridge(alpha=3.0).fit(standardized(X), yr, sample_weight=w)
    np.testing.assert_allclose(lin.predict(X), ridge.predict(standardized(X)), rtol=1e-5)


# --- budgets, warm starts, callbacks ---------------------------------------------------------------------------------


def test_the_iteration_cap_and_epochs_say_so_and_name_the_flag():
    X = features(2000, 5)
    y = labels(X, 3)
    capped = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=3, max_iter=3, tol=1e-12)
    capped.fit(X, y)
    assert capped.stop_reason_ == "max_iter" and len(capped.history_) == 3
    assert "max_iter=3" in capped.notes_[0] and "--set max_iter=6" in capped.notes_[0]
    by_epochs = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=3, tol=1e-12)
    by_epochs.fit(X, y, config=FitConfig(epochs=2))
    assert by_epochs.stop_reason_ == "max_iter" and [h.epoch for h in by_epochs.history_] == [1, 2]
    assert "--epochs cap of 2" in by_epochs.notes_[0]
    done = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=3).fit(X, y)
    assert done.stop_reason_ == "converged" and done.notes_ == []
    assert done.get_params()["solver"] == "lbfgs"  # auto, recorded as the solver that ran


def test_max_time_stops_an_exact_solver_at_its_best_iterate_with_a_note():
    X = features(3000, 6)
    y = labels(X, 3)
    model = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=3, tol=1e-12)
    model.fit(X, y, config=FitConfig(max_time=1e-9))
    assert model.stop_reason_ == "max_time" and len(model.history_) == 1
    assert model.notes_[0].startswith("--max-time stopped lbfgs after 1 iterations")
    p = model.predict_proba(X)
    loss = -np.mean(np.log(p[np.arange(len(y)), y]))
    assert loss == pytest.approx(model.history_[-1].train_loss, rel=1e-5)  # the model is the logged iterate
    assert loss < np.log(3)  # better than the start


def test_warm_start_continues_from_the_parents_coefficients():
    X = features(2000, 5)
    y = labels(X, 2)
    cls = get_family("logistic_regression")
    parent = cls(task=Task.CLASSIFICATION, n_classes=2, max_iter=4, tol=1e-12).fit(X, y)
    child = cls.from_state(parent.get_params(), parent.state(), task=Task.CLASSIFICATION, n_classes=2)
    first = []
    child.hparams["max_iter"] = 200
    child.fit(X, y, callbacks=[first.append])
    fresh = cls(task=Task.CLASSIFICATION, n_classes=2, max_iter=1, tol=1e-12).fit(X, y)
    assert first[0].train_loss < parent.history_[-1].train_loss  # iteration 1 of the child improves on the parent
    assert first[0].train_loss < fresh.history_[0].train_loss  # and starts far ahead of a fresh start
    np.testing.assert_array_equal(child.mean_, parent.mean_)  # the parent's standardization is kept
    assert child.stop_reason_ == "converged"


@pytest.mark.parametrize("family, k", [("logistic_regression", 2), ("logistic_regression", 4), ("linear_regression", 1)])
def test_a_rebuilt_linear_model_predicts_with_numpy_as_its_torch_layer_does(family, k):
    import torch

    X = features(800, 5)
    task = Task.REGRESSION if family == "linear_regression" else Task.CLASSIFICATION
    y = X[:, 0] * 0.3 - X[:, 2] if task is Task.REGRESSION else labels(X, k)
    cls = get_family(family)
    model = cls(task=task, n_classes=0 if task is Task.REGRESSION else k).fit(X, y)
    rebuilt = cls.from_state(model.get_params(), model.state(), task=task, n_classes=model.n_classes)
    assert rebuilt._module is None  # numpy only until something asks for the layer
    np.testing.assert_array_equal(rebuilt.predict(X), model.predict(X))
    with torch.no_grad():
        layer = rebuilt.module_(torch.from_numpy(rebuilt._scale(X))).numpy()  # built from the stored coefficients
    np.testing.assert_allclose(rebuilt._raw(X), layer, rtol=1e-5, atol=1e-5)
    for key in ("module.weight", "module.bias"):
        np.testing.assert_array_equal(rebuilt.state()[key], model.state()[key])


def test_stored_weights_of_the_wrong_shape_are_named():
    X = features(300, 4)
    cls = get_family("logistic_regression")
    state = cls(task=Task.CLASSIFICATION, n_classes=2).fit(X, labels(X, 2)).state()
    state["module.weight"] = state["module.weight"][:, :3]
    with pytest.raises(ModelError, match=r"do not fit logistic_regression .*expected module.weight \(1, 4\)"):
        cls.from_state({}, state, task=Task.CLASSIFICATION, n_classes=2)


def test_callbacks_see_each_iteration_and_can_stop_it():
    X = features(2000, 5)
    y = labels(X, 3)
    seen = []

    def stop_at_two(log):
        seen.append((log.epoch, log.extra["grad_max"]))
        return log.epoch == 2

    model = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=3, tol=1e-12)
    model.fit(X, y, eval_set=(X[:200], y[:200]), callbacks=[stop_at_two])
    assert [e for e, _ in seen] == [1, 2] and model.stop_reason_ == "callback"
    assert model.history_[-1].val_loss is not None and model.history_[0].val_loss is None  # measured at the end


def test_the_closed_form_handles_constant_columns_and_one_hot_blocks_by_default():
    rng = np.random.default_rng(4)
    n = 600
    num = rng.normal(size=(n, 2))
    codes = rng.integers(0, 3, size=n)
    onehot = np.eye(3)[codes]  # sums to 1: collinear with the intercept
    X = np.column_stack([num, onehot, np.full(n, 7.0)]).astype(np.float32)  # and a constant column
    y = num @ [2.0, -1.0] + np.array([0.5, -0.5, 1.5])[codes] + 0.01 * rng.normal(size=n)
    model = get_family("linear_regression")(task=Task.REGRESSION).fit(X, y)  # default: Ridge's alpha = 1
    assert model.stop_reason_ == "solved" and model.solver_info_["constant_columns"] == [5]
    assert coefficients(model)[0][0, 5] == 0.0
    assert np.corrcoef(model.predict(X), y)[0, 1] > 0.999


# --- choosing a solver ------------------------------------------------------------------------------------------------


def test_auto_picks_the_exact_solver_when_it_fits_in_memory_and_adam_otherwise(monkeypatch):
    X = features(400, 3)
    y = labels(X, 2)
    yr = X.astype(np.float64) @ [1.0, 2.0, 3.0]
    assert get_family("linear_regression")(task=Task.REGRESSION).fit(X, yr).get_params()["solver"] == "exact"
    assert get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=2).fit(X, y).solver_ == "lbfgs"
    monkeypatch.setattr(glm, "available_memory", lambda: 1000)
    small = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=2)
    small.fit(X, y, config=FitConfig(epochs=2))
    assert small.get_params()["solver"] == "adam" and small.stop_reason_ == "epochs"


def test_an_old_version_saved_with_optimizer_loads_as_that_solver():
    spec = get_family("logistic_regression").params
    assert spec.validate({"optimizer": "sgd"}, "logistic_regression")["solver"] == "sgd"


# --- bad input ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family, params, message", [
    ("logistic_regression", {"solver": "newton-cg"}, "solver must be one of auto, lbfgs, newton, sgd, adam"),
    ("logistic_regression", {"solver": "exact"}, "solver must be one of auto, lbfgs, newton, sgd, adam, got 'exact'"),
    ("linear_regression", {"weight_decay": -0.1}, "weight_decay must be a float between 0 and 100"),
    ("logistic_regression", {"C": 0.0}, "C must be a float between 1e-12"),
    ("linear_regression", {"alpha": -1.0}, "alpha must be a float between 0"),
    ("logistic_regression", {"C": 0.5, "weight_decay": 0.01}, "same L2 strength in two spellings; set only one"),
    ("linear_regression", {"max_iter": 0}, "max_iter must be an int between 1"),
])
def test_bad_solver_settings_are_one_sentence(family, params, message):
    task = Task.REGRESSION if family == "linear_regression" else Task.CLASSIFICATION
    with pytest.raises(ParamError, match=message.replace("(", r"\(")):
        get_family(family)(task=task, n_classes=2, **params)


def test_a_singular_gram_matrix_without_a_penalty_is_refused_naming_alpha():
    X = features(300, 3)
    X = np.column_stack([X, 2 * X[:, 1]])  # column 3 is twice column 1
    y = X.astype(np.float64) @ [1.0, 1.0, 1.0, 0.0]
    with pytest.raises(DataError, match=r"singular \(rank 3 of 4; encoded columns 1, 3 are linearly dependent\); "
                                        r"set a penalty, e\.g\. --set alpha=1e-3"):
        get_family("linear_regression")(task=Task.REGRESSION, alpha=0.0).fit(X, y)
    ok = get_family("linear_regression")(task=Task.REGRESSION, alpha=1e-3).fit(X, y)
    assert np.corrcoef(ok.predict(X), y)[0, 1] > 0.9999


def test_bad_sample_weights_are_refused():
    X = features(50, 2)
    y = labels(X, 2)
    model = get_family("logistic_regression")(task=Task.CLASSIFICATION, n_classes=2)
    with pytest.raises(DataError, match="sample_weight has 3 values for 50 rows"):
        model.fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(DataError, match="sample_weight must be finite and >= 0"):
        model.fit(X, y, sample_weight=-np.ones(50))
    with pytest.raises(TrainingError, match="no training rows"):
        model.fit(X, y, sample_weight=np.zeros(50))


def test_the_per_row_losses_stay_exact_at_extreme_logits():
    from modelyard.models.solvers.losses import Logistic, Multinomial

    z = np.array([-1000.0, -600, -40, -5, 0, 5, 40, 600, 1000])
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1, 1.0])
    loss, R = Logistic().value_grad(z[None, :].copy(), y, None)
    assert loss == pytest.approx(float(np.sum(np.logaddexp(0, z) - y * z)), rel=1e-15)
    sigma = np.exp(-np.logaddexp(0, -z))
    np.testing.assert_allclose(R[0], sigma - y, rtol=0, atol=1e-15)
    Z = np.array([[1000.0, -1000.0, 3.0], [999.0, 0.0, 3.0]])  # (K, c): two classes, three rows
    loss, _ = Multinomial().value_grad(Z.copy(), np.array([0, 1, 1]), None)
    expected = np.logaddexp(Z[0], Z[1]) - Z[[0, 1, 1], [0, 1, 2]]
    assert loss == pytest.approx(float(expected.sum()), rel=1e-14)


@pytest.mark.parametrize("loss, k", [("logistic", 1), ("multinomial", 3)])
def test_a_streamed_design_gives_the_numbers_of_a_kept_one(loss, k):
    rng = np.random.default_rng(2)
    X = features(700, 4)
    y = (rng.uniform(size=700) < 0.4) * 1.0 if k == 1 else rng.integers(0, 3, size=700)
    kept = design(X, chunk_bytes=4096)
    streamed = design(X, chunk_bytes=4096, keep_bytes=0)  # large data: no float64 copy, chunks converted per pass
    assert kept.D is not None and streamed.D is None and streamed.nbytes == X.nbytes
    theta = rng.normal(size=(4 + 1) * k)
    a, b = (LinearObjective(des, y, None, LOSSES[loss](), k, des.moments.mean, des.moments.std, 0.1) for des in (kept, streamed))
    assert a.value_grad(theta)[0] == b.value_grad(theta)[0]
    np.testing.assert_array_equal(a.value_grad(theta)[1], b.value_grad(theta)[1])
    np.testing.assert_array_equal(a.hessp(theta, theta), b.hessp(theta, theta))
