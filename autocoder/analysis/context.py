"""State shared by the analysis passes: the two documents, their models and the findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autocoder.blueprint.models import Architecture, Deployment
from autocoder.blueprint.recover import Broken
from autocoder.blueprint.source import Path_, SourceDoc
from autocoder.diagnostics import Diagnostic

if TYPE_CHECKING:
    from autocoder.analysis.memo import MemoRun


@dataclass
class Context:
    """What every pass reads (documents, models) and writes (diagnostics, resolved parts)."""

    arch_doc: SourceDoc
    deploy_doc: SourceDoc
    arch: Architecture
    deploy: Deployment
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # filled by the passes, in order
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)  # resolved, flattened
    logic: dict[str, Any] = field(default_factory=dict)  # component -> compiled logic
    bindings: list[dict[str, Any]] = field(default_factory=list)  # resolved bindings
    # parts that failed model validation and were left out (checks naming them are skipped)
    broken: Broken = field(default_factory=Broken)
    # schema -> its fields (inherited ones included) that failed validation: their names exist,
    # their types are unknown, so nothing that reads them is checked
    unknown_fields: dict[str, frozenset[str]] = field(default_factory=dict)
    # the unknown fields of the component being analysed (its port schemas')
    unknown_names: frozenset[str] = frozenset()
    # the per-component memo of this compile (analysis.memo), when in use
    memo: MemoRun | None = None

    def report(self, path: Path_, code: str, message: str, *, key: bool = False, **kw: str) -> None:
        """Report against architecture.yaml at `path`."""
        self.diagnostics.append(self.arch_doc.diag(path, code, message, key=key, **kw))

    def report_deploy(self, path: Path_, code: str, message: str, *, key: bool = False, **kw: str) -> None:
        """Report against deployment.yaml at `path`."""
        self.diagnostics.append(self.deploy_doc.diag(path, code, message, key=key, **kw))

    def component_index(self) -> dict[str, int]:
        index: dict[str, int] = {}
        for i, comp in enumerate(self.arch.components):
            index.setdefault(comp.name, i)
        return index
