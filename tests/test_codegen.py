"""Stage 2: offline generation of real, running systems, incrementally and safely."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from autocoder.codegen.render import GenerationError, render
from autocoder.synthetic import write_synthetic

EXAMPLES = ["orders", "telemetry", "webhooks", "inventory"]


def run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, **kw)


def build(project: Path, *doit_args: str) -> subprocess.CompletedProcess:
    """Build through code generation (the validation tiers are tested in test_validate.py)."""
    return run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), *(doit_args or ("gen",))], cwd=project
    )


def executed(result: subprocess.CompletedProcess) -> list[str]:
    return [line[3:] for line in result.stdout.splitlines() if line.startswith(".  ")]


def copy_example(name: str, tmp_path: Path) -> Path:
    project = tmp_path / name
    shutil.copytree(
        REPO / "examples" / name, project, ignore=shutil.ignore_patterns("generated", ".doit.db*")
    )
    return project


def tree(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
        and "__pycache__" not in p.parts
        and ".pytest_cache" not in p.parts
        and p.relative_to(directory).parts[:2] != (".cache", "hypothesis")  # hypothesis's own cache
        # a batching tier's records of one build (validate/siblings.py), named by its random token
        and not (p.relative_to(directory).parts[0] == ".cache" and p.parent.parent.name.endswith("-batch"))
        and p.name != ".lock"  # the build lock names the pid that held it last
    }


def full_build(project: Path) -> subprocess.CompletedProcess:
    """The whole default build: generation, then every validation tier."""
    return run([sys.executable, "-m", "autocoder.cli", "build", str(project)], cwd=project)


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_builds_offline_and_passes_every_validation_tier(example, tmp_path):
    project = copy_example(example, tmp_path)
    result = full_build(project)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    src = project / "generated" / "src"
    assert (src / example / "app.py").exists() and (src / "pyproject.toml").exists()
    summary = json.loads((project / "generated" / "reports" / "summary.json").read_text())
    assert summary["ok"] and summary["failing"] == []
    assert summary["integration"]["ok"] and summary["integration"]["tests"] == 1
    for name, tiers in summary["components"].items():
        assert set(tiers) == {"lint", "test", "bench"}, name
        assert tiers["test"]["tests"] >= 1 and tiers["lint"]["failing"] == 0
    # the same checks by hand, as a user would run them in generated/src
    lint = run([sys.executable, "-m", "ruff", "check", "."], cwd=src)
    assert lint.returncode == 0, lint.stdout
    fmt = run([sys.executable, "-m", "ruff", "format", "--check", "."], cwd=src)
    assert fmt.returncode == 0, fmt.stdout
    bandit = run([sys.executable, "-m", "bandit", "-q", "-r", ".", "-ll"], cwd=src)
    assert bandit.returncode == 0, bandit.stdout
    assert "component" in result.stdout and "p95" in result.stdout  # the summary table


def test_generation_is_byte_for_byte_deterministic(tmp_path):
    first = copy_example("orders", tmp_path / "a")
    second = copy_example("orders", tmp_path / "b")
    assert build(first).returncode == 0
    env = {**os.environ, "PYTHONHASHSEED": "7"}
    assert (
        run(
            [sys.executable, "-m", "autocoder.cli", "build", str(second), "gen"], cwd=second, env=env
        ).returncode
        == 0
    )
    assert tree(first / "generated") == tree(second / "generated")


def test_a_component_that_needs_an_llm_fails_offline_naming_the_ways_out(tmp_path):
    project = copy_example("orders", tmp_path)
    arch = project / "architecture.yaml"
    arch.write_text(
        arch.read_text()
        .replace(
            "bindings:\n",
            "  - name: fraud_check\n    kind: custom\n    inputs: {in: PricedOrder}\n"
            '    description: "Flag orders far above the usual amount"\n'
            "bindings:\n  - {from: big_orders.out, to: fraud_check.in}\n",
        )
        .replace("  - {from: big_orders.out, to: notifier.in}\n", "")
        .replace("to: fraud_check.in}", "to: [fraud_check.in, notifier.in]}")
    )
    result = build(project, "--continue", "gen")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    assert "component 'fraud_check' needs free-form logic" in output
    assert "declarative `logic`" in output and "--llm-base-url URL" in output and "autocoder lock" in output
    # the other components were still generated (--continue)
    assert (project / "generated" / "src" / "orders" / "components" / "pricer.py").exists()


def test_template_errors_are_reported_not_raised():
    with pytest.raises(GenerationError, match="undefined"):
        render("components/component.py.j2", system="x")


def test_a_write_failure_is_reported_and_loses_nothing(tmp_path, monkeypatch):
    from autocoder import fsutil
    from autocoder.tasks import gen_tasks

    project = copy_example("orders", tmp_path)
    assert build(project).returncode == 0
    module = project / "generated" / "src" / "orders" / "components" / "pricer.py"
    before = module.read_bytes()
    arch = project / "architecture.yaml"
    arch.write_text(arch.read_text().replace('"quantity * unit_price"', '"quantity * unit_price * 2"'))
    assert build(project, "ir").returncode == 0

    def full_disk(path, data):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(fsutil, "atomic_write", full_disk)
    failed = gen_tasks.run_gen_component(project, "pricer")
    assert failed is not None and "No space left on device" in str(failed) and "pricer.py" in str(failed)
    assert module.read_bytes() == before
    monkeypatch.undo()
    result = build(project)
    assert result.returncode == 0 and "gen:pricer" in executed(result)
    assert b"* 2" in module.read_bytes()


def test_killed_build_recovers_to_the_same_bytes(tmp_path):
    """The build pauses (AUTOCODER_PAUSE_AT) before its 22nd task (check, ir, then 20 of the 41
    gen tasks: the 20th is running) and is SIGKILLed there: no race with a build that finishes
    first."""
    reference = tmp_path / "reference"
    write_synthetic(reference, 40)
    assert build(reference).returncode == 0
    project = tmp_path / "killed"
    write_synthetic(project, 40)
    ready = tmp_path / "paused"
    process = subprocess.Popen(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), "gen"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "AUTOCODER_PAUSE_AT": "22", "AUTOCODER_PAUSE_READY": str(ready)},
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert time.monotonic() < deadline and process.poll() is None, "the build never reached its 22nd task"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    components = project / "generated" / "src" / "synthetic" / "components"
    paused = ready.read_text()
    assert paused.startswith("gen:") and len(list(components.glob("*.py"))) in (19, 20)
    assert not (components / f"{paused[4:]}.py").exists()
    result = build(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert paused in executed(result)
    assert tree(project / "generated") == tree(reference / "generated")
    assert not list(project.rglob("*.tmp"))


def test_one_component_change_reruns_only_its_tasks_on_50_components(tmp_path):
    project = tmp_path / "fifty"
    write_synthetic(project, 50)
    first = build(project)
    assert first.returncode == 0
    assert len(executed(first)) == 2 + 50 + 1
    assert executed(build(project)) == []
    arch = project / "architecture.yaml"
    text = arch.read_text()
    assert "value * 4 + 0.5" in text
    arch.write_text(text.replace("value * 4 + 0.5", "value * 4 + 0.75"))
    changed = build(project)
    assert changed.returncode == 0
    # no gen:runtime: the IR's projection it reads (codegen/runtime_ir.py) stays the same
    assert sorted(executed(changed)) == ["check", "gen:trans_3", "ir"]
    assert executed(build(project)) == []


def test_doit_clean_removes_generated_sources(tmp_path):
    project = copy_example("inventory", tmp_path)
    assert build(project).returncode == 0
    assert build(project, "clean").returncode == 0
    assert not list((project / "generated" / "src").rglob("*.py"))


def test_graph_command_prints_mermaid_and_dot():
    mermaid = run([sys.executable, "-m", "autocoder.cli", "graph", "examples/telemetry"], cwd=REPO)
    assert mermaid.returncode == 0 and mermaid.stdout.startswith("flowchart LR")
    assert "readings_api -->|readings| classify" in mermaid.stdout
    dot = run(
        [sys.executable, "-m", "autocoder.cli", "graph", "examples/telemetry", "--format", "dot"], cwd=REPO
    )
    assert dot.stdout.startswith('digraph "telemetry"') and "classify -> alerts" in dot.stdout


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_readmes_carry_the_current_diagram(example):
    diagram = run([sys.executable, "-m", "autocoder.cli", "graph", f"examples/{example}"], cwd=REPO).stdout
    assert f"```mermaid\n{diagram}```" in (REPO / "examples" / example / "README.md").read_text()
