"""Loading the task list stays cheap (it happens on every doit run, a no-op too): what it needs
of the LLM provider comes from a memo, no pydantic model or YAML parser is imported once the
blueprint's outline is cached, and the summary table reads a result file only when it changed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLE

from autocoder.cli import DODO_TEXT
from autocoder.llm.fingerprint import MEMO, provider_fingerprint_memo
from autocoder.llm.provider import provider_fingerprint

LOAD = """
import json, sys
sys.path.insert(0, ".")
from doit.loader import load_tasks
import dodo
tasks = load_tasks(vars(dodo), allow_delayed=False)
heavy = ("pydantic", "yaml", "jinja2", "autocoder.llm.provider", "autocoder.blueprint.models",
         "autocoder.ir.models", "autocoder.deploy.validate", "autocoder.compile")
print(json.dumps({"tasks": len(tasks), "heavy": sorted(m for m in sys.modules if m.startswith(heavy))}))
"""


def _project(tmp_path: Path) -> Path:
    for name in ("architecture.yaml", "deployment.yaml"):
        (tmp_path / name).write_bytes((EXAMPLE / name).read_bytes())
    (tmp_path / "dodo.py").write_text(DODO_TEXT)
    return tmp_path


def test_the_task_list_loads_without_the_compiler_models_or_yaml(tmp_path, monkeypatch):
    """Once a load has cached the outline and the provider's fingerprint (here in process),
    the next one (a fresh interpreter, as every doit run) imports none of the heavy modules."""
    from doit.loader import load_tasks

    from autocoder.tasks import dodo

    project = _project(tmp_path)
    for name in [n for n in os.environ if n.startswith(("AUTOCODER_LLM_", "OPENAI_", "AUTOCODER_CHECKOV"))]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(project)
    tasks = load_tasks(vars(dodo), allow_delayed=False)
    run = subprocess.run(
        [sys.executable, "-c", LOAD], cwd=project, capture_output=True, text=True, check=True
    )
    loaded = json.loads(run.stdout)
    assert loaded["tasks"] == len(tasks) > 20
    assert loaded["heavy"] == []


@pytest.mark.parametrize(
    ("env", "deployment_llm"),
    [
        ({}, ""),
        ({"AUTOCODER_LLM_PROVIDER": "openai", "AUTOCODER_LLM_MODEL": "m-1"}, ""),
        ({}, "llm:\n  provider: openai\n  model: m-2\n  temperature: 0.5\n"),
        ({"AUTOCODER_LLM_TEMPERATURE": "9"}, ""),  # invalid: the error is the fingerprint
        ({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}, ""),
    ],
)
def test_the_provider_memo_gives_the_provider_fingerprint(tmp_path, monkeypatch, env, deployment_llm):
    """The memo answers what provider_fingerprint answers, for each source of the settings, and
    follows a change of any of them (the settings are read afresh each time)."""
    project = _project(tmp_path)
    for name in [n for n in os.environ if n.startswith(("AUTOCODER_LLM_", "OPENAI_"))]:
        monkeypatch.delenv(name)
    offline = provider_fingerprint_memo(project)
    assert offline == provider_fingerprint(project)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    deployment = project / "deployment.yaml"
    deployment.write_text(deployment.read_text() + deployment_llm)
    expected = provider_fingerprint(project)
    assert provider_fingerprint_memo(project) == expected
    assert provider_fingerprint_memo(project) == expected  # from the memo
    assert json.loads((project / MEMO).read_text())["fingerprint"] == expected
    assert (expected == offline) == (not env and not deployment_llm)


def test_the_provider_memo_is_keyed_and_holds_no_secret(tmp_path, monkeypatch):
    project = _project(tmp_path)
    secret = "sk-test-not-a-real-key-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    value = provider_fingerprint_memo(project)
    text = (project / MEMO).read_text()
    assert secret not in text and hashlib.sha256(secret.encode()).hexdigest() not in text
    # a memo under another key is not trusted: the value is computed again and replaces it
    memo = json.loads(text)
    (project / MEMO).write_text(json.dumps({"key": "0" * 64, "fingerprint": "forged"}))
    assert provider_fingerprint_memo(project) == value
    assert json.loads((project / MEMO).read_text()) == memo
    # one under the right key is (this is the skip), and a corrupt one is ignored
    (project / MEMO).write_text(json.dumps({"key": memo["key"], "fingerprint": "trusted"}))
    assert provider_fingerprint_memo(project) == "trusted"
    (project / MEMO).write_text("{not json")
    assert provider_fingerprint_memo(project) == value


def test_checkov_setting_is_known_without_importing_deploy_validate():
    """deploy:validate's checkov input comes from deploy/tools.py, which imports neither the
    validators nor yaml: task loading stays light whether checkov is managed, off or a path."""
    import subprocess
    import sys

    code = (
        "import sys; from autocoder.deploy.tools import checkov_setting; checkov_setting(); "
        "print(sorted(m for m in ('autocoder.deploy.validate', 'yaml') if m in sys.modules))"
    )
    for value in ("", "off", "/nonexistent/checkov"):
        env = {**os.environ, "AUTOCODER_CHECKOV": value}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        assert out.stdout.strip() == "[]", (value, out.stdout, out.stderr)


def test_the_summary_table_rereads_a_result_file_only_when_it_changed(tmp_path, monkeypatch):
    """The table of a no-op comes from the cache; a changed result file (a new inode: results
    are replaced by atomic renames) shows its new verdict; a file that is not a result is no
    cell, as before."""
    from autocoder.fsutil import atomic_write
    from autocoder.tasks.reporter import AutocoderReporter

    monkeypatch.chdir(tmp_path)
    reports = tmp_path / "generated" / "reports"
    lint = {"ok": True, "failing": 0, "suppressed": 1, "findings": [{"rule": "B101", "suppressed_by": "why"}]}
    test = {"ok": True, "tests": 3, "failures": 0, "errors": 0, "output": "x" * 1000}
    atomic_write(reports / "lint" / "a.json", json.dumps(lint).encode())
    atomic_write(reports / "test" / "a.json", json.dumps(test).encode())
    atomic_write(reports / "test" / "b.json", b"[1, 2]")

    def table() -> str:
        reporter = AutocoderReporter(io.StringIO(), {})
        reporter._visited = {"lint:a", "test:a", "test:b"}
        return reporter._table()

    first = table()
    assert "pass (3/3 tests)" in first and "B101 suppressed: why" in first and "b " not in first
    assert table() == first
    atomic_write(reports / "test" / "a.json", json.dumps({**test, "ok": False, "failures": 1}).encode())
    assert "FAIL (2/3 tests)" in table()


def test_the_provider_memo_is_written_only_in_a_project(tmp_path):
    """Asked from a folder without a blueprint (a command run elsewhere), it answers and writes
    nothing there."""
    assert provider_fingerprint_memo(tmp_path) == provider_fingerprint(tmp_path)
    assert list(tmp_path.iterdir()) == []
