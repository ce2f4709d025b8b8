"""The type tier: mypy over the whole generated package and its tests, in this process.

One run for the system, not one per component: mypy's incremental cache (under
generated/.cache/mypy) re-checks only the modules that changed, and the shared runtime it
imports is read once.
"""

from __future__ import annotations

import re
from pathlib import Path

from autocoder.layout import SOURCES
from autocoder.validate.findings import Finding

_LINE = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+):(?:(?P<col>\d+):)? (?P<severity>error|note): "
    r"(?P<message>.*?)(?:  \[(?P<code>[a-z0-9-]+)\])?$"
)


def typecheck(src: Path, system: str, cache: Path) -> list[Finding]:
    """mypy findings (errors only) in the generated system, paths relative to `src`'s project."""
    return typecheck_files(src, [system, "tests"], cache)


def typecheck_files(src: Path, paths: list[str], cache: Path) -> list[Finding]:
    """mypy findings (errors only) in these files or folders under `src`, with the generated
    system's configuration (its pyproject.toml)."""
    from mypy import api

    stdout, stderr, status = api.run(
        [
            "--config-file",
            str(src / "pyproject.toml"),
            "--cache-dir",
            str(cache),
            "--show-column-numbers",
            "--no-error-summary",
            "--no-pretty",
            *(str(src / path) for path in paths),
        ]
    )
    findings = []
    for line in stdout.splitlines():
        match = _LINE.match(line)
        if match is None or match["severity"] != "error":
            continue
        path = Path(match["path"])
        relative = path.relative_to(src) if path.is_absolute() and path.is_relative_to(src) else path
        findings.append(
            Finding(
                f"{SOURCES}/{relative.as_posix()}",
                int(match["line"]),
                int(match["col"] or 1),
                "mypy",
                match["code"] or "error",
                match["message"],
            )
        )
    if status not in (0, 1) and not findings:
        findings.append(Finding(SOURCES, 1, 1, "mypy", "crash", (stderr or stdout).strip()[:2000]))
    return findings
