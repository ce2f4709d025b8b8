"""One generated integration test per path of the system (autocoder.flowpaths): what it sends,
and what must arrive where. Each is a target of gen:runtime, rewritten only when its bytes
change, so a path's test task re-runs only when a component on the path (or the path) does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autocoder.codegen.literals import pyliteral
from autocoder.codegen.paths import PATH_TEST_TEMPLATE
from autocoder.codegen.render import render
from autocoder.codegen.strategies import simplest_message
from autocoder.codegen.system import arrivals
from autocoder.flowpaths import FlowPath, flow_paths, path_test_file
from autocoder.ir.models import IR, ApiEndpointIR, ComponentIR, PortRef


def system_flow_paths(ir: IR) -> list[FlowPath]:
    edges = [(b.source.component, t.component) for b in ir.bindings for t in b.to]
    return flow_paths({c.name: c.kind for c in ir.components}, edges)


def path_test_files(ir: IR, samples: Path | None) -> dict[str, str]:
    """{relative path under generated/src: unformatted source} of every path's test."""
    return {
        path_test_file(path.id): render(PATH_TEST_TEMPLATE, **path_context(ir, path, samples))
        for path in system_flow_paths(ir)
    }


def path_context(ir: IR, path: FlowPath, samples: Path | None) -> dict[str, Any]:
    """The template's context: path_expectations plus each route's sample message."""
    context = path_expectations(ir, path)
    start = _component(ir, path.start)
    for route in context["routes"]:
        schema = ir.schemas[start.outputs[route["emit"]]]
        route["sample"] = pyliteral(simplest_message(schema.fields, samples))
    return context


def path_expectations(ir: IR, path: FlowPath) -> dict[str, Any]:
    """What the path's test sends (the start's routes that lead onto the path) and expects: the
    records the end must hold, whether anything must arrive there at all (`arrive`: nothing
    on the way may drop it), how long to wait, and the wiring between its components."""
    start = _component(ir, path.start)
    on_path = set(path.components)
    routes: list[dict[str, Any]] = []
    records: list[list[Any]] = []
    waits = [10.0]
    if isinstance(start, ApiEndpointIR):
        wired = {
            b.source.port
            for b in ir.bindings
            if b.source.component == start.name and any(t.component in on_path for t in b.to)
        }
        for route in start.config.routes:
            if route.emit not in wired:
                continue
            routes.append(
                {"method": route.method, "path": route.path, "emit": route.emit, "auth": start.security.auth}
            )
            for end, key, wait in arrivals(ir, start.name, route.emit):
                if end == path.end:
                    waits.append(wait)
                    if key is not None:
                        records.append([route.path, key, wait])
    else:  # a source: it sends by itself
        for port in start.outputs:
            waits += [wait for end, _, wait in arrivals(ir, start.name, port) if end == path.end]
    wiring = [  # the bindings between the path's components: a new condition re-runs the test
        [_port(b.source), _port(t), b.condition and b.condition.source]
        for b in ir.bindings
        if b.source.component in on_path
        for t in b.to
        if t.component in on_path
    ]
    return {
        "system": ir.system.name,
        "path": path,
        "wiring": sorted(wiring, key=str),
        "start_kind": start.kind,
        "end_kind": _component(ir, path.end).kind,
        "routes": routes,
        "records": sorted(records),
        "arrive": len(waits) > 1,
        "wait_s": max(waits),
    }


def _component(ir: IR, name: str) -> ComponentIR:
    return next(c for c in ir.components if c.name == name)


def _port(ref: PortRef) -> str:
    return f"{ref.component}.{ref.port}"
