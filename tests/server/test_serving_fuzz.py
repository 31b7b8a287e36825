"""Schemathesis over the serving endpoint's OpenAPI (generated from the version's schema): no 5xx, documented answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import modelyard as my

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EXAMPLES = 40  # per operation; derandomized, so a run is repeatable and bounded in time


@pytest.fixture(scope="module")
def serving_app(tmp_path_factory):
    """A served random forest with numeric and categorical columns."""
    import modelyard.store.versions  # noqa: F401
    from modelyard.serve import ModelHolder
    from modelyard.server.serving import ServingApp
    from modelyard.yard import Yard

    yard = Yard(tmp_path_factory.mktemp("fuzz-serving") / "store")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(18, 80, 120), "plan": rng.choice(["basic", "plus", "pro"], 120),
                          "monthly": rng.normal(50, 15, 120)})
    frame["churned"] = np.where(frame.plan == "basic", "yes", "no")
    yard.registry.register(my.train(my.load_dataset(frame, target="churned"), model="random_forest",
                                    params={"n_estimators": 3, "n_jobs": 1}), "churn")
    yard.registry.set_alias("churn", "production", "churn/1")
    yield ServingApp(ModelHolder(yard.registry, "churn@production"), max_body=100_000)
    yard.close()


def test_no_server_errors_and_documented_answers(serving_app):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_asgi("/openapi.json", serving_app)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) == 3
    failures: list[str] = []
    statuses: set[int] = set()
    for op in operations:
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def check(case):
            response = case.call()
            statuses.add(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.body!r:.200} -> {response.status_code} "
                                f"{response.text[:200]}")
                return
            raw = case.operation.definition.raw["responses"]
            assert str(response.status_code) in raw, (response.status_code, response.text[:200])
            if response.status_code >= 400:
                assert "error" in response.json()
            else:
                assert response.headers["x-modelyard-version"]

        check()
    assert not failures, "\n".join(failures[:10])
    assert 200 in statuses and statuses & {400, 422}  # both good and refused rows were generated
