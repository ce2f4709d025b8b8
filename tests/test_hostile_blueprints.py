"""Hostile blueprints: inputs built to hang, crash or escape the build end in a positioned
diagnostic (or a clear refusal), quickly, and never write outside the project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from conftest import EXAMPLE, compile_data, compile_text, only

ARCH = (EXAMPLE / "architecture.yaml").read_text()
REDOS_PATTERN = "^(a+)+$"
REDOS_VALUE = "a" * 30 + "!"  # about 2**30 backtracking steps for Python's re


def check(project: Path, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "check", str(project)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_project(tmp_path: Path, arch: dict | None = None, deploy_text: str | None = None) -> Path:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    arch_text = (EXAMPLE / "architecture.yaml").read_text() if arch is None else yaml.safe_dump(arch)
    (project / "architecture.yaml").write_text(arch_text)
    deploy = deploy_text if deploy_text is not None else (EXAMPLE / "deployment.yaml").read_text()
    (project / "deployment.yaml").write_text(deploy)
    return project


# --------------------------------------------------------------------------- 1. regex patterns


def test_redos_pattern_with_a_default_is_checked_in_linear_time(tmp_path, arch):
    fields = arch["schemas"]["Order"]["fields"]
    fields["note"] = {"type": "string", "pattern": REDOS_PATTERN, "required": False, "default": REDOS_VALUE}
    item = {"type": "string", "pattern": REDOS_PATTERN}
    fields["tags"] = {"type": "array", "required": False, "items": item}
    fields["code"] = {"type": "string", "required": False, "enum": [REDOS_VALUE], "pattern": REDOS_PATTERN}
    arch["components"][1]["examples"][0]["in"]["tags"] = [REDOS_VALUE]
    run = check(write_project(tmp_path, arch))  # Python's re would take hours here
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert "error AC119: field 'note': default 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!' does not fit" in run.stderr
    assert "enum value 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!'" in run.stderr
    assert "'tags[0]' 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!' does not match pattern '^(a+)+$'" in run.stderr


def test_patterns_match_with_pydantic_search_semantics(arch):
    fields = arch["schemas"]["Order"]["fields"]
    # unanchored: a search, as pydantic does; `$` is the very end (Python's re also allows "\n")
    fields["note"] = {"type": "string", "pattern": "b+", "required": False, "default": "abba"}
    fields["line"] = {"type": "string", "pattern": "^x$", "required": False, "default": "x\n"}
    result = compile_data(arch)
    (diag,) = only(result, "AC119")
    assert "'line'" in diag.message and "'x\\n'" in diag.message


def test_look_around_and_backreferences_are_refused_with_the_engine_reason():
    text = ARCH.replace('pattern: "^[A-Z0-9-]{6,32}$"', 'pattern: "^(?!X)[A-Z0-9-]{6,32}$"')
    note = '      note: {type: string, pattern: "^(a)\\\\1$", required: false}\n'
    text = text.replace("      unit_price: {type: number,", note + "      unit_price: {type: number,")
    result = compile_text(text)
    look, back = sorted(only(result, "AC125"), key=lambda d: d.line)
    lines = text.splitlines()
    assert (look.line, look.col) == (8, lines[7].index('"^(?!X)') + 1)
    assert "'order_id'" in look.message and "look-around" in look.message
    assert back.line == 10 and "'note'" in back.message and "backreferences" in back.message
    assert "no look-around" in look.expected and "rewrite it without those constructs" in look.fix
    assert result.ir is None
