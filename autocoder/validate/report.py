"""Reports of the validation stage: per-tier result files, the summary and the merged SARIF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TIERS = ("lint", "test", "bench")


def read_results(reports: Path) -> dict[str, dict[str, Any]]:
    """component -> tier -> result, from whatever result files exist (some may be stale)."""
    table: dict[str, dict[str, Any]] = {}
    for tier in TIERS:
        for path in sorted((reports / tier).glob("*.json")):
            try:
                table.setdefault(path.stem, {})[tier] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
    return table


def cell(tier: str, result: dict[str, Any] | None) -> str:
    if result is None:
        return "-"
    verdict = "pass" if result["ok"] else "FAIL"
    if tier == "lint":
        extra = f"{result['failing']} finding(s)"
        if result["suppressed"]:
            extra += f", {result['suppressed']} suppressed"
    elif tier == "test":
        extra = f"{result['tests'] - result['failures'] - result['errors']}/{result['tests']} tests"
    else:
        extra = f"p95 {result['p95_ms']:.3f}/{result['budget_p95_ms']:g} ms"
    return f"{verdict} ({extra})"


def summary_table(
    results: dict[str, dict[str, Any]],
    policy: dict[str, Any] | None = None,
    typecheck: dict[str, Any] | None = None,
    *,
    restored: frozenset[str] | set[str] = frozenset(),
) -> str:
    """component x tier -> pass/fail with findings, test counts and p95 vs budget; a tier
    whose task (`lint:<component>`, `policy`...) is in `restored` came from the run-cache."""
    if not results and policy is None and typecheck is None:
        return ""

    def shown(task: str, text: str) -> str:
        return text[:-1] + ", restored)" if task in restored and text.endswith(")") else text

    tiers = [t for t in TIERS if any(t in r for r in results.values())]  # the tiers that have results
    rows = [["component", *tiers]] + [
        [name, *(shown(f"{t}:{name}", cell(t, results[name].get(t))) for t in tiers)]
        for name in sorted(results)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if policy is not None:
        line = f"policy: {'pass' if policy['ok'] else 'FAIL'} ({len(policy['findings'])} finding(s))"
        lines.append(shown("policy", line))
    if typecheck is not None:
        line = (
            f"types (mypy): {'pass' if typecheck['ok'] else 'FAIL'} ({len(typecheck['findings'])} error(s))"
        )
        lines.append(shown("typecheck", line))
    suppressed = [
        f"  {name} {f['rule']} suppressed: {f['suppressed_by']}"
        for name in sorted(results)
        for f in (results[name].get("lint") or {}).get("findings", [])
        if f.get("suppressed_by")
    ]
    if suppressed:
        lines.append("suppressions:")
        lines.extend(sorted(set(suppressed)))
    return "\n".join(lines)


def summary(
    results: dict[str, dict[str, Any]],
    policy: dict[str, Any] | None,
    integration: dict[str, Any] | None,
    typecheck: dict[str, Any] | None = None,
    *,
    verdicts: dict[str, dict[str, bool]] | None = None,
    paths: dict[str, Any] | None = None,
    path_verdicts: dict[str, bool] | None = None,
) -> dict[str, Any]:
    """The system's verdict and every result. `verdicts` (component -> tier -> ok) and
    `path_verdicts` (path.<id> -> ok) are given when `results` and `paths` (the path tests'
    results) hold already-encoded results (validate/merge.py) rather than parsed ones."""
    if verdicts is None:
        verdicts = {name: {tier: r["ok"] for tier, r in tiers.items()} for name, tiers in results.items()}
    paths = paths or {}
    if path_verdicts is None:
        path_verdicts = {name: r["ok"] for name, r in paths.items()}
    failing = sorted(
        [f"{tier}:{name}" for name, tiers in verdicts.items() for tier, ok in tiers.items() if not ok]
        + [f"test:{name}" for name, ok in path_verdicts.items() if not ok]
    )
    if policy is not None and not policy["ok"]:
        failing.append("policy")
    if integration is not None and not integration["ok"]:
        failing.append("test:integration")
    if typecheck is not None and not typecheck["ok"]:
        failing.append("typecheck")
    return {
        "ok": not failing,
        "failing": failing,
        "components": {name: results[name] for name in sorted(results)},
        "policy": policy,
        "integration": integration,
        "paths": {name: paths[name] for name in sorted(paths)},
        "typecheck": typecheck,
    }


def alert_thresholds(ir: dict[str, Any], tolerance: float) -> dict[str, Any]:
    """Each component's p95 budget as a Prometheus alert threshold, for the deployment stage."""
    return {
        "metric": "processing_seconds",
        "quantile": 0.95,
        "tolerance": tolerance,
        "components": {
            c["name"]: {
                "budget_p95_seconds": round(c["budget"]["p95_ms"] / 1000.0, 6),
                "alert_above_seconds": round(c["budget"]["p95_ms"] * (1 + tolerance) / 1000.0, 6),
            }
            for c in sorted(ir["components"], key=lambda c: c["name"])
        },
    }
