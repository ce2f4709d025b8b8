"""The HTTP face of a system: ingress routes, store reads, dead letters, health, metrics, OpenAPI.

Every client mistake gets a 4xx with a JSON body saying what was wrong, and nothing in the log
but a counter: 401 (key), 413 (body too large: the body is read in chunks and the request is
cut off at the limit, never buffered whole), 415 (not JSON), 422 (not UTF-8, not JSON, too
deep, out of range, not the schema; bad query parameters), 429 (rate limit). 503 means the
system cannot take the message now (saturated, starting or stopping); Retry-After says when
to come back. A 202 means the message is committed to the inbox.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from autocoder_runtime.kinds import Store
from autocoder_runtime.logs import log
from autocoder_runtime.messages import field_errors
from autocoder_runtime.settings import drain_timeout_s
from autocoder_runtime.spec import IngressRoute
from autocoder_runtime.system import System

Endpoint = Callable[[Request], Awaitable[Response]]
MAX_LIMIT = 1000
MAX_OFFSET = 2**31 - 1
JSON_TYPES = ("application/json",)


class TooLarge(Exception):
    pass


def _error(
    status: int, message: str, retry_after: float | None = None, close: bool = False, **extra: Any
) -> JSONResponse:
    """A JSON error answer. `close`: the request's body was not read to its end, so the
    connection ends with the answer (else the server would go on reading and discarding
    whatever the client still sends)."""
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else {}
    if close:
        headers["Connection"] = "close"
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def authorized(request: Request, env: str | None) -> bool:
    """Constant-time check of X-API-Key against the variable `env`; an unset key admits no one."""
    if env is None:
        return True
    expected = os.environ.get(env, "")
    given = request.headers.get("x-api-key", "")
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing it as soon as it passes `limit` bytes (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def bounded_int(request: Request, name: str, default: int, maximum: int) -> int:
    """A query parameter as an int in [0, maximum]; ValueError names the parameter."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # ASCII digits only: str.isdigit() also admits superscripts int() refuses
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12 or int(raw) > maximum:
        raise ValueError(f"{name} must be an integer from 0 to {maximum}")
    return int(raw)


def is_json(request: Request) -> bool:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


class Http:
    """The routes of one system; each answer is counted by route and status."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.read_key = system.spec.read_key_env

    def counted(self, route: str, endpoint: Endpoint) -> Endpoint:
        async def wrapper(request: Request) -> Response:
            response = await endpoint(request)
            self.system.metrics.responses.labels(route=route, status=str(response.status_code)).inc()
            return response

        return wrapper

    def guarded(self, endpoint: Endpoint, key_env: str | None) -> Endpoint:
        async def wrapper(request: Request) -> Response:
            if not authorized(request, key_env):
                return _error(401, "missing or wrong X-API-Key")
            return await endpoint(request)

        return wrapper

    # -- ingress

    def ingress(self, route: IngressRoute) -> Endpoint:
        system = self.system
        component = system.components[route.component]
        model: type[BaseModel] = component.outputs[route.port]
        key_env = route.api_key_env if route.auth == "api_key" else None

        async def endpoint(request: Request) -> Response:
            if not system.accepting:
                return _error(
                    503, "not accepting messages now (starting or stopping)", retry_after=1, close=True
                )
            # answers before the body is read close the connection: it is never read
            if not authorized(request, key_env):
                return _error(401, "missing or wrong X-API-Key", close=True)
            if not is_json(request):
                return _error(415, "the body must be JSON: send Content-Type: application/json", close=True)
            try:
                body = await read_body(request, route.max_body_bytes)
            except TooLarge:
                return _error(413, f"body larger than {route.max_body_bytes} bytes", close=True)
            except ClientDisconnect:
                return _error(400, "the client went away before sending the whole body", close=True)
            if not component.bucket.try_acquire():
                return _error(429, "rate limit exceeded", retry_after=component.bucket.retry_after())
            try:
                message = model.model_validate_json(body).model_dump(mode="json")
            except ValidationError as exc:
                return _error(422, "body does not match the schema", errors=field_errors(exc))
            if system.saturated():
                return _error(503, "system saturated, try again", retry_after=1)
            trace_id = _trace_id(request)
            with system.telemetry.origin(
                f"{route.method} {route.path}", "server", route.component, trace_id
            ) as span:
                try:
                    await system.accept(route.component, route.port, message, trace_id)
                except Exception as exc:  # noqa: BLE001 - the database failed: not the client's fault
                    log(logging.ERROR, "inbox write failed", component=route.component, error=repr(exc))
                    span.failed(f"inbox write failed: {type(exc).__name__}")
                    return _error(503, "cannot store the message now, try again", retry_after=1)
            series = system.metrics.of(route.component)  # the kernel's lookup (component.series)
            series.received.inc()
            series.emitted.inc()
            return JSONResponse({"accepted": True, "trace_id": trace_id}, status_code=202)

        return endpoint

    # -- reads

    def store_reads(self, store: Store) -> tuple[Endpoint, Endpoint]:
        async def get_one(request: Request) -> Response:
            record = await store.get(request.path_params["key"])
            if record is None:
                return _error(404, "no such record")
            return JSONResponse(record)

        async def get_many(request: Request) -> Response:
            try:
                limit = bounded_int(request, "limit", 100, MAX_LIMIT)
                offset = bounded_int(request, "offset", 0, MAX_OFFSET)
            except ValueError as exc:
                return _error(422, str(exc))
            return JSONResponse({"items": await store.list(limit, offset), "limit": limit, "offset": offset})

        return get_one, get_many

    async def dead_letters(self, request: Request) -> Response:
        try:
            limit = bounded_int(request, "limit", 100, MAX_LIMIT)
            offset = bounded_int(request, "offset", 0, MAX_OFFSET)
        except ValueError as exc:
            return _error(422, str(exc))
        db = self.system.database()
        rows = await db.dead_letter_list(limit, offset)
        keys = ("id", "ts", "component", "port", "error", "payload", "trace_id")
        items = [dict(zip(keys, row, strict=True)) | {"payload": json.loads(row[5])} for row in rows]
        return JSONResponse(
            {"items": items, "total": await db.dead_letter_count(), "limit": limit, "offset": offset}
        )

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        reasons = self.system.not_ready()
        if reasons:
            return JSONResponse({"ready": False, "reasons": reasons}, status_code=503)
        return JSONResponse({"ready": True})

    async def metrics(self, request: Request) -> Response:
        """Every sample, or with `?name[]=` (repeatable, as prometheus_client's own exposition
        takes it) only the samples of those names: a test polling one counter of a system of
        hundreds of components gets a few lines, not every component's histograms."""
        registry = self.system.metrics.registry
        names = request.query_params.getlist("name[]")
        chosen = registry.restricted_registry(names) if names else registry
        return Response(generate_latest(chosen), media_type=CONTENT_TYPE_LATEST)


def _trace_id(request: Request) -> str:
    given = request.headers.get("x-trace-id", "")
    if 0 < len(given) <= 64 and all(c.isalnum() or c in "-_" for c in given):
        return given
    return uuid.uuid4().hex


def create_app(system: System) -> Starlette:
    """The Starlette app of a system; its lifespan starts and stops the system."""
    http = Http(system)
    spec = system.spec

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for route in spec.ingress:
            if route.auth == "api_key" and not os.environ.get(route.api_key_env):
                log(
                    logging.WARNING,
                    "API key not set: every request will get 401",
                    variable=route.api_key_env,
                    route=f"{route.method} {route.path}",
                    fix=f"set {route.api_key_env} in the environment",
                )
        if spec.read_key_env is not None and not os.environ.get(spec.read_key_env):
            log(
                logging.WARNING,
                "API key not set: every read of stores and dead letters will get 401",
                variable=spec.read_key_env,
                fix=f"set {spec.read_key_env} in the environment",
            )
        await system.start()
        try:
            yield
        finally:
            await system.stop(drain_timeout_s())

    from autocoder_runtime.openapi import openapi

    document = openapi(system)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(document)

    observe_key = spec.read_key_env if spec.metrics_auth else None
    routes = [
        Route("/healthz", http.counted("/healthz", http.healthz)),
        Route("/readyz", http.counted("/readyz", http.readyz)),
        Route("/metrics", http.counted("/metrics", http.guarded(http.metrics, observe_key))),
        Route("/openapi.json", http.counted("/openapi.json", http.guarded(openapi_json, observe_key))),
        Route(
            "/dead-letters", http.counted("/dead-letters", http.guarded(http.dead_letters, spec.read_key_env))
        ),
    ]
    for route in spec.ingress:
        routes.append(
            Route(route.path, http.counted(route.path, http.ingress(route)), methods=[route.method])
        )
    for store_route in spec.stores:
        store = system.components[store_route.component]
        assert isinstance(store, Store)
        get_one, get_many = http.store_reads(store)
        base = f"/{store_route.component}"
        routes.append(
            Route(base, http.counted(base, http.guarded(get_many, spec.read_key_env)), methods=["GET"])
        )
        routes.append(
            Route(
                base + "/{key}",
                http.counted(base + "/{key}", http.guarded(get_one, spec.read_key_env)),
                methods=["GET"],
            )
        )
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.system = system
    return app
