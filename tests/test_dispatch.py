"""doit's dispatch order in Autocoder builds (autocoder/tasks/dispatch.py): a FIRST task (typecheck)
runs as soon as its dependencies are done and a process is free, instead of behind every task
that became ready before it; the other tasks keep doit's order, and nothing else changes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import doit.control
import pytest
from conftest import EXAMPLE

from autocoder.cli import DODO_TEXT

# A scratch build's shape: `root` (check and ir) holds everything back; then N generators, each
# freeing its own test, and `{late}`, which needs every generator (as typecheck). With -n 2,
# doit queues each test when its generator ends, so `{late}` is queued after all of them.
TOY = """
import os, time
from autocoder.tasks import dispatch

dispatch.install()
N = {n}

def note(name, seconds):
    def action():
        with open("order.log", "a") as log:
            log.write(name + "\\n")
        time.sleep(seconds)
    return action

def task_root():
    return {{"actions": [note("root", 0.3)]}}

def task_gen():
    for i in range(N):
        yield {{"name": str(i), "actions": [note(f"gen:{{i}}", 0.02)], "task_dep": ["root"]}}

def task_test():
    for i in range(N):
        yield {{"name": str(i), "actions": [note(f"test:{{i}}", 0.02)], "task_dep": [f"gen:{{i}}"]}}

def task_{late}():
    return {{"actions": [note("late", 0.0)], "task_dep": [f"gen:{{i}}" for i in range(N)]}}
"""
N = 12


def _order(tmp_path: Path, late: str, *, fifo: bool = False, processes: str = "2") -> list[str]:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "dodo.py").write_text(TOY.format(n=N, late=late))
    env = {**os.environ, "AUTOCODER_DISPATCH": "fifo" if fifo else ""}
    run = subprocess.run(
        [sys.executable, "-m", "doit", "-f", "dodo.py", "--db-file", "db", "-n", processes],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return (tmp_path / "order.log").read_text().split()


def _tests_after_late(order: list[str]) -> int:
    return sum(1 for name in order[order.index("late") :] if name.startswith("test:"))


def test_an_early_task_runs_before_the_tasks_queued_ahead_of_it(tmp_path):
    order = _order(tmp_path, "typecheck")
    assert sorted(order) == sorted(["root", "late", *(f"{k}:{i}" for k in ("gen", "test") for i in range(N))])
    gens = [order.index(f"gen:{i}") for i in range(N)]
    # it starts once its last generator is done: before most tests, which are queued first
    assert order.index("late") > max(gens)
    assert _tests_after_late(order) >= N // 2, order


def test_other_tasks_or_fifo_keep_doit_s_order(tmp_path):
    """The same DAG with another name in typecheck's place, or with AUTOCODER_DISPATCH=fifo:
    it is queued behind the tests, as doit's own dispatcher does (the change is real).

    A few tests may still log after it: the last generator frees its test and `{late}` at once,
    and the other process may write its line a moment after `{late}`'s (2 in 15 runs on an idle
    machine, once); an early dispatch puts at least N // 2 of them after it."""
    assert _tests_after_late(_order(tmp_path / "other", "late")) <= N // 4
    assert _tests_after_late(_order(tmp_path / "fifo", "typecheck", fifo=True)) <= N // 4


def test_one_process_runs_the_same_tasks(tmp_path):
    order = _order(tmp_path, "typecheck", processes="0")
    assert sorted(order) == sorted(["root", "late", *(f"{k}:{i}" for k in ("gen", "test") for i in range(N))])


def test_the_first_tasks_are_real_and_the_ones_the_tests_or_only_the_report_wait_for(tmp_path, monkeypatch):
    """FIRST names real tasks of a project: gen:runtime, which every component test waits for,
    and two that only `report` (and the `test` group) wait for."""
    from doit.loader import load_tasks

    from autocoder.tasks import dodo
    from autocoder.tasks.dispatch import FIRST

    for name in ("architecture.yaml", "deployment.yaml"):
        (tmp_path / name).write_bytes((EXAMPLE / name).read_bytes())
    (tmp_path / "dodo.py").write_text(DODO_TEXT)
    monkeypatch.chdir(tmp_path)
    tasks = load_tasks(vars(dodo), allow_delayed=False)
    doit.control.TaskControl(tasks)  # adds the task_dep that file_dep on targets implies
    assert FIRST <= {task.name for task in tasks}
    needing = {task.name for task in tasks if (FIRST - {"gen:runtime"}) & set(task.task_dep)}
    assert needing <= {"report", "test"}, needing
    tests = [t for t in tasks if t.name.startswith("test:") and t.name.count(":") == 1]
    assert tests and all("gen:runtime" in task.task_dep for task in tests)


@pytest.mark.parametrize("setting", ["", "fifo"])
def test_install_picks_the_dispatcher(monkeypatch, setting):
    import doit.control

    from autocoder.tasks import dispatch

    monkeypatch.setattr(doit.control, "TaskDispatcher", doit.control.TaskDispatcher)
    monkeypatch.setenv(dispatch.ENV, setting)
    dispatch.install()
    chosen = doit.control.TaskDispatcher
    assert (chosen is dispatch.EarlyFirstDispatcher) == (setting != "fifo")


def _typecheck_build(project: Path, dispatch: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), "-n", "2", "--continue", "typecheck"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "AUTOCODER_DISPATCH": dispatch, "AUTOCODER_CACHE": "off"},
        timeout=300,
    )


@pytest.mark.slow  # a project's first typecheck in a test session is cold: ~20-50 s
def test_a_type_error_fails_the_build_with_the_same_message_in_either_order(tmp_path):
    """A build with -n 2 whose generated module has a type error fails at typecheck, with the
    same findings whether typecheck is dispatched first or in doit's order."""
    from autocoder.synthetic import write_synthetic

    project = tmp_path / "project"
    write_synthetic(project, 2)
    first = _typecheck_build(project, "")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    module = next((project / "generated" / "src").glob("*/components/extra_0.py"))
    module.write_text(module.read_text() + '\n\nBROKEN: int = "not an int"\n')
    failures = []
    for dispatch in ("", "fifo"):
        run = _typecheck_build(project, dispatch)
        assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
        output = run.stdout + run.stderr
        assert "TaskFailed - taskid:typecheck" in output and "mypy found 1 error(s)" in output, output[-2000:]
        failures.append([line for line in output.splitlines() if "extra_0.py:" in line])
    assert failures[0] == failures[1] and len(failures[0]) >= 1, failures
    assert "Incompatible types in assignment" in failures[0][0], failures


def test_a_doit_without_a_deque_keeps_its_own_queue(monkeypatch):
    """Fail safe: should doit's dispatcher keep its ready queue in anything but a deque, the
    subclass leaves that queue (and so doit's order) as it is."""
    from doit.control import TaskControl

    from autocoder.tasks import dispatch

    control = TaskControl([])
    control.process(None)
    ours = dispatch.EarlyFirstDispatcher(control.tasks, control.targets, [])
    assert type(ours.ready) is dispatch.ReadyQueue
    monkeypatch.setattr(dispatch, "deque", list)  # as if doit's queue were a list
    kept = dispatch.EarlyFirstDispatcher(control.tasks, control.targets, [])
    assert type(kept.ready) is not dispatch.ReadyQueue


def test_the_smoke_test_alone_from_scratch_finds_every_component_module(tmp_path):
    """Starting the system imports every component's module, so `test:integration` is ordered
    after every `gen:<component>`: asked for alone in a new project, with -n 2 and dispatched
    first, it passes (without that order no component module is generated before it runs)."""
    from autocoder.synthetic import write_synthetic

    project = tmp_path / "project"
    write_synthetic(project, 3)
    run = subprocess.run(
        [sys.executable, "-m", "autocoder.cli", "build", str(project), "-n", "2", "test:integration"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "AUTOCODER_CACHE": "off", "AUTOCODER_WARM_WORKER": "off"},
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    modules = {p.stem for p in (project / "generated" / "src").glob("*/components/*.py")} - {"__init__"}
    assert len(modules) >= 3, modules
