"""generated/ir.deploy.json (deploy/plan_input.py): deploy:plan's only input from the IR.

The plan built from it must equal the plan built from the whole IR (every example, and the
hostile blueprints, whose every deployment string is free text), and its bytes change only when
the plan may: a component's own logic, examples or description leave them.
The doit side (a logic edit does not run deploy:plan) is tests/test_deploy.py's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from test_hostile_codegen import HOSTILE, hostile_blueprints

from autocoder.compile import compile_sources
from autocoder.deploy.plan import build_plan
from autocoder.deploy.plan_input import PLAN_INPUT, encode_plan_input, write_plan_input
from autocoder.ir.models import dump

EXAMPLES = REPO / "examples"
ALL = sorted(p.name for p in EXAMPLES.iterdir() if (p / "architecture.yaml").is_file())


def _ir(arch: bytes, deploy: bytes) -> dict:
    result = compile_sources(arch, deploy)
    assert result.ir is not None, [d.format() for d in result.diagnostics]
    return json.loads(json.dumps(dump(result.ir)))  # the JSON form, as in ir.v1.json


def _sources(example: str) -> tuple[str, str]:
    folder = EXAMPLES / example
    return (folder / "architecture.yaml").read_text(), (folder / "deployment.yaml").read_text()


@pytest.mark.parametrize("example", ALL)
def test_the_plan_from_the_cut_equals_the_plan_from_the_ir(example: str) -> None:
    arch, deploy = _sources(example)
    ir = _ir(arch.encode(), deploy.encode())
    cut = encode_plan_input(ir)
    assert cut == encode_plan_input(_ir(arch.encode(), deploy.encode()))  # deterministic
    assert build_plan(json.loads(cut), "9.9.9") == build_plan(ir, "9.9.9")


@pytest.mark.parametrize("i", range(len(HOSTILE)))
def test_the_plan_from_the_cut_equals_the_plan_from_the_ir_for_hostile_text(i: int) -> None:
    arch, deploy_text = hostile_blueprints(i)
    deploy = yaml.safe_load(deploy_text)
    deploy["observability"] = {"otlp_endpoint": "http://collector:4318/x"}
    deploy["ingress"] = {"host": "rt.example.com", "tls_secret": "rt-tls", "class": "nginx"}
    ir = _ir(arch, yaml.safe_dump(deploy).encode())
    assert build_plan(json.loads(encode_plan_input(ir)), "9.9.9") == build_plan(ir, "9.9.9")


# (example, file, text, replacement): each leaves the plan as it is
LOCAL = [
    ("orders", "architecture.yaml", '"quantity * unit_price"', '"unit_price * quantity"'),
    ("orders", "architecture.yaml", '"total >= 100"', '"total >= 150"'),
    ("orders", "architecture.yaml", "A-000004, quantity: 20", "A-000009, quantity: 20"),
    ("orders", "architecture.yaml", "  - name: pricer\n", "  - name: pricer\n    description: prices\n"),
    (
        "telemetry",
        "architecture.yaml",
        "avg_temperature: avg(temperature)",
        "avg_temperature: min(temperature)",
    ),
]

# ... and each of these changes it
RENDERED = [
    (
        "orders",
        "architecture.yaml",
        "config: {key: order_id}\n",
        "config: {key: order_id}\n    budget: {p95_ms: 5}\n",
    ),
    (
        "orders",
        "architecture.yaml",
        "resources: {cpu: 500m, memory: 256Mi}",
        "resources: {cpu: 900m, memory: 256Mi}",
    ),
    ("orders", "deployment.yaml", "resources: {default: {cpu: 250m,", "resources: {default: {cpu: 300m,"),
    ("orders", "deployment.yaml", "env: {LOG_LEVEL: INFO}", "env: {LOG_LEVEL: DEBUG}"),
    ("orders", "architecture.yaml", 'version: "0.1.0"', 'version: "0.2.0"'),
    ("webhooks", "architecture.yaml", "127.0.0.1:9/pager", "127.0.0.1:8443/pager"),
]


def _cut(example: str, file: str, old: str, new: str) -> tuple[bytes, bytes]:
    arch, deploy = _sources(example)
    text = arch if file == "architecture.yaml" else deploy
    assert text.count(old) == 1, old
    edited = text.replace(old, new)
    before = encode_plan_input(_ir(arch.encode(), deploy.encode()))
    if file == "architecture.yaml":
        return before, encode_plan_input(_ir(edited.encode(), deploy.encode()))
    return before, encode_plan_input(_ir(arch.encode(), edited.encode()))


@pytest.mark.parametrize(("example", "file", "old", "new"), LOCAL)
def test_a_component_local_edit_keeps_the_cut(example: str, file: str, old: str, new: str) -> None:
    before, after = _cut(example, file, old, new)
    assert after == before


@pytest.mark.parametrize(("example", "file", "old", "new"), RENDERED)
def test_an_edit_of_what_the_plan_holds_changes_the_cut(example: str, file: str, old: str, new: str) -> None:
    before, after = _cut(example, file, old, new)
    assert after != before


def test_the_cut_is_written_only_when_it_changes(tmp_path: Path) -> None:
    generated = tmp_path / "generated"
    arch, deploy = _sources("orders")
    ir = _ir(arch.encode(), deploy.encode())
    assert write_plan_input(generated, tmp_path, ir) is True
    stamp = (generated / PLAN_INPUT).stat().st_mtime_ns
    edited = _ir(arch.replace('"total >= 100"', '"total >= 150"').encode(), deploy.encode())
    assert write_plan_input(generated, tmp_path, edited) is False
    assert (generated / PLAN_INPUT).stat().st_mtime_ns == stamp
    assert (generated / PLAN_INPUT).read_bytes() == encode_plan_input(ir)
