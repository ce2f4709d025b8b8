"""What gen:runtime reads of the IR: generated/ir.runtime.json, written by `ir`.

The system-level files (app.py, models.py, the smoke and path tests...) render the wiring, the
schemas, the ingress routes, the stores' keys and the deployment settings, never a component's
own logic, examples or budget. ir.v1.json changes on every edit (each component's fingerprint,
the blueprint's sha256), so gen:runtime depending on it re-ran, 3 s at 500 components, for an
edit whose output bytes were the same. This projection is the IR with what gen:runtime does not
read set to fixed neutral values: a valid IR (gen:runtime loads it as one), whose bytes change
only when something gen:runtime renders may change. gen:runtime reads this file and nothing
else of the IR, so a field it reads can never be stale: one wrongly neutralised here would
change its output on every build, which tests/test_runtime_ir.py compares with the full IR's.

What is kept of a component's logic is its shape: the fields a transformer sets (a path test
expects a store's key only if no step on the way changes it), an aggregator's key field, a
router's route targets; its expressions are not (their Python goes into the component's own
module). Binding conditions are wiring and are kept whole (app.py holds them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from autocoder.canonical import compact_json

RUNTIME_IR = "ir.runtime.json"  # under generated/, next to ir.v1.json

_EXPR = {"source": "", "python": "", "type": "", "fields": []}
_BUDGET = {"p95_ms": 0, "throughput_rps": None}
_CAPABILITIES = {
    "schema_validation": True,
    "metrics": True,
    "rate_limit": {"rate": 0, "burst": 0},
    "retry": None,
    "circuit_breaker": None,
    "timeout": None,
    "concurrency": 1,
}


def runtime_projection(ir: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of an IR (ir.v1.json's) without what no system-level file renders (see
    the module docstring); `ir` itself is left as it was."""
    projected = dict(ir)
    projected["components"] = [_component(c) for c in ir["components"]]
    projected["metadata"] = {"sources": [], "warnings": [], "capacity": []}
    return projected


def encode_projection(ir_json: bytes | dict[str, Any]) -> bytes:
    """The file's bytes from ir.v1.json's (or their parsed JSON): sorted keys, compact
    (gen:runtime is its only reader; the JSON of the pydantic models, indented, would cost `ir`
    four times as long at 500 components), final newline."""
    data = runtime_projection(json.loads(ir_json) if isinstance(ir_json, bytes) else ir_json)
    return (compact_json(data) + "\n").encode()


def write_projection(generated: Path, root: Path, ir: dict[str, Any] | None = None) -> bool:
    """Write generated/ir.runtime.json from generated/ir.v1.json (`ir`: its parsed JSON, when
    the caller has it) when its bytes change (the `ir` task, after write_ir); whether it was
    written. Confined to the project `root`."""
    from autocoder.fsutil import confined, write_if_changed
    from autocoder.ir.write import ir_path

    if ir is None:
        ir = json.loads(confined(root, ir_path(generated)).read_bytes())
    return write_if_changed(confined(root, generated / RUNTIME_IR), encode_projection(ir))


def _component(component: dict[str, Any]) -> dict[str, Any]:
    projected = {
        **component,
        "description": None,
        "examples": [],
        "suppressions": [],
        "fingerprint": "",
        "budget": _BUDGET,
        "capabilities": _CAPABILITIES,
        "deployment": {**component["deployment"], "replicas": 1, "resources": None},
        "logic": _logic_shape(component["logic"]),
    }
    return projected


def _logic_shape(logic: dict[str, Any] | None) -> dict[str, Any] | None:
    """The logic with every expression replaced by one neutral expression; names kept (the
    fields a transformer sets, an aggregator's key field and outputs, a router's targets)."""
    if logic is None:
        return None
    if "set" in logic:  # transformer, source
        return {"set": dict.fromkeys(logic["set"], _EXPR)}
    if "where" in logic:  # filter
        return {"where": _EXPR}
    if "routes" in logic:  # router
        return {**logic, "routes": [{**r, "when": _EXPR} for r in logic["routes"]]}
    if "aggregate" in logic:  # aggregator
        aggregate = {name: _aggregate_shape(a) for name, a in logic["aggregate"].items()}
        return {**logic, "key": _EXPR, "aggregate": aggregate}
    raise ValueError(f"ir.runtime.json: unknown logic shape with keys {sorted(logic)}")


def _aggregate_shape(aggregate: dict[str, Any]) -> dict[str, Any]:
    argument = None if aggregate["argument"] is None else _EXPR
    return {**aggregate, "source": "", "function": "count", "argument": argument}
