"""Stage 3: every validation tier really fails the build, at the right task, with the right
message; fixing the cause makes the next build green, re-running only that component.

One orders project is built once for the module; each test breaks one thing, checks the
failure, restores it and checks the recovery.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from autocoder.blueprint.models import SecurityPolicy
from autocoder.validate.ast_policy import check_source

PRICER_ONLY = {
    "check",
    "ir",
    "gen:pricer",
    "gen:runtime",
    "lint:pricer",
    "test:pricer",
    "bench:pricer",
    "test:path.orders_api__notifier",  # the two paths through pricer; not the smoke test
    "test:path.orders_api__order_store",
    "typecheck",
    "policy",
    "report",
}
OTHERS = ("big_orders", "notifier", "order_store", "orders_api")


def build(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), *args],
        cwd=project,
        capture_output=True,
        text=True,
    )


def executed(result: subprocess.CompletedProcess) -> set[str]:
    return {line[3:] for line in result.stdout.splitlines() if line.startswith(".  ")}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("validate") / "orders"
    shutil.copytree(
        REPO / "examples" / "orders", root, ignore=shutil.ignore_patterns("generated", ".doit.db*")
    )
    first = build(root)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    return root


def fails_at(result: subprocess.CompletedProcess, task: str, *words: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert f"TaskFailed - taskid:{task}" in output, output[-3000:]
    for word in words:
        assert word in output, f"{word!r} not in:\n{output[-3000:]}"
    assert "Traceback" not in output


def recovers(project: Path) -> set[str]:
    result = build(project)
    assert result.returncode == 0, result.stdout[-3000:]
    ran = executed(result)
    assert ran <= PRICER_ONLY, f"tasks of other components ran: {sorted(ran - PRICER_ONLY)}"
    assert not any(other in task for task in ran for other in OTHERS if not task.startswith("test:path."))
    return ran


def edit(path: Path, old: str, new: str) -> str:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))
    return text


def module(project: Path) -> Path:
    return project / "generated" / "src" / "orders" / "components" / "pricer.py"


def test_ruff_violation_fails_lint(project):
    """Findings name the file from where the user ran the build (`autocoder build orders`, one
    folder up: orders/generated/src/...); the reports name it from the project root."""
    original = module(project).read_text()
    module(project).write_text(original + "\nimport os\n")
    from_parent = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", project.name],
        cwd=project.parent,
        capture_output=True,
        text=True,
    )
    fails_at(
        from_parent, "lint:pricer", "ruff", "F401", "  orders/generated/src/orders/components/pricer.py:"
    )
    lint = json.loads((project / "generated" / "reports" / "lint" / "pricer.json").read_text())
    (unused,) = [f for f in lint["findings"] if f["rule"] == "F401"]
    assert unused["path"] == "generated/src/orders/components/pricer.py"
    module(project).write_text(original)
    assert "lint:pricer" in recovers(project)


def test_bandit_finding_fails_lint(project):
    original = module(project).read_text()
    module(project).write_text(
        original + "\n\ndef digest(data: bytes) -> str:\n"
        "    import hashlib\n\n    return hashlib.md5(data).hexdigest()\n"
    )
    fails_at(build(project), "lint:pricer", "bandit B324", "pricer.py:")
    module(project).write_text(original)
    recovers(project)


def test_forbidden_import_fails_lint(project):
    original = module(project).read_text()
    module(project).write_text(
        original + "\n\ndef freeze(data: object) -> bytes:\n"
        "    import pickle\n\n    return pickle.dumps(data)\n"
    )
    fails_at(build(project), "lint:pricer", "AP003", "AP010", "AP104", "forbidden by policy")
    module(project).write_text(original)
    recovers(project)


def test_wrong_example_output_fails_test(project):
    arch = project / "architecture.yaml"
    original = edit(arch, "out: {total: 10}", "out: {total: 11}")
    fails_at(
        build(project),
        "test:pricer",
        "generated/src/tests/test_pricer.py::test_example",
        "1 of 2 test(s) failed",
    )
    arch.write_text(original)
    ran = recovers(project)
    assert "test:pricer" in ran


def test_property_violation_fails_test(project):
    arch = project / "architecture.yaml"
    # the example still holds (2 * 5 * 1e300 is finite), but large valid prices overflow to
    # infinity, which the output schema refuses: only the property test can find that
    original = edit(arch, '"quantity * unit_price"', '"quantity * unit_price * 1e300"')
    edit(arch, "out: {total: 10}", "out: {total: 1.0e+301}")
    fails_at(
        build(project), "test:pricer", "test_property_in_valid_input_gives_valid_output", "OutputInvalid"
    )
    arch.write_text(original)
    recovers(project)


def test_budget_breach_fails_bench(project):
    arch = project / "architecture.yaml"
    original = edit(
        arch, "    logic: {set: {total:", "    budget: {p95_ms: 0.000001}\n    logic: {set: {total:"
    )
    fails_at(build(project), "bench:pricer", "over its performance budget", "p95", "budget 1e-06 ms")
    arch.write_text(original)
    recovers(project)


def test_suppression_with_a_reason_waives_a_finding_and_shows_in_the_summary(project):
    arch = project / "architecture.yaml"
    original_module = module(project).read_text()
    module(project).write_text(
        original_module + "\n\ndef digest(data: bytes) -> str:\n"
        "    import hashlib\n\n    return hashlib.md5(data).hexdigest()\n"
    )
    original = edit(
        arch,
        "    logic: {set: {total:",
        '    suppressions: [{rule: B324, reason: "checksum only, not used for security"}]\n'
        "    logic: {set: {total:",
    )
    # the blueprint changed, so pricer is regenerated: re-inject the finding after generation
    assert build(project, "gen").returncode == 0
    module(project).write_text(
        module(project).read_text() + "\n\ndef digest(data: bytes) -> str:\n"
        "    import hashlib\n\n    return hashlib.md5(data).hexdigest()\n"
    )
    result = build(project)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "suppressions:" in result.stdout and "checksum only, not used for security" in result.stdout
    lint = json.loads((project / "generated" / "reports" / "lint" / "pricer.json").read_text())
    assert lint["ok"] and lint["suppressed"] == 1
    sarif = json.loads((project / "generated" / "reports" / "autocoder.sarif").read_text())
    bandit_run = next(r for r in sarif["runs"] if r["tool"]["driver"]["name"] == "bandit")
    assert any(r.get("suppressions") for r in bandit_run["results"])
    arch.write_text(original)
    module(project).write_text(original_module)
    assert build(project).returncode == 0


def test_policy_violation_fails_the_policy_task(project):
    deploy = project / "deployment.yaml"
    original = edit(deploy, "resources: {default: {cpu: 250m, memory: 256Mi}}\n", "")
    fails_at(build(project), "policy", "generated/ir.v1.json#components/pricer:1:1: policy AP100")
    deploy.write_text(original)
    assert build(project).returncode == 0


def test_continue_checks_every_component_before_failing(project):
    arch = project / "architecture.yaml"
    original = edit(arch, "out: {total: 10}", "out: {total: 11}")
    edit(arch, "out: {total: 200}", "out: {total: 201}")
    result = build(project, "--continue")
    assert result.returncode == 1
    assert "TaskFailed - taskid:test:pricer" in result.stdout + result.stderr
    assert "TaskFailed - taskid:test:big_orders" in result.stdout + result.stderr
    assert "FAIL" in result.stdout  # the summary table
    arch.write_text(original)
    assert build(project).returncode == 0


def test_reports_are_written(project):
    reports = project / "generated" / "reports"
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["ok"]
    sarif = json.loads((reports / "autocoder.sarif").read_text())
    assert sarif["version"] == "2.1.0" and {r["tool"]["driver"]["name"] for r in sarif["runs"]} == {
        "bandit",
        "policy",
        "ruff",
    }
    junit = (reports / "junit" / "pricer.xml").read_text()
    assert "<testsuite" in junit and "test_example" in junit
    # a sink's accepted example reads back what the sink delivered (autocoder_runtime.testing)
    sink_test = (project / "generated" / "src" / "tests" / "test_notifier.py").read_text()
    assert 'delivered(Notifier, example["port"], [example["input"]]) == [valid]' in sink_test
    junit = (reports / "junit" / "notifier.xml").read_text()
    assert 'name="test_example[' in junit and "<failure" not in junit
    bench = json.loads((reports / "bench" / "pricer.json").read_text())
    assert bench["ok"] and bench["decision"] == "upper bound within the limit"
    assert bench["iterations"] in bench["rule"]["looks"] and 0 < bench["p50_ms"] <= bench["p95_ms"]
    assert bench["p95_upper_bound_ms"] <= bench["limit_ms"]
    alerts = json.loads((reports / "alert-thresholds.json").read_text())
    assert alerts["components"]["pricer"]["budget_p95_seconds"] == 0.002


def test_report_is_a_full_reread_of_the_results(project):
    """The report merges per-component results incrementally (validate/merge.py); what it wrote
    is byte for byte what re-reading and re-encoding every result file gives."""
    from autocoder.canonical import canonical_json
    from autocoder.validate.bench import budget_rules
    from autocoder.validate.report import alert_thresholds, read_results, summary
    from autocoder.validate.sarif import merge

    reports = project / "generated" / "reports"
    ir = json.loads((project / "generated" / "ir.v1.json").read_text())
    names = {c["name"] for c in ir["components"]}
    results = {k: v for k, v in read_results(reports).items() if k in names}
    paths = {k: v["test"] for k, v in read_results(reports).items() if k.startswith("path.")}
    assert sorted(paths) == ["path.orders_api__notifier", "path.orders_api__order_store"]
    system = [
        json.loads((reports / f).read_text())
        for f in ("policy.json", "test/integration.json", "typecheck.json")
    ]
    written = json.loads((reports / "summary.json").read_text())
    written.pop("llm", None)  # added after the report by a build that called an LLM
    assert canonical_json(written) == canonical_json(summary(results, *system, paths=paths))
    logs = [json.loads((reports / "sarif" / f"{n}.sarif").read_text()) for n in sorted([*names, "policy"])]
    assert (reports / "autocoder.sarif").read_bytes() == canonical_json(merge(logs))
    tolerance = float(budget_rules()["tolerance"])
    assert (reports / "alert-thresholds.json").read_bytes() == canonical_json(alert_thresholds(ir, tolerance))


def test_policy_task_reads_no_component_code(project, monkeypatch):
    """A component's forbidden imports are its lint task's (AP104), so the system policy task
    neither depends on nor re-scans any component's module."""
    from autocoder.tasks.validate_tasks import task_policy

    monkeypatch.chdir(project)
    deps = task_policy()["file_dep"]
    assert any(d.endswith("orders/app.py") for d in deps), deps
    assert not [d for d in deps for n in (*OTHERS, "pricer") if d.endswith(f"components/{n}.py")]


def starts(project: Path, column: int = 0) -> list[str]:
    """The builds that started the path tests' shared server, one line per start (column 2:
    how many components it served, or `all`)."""
    log = project / "generated" / ".cache" / "paths" / "starts.log"
    return [line.split()[column] for line in log.read_text().splitlines()] if log.exists() else []


def test_a_change_reruns_only_the_paths_through_it_and_wiring_reruns_the_smoke_test(project):
    """big_orders is on the notifier's path only: its edit re-runs that path test, not the
    order_store's, not the smoke test; under -n 2 the path tests share one server. A condition
    on a binding (wiring) re-runs the smoke test and the path it is on."""
    arch = project / "architecture.yaml"
    before = starts(project)
    original = edit(arch, 'where: "total >= 100"', 'where: "total >= 99"')
    component = build(project, "-n", "2")
    assert component.returncode == 0, component.stdout[-3000:] + component.stderr[-2000:]
    ran = executed(component)
    assert "test:path.orders_api__notifier" in ran and "test:big_orders" in ran, sorted(ran)
    assert not ran & {"test:path.orders_api__order_store", "test:integration", "test:pricer"}, sorted(ran)
    assert len(starts(project)) == len(before) + 1
    assert starts(project, 2)[-1] == "4"  # the notifier path's components, not the system's 5
    junit = (project / "generated" / "reports" / "junit" / "path.orders_api__notifier.xml").read_text()
    assert 'name="test_path"' in junit and "<failure" not in junit
    edit(
        arch,
        "- {from: big_orders.out, to: notifier.in}",
        '- {from: big_orders.out, to: notifier.in, condition: "total > 0"}',
    )
    wiring = build(project, "-n", "2")
    assert wiring.returncode == 0, wiring.stdout[-3000:] + wiring.stderr[-2000:]
    ran = executed(wiring)
    assert {"test:integration", "test:path.orders_api__notifier"} <= ran, sorted(ran)
    assert not ran & {"test:path.orders_api__order_store", "test:pricer", "test:order_store"}, sorted(ran)
    assert not (project / "generated" / ".cache" / "paths" / "state.json").exists()  # stopped
    arch.write_text(original)
    assert build(project).returncode == 0


def test_the_shared_server_outlives_no_path_test_and_no_build(project):
    """A teardown (doit runs a worker's when that worker runs out of tasks) waits for the path
    tests other workers are still running; a server a killed build left behind is stopped
    before the next build starts its own. The caller's `meanwhile` runs once per use, while a
    server it starts boots (recorded as not ready yet), else before the block."""
    import threading

    import httpx

    from autocoder.validate.shared_server import shared_server, stop_shared_server

    state = project / "generated" / ".cache" / "paths" / "state.json"
    store_path = ["order_store", "orders_api", "pricer"]
    recorded: list[bool] = []  # whether the server was recorded ready when `meanwhile` ran

    def meanwhile() -> None:
        recorded.append(json.loads(state.read_text())["ready"])

    with shared_server(project, "orders", "left-behind", store_path, list, meanwhile) as url:
        first = json.loads(state.read_text())["pid"]
        assert recorded == [False]
    with shared_server(project, "orders", "this-build", store_path, lambda: ["notifier"], meanwhile) as url:
        assert recorded == [False, False]
        assert not Path(f"/proc/{first}").exists()  # the other build's is gone
        stopper = threading.Thread(target=stop_shared_server, args=(project, "this-build"))
        stopper.start()
        stopper.join(0.5)
        assert stopper.is_alive()  # waiting for this path test to finish
        assert httpx.get(f"{url}/readyz").status_code == 200
        with shared_server(project, "orders", "this-build", ["orders_api"], list, meanwhile) as again:
            assert again == url  # served already: the same server
            assert recorded == [False, False, True]
        # a path test whose components it lacks (big_orders): the whole system, started anew
        with shared_server(project, "orders", "this-build", ["big_orders"], list) as whole:
            assert whole != url and httpx.get(f"{url}/readyz").status_code == 200  # both serve
    stopper.join(60)
    assert not stopper.is_alive() and not state.exists()
    assert starts(project)[-3:] == ["left-behind", "this-build", "this-build"]
    assert starts(project, 2)[-3:] == ["3", "4", "all"]
    assert not [p for p in starts(project, 1)[-3:] if Path(f"/proc/{p}").exists()]  # all stopped


def test_a_component_test_in_a_one_process_build_launches_the_path_server_early(project):
    """run_component_test (plain `doit`: this process, main thread) launches the server of the
    path tests still to run before testing the component, without waiting; the path test that
    follows finds it (the same process), waits on its pipe and uses it; nothing wanted: no
    server, and not asked again in that build."""
    import uuid

    import httpx

    from autocoder.fsutil import atomic_write
    from autocoder.tasks.validate_tasks import run_component_test
    from autocoder.validate.shared_server import prestart, shared_server, stop_shared_server

    paths = project / "generated" / ".cache" / "paths"
    state = paths / "state.json"
    assert build(project).returncode == 0  # every path test passed: nothing to re-run
    asked: list[int] = []
    quiet = uuid.uuid4().hex
    prestart(project, "orders", quiet, lambda: asked.append(1) or [])
    prestart(project, "orders", quiet, lambda: asked.append(1) or [])
    assert asked == [1] and not state.exists()
    (paths / "path.orders_api__notifier.inputs.json").unlink()  # as if notifier's path changed
    build_token = uuid.uuid4().hex
    before = starts(project)
    try:
        assert run_component_test(project, "orders", "pricer", build_token) is None
        launched = json.loads(state.read_text())
        assert launched["build"] == build_token and launched["ready"] is False
        assert launched["components"] == ["big_orders", "notifier", "orders_api", "pricer"]
        assert len(starts(project)) == len(before) + 1
        with shared_server(project, "orders", build_token, ["notifier"], list) as url:
            assert httpx.get(f"{url}/readyz").status_code == 200
        assert json.loads(state.read_text()) == {**launched, "ready": True}  # the same server
        assert len(starts(project)) == len(before) + 1
        # a generator rewrites a served component's module after the launch (the same text in
        # a new file, as gen: writes; e.g. `doit test` reaching gen:notifier after test:pricer
        # launched it): the next path test gets a server started anew, never the old code
        module = project / "generated" / "src" / "orders" / "components" / "notifier.py"
        atomic_write(module, module.read_bytes())
        with shared_server(project, "orders", build_token, ["notifier"], list) as again:
            assert httpx.get(f"{again}/readyz").status_code == 200
        relaunched = json.loads(state.read_text())
        assert relaunched["pid"] != launched["pid"] and relaunched["retired"] == [launched["pid"]]
        assert relaunched["components"] == launched["components"]
        assert len(starts(project)) == len(before) + 2
    finally:
        stop_shared_server(project, build_token)
    assert not state.exists() and not Path(f"/proc/{launched['pid']}").exists()


def test_parallel_build_works(tmp_path):
    root = tmp_path / "orders"
    shutil.copytree(
        REPO / "examples" / "orders", root, ignore=shutil.ignore_patterns("generated", ".doit.db*")
    )
    result = build(root, "-n", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = json.loads((root / "generated" / "reports" / "summary.json").read_text())
    assert summary["ok"] and len(summary["paths"]) == 2
    assert len(starts(root)) == 1  # both path tests, whichever worker ran them, on one server


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("eval('1')", "AP001"),
        ("import subprocess\nsubprocess.run('ls', shell=True)", "AP002"),
        ("import os\nos.system('ls')", "AP002"),
        ("import pickle", "AP003"),
        ("import yaml\nyaml.load('a')", "AP004"),
        ("api_token = 'abcdef123456'", "AP005"),
        ("def q(db, t):\n    db.execute(f'SELECT * FROM {t}')", "AP006"),
        ("import subprocess", "AP010"),
        ("from os import system", "AP010"),
    ],
)
def test_ast_policy_rules(source, code):
    policy = SecurityPolicy(forbidden_imports=["subprocess", "os.system"])
    assert code in {f.rule for f in check_source(source, "x.py", policy, system_code=True)}


def test_ast_policy_accepts_safe_code():
    safe = "import yaml\nyaml.load('a', Loader=yaml.SafeLoader)\n"
    safe += "def q(db, t):\n    db.execute('SELECT ?', (t,))\n"
    policy = SecurityPolicy(forbidden_imports=["subprocess"])
    assert check_source(safe, "x.py", policy, system_code=True) == []


def test_the_summary_shows_only_tiers_this_build_visited(project):
    """After an edit, `doit gen` validates nothing: no table (the last one's `pass` would be
    stale); a build of one tier shows that tier's column for the components it visited."""
    arch = project / "architecture.yaml"
    original = edit(arch, '"quantity * unit_price"', '"quantity * unit_price + 0"')
    generated = build(project, "gen")
    assert generated.returncode == 0 and "gen:pricer" in executed(generated)
    assert "component" not in generated.stdout and "pass (" not in generated.stdout, generated.stdout
    linted = build(project, "lint:pricer")
    assert linted.returncode == 0, linted.stdout[-3000:]
    table = linted.stdout[linted.stdout.index("\ncomponent") + 1 :].splitlines()
    assert table[0].split() == ["component", "lint"] and table[2].split()[:2] == ["pricer", "pass"]
    assert len(table) == 3, table  # no other component, no policy or types line
    arch.write_text(original)
    full = build(project)
    assert full.returncode == 0 and "policy: pass" in full.stdout and "order_store" in full.stdout


def test_a_failing_path_test_fails_its_own_task_alike_in_a_batch(project, monkeypatch):
    """As in a build from scratch (no path result yet), the first path task checks both paths
    in one round (validate/siblings.py, path_check.run_path_batch); a broken one (its filter
    dead-letters) is not vouched for: its own task runs it alone and fails with the message a
    lone run gives, while the other path passes from the batch, with its own JUnit file."""
    import re
    import uuid

    from autocoder.tasks import validate_tasks as v

    monkeypatch.chdir(project)  # the tasks' directory, as doit runs them
    broken = project / "generated" / "src" / "orders" / "components" / "big_orders.py"
    reports = project / "generated" / "reports"
    original = edit(
        broken,
        "\n\nCOMPONENT = BigOrders",
        '\n    async def aprocess(self, port, message):\n        raise RuntimeError("broken on purpose")\n'
        "\n\nCOMPONENT = BigOrders",
    )

    def run(batched: bool) -> dict[str, str | None]:
        build = uuid.uuid4().hex
        for name in ("orders_api__notifier", "orders_api__order_store"):
            (reports / "test" / f"path.{name}.json").unlink(missing_ok=True)
        actions = {t["name"]: t["actions"][0] for t in v._path_tasks(project, "orders", build)}
        verdicts: dict[str, str | None] = {}
        try:
            for name, (function, arguments) in actions.items():  # the broken path's task first
                failed = function(*(arguments if batched else arguments[:-1]))
                said = None if failed is None else re.sub(r"path-[0-9a-f]{32}", "T", str(failed))
                # a dead letter's number and time differ between any two runs
                verdicts[name] = None if said is None else re.sub(r"'(id|ts)': [0-9.]+", "'\\1': 0", said)
        finally:
            v.stop_shared_server(project, build)
        return verdicts

    try:
        alone, batched = run(batched=False), run(batched=True)
        records = project / "generated" / ".cache" / "path-batch"
        assert [p.name for p in records.glob("*/*.json")] == ["path.orders_api__order_store.json"]
    finally:
        broken.write_text(original)
    assert list(batched) == ["path.orders_api__notifier", "path.orders_api__order_store"]
    assert batched == alone
    assert batched["path.orders_api__order_store"] is None
    said = batched["path.orders_api__notifier"]
    assert said is not None and "'component': 'big_orders'" in said and "broken on purpose" in said
    junit = (reports / "junit" / "path.orders_api__order_store.xml").read_text()
    assert 'name="test_path"' in junit and "<failure" not in junit
    assert "<failure" in (reports / "junit" / "path.orders_api__notifier.xml").read_text()
    assert run(batched=True) == dict.fromkeys(batched)  # repaired: both pass (results rewritten)
