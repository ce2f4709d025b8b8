"""How the stages depend on each other, and what the stage fingerprints cover."""

from __future__ import annotations

import ast
import subprocess

import hypothesis
import pytest
from conftest import REPO

from autocoder.tasks import gen_tasks, validate_tasks
from autocoder.tools import ruff_binary, tool_versions


def imported_modules(path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_validation_does_not_import_the_generator():
    for path in sorted((REPO / "autocoder" / "validate").glob("*.py")):
        assert not {m for m in imported_modules(path) if m.startswith("autocoder.codegen")}, path.name


def test_tool_versions_are_the_installed_ones():
    ruff = subprocess.run([ruff_binary(), "--version"], capture_output=True, text=True, check=True)
    assert tool_versions() == f"ruff=={ruff.stdout.split()[1]} hypothesis=={hypothesis.__version__}"


OFFLINE = '{"prompt_version": "1", "provider": "offline"}'  # a provider's fingerprint


@pytest.mark.parametrize(
    ("module", "fingerprint"),
    [
        (gen_tasks, lambda: gen_tasks.codegen_fingerprint.__wrapped__(OFFLINE)),
        (validate_tasks, lambda: validate_tasks.validate_fingerprint.__wrapped__()),
    ],
    ids=["codegen", "validate"],
)
def test_another_ruff_or_hypothesis_changes_the_stage_fingerprints(module, fingerprint, monkeypatch):
    """A ruff release formats differently, a hypothesis release finds other samples: both make
    the generated and validated output stale, so both are in the fingerprints."""
    before = fingerprint()
    monkeypatch.setattr(module, "tool_versions", lambda: tool_versions().replace("ruff==", "ruff==9"))
    assert fingerprint() != before
    monkeypatch.undo()
    assert fingerprint() == before
