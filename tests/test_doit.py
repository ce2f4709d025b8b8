"""Real doit runs in temporary directories: incremental, explainable, recoverable."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLE

from autocoder.cli import DODO_TEXT


def doit(project: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """doit in the project; without arguments, the stages up to code generation (the
    validation tiers have their own tests)."""
    return subprocess.run(
        [sys.executable, "-m", "doit", *(args or ("gen",))],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
    )


def executed(run: subprocess.CompletedProcess) -> list[str]:
    """Tasks doit ran (console reporter: '.  name' ran, '-- name' was up to date)."""
    return [line[3:] for line in run.stdout.splitlines() if line.startswith(".  ")]


def autocoder(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autocoder.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def make_project(tmp_path: Path) -> Path:
    project = tmp_path / "orders"
    project.mkdir()
    for name in ("architecture.yaml", "deployment.yaml"):
        (project / name).write_bytes((EXAMPLE / name).read_bytes())
    run = autocoder("init", str(project))
    assert run.returncode == 0, run.stderr
    return project


def test_second_doit_run_executes_nothing(tmp_path):
    project = make_project(tmp_path)
    first = doit(project)
    assert first.returncode == 0, first.stdout + first.stderr
    gens = [f"gen:{n}" for n in ("big_orders", "notifier", "order_store", "orders_api", "pricer", "runtime")]
    assert sorted(executed(first)) == sorted(["check", "ir", *gens])
    assert (project / "generated" / "ir.v1.json").exists()
    assert sorted(p.name for p in (project / "generated" / "ir").iterdir()) == [
        "big_orders.json",
        "notifier.json",
        "order_store.json",
        "orders_api.json",
        "pricer.json",
    ]
    second = doit(project)
    assert second.returncode == 0
    assert executed(second) == []
    assert "-- check" in second.stdout and "-- ir" in second.stdout


def test_a_component_change_reruns_and_rewrites_only_its_slice(tmp_path):
    project = make_project(tmp_path)
    assert doit(project).returncode == 0
    slices = project / "generated" / "ir"
    before = {p.name: p.stat().st_mtime_ns for p in slices.iterdir()}
    arch = project / "architecture.yaml"
    arch.write_text(arch.read_text().replace('"quantity * unit_price"', '"quantity * unit_price * 1.2"'))
    run = doit(project)
    assert run.returncode == 0, run.stdout + run.stderr
    # gen:runtime reads the IR's projection (codegen/runtime_ir.py), which a logic edit leaves
    assert sorted(executed(run)) == ["check", "gen:pricer", "ir"]
    after = {p.name: p.stat().st_mtime_ns for p in slices.iterdir()}
    assert [name for name in before if before[name] != after[name]] == ["pricer.json"]


def test_gen_runtime_reruns_for_what_it_renders_only(tmp_path):
    """gen:runtime depends on generated/ir.runtime.json: an edit of a component's examples and
    budget does not run it; a changed route does (tests/test_runtime_ir.py: what else does)."""
    project = make_project(tmp_path)
    assert doit(project).returncode == 0
    arch = project / "architecture.yaml"
    projection = project / "generated" / "ir.runtime.json"
    before = projection.read_bytes()
    text = arch.read_text().replace("A-000004, quantity: 20", "A-000009, quantity: 20")  # an example
    store = "config: {key: order_id}\n"
    arch.write_text(text.replace(store, store + "    budget: {p95_ms: 5}\n"))
    run = doit(project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(executed(run)) == ["check", "gen:notifier", "gen:order_store", "ir"]
    assert projection.read_bytes() == before
    arch.write_text(arch.read_text().replace("path: /orders,", "path: /orders/new,"))
    run = doit(project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(executed(run)) == ["check", "gen:orders_api", "gen:runtime", "ir"]
    assert '"/orders/new"' in (project / "generated" / "src" / "orders" / "app.py").read_text()


def test_doit_commands_work_on_the_tasks(tmp_path):
    project = make_project(tmp_path)
    listed = doit(project, "list")
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [
        "bench",
        "check",
        "deploy",
        "gen",
        "image",
        "ir",
        "lint",
        "policy",
        "report",
        "sign",
        "test",
        "typecheck",
    ]
    subtasks = doit(project, "list", "--all").stdout.split()
    assert "gen:pricer" in subtasks and "gen:runtime" in subtasks
    assert doit(project).returncode == 0
    info = doit(project, "info", "ir")
    assert "generated/ir.v1.json" in info.stdout and "architecture.yaml" in info.stdout
    assert "up-to-date" in info.stdout
    clean = doit(project, "clean")
    assert clean.returncode == 0 and not (project / "generated" / "ir.v1.json").exists()
    assert {"check", "ir"} <= set(executed(doit(project)))
    assert doit(project, "forget", "ir").returncode == 0
    assert executed(doit(project)) == ["ir"]  # same bytes: nothing after it runs
    verbose = doit(project, "forget") and doit(project, "--reporter", "json", "gen")
    assert verbose.returncode == 0 and '"tasks"' in verbose.stdout


def test_a_broken_blueprint_fails_the_build_readably_and_recovers(tmp_path):
    project = make_project(tmp_path)
    assert doit(project).returncode == 0
    ir_before = (project / "generated" / "ir.v1.json").read_bytes()
    arch = project / "architecture.yaml"
    good = arch.read_text()
    arch.write_text(good.replace("total >= 100", "totl >= 100"))
    run = doit(project)
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "Traceback" not in output
    assert "architecture.yaml:" in output and "AC202" in output and "did you mean 'total'?" in output
    assert (project / "generated" / "ir.v1.json").read_bytes() == ir_before  # nothing lost
    arch.write_text(good)
    again = doit(project)
    # back to the content of the last good build: the IR of that content is still valid
    assert again.returncode == 0 and executed(again) == ["check"]
    assert (project / "generated" / "ir.v1.json").read_bytes() == ir_before


def test_init_never_overwrites_blueprints_or_a_foreign_dodo(tmp_path):
    project = make_project(tmp_path)
    before = (project / "architecture.yaml").read_bytes()
    run = autocoder("init", str(project))
    assert run.returncode == 0 and "kept" in run.stdout
    assert (project / "architecture.yaml").read_bytes() == before
    assert (project / "dodo.py").read_text() == DODO_TEXT
    (project / "dodo.py").write_text("# mine\n")
    refused = autocoder("init", str(project))
    assert refused.returncode == 2 and "not Autocoder's" in refused.stderr
    assert (project / "dodo.py").read_text() == "# mine\n"


def test_init_in_an_empty_directory_gives_a_project_that_builds(tmp_path):
    project = tmp_path / "fresh-project"
    assert autocoder("init", str(project)).returncode == 0
    assert autocoder("check", str(project)).returncode == 0
    assert doit(project).returncode == 0


def test_autocoder_build_needs_no_dodo_and_passes_doit_arguments(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    for name in ("architecture.yaml", "deployment.yaml"):
        (project / name).write_bytes((EXAMPLE / name).read_bytes())
    run = autocoder("build", str(project), "gen")
    assert run.returncode == 0, run.stderr
    assert (project / "generated" / "ir.v1.json").exists()
    assert executed(autocoder("build", str(project), "gen")) == []
    listed = autocoder("build", str(project), "list")
    assert "check" in listed.stdout and "ir" in listed.stdout


def test_strict_build_fails_on_warnings(tmp_path):
    project = make_project(tmp_path)
    deploy = project / "deployment.yaml"
    deploy.write_text(
        deploy.read_text().replace(
            "component_overrides:\n  orders_api: {capabilities: {rate_limit: {rate: 1000, burst: 2000}}}\n",
            "",
        )
    )
    assert autocoder("build", str(project), "ir").returncode == 0  # AC112 is a warning
    strict = autocoder("build", "--strict", str(project), "ir")
    assert strict.returncode != 0 and "AC112" in strict.stdout + strict.stderr
    assert autocoder("check", "--strict", str(project)).returncode == 2


def test_a_new_autocoder_re_runs_ir_even_when_checks_report_is_unchanged(tmp_path):
    """`check` rewrites its report only when its bytes change, so a new Autocoder that changes
    only what `ir` writes must still re-run `ir`: it depends on the compile fingerprint too.
    The upgrade is made as doit sees one: the state it recorded for the fingerprint file is an
    older Autocoder's (another checksum), while the file holds the current fingerprint."""
    import json
    import sqlite3

    project = make_project(tmp_path)
    first = doit(project, "ir")
    assert first.returncode == 0, first.stdout + first.stderr
    report = (project / "generated" / "reports" / "check.json").read_bytes()
    fingerprint = "generated/.autocoder/compile.fingerprint"
    with contextlib.closing(sqlite3.connect(project / ".doit.db")) as db, db:
        for task in ("check", "ir"):
            (raw,) = db.execute("SELECT task_data FROM doit WHERE task_id = ?", (task,)).fetchone()
            state = json.loads(raw)
            state[fingerprint] = [0.0, 1, "0" * 32]  # what an older Autocoder's run left
            db.execute("UPDATE doit SET task_data = ? WHERE task_id = ?", (json.dumps(state), task))
    again = doit(project, "ir")
    assert again.returncode == 0, again.stdout + again.stderr
    assert (project / "generated" / "reports" / "check.json").read_bytes() == report
    assert sorted(executed(again)) == ["check", "ir"]
