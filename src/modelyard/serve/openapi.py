"""The serving endpoint's OpenAPI 3.1 description, generated from a version's schema (plain dicts, no framework).

A row is an object with one property per feature column: numbers for numeric columns, the
training categories as an ``enum`` for categorical ones (so a client generator or a fuzzer
knows the valid values). ``POST /predict`` takes rows in the records form, the column form,
an Arrow IPC stream or a Parquet file.
"""

from __future__ import annotations

from typing import Any

from ..schema import Column, Schema
from .inputs import ARROW_TYPES, PARQUET_TYPES

__all__ = ["openapi_document"]


def _value(col: Column, nullable: bool) -> dict[str, Any]:
    if col.kind == "categorical":
        out: dict[str, Any] = {"type": "string", "enum": list(col.categories or ()),
                               "description": f"categorical {col.name!r}: one of the training categories"}
    else:
        out = {"type": "number", "description": f"numeric {col.name!r} ({col.dtype} in training)"}
    if nullable:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def openapi_document(schema: Schema, *, title: str, version: str, nullable: bool = False,
                     max_rows: int | None = None) -> dict[str, Any]:
    """The OpenAPI document of ``POST /predict``, ``GET /metadata`` and ``GET /health`` for ``schema``."""
    names = schema.feature_names
    row = {"type": "object", "properties": {c.name: _value(c, nullable) for c in schema.columns},
           "required": names, "description": "one row of raw feature values (extra keys are ignored)"}
    columns = {"type": "object", "required": names,
               "properties": {c.name: {"type": "array", "items": _value(c, nullable)} for c in schema.columns},
               "description": "one list per feature column, all of the same length"}
    rows_array: dict[str, Any] = {"type": "array", "items": {"$ref": "#/components/schemas/Row"}}
    if max_rows is not None:
        rows_array["maxItems"] = max_rows
    proba = {"type": "boolean", "default": False, "description": "also return class probabilities"}
    classification = schema.classes is not None
    label: dict[str, Any] = ({"enum": list(schema.classes)} if classification and schema.classes else {"type": "number"})
    version_ref = {"type": "object", "required": ["id", "ref"],
                   "properties": {"id": {"type": "string", "description": "the full version id that answered"},
                                  "ref": {"type": "string", "description": "NAME/NUMBER of that version"}}}
    prediction = {
        "type": "object", "required": ["version", "predictions"],
        "properties": {
            "version": {"$ref": "#/components/schemas/VersionRef"},
            "predictions": {"type": "array", "items": label},
            "classes": {"type": "array", "description": "class labels, in the order of each probability row"},
            "probabilities": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        },
    }
    binary = {"schema": {"type": "string", "format": "binary"}}
    body_content: dict[str, Any] = {
        "application/json": {"schema": {"oneOf": [
            {"type": "object", "required": ["rows"], "additionalProperties": False,
             "properties": {"rows": rows_array, "proba": proba}},
            {"type": "object", "required": ["columns"], "additionalProperties": False,
             "properties": {"columns": {"$ref": "#/components/schemas/Columns"}, "proba": proba}},
        ]}},
        ARROW_TYPES[0]: binary,
        PARQUET_TYPES[0]: binary,
    }
    errors = {
        "400": _error("malformed body (not JSON / Arrow / Parquet, or the wrong shape)"),
        "401": _error("token missing or wrong (non-loopback binds)"),
        "413": _error("body larger than the server's limit"),
        "415": _error("a body type other than JSON, Arrow IPC or Parquet"),
        "422": _error("rows that do not match the model's schema: a missing column, a wrong type, "
                      "NaN, or a category never seen in training"),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Predictions of one registered modelyard version (or the version an alias names "
                                "now). Every answer names the version that gave it, in the body and in the "
                                "`x-modelyard-version` header. Errors are `{\"error\": message}`."},
        "paths": {
            "/predict": {"post": {
                "operationId": "predict", "summary": "Score rows",
                "parameters": [{"name": "proba", "in": "query", "required": False,
                                "schema": {"type": "boolean"}, "description": "also return class probabilities"}],
                "requestBody": {"required": True, "content": body_content},
                "responses": {"200": {"description": "one prediction per row",
                                      "content": {"application/json": {"schema": prediction}}}, **errors},
            }},
            "/metadata": {"get": {
                "operationId": "metadata", "summary": "The version being served: id, ref, schema, metrics, params",
                "responses": {"200": {"description": "the version's record",
                                      "content": {"application/json": {"schema": {"type": "object"}}}},
                              "401": errors["401"]},
            }},
            "/health": {"get": {
                "operationId": "health", "summary": "Liveness and the version answering now",
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["status", "version"],
                    "properties": {"status": {"const": "ok"}, "version": {"$ref": "#/components/schemas/VersionRef"}},
                }}}}},
            }},
        },
        "components": {"schemas": {
            "Row": row, "Columns": columns, "VersionRef": version_ref,
            "Error": {"type": "object", "required": ["error"],
                      "properties": {"error": {"type": "string", "description": "the problem and the fix"}}},
        }},
    }
