"""The app's operations, from its OpenAPI document and its routes, for tests that drive them all."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute, Route

# FastAPI's own pages, not part of the API.
FRAMEWORK_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
# The operator console's HTML pages (gateway/console), deliberately left out of the API document;
# tests/gateway/console covers them, hostile text included.
CONSOLE_PREFIX = "/admin/console"
PUBLIC_PATHS = frozenset(
    {
        "/health",
        "/ready",
        "/metrics",
        "/.well-known/jwks.json",
        "/eventSubscriptions/{subscription_id}:validate",
    }
)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{([^}]+)}", self.path)

    @property
    def query_params(self) -> list[dict[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p.get("in") == "query"]

    @property
    def api_versions(self) -> list[str]:
        for parameter in self.query_params:
            if parameter["name"] == "api-version":
                return list(parameter["schema"].get("enum", []))
        return []

    @property
    def caller(self) -> str:
        """Who may call it: "operator", "tenant" or "public"."""
        if self.path.startswith("/admin/"):
            return "operator"
        if self.path in PUBLIC_PATHS and (self.method == "GET" or ":validate" not in self.path):
            return "public"
        return "tenant"

    def body_schema(self, document: dict[str, Any]) -> dict[str, Any] | None:
        content = self.spec.get("requestBody", {}).get("content", {})
        for media_type, entry in content.items():
            if "json" in media_type:
                return resolve(document, entry.get("schema", {}))
        return None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def operations(document: dict[str, Any]) -> list[Operation]:
    return [
        Operation(method.upper(), path, spec)
        for path, methods in document["paths"].items()
        for method, spec in methods.items()
    ]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = document["components"]["schemas"][name]
    return schema


def _leaf_routes(routes: list[BaseRoute]) -> Iterator[tuple[str, frozenset[str]]]:
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # FastAPI's included router
            for context in contexts():
                original = context.original_route
                methods = getattr(context, "methods", None) or getattr(original, "methods", ())
                # A plain Starlette route (POST /sms) has no path of its own in the context.
                path = context.path or context.frontend_prefix + getattr(original, "path", "")
                yield path, frozenset(methods or ())
        elif isinstance(route, Route):
            yield route.path, frozenset(route.methods or ())


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app routes (HEAD, which Starlette adds to GETs, left out)."""
    return {
        (method, path)
        for path, methods in _leaf_routes(list(app.routes))
        if path not in FRAMEWORK_PATHS and not path.startswith(CONSOLE_PREFIX)
        for method in methods
        if method != "HEAD"
    }


def example(document: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> Any:
    """A small document of ``schema`` with every property present."""
    schema = resolve(document, schema)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if resolve(document, s).get("type") != "null"]
            return example(document, options[0], depth) if options else None
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        data = {name: example(document, sub, depth + 1) for name, sub in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties")
        if not data and isinstance(extra, dict) and depth < 4:
            data["key"] = example(document, extra, depth + 1)
        return data
    if kind == "array":
        return [example(document, schema.get("items", {}), depth + 1)] if depth < 4 else []
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "string":
        return "a"
    return "a"


def string_places(data: Any, place: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The place of every string in ``data`` (keys of the objects and lists on the way)."""
    if isinstance(data, str):
        yield place
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from string_places(value, (*place, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from string_places(value, (*place, index))


def replaced(data: Any, place: tuple[Any, ...], value: Any) -> Any:
    """``data`` with the value at ``place`` replaced (a copy of the way there)."""
    if not place:
        return value
    head, *rest = place
    if isinstance(data, dict):
        return {**data, head: replaced(data[head], tuple(rest), value)}
    copy = list(data)
    copy[head] = replaced(copy[head], tuple(rest), value)
    return copy
