"""Hostile blueprints: inputs built to hang, crash or escape the build end in a positioned
diagnostic (or a clear refusal), quickly, and never write outside the project."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLE, compile_data, compile_text, only

from autocoder.blueprint import source
from autocoder.ir.models import load_ir

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
    from autocoder.tasks import compile_tasks as tasks

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
    from autocoder.tasks.compile_tasks import _KINDS

    assert _KINDS == set(COMPONENT_KINDS)


# --------------------------------------------------------------------------- 5. outputs stay inside


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The orders example built through code generation, once; tests copy it."""
    project = write_project(tmp_path_factory.mktemp("built"))
    assert autocoder_cli("init", str(project)).returncode == 0
    run = doit_run(project, "gen")
    assert run.returncode == 0, run.stdout + run.stderr
    return project


def copy_of(built: Path, tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(built, project, symlinks=True)
    (project / ".doit.db").unlink(missing_ok=True)  # its paths are the original's
    return project


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def link_out(project: Path, link: str, outside: Path) -> None:
    """Move a generated directory out of the project and leave a symlink to it in its place."""
    shutil.move(project / link, outside)
    (project / link).symlink_to(outside, target_is_directory=True)
    (outside / "unrelated.json").write_text("not the build's")


@pytest.mark.parametrize(
    "link", ["generated", "generated/ir", "generated/src", "generated/src/orders/components"]
)
def test_output_directories_symlinked_out_of_the_project_are_refused(built, tmp_path, link):
    project = copy_of(built, tmp_path)
    outside = tmp_path / "outside"
    link_out(project, link, outside)
    arch = project / "architecture.yaml"
    arch.write_text(arch.read_text().replace("orders_api", "intake"))  # every output would change
    before = snapshot(outside)
    for args in ((), ("gen",), ("clean",), ("list",)):
        run = autocoder_cli("build", str(project), *args)
        output = run.stdout + run.stderr
        assert run.returncode != 0 and "Traceback" not in output, output
        assert f"refusing to run: {link} is a symlink to {outside}, outside the project" in output
        assert f"fix: replace {link} with a real directory" in output
    assert snapshot(outside) == before


def test_ir_writer_refuses_a_symlinked_slice_directory_before_writing(built, tmp_path):
    from autocoder.compile import compile_directory
    from autocoder.fsutil import OutsideProjectError
    from autocoder.ir.write import write_ir

    project = copy_of(built, tmp_path)
    outside = tmp_path / "outside"
    link_out(project, "generated/ir", outside)
    (outside / "stale.json").write_text("a stale slice, were this the project")
    before = snapshot(outside)
    result = compile_directory(project)
    with pytest.raises(
        OutsideProjectError, match="generated/ir is a symlink to .*; fix: replace the symlink"
    ):
        write_ir(project / "generated", result.ir, result.slices)
    assert snapshot(outside) == before
    run = autocoder_cli("ir", str(project))
    assert run.returncode == 1 and "refusing to write generated/ir" in run.stderr
    assert snapshot(outside) == before


def test_generation_writes_deletes_and_cleans_only_inside_the_project(built, tmp_path, monkeypatch):
    from autocoder.tasks import compile_tasks as tasks
    from autocoder.tasks import gen_tasks

    project = copy_of(built, tmp_path)
    outside = tmp_path / "outside"
    link_out(project, "generated/src/orders/components", outside)
    (outside / "gone.py").write_text("# a stale component module, were this the project")
    before = snapshot(outside)
    ir = load_ir(project / "generated" / "ir.v1.json")
    with pytest.raises(OSError, match="refusing to delete in generated/src/orders/components"):
        gen_tasks._remove_stale(project, ir)
    failed = gen_tasks._write_or_fail(project, {"orders/components/pricer.py": "x = 1\n"}, "gen:pricer")
    assert "gen:pricer: refusing to write generated/src/orders/components/pricer.py" in str(failed)
    failed = tasks.clean_targets(project, ["generated/src/orders/components/pricer.py"])
    assert "refusing to delete" in str(failed)
    monkeypatch.chdir(project)
    failed = tasks.run_check(project, False)
    assert "refusing to run: generated/src/orders/components is a symlink" in str(failed)
    assert snapshot(outside) == before


def test_a_tampered_outline_cache_is_rebuilt_and_clean_stays_inside(built, tmp_path):
    project = copy_of(built, tmp_path)
    victim = tmp_path / "victim.json"  # generated/ir/../../../victim.json from the project
    victim.write_text("precious")
    cache = project / "generated" / ".outline.json"
    good = json.loads(cache.read_text())
    for tampered in (
        {**good, "components": [*good["components"], ["../../../victim", "store"]]},
        {**good, "components": [["pricer", "../../x"]]},
        {**good, "system": "../../.."},
        {**good, "components": [["Pricer!", "transformer"]]},
    ):
        cache.write_text(json.dumps(tampered))
        listed = doit_run(project, "list", "--all")
        assert listed.returncode == 0 and "victim" not in listed.stdout and "gen:pricer" in listed.stdout
        assert json.loads(cache.read_text()) == good  # re-derived from the blueprint
        cache.write_text(json.dumps(tampered))
        clean = doit_run(project, "clean")
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert victim.read_text() == "precious"
        assert not cache.exists()  # clean removes the derived outline too
    assert not (project / "generated" / "ir.v1.json").exists()  # clean did clean the project
