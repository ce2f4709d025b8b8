"""SARIF 2.1.0: what code-scanning tools ingest. One log per component, one merged per system."""

from __future__ import annotations

from typing import Any

from autocoder.validate.findings import Finding

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOLS = {
    "ruff": "https://docs.astral.sh/ruff/",
    "bandit": "https://bandit.readthedocs.io/",
    "policy": "https://autocoder.dev/rules/policy",
}
LEVELS = {"error": "error", "warning": "warning", "note": "note"}


def sarif_log(findings: list[Finding]) -> dict[str, Any]:
    """A SARIF log with one run per tool (every tool listed, even with no results)."""
    runs = []
    for tool, uri in TOOLS.items():
        mine = sorted(f for f in findings if f.tool == tool)
        rules = sorted({f.rule for f in mine})
        runs.append(
            {
                "tool": {
                    "driver": {"name": tool, "informationUri": uri, "rules": [{"id": r} for r in rules]}
                },
                "results": [_result(f) for f in mine],
            }
        )
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": runs}


def _result(finding: Finding) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "level": LEVELS.get(finding.severity, "warning"),
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": finding.path},  # from the project root
                    "region": {"startLine": finding.line, "startColumn": finding.col},
                }
            }
        ],
    }
    if finding.suppressed_by:
        result["suppressions"] = [{"kind": "external", "justification": finding.suppressed_by}]
    return result


def merge(logs: list[dict[str, Any]]) -> dict[str, Any]:
    """One log with one run per tool, holding every component's results."""
    by_tool: dict[str, dict[str, Any]] = {}
    for log in logs:
        for run in log["runs"]:
            name = run["tool"]["driver"]["name"]
            merged = by_tool.setdefault(
                name, {**run, "results": [], "tool": {"driver": {**run["tool"]["driver"], "rules": []}}}
            )
            merged["results"].extend(run["results"])
            known = {r["id"] for r in merged["tool"]["driver"]["rules"]}
            merged["tool"]["driver"]["rules"].extend(
                r for r in run["tool"]["driver"]["rules"] if r["id"] not in known
            )
    for run in by_tool.values():
        run["tool"]["driver"]["rules"].sort(key=lambda r: r["id"])
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [by_tool[name] for name in sorted(by_tool)]}
