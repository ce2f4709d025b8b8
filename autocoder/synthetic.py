"""Synthetic blueprints of any size, for benchmarks and scale tests.

N components: one HTTP ingress fanning out to groups of transformer -> filter -> (store, sink),
every component declarative, so the blueprint builds offline.
"""

from __future__ import annotations

from typing import Any

import yaml

GROUP = ("transformer", "filter", "store", "sink")


def synthetic_architecture(components: int, *, name: str = "synthetic") -> dict[str, Any]:
    if components < 2:
        raise ValueError("a synthetic blueprint needs at least 2 components")
    comps: list[dict[str, Any]] = [
        {
            "name": "ingress",
            "kind": "api_endpoint",
            "outputs": {"out": "Reading"},
            "config": {"routes": [{"method": "POST", "path": "/readings", "emit": "out"}]},
            "security": {"auth": "api_key"},
        }
    ]
    bindings: list[dict[str, Any]] = []
    fanout: list[str] = []
    groups, extra = divmod(components - 1, len(GROUP))
    for g in range(groups):
        t, f, st, sk = (f"trans_{g}", f"filte_{g}", f"store_{g}", f"sink_{g}")
        comps += [
            {
                "name": t,
                "kind": "transformer",
                "inputs": {"in": "Reading"},
                "outputs": {"out": "Scored"},
                "logic": {"set": {"score": f"value * {g + 1} + 0.5"}},
                "examples": [{"in": {"sensor": "s-1", "value": 2.0}, "out": {"score": 2.0 * (g + 1) + 0.5}}],
            },
            {
                "name": f,
                "kind": "filter",
                "inputs": {"in": "Scored"},
                "outputs": {"out": "Scored"},
                "logic": {"where": f"score > {g}"},
            },
            {"name": st, "kind": "store", "inputs": {"in": "Scored"}, "config": {"key": "sensor"}},
            {"name": sk, "kind": "sink", "inputs": {"in": "Scored"}, "config": {"target": "log"}},
        ]
        fanout.append(f"{t}.in")
        bindings += [
            {"from": f"{t}.out", "to": f"{f}.in"},
            {"from": f"{f}.out", "to": [f"{st}.in", f"{sk}.in"]},
        ]
    for k in range(extra):
        comps.append(
            {"name": f"extra_{k}", "kind": "sink", "inputs": {"in": "Reading"}, "config": {"target": "log"}}
        )
        fanout.append(f"extra_{k}.in")
    bindings.insert(0, {"from": "ingress.out", "to": fanout})
    return {
        "schema_version": "1.0.0",
        "system": {"name": name, "version": "0.1.0", "description": f"{components} synthetic components"},
        "schemas": {
            "Reading": {
                "fields": {
                    "sensor": {"type": "string", "pattern": "^[a-z0-9-]{1,32}$"},
                    "value": {"type": "number", "minimum": -1000000, "maximum": 1000000},
                }
            },
            "Scored": {"extends": "Reading", "fields": {"score": {"type": "number"}}},
        },
        "components": comps,
        "bindings": bindings,
        "policy": {"security": {"require_auth_on_ingress": True}},
    }


def synthetic_deployment() -> dict[str, Any]:
    return {
        "schema_version": "1.0.0",
        "environment": "development",
        "replicas": {"default": 1},
        "store": {"backend": "sqlite"},
        # as `autocoder init` writes it: checkov's image-digest rule waived for a local image
        "suppressions": [
            {
                "rule": "CKV_K8S_43",
                "reason": "the image is built locally and not pushed yet, so it has no digest to pin",
            }
        ],
    }


def write_synthetic(directory: Any, components: int) -> None:
    """Write architecture.yaml and deployment.yaml of a synthetic system into `directory`."""
    from pathlib import Path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "architecture.yaml").write_text(
        yaml.safe_dump(synthetic_architecture(components), sort_keys=False)
    )
    (directory / "deployment.yaml").write_text(yaml.safe_dump(synthetic_deployment(), sort_keys=False))
