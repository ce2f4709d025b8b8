"""The system-level generated files (runtime harness, app, __main__, packaging, integration test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autocoder.codegen.literals import pyliteral
from autocoder.codegen.paths import RUNTIME_FILES
from autocoder.codegen.render import LINE_LENGTH, format_python, render
from autocoder.codegen.strategies import simplest_message


def generate_runtime(ir: dict[str, Any], samples: Path | None = None) -> dict[str, str]:
    """{relative path under generated/src: content} for the system-level files.
    `samples`: the cache of simplest valid messages (see strategies.simplest_message)."""
    context = system_context(ir, samples)
    files = {}
    for path, template in RUNTIME_FILES.items():
        target = path.format(system=context["system"])
        files[target] = render(template, **context) if template else '"""Tests of the generated system."""\n'
    python = format_python({k: v for k, v in files.items() if k.endswith(".py")})
    return {**files, **python}


def system_context(ir: dict[str, Any], samples: Path | None = None) -> dict[str, Any]:
    system = ir["system"]
    components = {c["name"]: c for c in ir["components"]}
    conditions = []
    bindings = []
    for i, binding in enumerate(ir["bindings"]):
        condition = "None"
        if binding["condition"] is not None:
            condition = f"condition_{i}"
            conditions.append({"name": condition, "python": binding["condition"]["python"]})
        for target in binding["to"]:
            bindings.append(
                {
                    "source": binding["from"]["component"],
                    "port": binding["from"]["port"],
                    "target": target["component"],
                    "target_port": target["port"],
                    "condition": condition,
                }
            )
    ingress = []
    routes = []
    for comp in ir["components"]:
        if comp["kind"] != "api_endpoint":
            continue
        auth = comp["security"]["auth"]
        key_env = comp["security"]["api_key_env"] or "API_KEY"
        for route in comp["config"]["routes"]:
            ingress.append(
                [
                    comp["name"],
                    route["method"],
                    route["path"],
                    route["emit"],
                    auth,
                    key_env,
                    comp["config"]["max_body_bytes"],
                ]
            )
            schema = ir["schemas"][comp["outputs"][route["emit"]]]
            routes.append(
                {
                    "component": comp["name"],
                    "method": route["method"],
                    "path": route["path"],
                    "auth": auth,
                    "sample": pyliteral(simplest_message(schema["fields"], samples)),
                }
            )
    stores = [
        [c["name"], c["config"]["key"]]
        for c in ir["components"]
        if c["kind"] == "store" and c["config"]["read_endpoints"]
    ]
    return {
        "system": system["name"],
        "line_length": LINE_LENGTH,
        "version": system["version"],
        "description": system["description"] or f"the {system['name']} system",
        "components": sorted(components),
        "conditions": conditions,
        "bindings": bindings,
        "ingress": ingress,
        "stores": stores,
        "read_key_env": read_key_env(ir),
        "expect_records": expected_records(ir),
        # integration test context
        "routes": routes,
    }


def expected_records(ir: dict[str, Any]) -> list[list[str]]:
    """(ingress path, store, key field) for stores fed from an ingress through transformers that
    leave the store's key alone and bindings without conditions: a posted message must arrive."""
    components = {c["name"]: c for c in ir["components"]}
    found = set()
    for comp in ir["components"]:
        for route in comp["config"]["routes"] if comp["kind"] == "api_endpoint" else []:
            stack = [(comp["name"], route["emit"], frozenset())]
            while stack:
                name, port, changed = stack.pop()
                for down in components[name]["downstream"]:
                    if down["port"] != port or down["condition"] is not None:
                        continue
                    for target in down["to"]:
                        nxt = components[target["component"]]
                        if nxt["kind"] == "store" and nxt["config"]["read_endpoints"]:
                            if nxt["config"]["key"] not in changed:
                                found.add((route["path"], nxt["name"], nxt["config"]["key"]))
                        elif nxt["kind"] == "transformer" and nxt["logic"] is not None:
                            out_port = next(iter(nxt["outputs"]))
                            stack.append((nxt["name"], out_port, changed | set(nxt["logic"]["set"])))
    return [list(item) for item in sorted(found)]


def read_key_env(ir: dict[str, Any]) -> str | None:
    """Store reads and dead letters need the key of the system's ingress (the first api_key
    ingress's env var, API_KEY by default) whenever policy requires auth on ingress."""
    if not ir["policy"]["security"]["require_auth_on_ingress"]:
        return None
    envs = [
        c["security"]["api_key_env"] or "API_KEY"
        for c in sorted(ir["components"], key=lambda c: c["name"])
        if c["kind"] == "api_endpoint" and c["security"]["auth"] == "api_key"
    ]
    return envs[0] if envs else "API_KEY"
