"""The `policy` task: the architecture policy of the blueprint, verified on the whole system."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autocoder.analysis.deployment import cpu_millis, memory_bytes
from autocoder.layout import GENERATED, SOURCES
from autocoder.validate.ast_policy import check_source
from autocoder.validate.findings import Finding

KERNEL = ("schema_validation", "rate_limit", "metrics")


def verify(ir: dict[str, Any], src: Path, code_files: list[str]) -> list[Finding]:
    """Findings AP100-AP104 (positioned on the IR for architecture rules, on the code for imports)."""
    findings: list[Finding] = []
    limit = ir["policy"]["resources"]
    require_auth = ir["policy"]["security"]["require_auth_on_ingress"]
    for comp in ir["components"]:
        where = f"{GENERATED}/ir.v1.json#components/{comp['name']}"
        resources = comp["deployment"]["resources"]
        if limit is not None and resources is None:
            findings.append(
                _finding(
                    where,
                    "AP100",
                    f"{comp['name']} has no resource limits in deployment.yaml "
                    f"(policy.resources: cpu {limit['cpu']}, memory {limit['memory']})",
                )
            )
        if (
            limit is not None
            and resources is not None
            and (
                cpu_millis(resources["cpu"]) > cpu_millis(limit["cpu"])
                or memory_bytes(resources["memory"]) > memory_bytes(limit["memory"])
            )
        ):
            findings.append(
                _finding(
                    where,
                    "AP101",
                    f"{comp['name']} asks cpu {resources['cpu']}, memory "
                    f"{resources['memory']}; policy allows {limit['cpu']}, {limit['memory']}",
                )
            )
        caps = comp["capabilities"]
        missing = [k for k in KERNEL if not caps.get(k)]
        if missing:
            findings.append(_finding(where, "AP102", f"{comp['name']} lacks kernel capabilities {missing}"))
        if comp["kind"] == "api_endpoint" and require_auth and comp["security"]["auth"] == "none":
            findings.append(_finding(where, "AP103", f"ingress {comp['name']} has no auth"))
    security = {"forbidden_imports": ir["policy"]["security"]["forbidden_imports"]}
    for path in code_files:
        for f in check_source((src / path).read_text(), path, security, system_code=True):
            if f.rule == "AP010":
                findings.append(Finding(f"{SOURCES}/{f.path}", f.line, f.col, "policy", "AP104", f.message))
    return sorted(findings)


def _finding(where: str, rule: str, message: str) -> Finding:
    return Finding(where, 1, 1, "policy", rule, message)
