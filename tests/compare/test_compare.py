"""compare: real evaluation on the same rows, verdicts, schema checks, cost, parameter distance, records, report."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest

from modelyard.compare import CompareOptions, compare, write_report
from modelyard.compare.stats import holm
from modelyard.data import from_frame, load_dataset
from modelyard.data.encode import as_matrix
from modelyard.errors import NotFoundError, ParamError, SchemaMismatchError
from modelyard.records.comparisons import Comparison
from modelyard.train import train
from modelyard.train.metrics import evaluate

FAST = {"resamples": 1000, "latency_budget_s": 0.02}


def _frame(n: int, seed: int) -> pd.DataFrame:
    """Binary target driven by an XOR of two features (a linear model cannot learn it; a forest can)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], n)
    flip = rng.random(n) < 0.05
    y = ((x1 > 0) ^ (x2 > 0)) ^ flip
    return pd.DataFrame({"x1": x1, "x2": x2, "color": color, "label": np.where(y, "pos", "neg")})


@pytest.fixture(scope="module")
def xor():
    """Training data, held-out data and three models: weak linear, strong forest, a second forest."""
    train_ds = from_frame(_frame(800, 0), "label")
    holdout = _frame(400, 1)
    lr = train(train_ds, model="logistic_regression", epochs=5, test_size=0.1, val_size=0.1).model
    rf = train(train_ds, model="random_forest", params={"n_estimators": 30, "n_jobs": 1}, test_size=0.1,
               val_size=0.1).model
    rf2 = train(train_ds, model="random_forest", params={"n_estimators": 30, "n_jobs": 1}, seed=1, test_size=0.1,
                val_size=0.1).model
    return train_ds, holdout, lr, rf, rf2


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(5)
    n = 600
    X = rng.uniform(-2, 2, size=(n, 3))
    y = np.sin(2 * X[:, 0]) * 3 + X[:, 1] ** 2 + 0.1 * rng.normal(size=n)
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(target=y)
    ds = from_frame(frame.iloc[:400], "target", task="regression")
    hold = from_frame(frame.iloc[400:].reset_index(drop=True), "target", task="regression")
    lin = train(ds, model="linear_regression", epochs=30, test_size=0.1).model
    rf = train(ds, model="random_forest", params={"n_estimators": 40, "n_jobs": 1}, test_size=0.1).model
    return hold, lin, rf


def test_two_identical_versions_are_no_significant_difference(xor):
    _, holdout, _, rf, _ = xor
    ds = from_frame(holdout, "label")
    c = compare([("v1", rf, None), ("v2", rf, None)], ds, **FAST)
    (pair,) = c.pairs
    assert pair.verdict == "no significant difference" and pair.winner is None
    assert pair.p_value == 1.0 and pair.mcnemar.a_only == pair.mcnemar.b_only == 0
    for d in pair.metrics + pair.per_class:
        assert d.delta == 0 and d.ci_low == 0 and d.ci_high == 0 and not d.significant and d.better is None
    (dist,) = c.distances
    assert dist.comparable and dist.l2 == 0 and dist.cosine == pytest.approx(1.0)


def test_a_clearly_better_model_is_detected_both_ways(xor):
    _, holdout, lr, rf, _ = xor
    ds = from_frame(holdout, "label")
    c = compare([("linear", lr, None), ("forest", rf, None)], ds, **FAST)
    (pair,) = c.pairs
    assert pair.verdict == "B better" and pair.winner == "forest" and pair.test == "mcnemar_exact"
    assert pair.p_value < 1e-6 and pair.mcnemar.b_only > pair.mcnemar.a_only
    acc = pair.delta("accuracy")
    assert acc.significant and acc.better == "B" and acc.ci_low > 0.1 and acc.delta > 0.2
    assert c.best.label == "forest" and c.entry("linear").rank == 2
    flipped = compare([("forest", rf, None), ("linear", lr, None)], ds, **FAST)
    assert flipped.pairs[0].verdict == "A better" and flipped.pairs[0].winner == "forest"


def test_metrics_are_evaluated_now_not_taken_from_records(xor):
    """Entry metrics equal evaluating the predictor on the held-out rows encoded its own way."""
    _, holdout, lr, rf, _ = xor
    ds = from_frame(holdout, "label")
    c = compare([("linear", lr, None), ("forest", rf, None)], ds, **FAST)
    for label, model in (("linear", lr), ("forest", rf)):
        ref = evaluate(model, as_matrix(holdout.drop(columns="label"), model.schema),
                       np.searchsorted(np.asarray(model.schema.classes), holdout["label"].to_numpy()))
        got = c.entry(label).metrics
        for key in ("accuracy", "f1", "precision", "recall", "log_loss", "roc_auc"):
            assert got[key] == pytest.approx(ref[key], rel=1e-12), key
        assert got["per_class"] == ref["per_class"]


def test_missing_categories_reach_each_version_as_its_own_predictions_see_them():
    """A missing category is imputed, routed natively or read as unseen by the version, as in predict; not unseen."""
    def frame(n, seed):
        f = _frame(n, seed)
        f.loc[np.random.default_rng(seed + 10).random(n) < 0.2, "color"] = None
        return f

    train_ds, holdout = from_frame(frame(800, 0), "label"), frame(300, 1)
    gb = train(train_ds, model="gradient_boosting", params={"n_estimators": 30}, test_size=0.1, val_size=0.1).model
    lr = train(train_ds, model="logistic_regression", impute="most_frequent", test_size=0.1, val_size=0.1).model
    c = compare([("boosted", gb, None), ("imputed", lr, None)], from_frame(holdout, "label"), **FAST)
    for label, model in (("boosted", gb), ("imputed", lr)):
        ref = evaluate(model, model.coded(holdout.drop(columns="label")),
                       np.searchsorted(np.asarray(model.schema.classes), holdout["label"].to_numpy()))
        for key in ("accuracy", "log_loss"):
            assert c.entry(label).metrics[key] == pytest.approx(ref[key], rel=1e-12), (label, key)


def test_data_is_recoded_per_version_reordered_columns_subset_of_categories_and_classes(xor):
    """Column order, category codes and class codes of the comparison file need not match training."""
    _, holdout, lr, rf, _ = xor
    base = compare([("linear", lr, None), ("forest", rf, None)], from_frame(holdout, "label"), **FAST)
    shuffled = holdout[["color", "label", "x2", "x1"]]
    shuffled = shuffled[shuffled.color != "red"].reset_index(drop=True)  # categories blue, green only
    c = compare([("linear", lr, None), ("forest", rf, None)], from_frame(shuffled, "label"), **FAST)
    keep = (holdout.color != "red").to_numpy()
    ref = compare([("linear", lr, None), ("forest", rf, None)],
                  from_frame(holdout[keep].reset_index(drop=True), "label"), **FAST)
    assert c.entry("forest").metrics == ref.entry("forest").metrics
    assert base.n_rows == 400 and c.n_rows == int(keep.sum())
    full = from_frame(holdout, "label")
    only_pos = full.take(np.flatnonzero(full.labels(full.y) == "pos"))  # classes (neg, pos), rows of pos only
    c1 = compare([("linear", lr, None), ("forest", rf, None)], only_pos, **FAST)
    assert c1.classes == ("neg", "pos") and c1.entry("forest").metrics["per_class"]["neg"]["support"] == 0
    assert "roc_auc" not in c1.entry("forest").metrics  # undefined with one class present


def test_schema_mismatch_names_every_problem_in_one_error(xor):
    _, holdout, lr, rf, _ = xor
    bad = holdout.drop(columns="x2").assign(extra=1.0)
    bad.loc[0, "color"] = "purple"
    with pytest.raises(SchemaMismatchError) as e:
        compare([("linear", lr, None), ("forest", rf, None)], from_frame(bad, "label"), **FAST)
    msg = str(e.value)
    assert "'x2'" in msg and "linear needs column" in msg and "forest needs column" in msg
    assert "'extra'" in msg and "'purple'" in msg and "fix the data" in msg
    assert msg.count("\n") == 0


def test_schema_mismatch_unseen_class_kind_and_task(xor, regression):
    _, holdout, lr, rf, _ = xor
    new_class = holdout.copy()
    new_class.loc[:5, "label"] = "maybe"
    with pytest.raises(SchemaMismatchError, match=r"class\(es\) 'maybe' the versions never saw"):
        compare([("linear", lr, None), ("forest", rf, None)], from_frame(new_class, "label"), **FAST)
    text_col = holdout.assign(x1=np.where(holdout.x1 > 0, "high", "low"))
    with pytest.raises(SchemaMismatchError, match="column 'x1' holds text in the data but was numeric"):
        compare([("linear", lr, None), ("forest", rf, None)], from_frame(text_col, "label"), **FAST)
    _, lin, _ = regression
    with pytest.raises(SchemaMismatchError, match="cannot compare classifiers with regressors"):
        compare([("linear", lr, None), ("reg", lin, None)], from_frame(holdout, "label"), **FAST)
    renamed = holdout.rename(columns={"label": "outcome"})
    with pytest.raises(SchemaMismatchError, match="trained to predict 'label' but the target given is 'outcome'"):
        compare([("linear", lr, None), ("forest", rf, None)], from_frame(renamed, "outcome"), **FAST)


def test_regression_better_model_and_identical(regression):
    hold, lin, rf = regression
    c = compare([("lin", lin, None), ("rf", rf, None)], hold, **FAST)
    (pair,) = c.pairs
    assert pair.test == "bootstrap:rmse" and pair.verdict == "B better" and pair.winner == "rf"
    rmse = pair.delta("rmse")
    assert rmse.delta < 0 and rmse.ci_high < 0 and rmse.better == "B" and not rmse.higher_is_better
    assert {d.metric for d in pair.metrics} == {"rmse", "mae", "r2"} and pair.mcnemar is None
    same = compare([("a", lin, None), ("b", lin, None)], hold, **FAST)
    assert same.pairs[0].verdict == "no significant difference" and same.pairs[0].p_value == 1.0
    d = as_matrix(pd.DataFrame(hold.X, columns=hold.feature_names), rf.schema)
    assert c.entry("rf").metrics["rmse"] == pytest.approx(evaluate(rf, d, hold.y)["rmse"], rel=1e-12)
    diag = c.entry("rf").diagnostics
    assert len(diag.y_true) == len(hold) and diag.confusion is None


def test_leaderboard_pairs_against_the_best_with_holm(xor):
    _, holdout, lr, rf, rf2 = xor
    ds = from_frame(holdout, "label")
    c = compare([("linear", lr, None), ("forest", rf, None), ("forest2", rf2, None)], ds, **FAST)
    assert c.correction == "holm" and len(c.pairs) == 2
    best = c.best.label
    assert best in ("forest", "forest2") and all(p.a == best for p in c.pairs)
    assert [e.rank for e in c.leaderboard] == [1, 2, 3]
    f1 = [e.metrics["f1"] for e in c.leaderboard]
    assert f1 == sorted(f1, reverse=True)
    np.testing.assert_allclose([p.p_adjusted for p in c.pairs], holm([p.p_value for p in c.pairs]))
    vs_linear = next(p for p in c.pairs if p.b == "linear")
    assert vs_linear.verdict == "A better" and vs_linear.winner == best
    assert next(p for p in c.pairs if p.b != "linear").verdict == "no significant difference"


def test_ranking_metric_and_test_options(xor, regression):
    _, holdout, lr, rf, _ = xor
    ds = from_frame(holdout, "label")
    c = compare([("linear", lr, None), ("forest", rf, None)], ds, metric="log_loss", test="bootstrap", **FAST)
    assert c.metric == "log_loss" and not c.higher_is_better and c.pairs[0].test == "bootstrap:log_loss"
    assert c.best.label == "forest"
    hold, lin, reg_rf = regression
    with pytest.raises(ParamError, match="McNemar's test needs class predictions"):
        compare([("a", lin, None), ("b", reg_rf, None)], hold, test="mcnemar", **FAST)
    with pytest.raises(ParamError, match="metric 'rmse' does not apply to classification"):
        compare([("linear", lr, None), ("forest", rf, None)], ds, metric="rmse", **FAST)


@pytest.mark.parametrize("kwargs, message", [
    ({"alpha": 0}, r"alpha must be a number in \(0, 1\)"),
    ({"alpha": 1.5}, "alpha"),
    ({"resamples": 100}, "resamples must be an int >= 1000"),
    ({"seed": -1}, "seed must be an int >= 0"),
    ({"metric": "auc"}, "unknown ranking metric 'auc'"),
    ({"test": "t"}, "test must be one of"),
    ({"batch_size": 0}, "batch_size"),
    ({"latency_budget_s": 0}, "latency_budget_s"),
])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ParamError, match=message):
        CompareOptions(**kwargs)


def test_bad_candidate_lists_are_refused(xor):
    _, holdout, lr, _, _ = xor
    ds = from_frame(holdout, "label")
    with pytest.raises(ParamError, match="at least two versions"):
        compare([("only", lr, None)], ds, **FAST)
    with pytest.raises(ParamError, match="'a' is given more than once"):
        compare([("a", lr, None), ("a", lr, None)], ds, **FAST)
    with pytest.raises(ParamError, match="unknown compare option"):
        compare([("a", lr, None), ("b", lr, None)], ds, speed=3)


def test_cost_latency_and_sizes(xor):
    _, holdout, lr, rf, _ = xor
    ds = from_frame(holdout, "label")
    c = compare([("linear", lr, None), ("forest", rf, None)], ds, batch_size=128, **FAST)
    for e, model in ((c.entry("linear"), lr), (c.entry("forest"), rf)):
        lat = e.cost.latency
        assert lat.batch_size == 128 and lat.repeats >= 5
        assert 0 < lat.batch_p50_s <= lat.batch_p95_s and 0 < lat.row_p50_s <= lat.row_p95_s
        assert lat.rows_per_s == pytest.approx(128 / lat.batch_p50_s)
        assert e.cost.n_parameters == model.n_parameters() and e.cost.state_bytes > 0
        assert e.cost.train_time_s is None and e.cost.size_bytes is None  # no registry record
    off = compare([("linear", lr, None), ("forest", rf, None)], ds, resamples=1000, latency=False)
    assert all(e.cost.latency is None for e in off.entries)


def test_parameter_distance_of_a_fine_tune_and_its_parent():
    ds = load_dataset("sklearn:breast_cancer")
    parent = train(ds, model="mlp", params={"hidden_sizes": "16"}, epochs=3).model
    state_before = {k: v.copy() for k, v in parent.state().items()}
    child = train(ds, model="mlp", epochs=3, init=_copy(parent), seed=1).model
    c = compare([("parent", parent, None), ("child", child, None)], ds, **FAST)
    (d,) = c.distances
    assert d.comparable and d.reason is None
    sa, sb = state_before, child.state()
    floats = sorted(k for k in sa if sa[k].dtype.kind == "f")
    assert [x.name for x in d.arrays] == floats
    for x in d.arrays:
        a, b = sa[x.name].astype(np.float64).ravel(), sb[x.name].astype(np.float64).ravel()
        assert x.shape == sa[x.name].shape
        assert x.l2 == pytest.approx(np.linalg.norm(b - a))
        if np.linalg.norm(a) > 0 and np.linalg.norm(b) > 0:
            assert x.cosine == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    weights = [x for x in d.arrays if not x.name.startswith("scaling.")]
    assert weights and len(weights) < len(d.arrays)  # the scaling statistics get rows of their own
    assert d.l2 == pytest.approx(np.sqrt(sum(x.l2**2 for x in weights)))
    assert d.l2 > 0 and 0 < d.cosine < 1


def test_overall_distance_and_parameter_count_leave_out_the_scaling_statistics():
    # breast_cancer's feature means reach the thousands: counted as weights they made a retrained
    # logistic regression look identical to its parent (relative L2 5e-4, cosine 1.000)
    ds = load_dataset("sklearn:breast_cancer")
    parent = train(ds, model="logistic_regression", epochs=5).model
    child = train(ds, model="logistic_regression", epochs=5, init=_copy(parent), seed=1,
                  params={"learning_rate": 0.003}).model
    (d,) = compare([("parent", parent, None), ("child", child, None)], ds, **FAST).distances
    sa, sb = parent.state(), child.state()
    a = np.concatenate([sa[k].astype(np.float64).ravel() for k in ("module.weight", "module.bias")])
    b = np.concatenate([sb[k].astype(np.float64).ravel() for k in ("module.weight", "module.bias")])
    assert d.l2 == pytest.approx(np.linalg.norm(b - a))
    assert d.relative_l2 == pytest.approx(np.linalg.norm(b - a) / np.linalg.norm(a))
    assert d.relative_l2 > 0.01
    assert {x.name for x in d.arrays} >= {"scaling.mean", "scaling.scale"}
    assert parent.n_parameters() == ds.X.shape[1] + 1  # the weights and the bias, not the 2 x 30 + 2 statistics


def _copy(predictor):
    from modelyard.models.predictor import Predictor

    return Predictor.from_parts(predictor.config(), {k: v.copy() for k, v in predictor.state().items()})


def test_parameter_distance_says_why_not(xor):
    _, holdout, lr, rf, rf2 = xor
    ds = from_frame(holdout, "label")
    c = compare([("linear", lr, None), ("forest", rf, None), ("forest2", rf2, None)], ds, **FAST)
    reasons = {(d.a, d.b): d.reason for d in c.distances if not d.comparable}
    assert any("different families" in r for r in reasons.values())
    forests = [d for d in c.distances if {d.a, d.b} == {"forest", "forest2"}]
    assert forests and not forests[0].comparable
    assert "structure differs" in forests[0].reason or "shape" in forests[0].reason


def test_record_round_trips_through_json(xor, regression):
    _, holdout, lr, rf, rf2 = xor
    c = compare([("linear", lr, None), ("forest", rf, None), ("forest2", rf2, None)], from_frame(holdout, "label"),
                **FAST)
    hold, lin, reg_rf = regression
    r = compare([("lin", lin, None), ("rf", reg_rf, None)], hold, **FAST)
    for rec in (c, r):
        text = json.dumps(rec.to_dict(), allow_nan=False)
        back = Comparison.from_dict(json.loads(text))
        assert back == rec and back.to_dict() == rec.to_dict()
    d = c.to_dict()
    assert d["best"] == c.best.label and d["task"] == "classification"
    assert set(d["pairs"][0]) >= {"a", "b", "verdict", "p_value", "p_adjusted", "metrics", "mcnemar", "per_class"}


def test_same_seed_same_result_other_seed_other_intervals(xor):
    _, holdout, lr, rf, _ = xor
    ds = from_frame(holdout, "label")
    runs = [compare([("l", lr, None), ("f", rf, None)], ds, seed=s, resamples=1000, latency=False) for s in (3, 3, 4)]
    assert runs[0].pairs == runs[1].pairs
    assert runs[0].pairs[0].delta("f1").ci_low != runs[2].pairs[0].delta("f1").ci_low


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)]


def test_report_is_standalone_with_embedded_plots(xor, regression, tmp_path):
    _, holdout, lr, rf, _ = xor
    c = compare([("linear", lr, None), ("forest", rf, None)], from_frame(holdout, "label"), **FAST)
    path = write_report(c, tmp_path / "cmp.html")
    page = path.read_text()
    images = _images(page)
    assert len(images) == 2 and all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    assert "Confusion matrices" in page and "ROC and precision-recall" in page and "McNemar" in page
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")  # nothing fetched
    hold, lin, reg_rf = regression
    r = compare([("lin", lin, None), ("rf", reg_rf, None)], hold, **FAST)
    page = write_report(r, tmp_path / "reg.html").read_text()
    assert len(_images(page)) == 2 and "Predicted against actual" in page and "Residuals" in page
    assert not list(tmp_path.glob(".*.tmp"))  # the temp file was renamed
    with pytest.raises(Exception, match="is a folder"):
        write_report(r, tmp_path)


# --- through the registry -------------------------------------------------------------------

@pytest.fixture
def yard(tmp_path):
    from modelyard.yard import Yard

    with Yard(tmp_path / "store") as y:
        yield y


def test_registry_compare_rebuilds_versions_from_artifacts(yard, xor):
    train_ds, holdout, _, _, _ = xor
    reg = yard.registry
    weak = train(train_ds, model="logistic_regression", epochs=5)
    strong = train(train_ds, model="random_forest", params={"n_estimators": 30, "n_jobs": 1})
    v1, v2 = reg.register(weak, "xor"), reg.register(strong, "xor")
    reg.set_alias("xor", "production", "xor/2")
    c = reg.compare(["xor/1", "xor@production"], from_frame(holdout, "label"), **FAST)
    assert c.pairs[0].winner == "xor@production"
    e1, e2 = c.entry("xor/1"), c.entry("xor@production")
    assert (e1.version_id, e2.version_id) == (v1.id, v2.id) and (e1.ref, e2.ref) == ("xor/1", "xor/2")
    assert e1.cost.size_bytes == v1.artifact_size and e2.cost.train_time_s == pytest.approx(
        strong.metrics["train_time_s"])
    assert e1.params == v1.params and e1.family == "logistic_regression"
    loaded = reg.load_model("xor/2")  # evaluated now on these rows, not read from the record
    y = np.searchsorted(np.asarray(loaded.schema.classes), holdout["label"].to_numpy())
    assert e2.metrics == evaluate(loaded, as_matrix(holdout.drop(columns="label"), loaded.schema), y)
    with pytest.raises(NotFoundError):
        reg.compare(["xor/1", "xor/9"], from_frame(holdout, "label"), **FAST)
