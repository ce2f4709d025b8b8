"""A finding of any validation tool, in one shape, and the suppressions that may waive it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autocoder.blueprint.models import Suppression


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in one file: which tool and rule, where (1-based), and what."""

    path: str
    line: int
    col: int
    tool: str
    rule: str
    message: str
    severity: str = "error"
    suppressed_by: str = field(default="", compare=False)

    def format(self) -> str:
        """`path:line:col: tool rule: message`, the path as the user opens it (userpaths.shown)."""
        from autocoder.userpaths import shown

        return f"{shown(self.path)}:{self.line}:{self.col}: {self.tool} {self.rule}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def under(folder: str, findings: list[Finding]) -> list[Finding]:
    """The findings with their paths (relative to `folder`) made relative to the project root."""
    return [replace(f, path=f"{folder}/{f.path}") for f in findings]


def apply_suppressions(findings: list[Finding], suppressions: list[Suppression]) -> list[Finding]:
    """Mark findings whose rule the component suppresses (each suppression carries a reason)."""
    reasons = {s.rule: s.reason for s in suppressions}
    out = []
    for finding in findings:
        reason = reasons.get(finding.rule)
        if reason is not None:
            finding = Finding(**{**finding.to_json(), "suppressed_by": reason})
        out.append(finding)
    return out


def active(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if not f.suppressed_by]
