"""Blueprint text never becomes code: every template is rendered with hostile strings in every
free-text field, and the output must parse, carry the text only inside string literals (never
in a docstring or comment), and run without executing any of it.

The deployment artifacts get the same treatment: the text stays a YAML value (never a key,
a comment or structure), never reaches the Dockerfile, and the manifests still pass the strict
validators.

Hostile strings try every way out of a Python string literal, a docstring, a comment, a TOML
string and a Jinja expression.
"""

from __future__ import annotations

import ast
import io
import json
import re
import subprocess
import sys
import tokenize
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO

from autocoder.canonical import canonical_json
from autocoder.codegen.component import generate_component
from autocoder.codegen.provider import get_provider
from autocoder.codegen.runtime_ir import encode_projection
from autocoder.codegen.system import generate_runtime
from autocoder.compile import compile_sources
from autocoder.ir.models import IR, dump

MARK = "PWNED"
HOSTILE = [
    f'"""; import os; os.system("touch {MARK}") #',
    f"'''\n__import__('os').system('touch {MARK}')\n'''",
    f'\\"; {MARK}=1 # \\',
    f"{{{{ 7*7 }}}}{{% raw %}}{MARK}{{# #}}",
    f'line\u2028{MARK}\u2029\r\n]]""" ]]\' # {MARK}',
    f"\\N{{BAD}} %s {{0}} </script> ${{{MARK}}} `{MARK}`",
]


# quotes, a backslash, a newline, a comment sign, braces and U+2028 in a character class
HOSTILE_CLASS = "^[" + "".join(re.escape(c) for c in dict.fromkeys(f"\"');#\\\n{MARK}\u2028{{}}")) + "]{1,8}$"


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
    # a pattern of one character class: the generated tests draw it as text(alphabet=...)
    code = {"type": "string", "pattern": HOSTILE_CLASS, "required": False}
    arch["schemas"]["Tick"]["fields"]["code"] = code
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
    # gen:runtime renders from the IR's projection (codegen/runtime_ir.py): the same files
    projection = encode_projection(canonical_json(dump(result.ir)))
    assert generate_runtime(IR.model_validate_json(projection)) == files
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
    assert any("st.text(alphabet=" in text for text in files.values()), "no test drew the hostile class"
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


# --------------------------------------------------------------------------- deployments/


def hostile_plan(i: int):  # noqa: ANN201 - a Plan
    """The hostile blueprints with more free text where deployment.yaml has it: the OTLP
    endpoint's path, a suppression's reason (and the environment values above)."""
    import autocoder_runtime

    from autocoder.deploy.plan import build_plan
    from autocoder.ir.models import dump

    arch, deploy_text = hostile_blueprints(i)
    deploy = yaml.safe_load(deploy_text)
    text = _texts(i)
    deploy["observability"] = {"otlp_endpoint": "http://collector:4318/" + text}
    deploy["suppressions"] = [{"rule": "DL3008", "reason": text}]
    deploy["ingress"] = {"host": "rt.example.com", "tls_secret": "rt-tls", "class": "nginx"}
    result = compile_sources(arch, yaml.safe_dump(deploy).encode())
    assert result.ir is not None, "\n".join(d.format() for d in result.diagnostics)
    return build_plan(dump(result.ir), autocoder_runtime.__version__)


def _yaml_mark_places(text: str) -> list[str]:
    """Where MARK occurs in a YAML file: the role of the token that holds each occurrence
    (a mapping value, a key, or outside every scalar: a comment or structure)."""
    spans: list[tuple[int, int, str]] = []
    role = "value"
    for token in yaml.scan(text):
        if isinstance(token, yaml.KeyToken):
            role = "key"
        elif isinstance(token, yaml.ValueToken | yaml.BlockEntryToken | yaml.FlowEntryToken):
            role = "value"
        elif isinstance(token, yaml.ScalarToken):
            spans.append((token.start_mark.index, token.end_mark.index, role))
    places = []
    start = text.find(MARK)
    while start >= 0:
        inside = [r for a, b, r in spans if a <= start and start + len(MARK) <= b]
        places.append(inside[0] if inside else "outside a scalar")
        start = text.find(MARK, start + 1)
    return places


def _dockerfile_instructions(text: str) -> list[str]:
    """The instruction of every logical line (continuations joined; comments skipped)."""
    instructions, line = [], ""
    for raw in text.splitlines():
        if not line and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        line += raw
        if line.endswith("\\"):
            line = line[:-1]
            continue
        instructions.append(line.split(None, 1)[0])
        line = ""
    assert not line, "a continuation runs off the end of the Dockerfile"
    return instructions


@pytest.mark.parametrize("i", range(len(HOSTILE)))
def test_hostile_text_in_deployments_stays_in_values(i: int, tmp_path: Path) -> None:
    """Every deployment artifact rendered from the hostile blueprints: the YAML parses and
    holds the text only as mapping values, equal to what the blueprint said (Compose's `$`
    escaped); the Dockerfile and .dockerignore get none of it; and the whole of deployments/
    passes the strict validators (schemas, Pod Security, Compose spec, hadolint)."""
    from autocoder.deploy.render import GROUPS
    from autocoder.deploy.validate import validate_deployments

    plan = hostile_plan(i)
    text = _texts(i)
    endpoint = "http://collector:4318/" + text
    files = {rel: data.decode() for render in GROUPS.values() for rel, data in render(plan).items()}
    seen = 0
    for rel, content in files.items():
        if rel.endswith((".yaml", ".yml")):
            places = _yaml_mark_places(content)
            assert set(places) <= {"value"}, f"{rel}: blueprint text at {places}"
            seen += len(places)
            list(yaml.safe_load_all(content))
        else:
            assert MARK not in content, f"{rel}: blueprint text reached a non-YAML artifact"
    assert seen, "the hostile text did not reach the manifests"
    instructions = _dockerfile_instructions(files["Dockerfile"])
    assert set(instructions) <= {"FROM", "WORKDIR", "COPY", "RUN", "LABEL", "ENV", "USER", "EXPOSE"} | {
        "HEALTHCHECK",
        "ENTRYPOINT",
        "CMD",
    }, instructions
    assert instructions.count("FROM") == 2

    data = yaml.safe_load(files["k8s/base/configmap.yaml"])["data"]
    assert (data["NOTE"], data["OTEL_EXPORTER_OTLP_ENDPOINT"]) == (text, endpoint)
    compose_env = yaml.safe_load(files["docker-compose.yml"])["services"]["rtcheck"]["environment"]
    # Compose interpolates `$`: every `$` of the blueprint is doubled, so none starts a variable
    assert compose_env["NOTE"].replace("$$", "$") == text and "$" not in compose_env["NOTE"].replace("$$", "")
    assert compose_env["OTEL_EXPORTER_OTLP_ENDPOINT"].replace("$$", "$") == endpoint

    root = tmp_path / "deployments"
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    result = validate_deployments(root, tmp_path / "reports", {})
    assert result.failing == [], result.failing
    assert json.loads((tmp_path / "reports" / "deploy-validation.json").read_text())["ok"]
