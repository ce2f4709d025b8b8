"""Hostile blueprints: inputs built to hang, crash or escape the build end in a positioned
diagnostic (or a clear refusal), quickly, and never write outside the project."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLE, compile_data, compile_text, only

from autocoder.blueprint import source

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


# --------------------------------------------------------------------------- 4. the task loader


def autocoder_cli(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autocoder.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def doit_run(project: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "doit", *args], cwd=project, capture_output=True, text=True, timeout=timeout
    )


def oversize_project(tmp_path: Path) -> Path:
    """A blueprint 1.5 times the size limit, of many small nodes: before, every `doit`
    call parsed it whole (a minute here; 116 s and 9.5 GB for 50 MB)."""
    project = write_project(tmp_path)
    rows = "- {a: 1, b: 2}\n" * (source.MAX_BYTES * 3 // 2 // 15)
    (project / "architecture.yaml").write_text(ARCH + "padding:\n" + rows)
    assert autocoder_cli("init", str(project)).returncode == 0
    return project


def test_an_oversize_blueprint_costs_the_task_loader_nothing(tmp_path):
    project = oversize_project(tmp_path)
    listed = doit_run(project, "list", timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert "check" in listed.stdout.split()
    build = autocoder_cli("build", str(project), timeout=30)
    output = build.stdout + build.stderr
    assert build.returncode != 0 and "Traceback" not in output
    assert (
        f"architecture.yaml:1:1: error AC005: file is {(project / 'architecture.yaml').stat().st_size} bytes"
        in output
    )
    assert f"expected at most {source.MAX_BYTES} bytes" in output


def test_the_outline_applies_checks_limits_with_checks_reader(tmp_path, monkeypatch):
    from autocoder.build import tasks

    project = write_project(tmp_path)
    arch = project / "architecture.yaml"
    arch.write_text(ARCH + "#" * source.MAX_BYTES)
    monkeypatch.setattr(source, "parse_yaml", lambda *a: pytest.fail("an oversize file was parsed"))
    assert tasks.blueprint_outline(project) is None
    monkeypatch.undo()
    lines = ['schema_version: "1.0.0"', "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    arch.write_text(ARCH + "\n".join(lines) + "\n")  # 10**9 nodes once expanded
    assert tasks.blueprint_outline(project) is None
    cached = json.loads((project / tasks.OUTLINE_CACHE).read_text())
    assert cached["system"] is None  # remembered: the next doit call does not parse it again
    arch.write_text(ARCH)
    assert tasks.blueprint_outline(project) == (
        "orders",
        [
            ("big_orders", "filter"),
            ("notifier", "sink"),
            ("order_store", "store"),
            ("orders_api", "api_endpoint"),
            ("pricer", "transformer"),
        ],
    )


def test_outline_kinds_are_the_blueprint_kinds():
    from autocoder.blueprint.models import COMPONENT_KINDS
    from autocoder.build.tasks import _KINDS

    assert _KINDS == set(COMPONENT_KINDS)
