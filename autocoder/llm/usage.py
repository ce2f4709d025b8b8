"""What a build or `autocoder new` spent on the LLM: calls, cache hits, locked answers, tokens.

Each gen task of an LLM component writes its figures with the build's id (doit may run tasks
in worker processes, so nothing is counted in memory); after doit, `autocoder build` adds up
this build's files, prints one line and puts the totals into generated/reports/summary.json.
A task that did not run (up to date) spent nothing: a no-op build reports zero calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autocoder.layout import GENERATED

FIGURES = ("calls", "cache_hits", "locked", "tokens_in", "tokens_out")
LAST_BUILD = f"{GENERATED}/reports/llm/last-build.json"
# set by `autocoder build`: which usage files are this build's (here, not in llm/generate.py:
# the build reads it before doit starts, and generate imports the code generator's models)
BUILD_ENV = "AUTOCODER_BUILD_ID"


@dataclass
class Usage:
    """One conversation's cost (a component's logic, or a description's draft): requests sent,
    answers from the cache or the lock, tokens, and the repair requests among the calls."""

    calls: int = 0
    cache_hits: int = 0
    locked: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    repairs: int = 0

    def figures(self) -> dict[str, int]:
        """The figures a build adds up across its components (FIGURES)."""
        return {key: getattr(self, key) for key in FIGURES}


def build_usage(directory: Path, build_id: str) -> dict[str, Any] | None:
    """This build's totals, or None when the project has no LLM component (no usage file)."""
    files = sorted((directory / GENERATED / "reports" / "llm").glob("*.usage.json"))
    if not files:
        return None
    totals: dict[str, Any] = dict.fromkeys(FIGURES, 0)
    cost: float | None = None
    for path in files:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if data.get("build") != build_id:
            continue
        for key in FIGURES:
            totals[key] += int(data.get(key) or 0)
        if data.get("cost") is not None:
            cost = (cost or 0.0) + float(data["cost"])
    totals["cost"] = None if cost is None else round(cost, 6)
    return totals


def format_usage(usage: dict[str, Any]) -> str:
    line = (
        f"LLM: {usage['calls']} call(s), {usage['cache_hits']} cache hit(s), {usage['locked']} from "
        f"the lock, {usage['tokens_in']} tokens in, {usage['tokens_out']} tokens out"
    )
    return line + (f", cost {usage['cost']:.6f}" if usage["cost"] is not None else "")


def report_usage(directory: Path, build_id: str, ok: bool) -> dict[str, Any] | None:
    """Print this build's LLM figures, add them to summary.json, remember whether it was green
    (`autocoder lock` freezes only a green build)."""
    from autocoder.canonical import canonical_json
    from autocoder.fsutil import confined, write_if_changed

    usage = build_usage(directory, build_id)
    if usage is None:
        return None
    print(format_usage(usage))
    summary = directory / GENERATED / "reports" / "summary.json"
    try:
        data = json.loads(summary.read_text())
    except (OSError, ValueError):
        data = None
    if ok and isinstance(data, dict):  # a failed build left the last green build's summary
        write_if_changed(confined(directory, summary), canonical_json({**data, "llm": usage}))
    write_if_changed(
        confined(directory, directory / LAST_BUILD), canonical_json({"build": build_id, "ok": ok})
    )
    return usage
