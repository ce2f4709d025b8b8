"""What deploy:plan reads of the IR: generated/ir.deploy.json, written by `ir`.

ir.v1.json changes on every edit (each component's fingerprint, the blueprint's sha256), so
deploy:plan depending on it re-ran on every logic edit (0.27 s at 500 components) only to write
the same plan. This file is the IR cut down to exactly the fields build_plan (deploy/plan.py)
reads, so its bytes change only when the plan may; deploy:plan reads nothing else of the IR.
tests/test_deploy_plan_input.py proves build_plan(plan_input(ir)) == build_plan(ir) for every
example and that a component's own logic, examples or description leave the bytes.

No pydantic here: the `ir` task imports this module to write the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autocoder.canonical import compact_json

PLAN_INPUT = "ir.deploy.json"  # under generated/, next to ir.v1.json


def plan_input(ir: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of an IR (ir.v1.json's) with only what build_plan reads."""
    return {
        "system": {"name": ir["system"]["name"], "version": ir["system"]["version"]},
        "deployment": ir["deployment"],
        "policy": {"resources": ir["policy"].get("resources")},
        "components": [
            {
                "name": c["name"],
                "kind": c["kind"],
                "config": c["config"] if c["kind"] == "sink" else {},  # a webhook's URL: egress
                "deployment": {
                    "replicas": c["deployment"]["replicas"],
                    "resources": c["deployment"]["resources"],
                },
                "budget": {"p95_ms": c["budget"]["p95_ms"]},  # the alert thresholds
            }
            for c in ir["components"]
        ],
    }


def encode_plan_input(ir: dict[str, Any]) -> bytes:
    """The file's bytes: sorted keys, compact (deploy:plan is its only reader), final newline."""
    return (compact_json(plan_input(ir)) + "\n").encode()


def write_plan_input(generated: Path, root: Path, ir: dict[str, Any]) -> bool:
    """Write generated/ir.deploy.json from the IR's JSON form when its bytes change (the `ir`
    task, after write_ir); whether it was written. Confined to the project `root`."""
    from autocoder.fsutil import confined, write_if_changed

    return write_if_changed(confined(root, generated / PLAN_INPUT), encode_plan_input(ir))
