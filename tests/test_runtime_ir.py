"""generated/ir.runtime.json (codegen/runtime_ir.py): gen:runtime's only input from the IR.

It must hold everything the system-level files render (generation from it equals generation
from the whole IR, for every example and so every component kind), and change only when one of
those files may (a component's own logic, examples, budget or description leave its bytes).
The doit side, which tasks an edit runs, is tests/test_doit.py's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

from autocoder.canonical import canonical_json
from autocoder.codegen.runtime_ir import encode_projection
from autocoder.codegen.system import generate_runtime
from autocoder.compile import compile_sources
from autocoder.ir.models import IR, dump

EXAMPLES = REPO / "examples"


def _sources(example: str) -> tuple[str, bytes]:
    folder = EXAMPLES / example
    return (folder / "architecture.yaml").read_text(), (folder / "deployment.yaml").read_bytes()


def _projection(arch: str, deploy: bytes) -> bytes:
    result = compile_sources(arch.encode(), deploy)
    assert result.ir is not None, [d.format() for d in result.diagnostics]
    return encode_projection(canonical_json(dump(result.ir)))


ALL = sorted(p.name for p in EXAMPLES.iterdir() if (p / "architecture.yaml").is_file())


@pytest.mark.parametrize("example", ALL)
def test_generation_from_the_projection_equals_generation_from_the_ir(example):
    arch, deploy = _sources(example)
    result = compile_sources(arch.encode(), deploy)
    assert result.ir is not None
    projection = encode_projection(canonical_json(dump(result.ir)))
    assert projection == _projection(arch, deploy)  # deterministic: a second compile, same bytes
    assert generate_runtime(IR.model_validate_json(projection)) == generate_runtime(result.ir)


# (example, text in its architecture.yaml, replacement): each changes only a component's own
# logic, examples, budget, description or capabilities, which no system-level file renders
LOCAL = [
    ("orders", '"quantity * unit_price"', '"unit_price * quantity"'),
    ("orders", '"total >= 100"', '"total >= 150"'),
    ("orders", "A-000004, quantity: 20", "A-000009, quantity: 20"),
    ("orders", "    config: {key: order_id}\n", "    config: {key: order_id}\n    budget: {p95_ms: 5}\n"),
    ("orders", "rate_limit: {rate: 100, burst: 200}", "rate_limit: {rate: 50, burst: 20}"),
    ("orders", "  - name: pricer\n", "  - name: pricer\n    description: prices an order\n"),
    ("telemetry", '"temperature >= 80"', '"temperature >= 90"'),
    ("telemetry", "avg_temperature: avg(temperature)", "avg_temperature: min(temperature)"),
]

# ... and each of these changes what a system-level file renders
RENDERED = [
    ("orders", "path: /orders,", "path: /orders/new,"),
    ("orders", "to: notifier.in}", "to: notifier.in, condition: 'total > 500'}"),
    ("orders", "{total: {type: number}}", "{total: {type: number}, note: {type: string, required: false}}"),
    ("orders", 'version: "0.1.0"', 'version: "0.2.0"'),
    ("orders", "require_auth_on_ingress: true", "require_auth_on_ingress: false"),
    ("telemetry", "config: {window_s: 10}", "config: {window_s: 20}"),
]


@pytest.mark.parametrize(("example", "old", "new"), LOCAL)
def test_a_component_local_edit_keeps_the_projection(example, old, new):
    arch, deploy = _sources(example)
    assert arch.count(old) == 1
    assert _projection(arch.replace(old, new), deploy) == _projection(arch, deploy)


@pytest.mark.parametrize(("example", "old", "new"), RENDERED)
def test_an_edit_of_what_is_rendered_changes_the_projection(example, old, new):
    arch, deploy = _sources(example)
    assert arch.count(old) == 1
    assert _projection(arch.replace(old, new), deploy) != _projection(arch, deploy)


def test_the_ir_task_writes_the_projection_only_when_it_changes(tmp_path: Path):
    from autocoder.codegen.runtime_ir import RUNTIME_IR, write_projection
    from autocoder.ir.write import ir_path

    generated = tmp_path / "generated"
    generated.mkdir()
    arch, deploy = _sources("orders")
    for text, written in [(arch, True), (arch.replace('"total >= 100"', '"total >= 150"'), False)]:
        result = compile_sources(text.encode(), deploy)
        assert result.ir is not None
        ir_path(generated).write_bytes(canonical_json(dump(result.ir)))
        assert write_projection(generated, tmp_path) is written
    assert (generated / RUNTIME_IR).read_bytes() == _projection(arch, deploy)
