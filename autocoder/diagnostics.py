"""Diagnostics: the compiler's errors and warnings, each with a stable code from rules/.

Errors are the interface of a build tool, so every diagnostic carries the file, line and
column, what is wrong, what was expected and a fix. Codes and their one-line titles live in
`rules/diagnostics.yaml` (data, not code) so that docs, `autocoder rules` and tests share them.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
from collections.abc import Iterable
from dataclasses import dataclass

import yaml

ERROR = "error"
WARNING = "warning"


@functools.cache
def rule_table() -> dict[str, dict[str, str]]:
    """The code -> {severity, title} table shipped in rules/diagnostics.yaml."""
    text = importlib.resources.files("autocoder.rules").joinpath("diagnostics.yaml").read_text()
    return dict(yaml.safe_load(text)["diagnostics"])


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding, positioned in a blueprint file (line and column are 1-based)."""

    file: str
    line: int
    col: int
    code: str
    message: str
    expected: str = ""
    fix: str = ""
    severity: str = ""

    def __post_init__(self) -> None:
        table = rule_table()
        if self.code not in table:
            raise ValueError(f"diagnostic code {self.code} is not listed in rules/diagnostics.yaml")
        if not self.severity:
            object.__setattr__(self, "severity", table[self.code]["severity"])

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def format(self, project: str | None = None) -> str:
        """`file:line:col: severity CODE: what is wrong; expected ...; fix: ...`, the file as
        the user opens it (userpaths.shown: under `project`, or the folder the CLI recorded)."""
        from autocoder.userpaths import shown

        where = shown(self.file, project) if self.file else self.file
        text = f"{where}:{self.line}:{self.col}: {self.severity} {self.code}: {self.message}"
        if self.expected:
            text += f"; expected {self.expected}"
        if self.fix:
            text += f"; fix: {self.fix}"
        return text

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "message": self.message,
            "expected": self.expected,
            "fix": self.fix,
        }


class BlueprintError(Exception):
    """Raised when a blueprint has errors; carries every diagnostic, not only the first."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        super().__init__(self.report())

    def report(self) -> str:
        return format_report(self.diagnostics)


def format_report(diagnostics: Iterable[Diagnostic], project: str | None = None) -> str:
    """All diagnostics, one a line, then a count line; files named as in Diagnostic.format."""
    diagnostics = sorted(diagnostics)
    lines = [d.format(project) for d in diagnostics]
    errors = sum(1 for d in diagnostics if d.is_error)
    warnings = len(diagnostics) - errors
    lines.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n".join(lines)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A 'did you mean' hint for a misspelled name, or '' when nothing is close."""
    matches = difflib.get_close_matches(str(word), sorted(set(choices)), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else ""


def one_of(choices: Iterable[str], limit: int = 12) -> str:
    """'one of a, b, c' for an expected-clause, shortened when the list is long."""
    names = sorted(set(choices))
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more)"
    return f"one of {shown}" if names else "no keys here"
