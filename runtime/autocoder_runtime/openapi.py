"""The OpenAPI 3.1 document of a system: request bodies are the components' pydantic schemas,
every answer has its schema, and every operation behind the key declares the security scheme."""

from __future__ import annotations

from typing import Any

from autocoder_runtime.system import System

ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "errors": {"type": "array", "items": {"type": "object"}}},
    "required": ["error"],
}
ACCEPTED = {
    "type": "object",
    "properties": {"accepted": {"type": "boolean"}, "trace_id": {"type": "string"}},
    "required": ["accepted", "trace_id"],
}
PAGE = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 0, "maximum": 1000},
    },
    {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
]


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: tuple[str, str]) -> dict[str, Any]:
    return {code: _json(text, {"$ref": "#/components/schemas/Error"}) for code, text in codes}


def _secured(operation: dict[str, Any], key_env: str | None) -> dict[str, Any]:
    if key_env is not None:
        operation["security"] = [{"apiKey": []}]
        operation["responses"].update(_errors(("401", "missing or wrong X-API-Key")))
    return operation


def openapi(system: System) -> dict[str, Any]:
    spec = system.spec
    paths: dict[str, Any] = {}
    defs: dict[str, Any] = {"Error": ERROR, "Accepted": ACCEPTED}
    for route in spec.ingress:
        model = system.components[route.component].outputs[route.port]
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        defs.update(schema.pop("$defs", {}))
        operation = {
            "operationId": f"{route.component}_{route.port}",
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "responses": {
                "202": _json("accepted: committed to the inbox", {"$ref": "#/components/schemas/Accepted"}),
                **_errors(
                    ("413", "body too large"),
                    ("415", "body is not JSON"),
                    ("422", "body does not match the schema"),
                    ("429", "rate limited; see Retry-After"),
                    ("503", "saturated, starting or stopping; see Retry-After"),
                ),
            },
        }
        key_env = route.api_key_env if route.auth == "api_key" else None
        paths.setdefault(route.path, {})[route.method.lower()] = _secured(operation, key_env)
    read_key = spec.read_key_env
    for store in spec.stores:
        record = {"type": "object"}
        # setdefault: an ingress route may share the store's path (POST /orders, GET /orders)
        paths.setdefault(f"/{store.component}", {})["get"] = _secured(
            {
                "operationId": f"{store.component}_list",
                "parameters": PAGE,
                "responses": {
                    "200": _json(
                        "records by key order",
                        {"type": "object", "properties": {"items": {"type": "array", "items": record}}},
                    ),
                    **_errors(("422", "bad limit or offset")),
                },
            },
            read_key,
        )
        paths.setdefault(f"/{store.component}/{{key}}", {})["get"] = _secured(
            {
                "operationId": f"{store.component}_get",
                "parameters": [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json("the record", record), **_errors(("404", "no such record"))},
            },
            read_key,
        )
    paths["/dead-letters"] = {
        "get": _secured(
            {
                "operationId": "dead_letters",
                "parameters": PAGE,
                "responses": {
                    "200": _json("dead letters with their error envelope", {"type": "object"}),
                    **_errors(("422", "bad limit or offset")),
                },
            },
            read_key,
        )
    }
    observe_key = read_key if spec.metrics_auth else None
    paths["/healthz"] = {
        "get": {"operationId": "healthz", "responses": {"200": _json("alive", {"type": "object"})}}
    }
    paths["/readyz"] = {
        "get": {
            "operationId": "readyz",
            "responses": {
                "200": _json("ready", {"type": "object"}),
                "503": _json("not ready, with the reasons", {"type": "object"}),
            },
        }
    }
    paths["/metrics"] = {
        "get": _secured(
            {
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            },
            observe_key,
        )
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": spec.name, "version": spec.version, "description": spec.description},
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }
