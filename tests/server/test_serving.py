"""``modelyard serve``'s app on a real uvicorn server on 127.0.0.1, over HTTP: bodies, errors, guards, alias switches."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pandas as pd
import pytest

import modelyard as my

httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """iris 1 (logistic) and 2 (MLP) under iris@production, and churn 1 with a categorical column."""
    import torch

    import modelyard.store.versions  # noqa: F401
    from modelyard.yard import Yard

    torch.set_num_threads(1)
    yard = Yard(tmp_path_factory.mktemp("serving") / "store")
    ds = my.load_dataset("sklearn:iris")
    v1 = yard.registry.register(my.train(ds, model="logistic_regression", epochs=2, seed=0), "iris")
    v2 = yard.registry.register(my.train(ds, model="mlp", params={"hidden_sizes": (8,)}, epochs=4, seed=1), "iris")
    yard.registry.set_alias("iris", "production", v1.ref)
    rng = np.random.default_rng(0)
    churn = pd.DataFrame({"age": rng.integers(18, 80, 200), "plan": rng.choice(["basic", "plus", "pro"], 200),
                          "monthly": rng.normal(50, 15, 200)})
    churn["churned"] = np.where((churn.plan == "basic") | (churn.age < 25), "yes", "no")
    c1 = yard.registry.register(my.train(my.load_dataset(churn, target="churned"), model="random_forest",
                                         params={"n_estimators": 5, "n_jobs": 1}), "churn")
    yield yard, {"v1": v1, "v2": v2, "churn": c1}, ds
    yard.close()


def make_app(yard, ref, **kwargs):
    from modelyard.serve import ModelHolder
    from modelyard.server.security import loopback_hosts
    from modelyard.server.serving import ServingApp

    kwargs.setdefault("allowed_hosts", loopback_hosts())
    return ServingApp(ModelHolder(yard.registry, ref, poll=kwargs.pop("poll", 0.05)), **kwargs)


@pytest.fixture
def live(store, tools):
    """Start a server for (ref, options) and return (base url, app); stopped after the test."""
    started = []

    def start(ref, **kwargs):
        app = make_app(store[0], ref, **kwargs)
        server = tools.LiveServer(app).__enter__()
        app.holder.start()
        started.append((server, app))
        return server.url, app

    yield start
    for server, app in started:
        app.holder.stop()
        server.__exit__(None, None, None)


def rows(ds, n=3):
    return [dict(zip(ds.feature_names, map(float, ds.X[i]))) for i in range(n)]


def test_records_columns_arrow_and_parquet_bodies_score_like_the_registry(store, live):
    import pyarrow as pa
    import pyarrow.parquet as pq

    yard, v, ds = store
    url, _ = live("iris@production")
    model = yard.registry.load_model("iris/1")
    frame = pd.DataFrame(ds.X[:40], columns=ds.feature_names)
    expected = model.predict_proba(frame)
    with httpx.Client(base_url=url) as c:
        r = c.post("/predict?proba=true", json={"rows": frame.to_dict(orient="records")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["version"] == {"id": v["v1"].id, "ref": "iris/1"} and r.headers["x-modelyard-version"] == v["v1"].id
        assert body["predictions"] == list(model.predict(frame)) and body["classes"] == list(model.schema.classes)
        np.testing.assert_allclose(body["probabilities"], expected, rtol=0, atol=1e-12)
        r = c.post("/predict", json={"columns": frame.to_dict(orient="list"), "proba": True})
        np.testing.assert_allclose(r.json()["probabilities"], expected, atol=1e-12)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        r = c.post("/predict?proba=1", content=sink.getvalue().to_pybytes(),
                   headers={"content-type": "application/vnd.apache.arrow.stream"})
        np.testing.assert_allclose(r.json()["probabilities"], expected, atol=1e-12)
        buf = io.BytesIO()
        pq.write_table(table, buf)
        r = c.post("/predict", content=buf.getvalue(), headers={"content-type": "application/vnd.apache.parquet",
                                                                 "accept": "application/vnd.apache.arrow.stream"})
        assert r.headers["content-type"] == "application/vnd.apache.arrow.stream"
        assert pa.ipc.open_stream(r.content).read_all().column("prediction").to_pylist() == list(model.predict(frame))


def test_health_metadata_and_openapi(store, live):
    _, v, ds = store
    url, _ = live("iris@production")
    with httpx.Client(base_url=url) as c:
        h = c.get("/health").json()
        assert h["status"] == "ok" and h["version"]["id"] == v["v1"].id and h["following"] == "iris@production"
        m = c.get("/metadata").json()
        assert m["id"] == v["v1"].id and m["ref"] == "iris/1" and m["family"] == "logistic_regression"
        assert m["schema"]["columns"][0]["name"] == ds.feature_names[0] and "f1" in m["metrics"] and m["params"]
        doc = c.get("/openapi.json").json()
        assert doc["components"]["schemas"]["Row"]["required"] == ds.feature_names
        assert set(doc["paths"]) == {"/predict", "/metadata", "/health"}


@pytest.mark.parametrize(("payload", "status", "message"), [
    ({"rows": [{"age": 30, "monthly": 20.0}]}, 422, r"row 0 lacks column 'plan'"),
    ({"rows": [{"age": "old", "plan": "pro", "monthly": 20.0}]}, 422, r"column 'age' must be numeric.*'old'"),
    ({"rows": [{"age": 30, "plan": "gold", "monthly": 20.0}]}, 422,
     (r"column 'plan': 1 of 1 row\(s\) hold categories never seen in training \('gold'\); use one of the known "
      r"categories \(basic, plus, pro\)")),
    ({"columns": {"age": [30, 31], "plan": ["pro"], "monthly": [1.0, 2.0]}}, 400, r"lengths differ"),
    ({"rows": {"age": 30}}, 400, r'"rows" must be a list of objects'),
    ({"rows": [], "extra": 1}, 400, r"unknown key\(s\) 'extra'"),
    ({"rows": [], "proba": "yes"}, 400, r'"proba" must be true or false'),
    ([1, 2], 400, r"an object with either \"rows\""),
])
def test_bad_rows_get_one_sentence_and_the_right_status(store, live, payload, status, message):
    import re

    url, _ = live("churn/1")
    r = httpx.post(url + "/predict", json=payload)
    assert r.status_code == status, r.text
    assert re.search(message, r.json()["error"]), r.json()["error"]
    assert r.headers["x-modelyard-version"] == store[1]["churn"].id


def test_unseen_categories_can_be_scored_as_unseen_when_the_server_says_so(store, live):
    url, _ = live("churn/1", unknown="warn")
    r = httpx.post(url + "/predict", json={"rows": [{"age": 30, "plan": "gold", "monthly": 20.0}]})
    assert r.status_code == 200 and r.json()["predictions"][0] in ("yes", "no")


def test_malformed_oversized_and_foreign_bodies_are_client_errors(store, live):
    url, _ = live("iris/1", max_body=1000)
    with httpx.Client(base_url=url) as c:
        assert c.post("/predict", content=b"{not json", headers={"content-type": "application/json"}).status_code == 400
        assert c.post("/predict", content=b"\x00\x01garbage", headers={
            "content-type": "application/vnd.apache.arrow.stream"}).status_code == 400
        assert c.post("/predict", content=b"PAR1xxxx", headers={
            "content-type": "application/vnd.apache.parquet"}).status_code == 400
        pickled = c.post("/predict", content=b"\x80\x04K\x01.", headers={"content-type": "application/python-pickle"})
        assert pickled.status_code == 415 and "JSON" in pickled.json()["error"]
        big = c.post("/predict", content=b"x" * 5000, headers={"content-type": "application/json"})
        assert big.status_code == 413 and "limit of 1000" in big.json()["error"]

        def chunks():  # no content-length: counted as it arrives
            for _ in range(10):
                yield b" " * 500

        assert c.post("/predict", content=chunks(), headers={"content-type": "application/json"}).status_code == 413
        assert c.get("/predict").status_code == 405
        assert c.get("/nothing").status_code == 404
        assert c.post("/predict?proba=maybe", json={"rows": []}).status_code == 400


def test_a_non_loopback_server_needs_the_token_and_checks_no_host(store, live):
    url, _ = live("iris/1", token="s3cret-token-of-enough-length-000000", allowed_hosts=None)
    body = {"rows": rows(store[2], 1)}
    with httpx.Client(base_url=url) as c:
        assert c.get("/health").status_code == 200  # probes need no token
        r = c.post("/predict", json=body)
        assert r.status_code == 401 and "Authorization: Bearer" in r.json()["error"]
        assert c.post("/predict", json=body, headers={"authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/metadata").status_code == 401
        ok = c.post("/predict", json=body, headers={"authorization": "Bearer s3cret-token-of-enough-length-000000"})
        assert ok.status_code == 200


def test_a_loopback_server_refuses_foreign_host_headers(store, live):
    url, _ = live("iris/1")
    r = httpx.get(url + "/health", headers={"host": "evil.example:80"})
    assert r.status_code == 421 and "DNS-rebinding" in r.json()["error"]


def test_alias_moves_under_load_fail_no_request_and_every_answer_matches_its_version(store, live):
    """Four threads post rows while the alias moves back and forth; each answer must equal its named version's."""
    yard, v, ds = store
    frame = pd.DataFrame(ds.X[:5], columns=ds.feature_names)
    expected = {x.id: yard.registry.load_model(x.ref).predict_proba(frame) for x in (v["v1"], v["v2"])}
    url, app = live("iris@production", poll=0.02)
    stop = threading.Event()
    answers: list[tuple[str, list]] = []
    failures: list[str] = []

    def client():
        with httpx.Client(base_url=url, timeout=30) as c:
            while not stop.is_set():
                try:
                    r = c.post("/predict?proba=true", json={"rows": frame.to_dict(orient="records")})
                except httpx.HTTPError as e:
                    failures.append(repr(e))
                    continue
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                    continue
                body = r.json()
                assert body["version"]["id"] == r.headers["x-modelyard-version"]
                answers.append((body["version"]["id"], body["probabilities"]))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(6):
            target = v["v2"] if i % 2 == 0 else v["v1"]
            yard.registry.set_alias("iris", "production", target.ref)
            deadline = time.monotonic() + 30
            while app.holder.current.id != target.id and time.monotonic() < deadline:
                time.sleep(0.01)
            assert app.holder.current.id == target.id
            n = len(answers)
            while len(answers) < n + 5 and time.monotonic() < deadline:  # some answers from this version
                time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not failures, failures[:5]
    assert app.holder.switches == 6 and {vid for vid, _ in answers} == set(expected)
    for vid, proba in answers:
        np.testing.assert_allclose(proba, expected[vid], atol=1e-12)


def test_missing_values_are_refused_only_where_the_model_cannot_take_them(store, live):
    forest, _ = live("churn/1")  # a random forest takes NaN natively
    r = httpx.post(forest + "/predict", json={"rows": [{"age": None, "plan": "pro", "monthly": 20.0}]})
    assert r.status_code == 200, r.text
    linear, _ = live("iris/1")  # a logistic regression trained without imputation takes none
    row = {name: 1.0 for name in my.load_dataset("sklearn:iris").feature_names}
    row[next(iter(row))] = None
    r = httpx.post(linear + "/predict", json={"rows": [row]})
    assert r.status_code == 422 and "(1 missing)" in r.json()["error"] and "fill them" in r.json()["error"], r.text
