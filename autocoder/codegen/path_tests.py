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
from autocoder.ir.models import IR, ApiEndpointIR, BindingIR, ComponentIR, PortRef


def system_flow_paths(ir: IR) -> list[FlowPath]:
    edges = [(b.source.component, t.component) for b in ir.bindings for t in b.to]
    return flow_paths({c.name: c.kind for c in ir.components}, edges)


def path_test_files(ir: IR, samples: Path | None) -> dict[str, str]:
    """{relative path under generated/src: unformatted source} of every path's test."""
    looked_up = _Lookups(ir, samples)
    return {
        path_test_file(path.id): render(PATH_TEST_TEMPLATE, **path_context(ir, path, looked_up))
        for path in system_flow_paths(ir)
    }


class _Lookups:
    """What many paths ask for alike, computed once per IR: the paths from one ingress all
    follow the same fan-out (arrivals walks all of it: per path it would cost paths x
    components), and send the same sample message."""

    def __init__(self, ir: IR, samples: Path | None) -> None:
        self.ir = ir
        self.samples = samples
        self.components: dict[str, ComponentIR] = {c.name: c for c in ir.components}
        self.bindings_from: dict[str, list[BindingIR]] = {}
        for binding in ir.bindings:
            self.bindings_from.setdefault(binding.source.component, []).append(binding)
        self._arrivals: dict[tuple[str, str], list[tuple[str, str | None, float]]] = {}
        self._samples: dict[str, str] = {}

    def arrivals(self, start: str, port: str) -> list[tuple[str, str | None, float]]:
        key = (start, port)
        if key not in self._arrivals:
            self._arrivals[key] = arrivals(self.ir, start, port)
        return self._arrivals[key]

    def sample(self, schema: str) -> str:
        if schema not in self._samples:
            self._samples[schema] = pyliteral(simplest_message(self.ir.schemas[schema].fields, self.samples))
        return self._samples[schema]


def path_context(ir: IR, path: FlowPath, looked_up: _Lookups) -> dict[str, Any]:
    """The template's context: path_expectations plus each route's sample message."""
    context = path_expectations(ir, path, looked_up)
    start = looked_up.components[path.start]
    for route in context["routes"]:
        route["sample"] = looked_up.sample(start.outputs[route["emit"]])
    return context


def path_expectations(ir: IR, path: FlowPath, looked_up: _Lookups | None = None) -> dict[str, Any]:
    """What the path's test sends (the start's routes that lead onto the path) and expects: the
    records the end must hold, whether anything must arrive there at all (`arrive`: nothing
    on the way may drop it), how long to wait, and the wiring between its components."""
    looked_up = looked_up or _Lookups(ir, None)
    start = looked_up.components[path.start]
    on_path = set(path.components)
    routes: list[dict[str, Any]] = []
    records: list[list[Any]] = []
    waits = [10.0]
    if isinstance(start, ApiEndpointIR):
        wired = {
            b.source.port
            for b in looked_up.bindings_from.get(start.name, [])
            if any(t.component in on_path for t in b.to)
        }
        for route in start.config.routes:
            if route.emit not in wired:
                continue
            routes.append(
                {"method": route.method, "path": route.path, "emit": route.emit, "auth": start.security.auth}
            )
            for end, key, wait in looked_up.arrivals(start.name, route.emit):
                if end == path.end:
                    waits.append(wait)
                    if key is not None:
                        records.append([route.path, key, wait])
    else:  # a source: it sends by itself
        for port in start.outputs:
            waits += [wait for end, _, wait in looked_up.arrivals(start.name, port) if end == path.end]
    wiring = [  # the bindings between the path's components: a new condition re-runs the test
        [_port(b.source), _port(t), b.condition and b.condition.source]
        for name in path.components
        for b in looked_up.bindings_from.get(name, [])
        for t in b.to
        if t.component in on_path
    ]
    return {
        "system": ir.system.name,
        "path": path,
        "wiring": sorted(wiring, key=str),
        "start_kind": start.kind,
        "end_kind": looked_up.components[path.end].kind,
        "routes": routes,
        "records": sorted(records),
        "arrive": len(waits) > 1,
        "wait_s": max(waits),
    }


def _port(ref: PortRef) -> str:
    return f"{ref.component}.{ref.port}"
