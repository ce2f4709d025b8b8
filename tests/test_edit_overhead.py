"""What a one-process build (the edit build: plain `doit`) does around its tasks
(tasks/reporter.py): the collector's threshold while the tasks run, and the path tests' server
asked to stop once the `test` group is done instead of in doit's teardowns after the last task
(validate/shared_server.py stop_early), with real processes."""

from __future__ import annotations

import gc
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from doit.task import Task

from autocoder.tasks.reporter import RUN_GC_THRESHOLD, AutocoderReporter
from autocoder.tasks.validate_tasks import stop_shared_server  # the path tasks' teardown
from autocoder.validate import shared_server
from autocoder.validate.shared_server import STATE

# A server stand-in: counts the SIGTERMs it gets, marks the first one, and ends only once the
# test releases it (bounded), so "still stopping" is a state the test holds, not a race.
CHILD = """
import pathlib, signal, sys, time
folder = pathlib.Path(sys.argv[1])
got = []
signal.signal(signal.SIGTERM, lambda *_: (got.append(1), (folder / "term").write_text("1")))
(folder / "ready").write_text("1")
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not (got and (folder / "release").exists()):
    time.sleep(0.01)
(folder / "count").write_text(str(len(got)))
"""


def _wait_for(path: Path, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.exists(), f"{path.name} never appeared"


def _server(folder: Path) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True)
    process = subprocess.Popen([sys.executable, "-c", CHILD, str(folder)])
    _wait_for(folder / "ready")
    return process


def _record(project: Path, build: str, pid: int) -> Path:
    state = project / STATE / "state.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    found = {"build": build, "pid": pid, "port": 1, "components": None, "retired": [], "ready": True}
    state.write_text(json.dumps(found))
    return state


def _reporter(project: Path, build: str, monkeypatch: pytest.MonkeyPatch) -> tuple[AutocoderReporter, dict]:
    """The reporter of a run whose `test` group has a path task with the server's teardown."""
    monkeypatch.chdir(project)
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(project / "hypothesis"))
    path = Task("test:path.a__b", [(lambda: True, [])], teardown=[(stop_shared_server, [project, build])])
    tasks = {path.name: path, "test": Task("test", None, task_dep=[path.name])}
    reporter = AutocoderReporter(io.StringIO(), {})
    reporter.initialize(tasks, ["test"])
    return reporter, tasks


def test_the_collector_threshold_is_raised_while_the_tasks_run_and_restored_after(tmp_path, monkeypatch):
    before = gc.get_threshold()
    reporter, _ = _reporter(tmp_path, "b", monkeypatch)
    try:
        assert gc.get_threshold() == (max(RUN_GC_THRESHOLD, before[0]), *before[1:])
    finally:
        reporter.complete_run()
    assert gc.get_threshold() == before


def test_the_server_is_asked_to_stop_when_the_tests_are_done_and_reaped_at_teardown(tmp_path, monkeypatch):
    """The `test` group done: SIGTERM at once and state.json gone (a later path test would start
    its own), without waiting; the teardown then waits for it, without a second SIGTERM."""
    folder = tmp_path / "server"
    process = _server(folder)
    project = tmp_path / "project"
    try:
        shared_server._OWNED[process.pid] = process
        state = _record(project, "b1", process.pid)
        reporter, tasks = _reporter(project, "b1", monkeypatch)
        reporter.add_success(tasks["test"])
        _wait_for(folder / "term")
        assert not state.exists()
        assert process.poll() is None  # still stopping: nothing waited for it
        (folder / "release").write_text("1")
        stop_shared_server(project, "b1")  # doit's teardown
        assert process.returncode is not None and process.pid not in shared_server._OWNED
        assert (folder / "count").read_text() == "1"
        reporter.complete_run()
    finally:
        shared_server._OWNED.pop(process.pid, None)
        process.kill()
        process.wait()


def test_a_server_this_process_does_not_own_is_left_to_the_teardown(tmp_path, monkeypatch):
    """Under `doit -n N` the workers own the server (the reporter's process does not): the
    group's end changes nothing; the teardown stops it as before."""
    folder = tmp_path / "server"
    process = _server(folder)
    project = tmp_path / "project"
    try:
        state = _record(project, "b2", process.pid)
        reporter, tasks = _reporter(project, "b2", monkeypatch)
        reporter.add_success(tasks["test"])
        assert state.exists() and not (folder / "term").exists()
        reporter.complete_run()
    finally:
        process.kill()
        process.wait()
