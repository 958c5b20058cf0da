"""OpenAPI request and response schemas generated from a model's signature."""

from __future__ import annotations

from typing import Any

from keel.core._models import ColumnSpec, ModelSignature

__all__ = ["add_signature_schemas"]

_TYPES: dict[str, dict[str, Any]] = {
    "float": {"type": "number"},
    "int": {"type": "integer", "format": "int64"},
    "bool": {"type": "boolean"},
    "string": {"type": "string"},
    "category": {"type": "string"},
    "datetime": {"type": "string", "format": "date-time"},
}


def _column(spec: ColumnSpec) -> dict[str, Any]:
    schema = dict(_TYPES.get(spec.type, {}))
    if spec.type == "category" and spec.categories is not None:
        schema["enum"] = list(spec.categories)
        schema["description"] = "unseen categories are accepted and treated as missing"
    if spec.nullable:
        schema["nullable"] = True
    return schema


def _schemas(signature: ModelSignature) -> dict[str, dict[str, Any]]:
    record = {
        "type": "object",
        "properties": {c.name: _column(c) for c in signature.inputs},
        "required": [c.name for c in signature.inputs],
        "additionalProperties": False,
    }
    split = {
        "type": "object",
        "properties": {
            "columns": {
                "type": "array",
                "items": {"type": "string"},
                "example": [c.name for c in signature.inputs],
            },
            "data": {"type": "array", "items": {"type": "array"}},
        },
        "required": ["columns", "data"],
    }
    prediction = {
        "type": "object",
        "properties": {
            "request_id": {"type": "string"},
            "deployment": {"type": "string"},
            "variant": {"type": "string"},
            "model": {"type": "object"},
            "predictions": {"type": "array", "items": {}},
            "classes": {"type": "array", "items": {}},
            "probabilities": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "number"}},
            },
        },
    }
    return {
        "Record": record,
        "Records": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}},
        "Columns": split,
        "PredictResponse": prediction,
    }


def add_signature_schemas(
    openapi: dict[str, Any], signature: ModelSignature | None
) -> dict[str, Any]:
    """``openapi`` with request bodies for ``/predict`` and ``/invocations`` filled in."""
    if signature is None:
        return openapi
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    components.update(_schemas(signature))
    ref = "#/components/schemas/"
    paths = openapi.get("paths", {})
    predict = paths.get("/predict", {}).get("post")
    if predict is not None:
        predict["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"oneOf": [{"$ref": ref + "Records"}, {"$ref": ref + "Columns"}]}
                }
            },
        }
        predict["responses"] = {
            "200": {
                "description": "Predictions",
                "content": {"application/json": {"schema": {"$ref": ref + "PredictResponse"}}},
            },
            "400": {"description": "Malformed body"},
            "413": {"description": "Too many rows or too large a body"},
            "422": {"description": "Input breaks the signature: problems name row, column, reason"},
            "503": {"description": "Model not loaded yet"},
        }
    invocations = paths.get("/invocations", {}).get("post")
    if invocations is not None:
        invocations["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {
                                "type": "object",
                                "properties": {"dataframe_split": {"$ref": ref + "Columns"}},
                            },
                            {
                                "type": "object",
                                "properties": {"dataframe_records": {"$ref": ref + "Records"}},
                            },
                        ]
                    }
                }
            },
        }
    return openapi
