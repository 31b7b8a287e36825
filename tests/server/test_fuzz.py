"""Schema-driven fuzzing from the OpenAPI document: no generated request makes the server answer 5xx."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EXAMPLES = 20  # per operation; derandomized, so a run is repeatable and bounded in time


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory, tools):
    """An app over a store of its own (the fuzzer may move aliases or delete versions)."""
    import modelyard as my
    import modelyard.store.trials
    import modelyard.store.versions
    from modelyard.server.app import create_app
    from modelyard.yard import Yard

    folder = tmp_path_factory.mktemp("fuzz")
    yard = Yard(folder / "store")
    tools.make_study(yard, name="demo", n=8)
    v = yard.registry.register(my.train(my.load_dataset("sklearn:iris"), model="logistic_regression", epochs=1),
                               "demo")
    yard.registry.branch(v.ref, {"learning_rate": 0.5})
    yard.registry.set_alias("demo", "production", "demo/2")
    yield create_app(yard, data_roots=[folder])
    yard.close()


def test_no_server_errors(fuzz_app):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_asgi("/api/openapi.json", fuzz_app)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 18
    failures: list[str] = []
    for op in operations:
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def check(case):
            response = case.call()
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} -> {response.status_code} "
                                f"{response.text[:200]}")
            else:
                assert "error" in response.json() or response.status_code < 400

        check()
    assert not failures, "\n".join(failures[:10])
