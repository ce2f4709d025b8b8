"""Blueprint text never becomes code: every template is rendered with hostile strings in every
free-text field, and the output must parse, carry the text only inside string literals (never
in a docstring or comment), and run without executing any of it.

Hostile strings try every way out of a Python string literal, a docstring, a comment, a TOML
string and a Jinja expression.
"""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
import tokenize
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO

from autocoder.codegen.component import generate_component
from autocoder.codegen.provider import get_provider
from autocoder.codegen.system import generate_runtime
from autocoder.compile import compile_sources

MARK = "PWNED"
HOSTILE = [
    f'"""; import os; os.system("touch {MARK}") #',
    f"'''\n__import__('os').system('touch {MARK}')\n'''",
    f'\\"; {MARK}=1 # \\',
    f"{{{{ 7*7 }}}}{{% raw %}}{MARK}{{# #}}",
    f'line\u2028{MARK}\u2029\r\n]]""" ]]\' # {MARK}',
    f"\\N{{BAD}} %s {{0}} </script> ${{{MARK}}} `{MARK}`",
]


def _texts(i: int) -> str:
    return HOSTILE[i % len(HOSTILE)]


def hostile_blueprints(i: int) -> tuple[bytes, bytes]:
    """The runtime fixture (every kind, retries, windows, webhook, file sink) with a hostile
    string in every free-text field: descriptions, string defaults, enum values, example values,
    webhook URL and headers, environment values."""
    arch = yaml.safe_load((REPO / "tests" / "fixtures" / "runtime" / "architecture.yaml").read_text())
    deploy = yaml.safe_load((REPO / "tests" / "fixtures" / "runtime" / "deployment.yaml").read_text())
    text = _texts(i)
    arch["system"]["description"] = text
    for schema in arch["schemas"].values():
        schema["description"] = text
        for spec in schema["fields"].values():
            spec["description"] = text
    arch["schemas"]["Tick"]["fields"]["label"] = {"type": "string", "default": text, "description": text}
    arch["schemas"]["Tick"]["fields"]["mode"] = {"type": "string", "enum": [text, "plain"], "required": False}
    for comp in arch["components"]:
        comp["description"] = text
        for example in comp.get("examples", []):
            example["description"] = text
        if comp["kind"] == "sink" and comp.get("config", {}).get("target") == "webhook":
            comp["config"]["url"] = "http://127.0.0.1:9/" + json.dumps(text)[1:-1].replace(" ", "%20")
            # a `$NAME` in a header must name a declared secret (AC127): the rest of the text goes
            comp["config"]["headers"] = {"X-Note": text.replace("$", "")}
    deploy.setdefault("env", {})["NOTE"] = text
    return yaml.safe_dump(arch).encode(), yaml.safe_dump(deploy).encode()


def generated_files(i: int) -> dict[str, str]:
    arch, deploy = hostile_blueprints(i)
    result = compile_sources(arch, deploy)
    assert result.ir is not None, "\n".join(d.format() for d in result.diagnostics)
    files = generate_runtime(result.ir)
    for slice_ in result.slices.values():
        files.update(generate_component(slice_, get_provider("offline")))
    return files


def _docstrings(tree: ast.Module) -> list[str]:
    nodes: list[Any] = [tree] + [
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    return [doc for n in nodes if (doc := ast.get_docstring(n)) is not None]


@pytest.mark.parametrize("i", range(len(HOSTILE)))
def test_hostile_text_stays_in_literals(i: int) -> None:
    files = generated_files(i)
    assert any(MARK in text for text in files.values()), "the hostile text did not reach the generated code"
    for path, text in files.items():
        if path.endswith(".toml"):
            tomllib.loads(text)  # a TOML string escape would break the file
            continue
        tree = ast.parse(text, filename=path)
        for doc in _docstrings(tree):
            assert MARK not in doc, f"{path}: blueprint text in a docstring: {doc!r}"
        comments = [
            t.string
            for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type == tokenize.COMMENT
        ]
        assert not [c for c in comments if MARK in c], f"{path}: blueprint text in a comment"
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert MARK not in names and "__import__" not in names, f"{path}: blueprint text became code"
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "system"]
        assert not calls, f"{path}: blueprint text became a call"


def test_hostile_system_builds_imports_and_runs_nothing(tmp_path: Path) -> None:
    """The whole build (generation and the in-process tests of one component) with the hostile
    texts, then the generated package imported in a fresh interpreter: no file appears."""
    project = tmp_path / "hostile"
    project.mkdir()
    arch, deploy = hostile_blueprints(0)
    (project / "architecture.yaml").write_bytes(arch)
    (project / "deployment.yaml").write_bytes(deploy)
    run = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), "gen", "test:divide"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    src = project / "generated" / "src"
    code = "import rtcheck, rtcheck.app, rtcheck.models; print(rtcheck.DESCRIPTION)"
    shown = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert MARK in shown.stdout
    assert not list(tmp_path.rglob(MARK)), "hostile text ran"
