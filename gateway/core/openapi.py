"""The published OpenAPI document, complete: what FastAPI cannot see, added.

- Routes that read their body themselves (``gateway.core.bodies``: one 400 for all, the
  text rule first) declare it with ``openapi_extra=request_body(Model)``; their models'
  definitions are hoisted into ``components`` here.
- ``api-version`` (declared by ``gateway.core.auth.api_version``) is required, with its values.
- Every error is answered in ACS's shape (``{"error": ...}``, or a validation problem for
  Sms 2026-01-23), so every operation declares that as its ``default`` response; FastAPI's 422,
  which this API never answers (its validation failures are 400s), is dropped.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

REF = "#/components/schemas/"
API_VERSION = "api-version"
# Where request_body keeps a model's own definitions until complete_openapi hoists them.
_DEFS = "$defs"

ERROR_SCHEMAS: dict[str, Any] = {
    "CommunicationError": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "target": {"type": "string"},
        },
    },
    "CommunicationErrorResponse": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"$ref": f"{REF}CommunicationError"}},
    },
    "ProblemDetails": {
        "type": "object",
        "description": "RFC 9457 problem document (Sms 2026-01-23's validation and not-found answers).",
        "required": ["title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
            "traceId": {"type": "string"},
        },
    },
}

ERROR_RESPONSE: dict[str, Any] = {
    "description": "An error, in ACS's shape (a problem document where the api-version answers one).",
    "content": {
        "application/json": {"schema": {"$ref": f"{REF}CommunicationErrorResponse"}},
        "application/problem+json": {"schema": {"$ref": f"{REF}ProblemDetails"}},
    },
}


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema as a request body, its nested definitions under ``$defs``."""
    return model.model_json_schema(by_alias=True, ref_template=REF + "{model}")


def request_body(
    model: type[BaseModel] | dict[str, Any],
    *,
    required: bool = True,
    media_types: tuple[str, ...] = ("application/json",),
) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that reads its body itself: ``model`` or a schema."""
    schema = model_schema(model) if isinstance(model, type) else model
    return {
        "requestBody": {
            "required": required,
            "content": {media_type: {"schema": schema} for media_type in media_types},
        }
    }


def _hoisted(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """A model's inline schema as a ``$ref`` to it in ``components``, with its definitions."""
    for name, definition in schema.pop(_DEFS, {}).items():
        components.setdefault(name, definition)
    title = schema.get("title")
    if schema.get("type") != "object" or not title:
        return schema
    components.setdefault(title, schema)
    return {"$ref": f"{REF}{title}"}


def _complete_api_version(parameter: dict[str, Any]) -> None:
    versions = parameter.get("schema", {}).get("enum") or parameter.get("examples")
    parameter["required"] = True
    parameter["schema"] = {"type": "string", **({"enum": list(versions)} if versions else {})}
    parameter.pop("examples", None)


def complete_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (FastAPI's) completed as this module says; returned for chaining."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == API_VERSION and parameter.get("in") == "query":
                    _complete_api_version(parameter)
            for content in operation.get("requestBody", {}).get("content", {}).values():
                if "schema" in content:
                    content["schema"] = _hoisted(content["schema"], components)
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses["default"] = ERROR_RESPONSE
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for name, schema in ERROR_SCHEMAS.items():
        components.setdefault(name, schema)
    return document
