"""Export: every built-in family through onnxruntime equals modelyard's predictions; safetensors round-trips."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import modelyard as my
from modelyard.errors import ModelError
from modelyard.serve.export import EXPORTERS, Head, export_model, onnx_model

ort = pytest.importorskip("onnxruntime")


def table(n=240, seed=0):
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({"age": rng.integers(18, 80, n).astype(float), "plan": rng.choice(["basic", "plus", "pro"], n),
                      "zone": rng.choice(["1", "2", "x"], n), "monthly": rng.normal(50, 15, n)})
    f["churned"] = np.where((f.plan == "basic") | (f.age < 25), "yes", "no")
    f["tier"] = rng.choice(["a", "b", "c"], n)
    f["spend"] = f.age * 2 + (f.plan == "pro") * 10 + rng.normal(0, 1, n)
    f["code"] = np.where(f.monthly > 50, 7, 3)  # integer class labels
    return f


TARGETS = {"churned": "binary", "tier": "multiclass", "spend": "regression", "code": "integer labels"}
FEATURES = ["age", "plan", "zone", "monthly"]


def cases():
    for fam, cls in my.FAMILIES.items():
        for target in TARGETS:
            task = my.Task.REGRESSION if target == "spend" else my.Task.CLASSIFICATION
            if task in getattr(cls, "tasks", (task,)):
                yield pytest.param(fam, target, id=f"{fam}-{target}")


def feed(predictor, frame):
    return {c.name: (frame[c.name].astype(str).to_numpy().reshape(-1, 1) if c.kind == "categorical"
                     else frame[c.name].to_numpy(np.float32).reshape(-1, 1)) for c in predictor.schema.columns}


@pytest.mark.parametrize(("family", "target"), list(cases()))
def test_every_built_in_family_runs_in_onnxruntime_like_modelyard(family, target, tmp_path):
    frame = table()
    ds = my.load_dataset(frame[[*FEATURES, target]], target=target)
    params = {"n_estimators": 8, "n_jobs": 1} if family == "random_forest" else {}
    if family == "mlp":
        params = {"hidden_sizes": (8, 4), "activation": "gelu"}
    predictor = my.train(ds, model=family, params=params, epochs=3, seed=0).model
    new = table(60, seed=1)[FEATURES]
    new.loc[:4, "plan"] = "platinum"  # unseen categories: all-zeros one-hot / code -1, as modelyard does
    out = tmp_path / "m.onnx"
    assert export_model(predictor, "onnx", out) == [str(out)]
    session = ort.InferenceSession(out.read_bytes())
    assert [i.name for i in session.get_inputs()] == FEATURES
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed(predictor, new)), strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if predictor.task is my.Task.CLASSIFICATION:
            np.testing.assert_allclose(outputs["probabilities"], predictor.predict_proba(new), rtol=0, atol=1e-5)
            assert list(outputs["label"]) == list(predictor.predict(new))
        else:
            expected = predictor.predict(new)
            np.testing.assert_allclose(outputs["prediction"], expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_thresholds_between_float32_neighbours_split_like_scikit_learn():
    """A forest split halfway between two adjacent float32 values must send both to the same sides as sklearn."""
    x = np.array([1.0, np.nextafter(np.float32(1.0), np.float32(2))] * 20, dtype=np.float32)
    y = np.array([0, 1] * 20)
    predictor = my.train(my.from_arrays(x.reshape(-1, 1), y), model="random_forest",
                         params={"n_estimators": 3, "bootstrap": False}).model
    session = ort.InferenceSession(onnx_model(predictor).SerializeToString())
    labels, proba = session.run(None, {"x0": x.reshape(-1, 1)})
    np.testing.assert_allclose(proba, predictor.predict_proba(x.reshape(-1, 1)), atol=1e-6)
    assert list(labels) == list(predictor.predict(x.reshape(-1, 1)))


def test_a_custom_model_without_an_exporter_is_refused_clearly():
    from sklearn.neighbors import KNeighborsClassifier  # noqa: F401  (a scikit-learn custom model)

    ds = my.load_dataset("sklearn:iris")
    predictor = my.train(ds, model="sklearn.neighbors:KNeighborsClassifier", epochs=1).model
    with pytest.raises(ModelError, match=r"cannot be exported to ONNX: only .*random_forest.*--format safetensors"):
        onnx_model(predictor)


def test_a_new_family_plugs_in_through_the_registry(monkeypatch):
    """Registering an exporter for a family name is all it takes (here: logistic regression's, under a new name)."""
    ds = my.load_dataset("sklearn:iris")
    predictor = my.train(ds, model="logistic_regression", epochs=1).model
    predictor.family = "my_family"
    with pytest.raises(ModelError, match="my_family cannot be exported"):
        onnx_model(predictor)
    calls = []

    def exporter(g, p, x):
        calls.append(p.family)
        return EXPORTERS["logistic_regression"](g, p, x)

    monkeypatch.setitem(EXPORTERS, "my_family", exporter)
    session = ort.InferenceSession(onnx_model(predictor).SerializeToString())
    got = session.run(["probabilities"], {n: ds.X[:, [j]] for j, n in enumerate(ds.feature_names)})[0]
    np.testing.assert_allclose(got, predictor.predict_proba(ds.X), atol=1e-5)
    assert calls == ["my_family"] and isinstance(Head(proba="p"), Head)


def test_safetensors_holds_the_state_and_the_schema(tmp_path):
    from safetensors import safe_open

    ds = my.load_dataset(table()[[*FEATURES, "churned"]], target="churned")
    predictor = my.train(ds, model="mlp", params={"hidden_sizes": (4,)}, epochs=1).model
    files = export_model(predictor, "safetensors", tmp_path / "w.safetensors")
    assert files == [str(tmp_path / "w.safetensors"), str(tmp_path / "w.safetensors.json")]
    with safe_open(files[0], framework="numpy") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iterator
        config = json.loads(f.metadata()["modelyard.config"])
    sidecar = json.loads((tmp_path / "w.safetensors.json").read_text())
    assert config["schema"] == sidecar["schema"] == predictor.schema.to_dict() and config["family"] == "mlp"
    rebuilt = my.Predictor.from_parts(config, state)
    np.testing.assert_array_equal(rebuilt.predict_proba(table(10, 3)), predictor.predict_proba(table(10, 3)))


def test_rounding_thresholds_down_to_float32_keeps_every_float32_comparison():
    """For float32 x and float64 t: x <= t exactly when x <= floor32(t) (why the forest's splits match sklearn's)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from modelyard.serve.export.families import _floor32

    f32 = st.floats(allow_nan=False, allow_infinity=False, width=32)

    @settings(max_examples=500, deadline=None, derandomize=True)
    @given(f32, f32, f32, st.booleans())
    def law(x, a, b, midpoint):
        t = (float(a) + float(b)) / 2 if midpoint else float(a) + (float(b) - float(a)) * 1e-9  # float64 thresholds
        f = _floor32(np.array([t]))[0]
        assert f.dtype == np.float32 and float(f) <= t
        assert (float(np.float32(x)) <= t) == (np.float32(x) <= f)

    law()


@pytest.mark.parametrize("kind", ["bool", "float", "int", "str"])
def test_class_labels_come_out_with_the_type_predict_gives_them(kind):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2)).astype(np.float32)
    positive = x[:, 0] + x[:, 1] > 0
    y = {"bool": positive, "float": np.where(positive, 1.0, 0.0), "int": np.where(positive, 7, 3),
         "str": np.where(positive, "yes", "no")}[kind]
    ds = my.load_dataset(pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": y}), target="y")
    assert ds.schema.task is my.Task.CLASSIFICATION
    predictor = my.train(ds, model="random_forest", params={"n_estimators": 4, "n_jobs": 1}).model
    session = ort.InferenceSession(onnx_model(predictor).SerializeToString())
    labels = session.run(["label"], {"a": x[:, [0]], "b": x[:, [1]]})[0]
    expected = predictor.predict(x)
    assert labels.tolist() == expected.tolist()
    kinds = {"bool": bool, "float": float, "int": int, "str": str}
    assert {type(v) for v in labels.tolist()} == {type(v) for v in expected.tolist()} == {kinds[kind]}
