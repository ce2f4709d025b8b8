"""The system-level generated files (runtime harness, app, __main__, packaging, integration test)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from autocoder.codegen.literals import pyliteral
from autocoder.codegen.models import models_module
from autocoder.codegen.paths import RUNTIME_FILES
from autocoder.codegen.render import LINE_LENGTH, format_python, render
from autocoder.codegen.strategies import simplest_message
from autocoder.ir.models import IR, AggregatorIR, ApiEndpointIR, ComponentIR, SinkIR, StoreIR, TransformerIR


def generate_runtime(ir: IR, samples: Path | None = None, format_cache: Path | None = None) -> dict[str, str]:
    """{relative path under generated/src: content} for the system-level files.
    `samples`: the cache of simplest valid messages (see strategies.simplest_message);
    `format_cache`: format_python's cache of the last run's formatted files."""
    context = system_context(ir, samples)
    files = {}
    for path, template in RUNTIME_FILES.items():
        target = path.format(system=context["system"])
        files[target] = render(template, **context) if template else '"""Tests of the generated system."""\n'
    from autocoder.codegen.path_tests import path_test_files  # it builds on this module

    files.update(path_test_files(ir, samples))
    python = format_python({k: v for k, v in files.items() if k.endswith(".py")}, format_cache)
    return {**files, **python}


def system_spec(ir: IR) -> dict[str, Any]:
    """The SystemSpec literal of app.py (autocoder_runtime.spec.SystemSpec): wiring and
    deployment settings, every string a literal."""
    system = ir.system
    conditions = condition_names(ir)
    bindings = [
        {
            "source": b.source.component,
            "port": b.source.port,
            "target": t.component,
            "target_port": t.port,
            "condition": conditions.get(i),
        }
        for i, b in enumerate(ir.bindings)
        for t in b.to
    ]
    ingress = [
        {
            "component": c.name,
            "method": r.method,
            "path": r.path,
            "port": r.emit,
            "auth": c.security.auth,
            "api_key_env": c.security.api_key_env or "API_KEY",
            "max_body_bytes": c.config.max_body_bytes,
        }
        for c in _ingresses(ir)
        for r in c.config.routes
    ]
    deployment = ir.deployment
    return {
        "name": system.name,
        "version": system.version,
        "description": system.description or "",
        "bindings": bindings,
        "ingress": ingress,
        "stores": [{"component": name, "key": key} for name, key in read_stores(ir)],
        "order": list(ir.topology),
        "read_key_env": read_key_env(ir),
        "metrics_auth": deployment.observability.metrics_auth,
        "backend": deployment.store.backend,
        "log_level": deployment.observability.log_level,
        "secrets": sorted({key for secret in deployment.secrets for key in secret.keys}),
    }


def _ingresses(ir: IR) -> list[ApiEndpointIR]:
    return [c for c in ir.components if isinstance(c, ApiEndpointIR)]


def condition_names(ir: IR) -> dict[int, str]:
    """Binding index -> name of its condition function in app.py."""
    return {i: f"condition_{i}" for i, b in enumerate(ir.bindings) if b.condition is not None}


def read_stores(ir: IR) -> list[tuple[str, str]]:
    """(store, key field) of every store served over HTTP."""
    return [
        (c.name, c.config.key) for c in ir.components if isinstance(c, StoreIR) and c.config.read_endpoints
    ]


def system_context(ir: IR, samples: Path | None = None) -> dict[str, Any]:
    system = ir.system
    models = models_module(ir.schemas)
    annotations = " ".join(f.annotation for m in models for f in m.fields)
    typing = [name for name in ("Any", "Literal") if re.search(rf"\b{name}\b", annotations)]
    conditions = []
    for i, name in sorted(condition_names(ir).items()):
        condition = ir.bindings[i].condition
        assert condition is not None  # condition_names holds only bindings with one
        conditions.append({"name": name, "python": condition.python})
    routes = []
    for comp in _ingresses(ir):
        for route in comp.config.routes:
            schema = ir.schemas[comp.outputs[route.emit]]
            routes.append(
                {
                    "component": comp.name,
                    "method": route.method,
                    "path": route.path,
                    "auth": comp.security.auth,
                    "sample": pyliteral(simplest_message(schema.fields, samples)),
                }
            )
    records = expected_records(ir)
    return {
        "system": system.name,
        "line_length": LINE_LENGTH,
        "version": system.version,
        "description": system.description or f"the {system.name} system",
        "runtime_version": runtime_version(),
        "components": sorted(c.name for c in ir.components),
        "conditions": conditions,
        "spec": pyliteral(system_spec(ir)),
        "models": models,
        "typing_imports": typing,
        "any_config": any(m.config for m in models),
        "stores": [list(s) for s in read_stores(ir)],
        "expect_records": records,
        # every test's limit: room for the integration test's longest wait for a window
        "test_timeout_s": max([120.0, *(wait + 60.0 for *_, wait in records)]),
        # integration test context
        "routes": routes,
    }


def runtime_version() -> str:
    import autocoder_runtime

    return autocoder_runtime.__version__


def expected_records(ir: IR) -> list[list[Any]]:
    """(ingress path, store, key field, seconds to wait) for stores fed from an ingress through
    transformers that leave the store's key alone, aggregators keyed by that field, and
    bindings without conditions: a posted message (or its window's result) must arrive."""
    found = []
    for comp in _ingresses(ir):
        for route in comp.config.routes:
            for name, key, wait in arrivals(ir, comp.name, route.emit):
                if key is not None:
                    found.append([route.path, name, key, wait])
    return sorted(found)


def arrivals(ir: IR, start: str, port: str) -> list[tuple[str, str | None, float]]:
    """(end, store key field or None, seconds to wait) for every store and sink a message put
    out on `start`'s `port` must reach: through transformers with declarative logic,
    aggregators keyed by a field (a store's key only if nothing on the way changed it; its
    window's close is waited for), and bindings without conditions. A filter, router or
    LLM-written step may drop it, so nothing past one is expected."""
    components: dict[str, ComponentIR] = {c.name: c for c in ir.components}
    found: dict[tuple[str, str | None], float] = {}
    stack: list[tuple[str, str, frozenset[str], float]] = [(start, port, frozenset(), 0.0)]
    while stack:
        name, port, changed, wait = stack.pop()
        for down in components[name].downstream:
            if down.port != port or down.condition is not None:
                continue
            for target in down.to:
                nxt = components[target.component]
                out_port = next(iter(nxt.outputs), "")
                item: tuple[str, str | None] | None = None
                if isinstance(nxt, StoreIR):
                    keyed = nxt.config.read_endpoints and nxt.config.key not in changed
                    item = (nxt.name, nxt.config.key if keyed else None)
                elif isinstance(nxt, SinkIR):
                    item = (nxt.name, None)
                elif isinstance(nxt, TransformerIR) and nxt.logic is not None:
                    stack.append((nxt.name, out_port, changed | set(nxt.logic.set), wait))
                elif isinstance(nxt, AggregatorIR) and nxt.logic and nxt.logic.key_field:
                    key = nxt.logic.key_field
                    if key in changed or nxt.config.event_time:
                        continue
                    fields = set(ir.schemas[nxt.outputs[out_port]].fields) - {key}
                    window = float(nxt.config.window_s) + float(nxt.config.grace_s)
                    stack.append((nxt.name, out_port, changed | fields, wait + window))
                if item is not None:
                    found[item] = max(found.get(item, 0.0), wait)
    return [(name, key, wait + 10.0) for (name, key), wait in sorted(found.items(), key=str)]


def read_key_env(ir: IR) -> str | None:
    """Store reads and dead letters need the key of the system's ingress (the first api_key
    ingress's env var, API_KEY by default) whenever policy requires auth on ingress."""
    if not ir.policy.security.require_auth_on_ingress:
        return None
    envs = [
        c.security.api_key_env or "API_KEY"
        for c in sorted(_ingresses(ir), key=lambda c: c.name)
        if c.security.auth == "api_key"
    ]
    return envs[0] if envs else "API_KEY"
