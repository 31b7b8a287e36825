"""The same serving endpoint written the FastAPI way, for ``benchmarks/serve.py --frameworks`` only.

A pydantic body model, a route, and ``modelyard.serve.score`` on the held version: what a first
version of ``modelyard serve`` on the dashboard's stack would be. Started by uvicorn as a factory
(``serve_fastapi:create``) with ``MODELYARD_BENCH_STORE`` and ``MODELYARD_BENCH_REF`` set.
"""


import os
from typing import Any


def create() -> Any:
    """The FastAPI app (uvicorn factory)."""
    from fastapi import FastAPI
    from pydantic import BaseModel

    from modelyard.serve import ModelHolder, score
    from modelyard.serve.threads import limit_threads
    from modelyard.yard import Yard

    limit_threads(1)
    holder = ModelHolder(Yard(os.environ["MODELYARD_BENCH_STORE"]).registry, os.environ["MODELYARD_BENCH_REF"])
    app = FastAPI()

    class Rows(BaseModel):
        rows: list[dict[str, float | str | None]]

    @app.post("/predict")
    def predict(body: Rows) -> dict[str, Any]:
        loaded = holder.current
        names = loaded.predictor.schema.feature_names
        columns = {n: [r.get(n) for r in body.rows] for n in names}
        scores = score(loaded.predictor, columns)
        return {"version": {"id": loaded.id, "ref": loaded.ref}, "predictions": scores.predictions.tolist()}

    return app
