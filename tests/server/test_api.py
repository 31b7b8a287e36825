"""Every REST endpoint through the public HTTP interface: shapes, filters, pages, errors and guarded changes."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def cli_json(capsys, *argv):
    """Run the CLI and parse its --json output."""
    from modelyard.cli.main import main

    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


# --- health and errors --------------------------------------------------------------------

def test_health(client, seeded):
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["read_only"] is False and body["token_required"] is False
    assert "modelyard.db" in body["store"]


def test_unknown_endpoint_is_json_error(client):
    r = client.get("/api/nope")
    assert r.status_code == 404
    assert "openapi.json" in r.json()["error"]


def test_validation_errors_are_one_sentence(client):
    r = client.get("/api/studies?limit=0")
    assert r.status_code == 422
    assert r.json()["error"].startswith("query parameter 'limit'")


def test_security_headers_and_index(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert client.get("/static/plots.js").status_code == 200


def test_openapi_documents_every_route(client):
    spec = client.get("/api/openapi.json").json()
    paths = set(spec["paths"])
    for p in ("/api/health", "/api/studies", "/api/studies/{name}/trials", "/api/studies/{name}/history",
              "/api/studies/{name}/parallel", "/api/studies/{name}/curves", "/api/models", "/api/versions",
              "/api/models/{name}/history", "/api/comparisons", "/api/datasets"):
        assert p in paths


# --- studies ------------------------------------------------------------------------------

def test_studies_list_filter_and_page(client):
    body = client.get("/api/studies").json()
    assert body["total"] >= 1 and body["items"][0]["name"]
    demo = next(s for s in body["items"] if s["name"] == "demo")
    assert demo["counts"]["running"] == 2 and demo["n_trials"] == 26
    assert client.get("/api/studies?name=dem").json()["total"] >= 1
    assert client.get("/api/studies?name=zzz-none").json() == {
        "items": [], "total": 0, "limit": 50, "offset": 0, "next_offset": None}


def test_study_same_shape_as_cli(client, seeded, capsys):
    _, folder, _ = seeded
    api = client.get("/api/studies/demo").json()
    cli = cli_json(capsys, "studies", "show", "demo", "--json", "--store", str(folder / "store"))
    assert api == cli["study"]
    trials = client.get("/api/studies/demo/trials?limit=500").json()["items"]
    assert trials == cli["trials"]


def test_study_not_found_message(client):
    r = client.get("/api/studies/nope")
    assert r.status_code == 404
    assert r.json() == {"error": "no study named 'nope'; list them with `modelyard studies list`"}


def test_bad_study_name_refused(client):
    r = client.get("/api/studies/..%20x")
    assert r.status_code == 400 and "study name" in r.json()["error"]


def test_trials_pages_are_stable_and_complete(client):
    seen = []
    offset = 0
    while offset is not None:
        body = client.get(f"/api/studies/demo/trials?limit=7&offset={offset}").json()
        seen += [t["number"] for t in body["items"]]
        offset = body["next_offset"]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 26


def test_trials_filter_sort_since(client):
    pruned = client.get("/api/studies/demo/trials?state=pruned&limit=500").json()
    assert pruned["total"] > 0 and {t["state"] for t in pruned["items"]} == {"pruned"}
    both = client.get("/api/studies/demo/trials?state=pruned&state=failed&limit=500").json()
    assert both["total"] == pruned["total"] + client.get("/api/studies/demo/trials?state=failed").json()["total"]
    by_value = client.get("/api/studies/demo/trials?sort=value&limit=500").json()["items"]
    values = [t["value"] for t in by_value if t["value"] is not None]
    assert values == sorted(values)
    assert by_value[-1]["value"] is None  # trials without a value sort last
    desc = client.get("/api/studies/demo/trials?sort=-number&limit=3").json()["items"]
    assert [t["number"] for t in desc] == [25, 24, 23]
    since = client.get("/api/studies/demo/trials?since=20").json()
    assert [t["number"] for t in since["items"]] == [21, 22, 23, 24, 25]


def test_trials_bad_inputs(client):
    r = client.get("/api/studies/demo/trials?sort=color")
    assert r.status_code == 400 and "number, -number" in r.json()["error"]
    r = client.get("/api/studies/demo/trials?state=done")
    assert r.status_code == 400 and "running, complete, pruned, failed" in r.json()["error"]


def test_one_trial(client):
    t = client.get("/api/studies/demo/trials/0").json()
    assert t["number"] == 0 and t["intermediate"] and set(t["params"]) == {"lr", "layers", "act"}
    r = client.get("/api/studies/demo/trials/999")
    assert r.status_code == 404 and "no trial 999" in r.json()["error"]


def test_history_best_so_far(client):
    h = client.get("/api/studies/demo/history").json()
    complete = [p for p in h["points"] if p["state"] == "complete"]
    assert not h["thinned"] and len(h["points"]) == h["n_finished"]
    best = [b["value"] for b in h["best"]]
    assert best == sorted(best, reverse=True)  # minimize: every improvement is lower
    assert best[-1] == min(p["value"] for p in complete)
    thin = client.get("/api/studies/demo/history?max_points=10").json()
    assert thin["thinned"] and len(thin["points"]) <= 10 and thin["best"] == h["best"]


def test_parallel_and_curves(client):
    pc = client.get("/api/studies/demo/parallel").json()
    assert [a["name"] for a in pc["params"]] == ["lr", "layers", "act"]
    assert pc["params"][0]["log"] is True and pc["params"][2]["choices"] == ["relu", "tanh"]
    assert len(pc["rows"]) == pc["n_complete"] > 0 and not pc["sampled"]
    small = client.get("/api/studies/demo/parallel?max_rows=10").json()
    assert small["sampled"] and len(small["rows"]) == 10
    best = min(r["value"] for r in pc["rows"])
    assert best in [r["value"] for r in small["rows"]]  # the best trials always survive sampling
    cv = client.get("/api/studies/demo/curves").json()
    states = {t["state"] for t in cv["trials"]}
    assert {"complete", "pruned", "running"} <= states
    assert all(t["steps"] and t["steps"][0][0] == 0 for t in cv["trials"])
    capped = client.get("/api/studies/demo/curves?max_curves=4").json()
    assert len(capped["trials"]) <= 4 and capped["sampled"]


# --- models, versions, lineage, aliases ---------------------------------------------------

def test_models_list_and_get(client, seeded):
    body = client.get("/api/models?name=iris").json()
    m = next(x for x in body["items"] if x["name"] == "iris-lr")
    assert m["n_versions"] >= 3 and m["aliases"]["production"] == 2 and m["aliases"]["staging"] == 3
    assert client.get("/api/models/iris-lr").json()["latest_ref"].startswith("iris-lr/")
    r = client.get("/api/models/nobody")
    assert r.status_code == 404 and "no model named 'nobody'" in r.json()["error"]


def test_version_same_shape_as_cli(client, seeded, capsys):
    _, folder, refs = seeded
    store = str(folder / "store")
    for ref in ("iris-lr/2", "iris-lr@production", refs["v2"].id[:10]):
        api = client.get(f"/api/versions/{ref}").json()
        assert api == cli_json(capsys, "models", "show", "iris-lr/2", "--json", "--store", store)
    lin = client.get("/api/versions/iris-lr/2/lineage").json()
    cli = cli_json(capsys, "models", "lineage", "iris-lr/2", "--json", "--store", store)
    assert {k: lin[k] for k in cli} == cli


def test_version_errors(client, seeded):
    r = client.get("/api/versions/iris-lr/99")
    assert r.status_code == 404 and "no version 99" in r.json()["error"]
    r = client.get("/api/versions/iris-lr")
    assert r.status_code == 404 and "is a model name, not a version" in r.json()["error"]
    r = client.get("/api/versions/a%20b")
    assert r.status_code == 400 and "not a valid version ref" in r.json()["error"]


def test_version_lists_filters_and_sorts(client, seeded):
    _, _, refs = seeded
    mine = client.get("/api/models/iris-lr/versions").json()
    assert [v["number"] for v in mine["items"]][:3] == [3, 2, 1] or mine["items"][0]["number"] > 3
    prod = client.get("/api/versions?alias=production").json()
    assert [v["id"] for v in prod["items"]] == [refs["v2"].id]
    fam = client.get("/api/versions?family=logistic_regression&sort=created&limit=2").json()
    assert fam["total"] >= 3 and fam["items"][0]["id"] == refs["v1"].id and fam["next_offset"] == 2
    r = client.get("/api/versions?sort=size")
    assert r.status_code == 400 and "-created" in r.json()["error"]


def test_lineage_edges_carry_param_diffs(client, seeded):
    _, _, refs = seeded
    lin = client.get(f"/api/versions/{refs['v1'].id}/lineage").json()
    assert lin["version"]["id"] == refs["v1"].id and lin["ancestors"] == []
    ids = {d["id"] for d in lin["descendants"]}
    assert {refs["v2"].id, refs["v3"].id} <= ids
    edge = next(e for e in lin["edges"] if e["child_id"] == refs["v3"].id)
    assert edge["diff"]["weight_decay"] == [None, 0.001] and edge["retrained"] is False  # None: the C=1 default
    capped = client.get(f"/api/versions/{refs['v1'].id}/lineage?max_nodes=2").json()
    assert len(capped["descendants"]) == 1 and capped["truncated"]["descendants"] >= 1


def test_aliases_and_history(client, seeded, capsys):
    _, folder, refs = seeded
    al = client.get("/api/models/iris-lr/aliases").json()["aliases"]
    assert al["production"]["id"] == refs["v2"].id
    page = client.get("/api/models/iris-lr/history?alias=production").json()
    actions = [m["action"] for m in page["items"]]
    assert actions[:3] == ["rollback", "set", "set"]  # newest first
    cli = cli_json(capsys, "models", "history", "iris-lr", "--json", "--store", str(folder / "store"))
    everything = client.get("/api/models/iris-lr/history?limit=500").json()["items"]
    assert list(reversed(everything)) == cli
    r = client.get("/api/models/iris-lr/history?alias=canary")
    assert r.status_code == 404 and "never had one" in r.json()["error"]


@pytest.fixture
def scratch(seeded):
    """A model of its own (branches of iris-lr/1: no training), so changes do not disturb other tests."""
    yard, _, refs = seeded
    name = "mut-" + uuid.uuid4().hex[:8]
    a = yard.registry.branch(refs["v1"].id, {"learning_rate": 0.02}, name=name)
    b = yard.registry.branch(a.id, {"learning_rate": 0.03})
    yard.registry.set_alias(name, "production", b.ref)
    return name, a, b


def test_alias_move_rollback_unset(client, scratch):
    name, a, b = scratch
    r = client.put(f"/api/models/{name}/aliases/production", json={"ref": a.ref, "reason": "revert"})
    assert r.status_code == 200 and r.json()["to"] == a.ref and r.json()["reason"] == "revert"
    assert "(ui from" in r.json()["user"]
    client.put(f"/api/models/{name}/aliases/production", json={"ref": b.ref})
    r = client.post(f"/api/models/{name}/aliases/production/rollback", json={"reason": "bad"})
    assert r.status_code == 200 and r.json()["action"] == "rollback" and r.json()["to"] == a.ref
    r = client.post(f"/api/models/{name}/aliases/production/rollback")  # a's parent belongs to another model
    assert r.status_code == 409 and f"can only point at versions of {name}" in r.json()["error"]
    r = client.delete(f"/api/models/{name}/aliases/production?reason=retired")
    assert r.status_code == 200 and r.json()["action"] == "unset"
    r = client.put(f"/api/models/{name}/aliases/9bad", json={"ref": a.ref})
    assert r.status_code == 400 and "alias '9bad' is not allowed" in r.json()["error"]


def test_delete_version(client, scratch):
    _, a, b = scratch
    r = client.delete(f"/api/versions/{a.ref}")
    assert r.status_code == 409 and "--force" in r.json()["error"]
    r = client.delete(f"/api/versions/{a.ref}?force=true&reason=cleanup")
    assert r.status_code == 200 and r.json()["reparented"] == [b.id]
    assert client.get(f"/api/versions/{a.ref}").status_code == 404


# --- security -----------------------------------------------------------------------------

def test_token_required_off_loopback(app_factory, scratch):
    name, a, _ = scratch
    token = "t" * 40
    with TestClient(app_factory(token=token, allowed_hosts=None), base_url="http://10.0.0.5:8765") as c:
        url, body = f"/api/models/{name}/aliases/production", {"ref": a.ref}
        r = c.put(url, json=body)
        assert r.status_code == 401 and "Authorization: Bearer TOKEN" in r.json()["error"]
        assert r.headers["www-authenticate"] == "Bearer"
        assert c.put(url, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.put(url, json=body, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert c.get("/api/health").json()["token_required"] is True  # liveness and pages hold no data
        r = c.get(f"/api/models/{name}")  # reads need the token too (tests/server/test_gate.py)
        assert r.status_code == 401 and "every request needs its token" in r.json()["error"]
        assert c.get(f"/api/models/{name}", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with TestClient(app_factory(token=token, allowed_hosts=None, public_read=True),
                    base_url="http://10.0.0.5:8765") as c:
        assert c.get(f"/api/models/{name}").status_code == 200  # --public-read: reads are open
        assert c.put(url, json=body).status_code == 401  # changes are not


def test_read_only_and_cross_site(app_factory, scratch):
    name, a, _ = scratch
    with TestClient(app_factory(allow_mutations=False), base_url="http://127.0.0.1:8765") as c:
        r = c.put(f"/api/models/{name}/aliases/production", json={"ref": a.ref})
        assert r.status_code == 403 and "read-only" in r.json()["error"]
    with TestClient(app_factory(), base_url="http://127.0.0.1:8765") as c:
        r = c.put(f"/api/models/{name}/aliases/production", json={"ref": a.ref},
                  headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-site" in r.json()["error"]
        r = c.put(f"/api/models/{name}/aliases/production", json={"ref": a.ref},
                  headers={"Origin": "http://127.0.0.1:8765"})
        assert r.status_code == 200


def test_dns_rebinding_host_refused(app_factory):
    with TestClient(app_factory(), base_url="http://attacker.example:8765") as c:
        r = c.get("/api/health")
        assert r.status_code == 421 and "DNS-rebinding" in r.json()["error"]
    with TestClient(app_factory(), base_url="http://localhost:8765") as c:
        assert c.get("/api/health").status_code == 200


# --- comparisons and datasets -------------------------------------------------------------

def test_datasets_lists_bundled_and_files(client):
    body = client.get("/api/datasets").json()
    names = [d["dataset"] for d in body["items"]]
    assert "sklearn:iris" in names and "data/iris.csv" in names


def _post_compare(client, headers=None, **extra):
    body = {"refs": ["iris-lr/1", "iris-lr/2"], "dataset": "data/iris.csv", "target": "target", "resamples": 1000}
    return client.post("/api/comparisons", json={**body, **extra}, headers=headers)


def test_compare_run_get_list(client):
    r = _post_compare(client)
    assert r.status_code == 200, r.text
    entry = r.json()
    assert set(entry) == {"id", "refs", "comparison"} and len(entry["id"]) == 64
    assert entry["refs"] == ["iris-lr/1", "iris-lr/2"]
    c = entry["comparison"]
    assert [e["label"] for e in c["entries"]] == ["iris-lr/1", "iris-lr/2"]
    # data/iris.csv holds the rows both versions were trained on: only the rows held out from both are used
    rows = c["rows"]
    assert rows["given"] == 150 and 0 < c["n_rows"] == rows["used"] < 150 and not rows["allowed"]
    assert rows["used"] + rows["training"] == 150 and "held out from every version" in rows["note"]
    assert {k["how"] for k in rows["checks"]} == {"rows"}  # a CSV copy: found by content, not by fingerprint
    assert c["pairs"][0]["verdict"] in ("A better", "no significant difference", "B better")
    assert client.get(f"/api/comparisons/{entry['id']}").json() == entry
    assert client.get(f"/api/comparisons/{entry['id'][:10]}").json() == entry  # a unique prefix
    listed = client.get("/api/comparisons").json()
    first = listed["items"][0]
    assert first["id"] == entry["id"] and first["refs"] == entry["refs"] and first["best"] == c["best"]
    assert (first["metric"], first["n_rows"], first["data_source"]) == (c["metric"], c["n_rows"], c["data_source"])
    assert first["data_fingerprint"] == c["data_fingerprint"] and first["created_at"][:19] == c["created_at"][:19]
    assert listed["total"] >= 1 and listed["limit"] == 50 and listed["offset"] == 0
    from modelyard.records.comparisons import Comparison

    assert Comparison.from_dict(c).to_dict() == c  # the record's own shape


def test_compare_may_use_training_rows_when_asked(client):
    c = _post_compare(client, allow_training_rows=True).json()["comparison"]
    assert c["n_rows"] == c["rows"]["given"] == 150 and c["rows"]["allowed"]
    assert "--allow-training-rows" in c["rows"]["note"] and c["rows"]["training"] > 0


def test_comparisons_survive_a_restart_and_page(app_factory, seeded):
    """Saved in the store: a second app over a second Yard on the same store (a restarted server) reads them."""
    from modelyard.server.app import create_app
    from modelyard.yard import Yard

    _, folder, _ = seeded
    with TestClient(app_factory(), base_url="http://127.0.0.1:8765") as c:
        made = [_post_compare(c, seed=s).json() for s in (1, 2)]
    with Yard(folder / "store") as fresh, TestClient(create_app(fresh, data_roots=[folder]),
                                                     base_url="http://127.0.0.1:8765") as c:
        for entry in made:
            assert c.get(f"/api/comparisons/{entry['id']}").json() == entry
        total = c.get("/api/comparisons").json()["total"]
        assert total >= 2
        newest = c.get("/api/comparisons?limit=1").json()
        assert [i["id"] for i in newest["items"]] == [made[1]["id"]] and newest["next_offset"] == 1
        last = c.get(f"/api/comparisons?limit=1&offset={total - 1}").json()
        assert len(last["items"]) == 1 and last["next_offset"] is None
        assert made[1]["id"] in [i["id"] for i in c.get("/api/comparisons?limit=500").json()["items"]]


def test_saving_a_comparison_is_a_guarded_change(app_factory):
    with TestClient(app_factory(allow_mutations=False), base_url="http://127.0.0.1:8765") as c:
        r = _post_compare(c)
        assert r.status_code == 403 and "read-only" in r.json()["error"]
        assert c.get("/api/comparisons").status_code == 200  # reading saved ones stays open
    token = "t" * 40
    with TestClient(app_factory(token=token, allowed_hosts=None), base_url="http://10.0.0.5:8765") as c:
        r = _post_compare(c)
        assert r.status_code == 401 and "Authorization: Bearer TOKEN" in r.json()["error"]
        r = _post_compare(c, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    with TestClient(app_factory(), base_url="http://127.0.0.1:8765") as c:
        r = _post_compare(c, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-site" in r.json()["error"]


@pytest.mark.parametrize("dataset, message", [
    ("../../etc/passwd.csv", "outside the folders"),
    ("/etc/hosts.csv", "outside the folders"),
    ("s3://bucket/x.csv", "URLs and home-relative paths"),
    ("~/x.csv", "URLs and home-relative paths"),
    ("sklearn:mnist", "unknown bundled dataset"),
    ("data/missing.csv", "does not exist"),
])
def test_compare_refuses_bad_datasets(client, dataset, message):
    r = client.post("/api/comparisons", json={"refs": ["iris-lr/1", "iris-lr/2"], "dataset": dataset})
    assert r.status_code == 400 and message in r.json()["error"]


def test_compare_bad_refs(client):
    r = client.post("/api/comparisons", json={"refs": ["iris-lr/1", "iris-lr/77"], "dataset": "sklearn:iris"})
    assert r.status_code == 404 and "no version 77" in r.json()["error"]
    r = client.post("/api/comparisons", json={"refs": ["iris-lr/1"], "dataset": "sklearn:iris"})
    assert r.status_code == 422 and "refs" in r.json()["error"]
    r = client.get("/api/comparisons/ffff")
    assert r.status_code == 404 and "no saved comparison has an id starting with 'ffff'" in r.json()["error"]
    r = client.get("/api/comparisons/not-an-id")
    assert r.status_code == 404 and "is not a comparison id" in r.json()["error"]
