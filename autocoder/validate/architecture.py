"""The architecture policy of the blueprint.

What is system-wide (resource limits, kernel capabilities, auth on ingress, the runtime's own
files) is verified by the `policy` task; the forbidden imports of a component's own module are
found by that component's `lint` task (`import_findings`), so an edit to one component does not
re-scan every other component's code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autocoder.analysis.deployment import cpu_millis, memory_bytes
from autocoder.blueprint.models import SecurityPolicy
from autocoder.canonical import content_hash
from autocoder.ir.models import IR
from autocoder.layout import GENERATED, SOURCES
from autocoder.validate.ast_policy import check_source, policy_rules
from autocoder.validate.findings import Finding, under
from autocoder.validate.merge import FileCache

KERNEL = ("schema_validation", "rate_limit", "metrics")


def verify(ir: IR, src: Path, runtime_files: list[str], cache: FileCache | None = None) -> list[Finding]:
    """Findings AP100-AP103 (positioned on the IR) and AP104 on the runtime's files (on the code),
    these through `cache` when given."""
    findings: list[Finding] = []
    limit = ir.policy.resources
    require_auth = ir.policy.security.require_auth_on_ingress
    for comp in ir.components:
        where = f"{GENERATED}/ir.v1.json#components/{comp.name}"
        resources = comp.deployment.resources
        if limit is not None and resources is None:
            findings.append(
                _finding(
                    where,
                    "AP100",
                    f"{comp.name} has no resource limits in deployment.yaml "
                    f"(policy.resources: cpu {limit.cpu}, memory {limit.memory})",
                )
            )
        if (
            limit is not None
            and resources is not None
            and (
                cpu_millis(resources.cpu) > cpu_millis(limit.cpu)
                or memory_bytes(resources.memory) > memory_bytes(limit.memory)
            )
        ):
            findings.append(
                _finding(
                    where,
                    "AP101",
                    f"{comp.name} asks cpu {resources.cpu}, memory "
                    f"{resources.memory}; policy allows {limit.cpu}, {limit.memory}",
                )
            )
        caps = comp.capabilities
        kernel = {
            "schema_validation": caps.schema_validation,
            "rate_limit": caps.rate_limit,
            "metrics": caps.metrics,
        }
        missing = [k for k in KERNEL if not kernel[k]]
        if missing:
            findings.append(_finding(where, "AP102", f"{comp.name} lacks kernel capabilities {missing}"))
        if comp.kind == "api_endpoint" and require_auth and comp.security.auth == "none":
            findings.append(_finding(where, "AP103", f"ingress {comp.name} has no auth"))
    # the runtime's own files: forbidden imports only (the calls rule is the components')
    security = SecurityPolicy(forbidden_imports=ir.policy.security.forbidden_imports)
    for path in runtime_files:
        findings += _runtime_findings(src, path, security, cache)
    if cache is not None:
        cache.save()
    return sorted(findings)


def _runtime_findings(
    src: Path, path: str, security: SecurityPolicy, cache: FileCache | None
) -> list[Finding]:
    """AP104 in one runtime file. Its wiring module grows with the system (145 kB at 500
    components) and rarely changes, so its findings are cached by its stat and the policy."""

    def scan(raw: bytes) -> list[dict[str, Any]]:
        code = check_source(raw.decode(), path, security, system_code=True)
        return [f.to_json() for f in import_findings(under(SOURCES, code))]

    if cache is None:
        found = scan((src / path).read_bytes())
    else:
        salt = content_hash([{"forbidden_imports": security.forbidden_imports}, policy_rules()])
        found = cache.get(str(src / path), scan, salt=salt) or []
    return [Finding(**f) for f in found]


def import_findings(findings: list[Finding]) -> list[Finding]:
    """AP104, one per forbidden import or use (AP010) in system code: the architecture policy's
    own finding, which a component's suppression of AP010 does not waive."""
    return [
        Finding(f.path, f.line, f.col, "policy", "AP104", f.message) for f in findings if f.rule == "AP010"
    ]


def _finding(where: str, rule: str, message: str) -> Finding:
    return Finding(where, 1, 1, "policy", rule, message)
